#!/usr/bin/env node
// Runs every figure of the benchmark suite against the Python stack, one after another, and writes
// docs/bench/<figure>.json + .png and the figure's section of docs/benchmarks.md (between its markers; the rest of
// the file, such as the foundation figures, is left as it is). `npm run bench` builds first.
// Figures 2 and 4 measure a training.preset's backbones (`--preset`, default: the config default preset): the default
// preset's go to their sections `features` and `end-to-end`, another preset's to `features-<preset>` and
// `end-to-end-<preset>` (placed after the default's the first time), so each preset keeps its own row set.
// Usage: node bench/run-all.mjs [--only preprocess,features,train,end-to-end,serving] [--quick] [--preset <name>]
import fs from 'node:fs';
import path from 'node:path';
import { peersPython, plotFigure, replaceBenchmarkSection, repoRoot, runMeasured } from './lib.mjs';

/**
 * Default sizes fit the whole suite in about 15 minutes on an idle 2-core machine; --quick checks the plumbing.
 * bench/load.mjs (a 60 s soak of 50 clients, plus training its model) runs on its own: it would not fit.
 */
const FIGURES = [
  { id: 'preprocess', title: '1. Preprocessing: full-size JPEG to a normalised 224 or 128 px tensor', script: 'preprocess.mjs', args: [], quick: ['--images', '20', '--passes', '1', '--rounds', '1'] },
  { id: 'features', title: '2. Feature extraction', script: 'features.mjs', args: [], quick: ['--images', '32', '--rounds', '1'], takesPreset: true },
  { id: 'train', title: '3. Training throughput: CNN 128 px and logistic head, batch 32', script: 'train-cnn.mjs', args: ['--cnnImages', '96', '--epochs', '1'], quick: ['--cnnImages', '64', '--headImages', '640', '--epochs', '1', '--rounds', '1'] },
  { id: 'end-to-end', title: '4. End to end: 2,000 photos on disk to an evaluated model', script: 'end-to-end.mjs', args: [], quick: ['--perClass', '40'], takesPreset: true },
  { id: 'serving', title: '5. Serving: HTTP predictions on one core', script: 'serving.mjs', args: [], quick: ['--seconds', '3'] },
  { id: 'batching', title: '7. Speed work: micro-batching of concurrent predictions', script: 'batching.mjs', args: [], quick: ['--concurrency', '4', '--rounds', '1'] },
];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyIndex = argv.indexOf('--only');
const only = onlyIndex >= 0 ? new Set(argv[onlyIndex + 1].split(',')) : undefined;
const presetIndex = argv.indexOf('--preset');
const preset = presetIndex >= 0 ? argv[presetIndex + 1] : '';
const { DEFAULT_PRESET } = await import(path.join(repoRoot, 'dist', 'config', 'presets.js'));
const benchDocs = path.join(repoRoot, 'docs', 'bench');
fs.mkdirSync(benchDocs, { recursive: true });
const python = peersPython();


function writeFigure(id, result, placement = {}) {
  const jsonFile = path.join(benchDocs, `${id}.json`);
  fs.writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
  plotFigure(python, jsonFile, path.join(benchDocs, `${id}.png`));
  replaceBenchmarkSection(id, section(id, result), placement);
}

/** Figure 6: the peak RSS every contender reached in the figures above, gathered from their JSON results. */
function writeMemoryFigure() {
  const rows = [];
  for (const { id, title } of FIGURES) {
    const file = path.join(benchDocs, `${id}.json`);
    if (!fs.existsSync(file)) continue;
    const result = JSON.parse(fs.readFileSync(file, 'utf8'));
    const byImpl = new Map();
    for (const row of result.rows) {
      if (row.peakRssMiB) byImpl.set(row.impl, Math.max(byImpl.get(row.impl) ?? 0, row.peakRssMiB));
    }
    for (const [impl, value] of byImpl) rows.push({ group: title.replace(/^\d+\. /, '').split(':')[0], impl: shortImpl(impl), value });
  }
  if (rows.length === 0) return;
  writeFigure('memory', {
    figure: 'memory',
    title: '6. Memory: peak RSS of each contender',
    unit: 'peak RSS, MiB (lower is better)',
    what: 'the largest VmHWM / `/usr/bin/time` maximum resident set of one process of each contender across the measurements of figures 1–5 (for multiprocessing peers: the largest single process, not the sum)',
    rows,
  });
}

/** 'catdog train' → 'catdog'; other names tell catdog's variants apart ('catdog, no mirrored views', 'catdog eager step …'). */
const shortImpl = (impl) => (impl.startsWith('catdog train') ? impl.replace('catdog train', 'catdog') : impl);

const number = (value) => (value === null || value === undefined ? '–' : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

function section(id, result) {
  const extra = ['p50Ms', 'p99Ms', 'testAccuracy', 'peakRssMiB'].filter((key) => result.rows.some((row) => row[key] !== undefined));
  const heading = { p50Ms: 'p50 ms', p99Ms: 'p99 ms', testAccuracy: 'test accuracy', peakRssMiB: 'peak RSS MiB' };
  const lines = [
    `## ${result.title}`,
    '',
    `${result.what}. ${result.machine ? `Machine: ${result.machine}.` : ''}`,
    result.loadBefore
      ? `Load average (1/5/15 min) before ${result.loadBefore.join(' / ')}, after ${result.loadAfter.join(' / ')}${Math.max(result.loadBefore[0], result.loadAfter[0]) > 2.5 ? ': **taken under load** (other work shared the 2 cores), so absolute figures are low; the interleaved ratios are the comparable part' : ''}.`
      : '',
    result.date ? `Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC${result.quick ? ' with --quick sizes (plumbing check, not a result)' : ''}, ${result.wallSeconds.toFixed(0)} s.` : '',
    '',
    `| | contender | ${result.unit} | catdog ÷ this |${extra.map((key) => ` ${heading[key]} |`).join('')}`,
    `|---|---|---:|---:|${extra.map(() => '---:|').join('')}`,
  ];
  for (const row of result.rows) {
    const catdog = result.rows.find((other) => other.group === row.group && other.impl.startsWith('catdog'));
    const ratio = catdog && row.value ? catdog.value / row.value : undefined;
    const runs = row.values && row.values.length > 1 ? ` (runs: ${row.values.map(number).join(', ')})` : '';
    lines.push(`| ${row.group} | ${row.impl} | ${number(row.value)}${runs} | ${ratio === undefined ? '–' : `${ratio.toFixed(2)}×`} | ${extra.map((key) => ` ${number(row[key])} |`).join('')}`);
  }
  lines.push('', `![${result.title}](bench/${id}.png)`);
  return lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n');
}

for (const figure of FIGURES.filter((f) => !only || only.has(f.id))) {
  process.stderr.write(`bench: ${figure.id}…\n`);
  const started = Date.now();
  const args = [...(quick ? figure.quick : figure.args), ...(figure.takesPreset && preset ? ['--preset', preset] : [])];
  const result = runMeasured(process.execPath, [path.join(repoRoot, 'bench', figure.script), ...args]);
  result.title = result.subject ? `${figure.title}, ${result.subject}` : figure.title;
  delete result.peakRssMiB; // the orchestrator's own; each row carries its contender's
  result.wallSeconds = (Date.now() - started) / 1000;
  result.date = new Date().toISOString();
  result.quick = quick;
  const ownSection = figure.takesPreset && result.preset !== DEFAULT_PRESET;
  const id = ownSection ? `${figure.id}-${result.preset}` : figure.id;
  writeFigure(id, result, ownSection ? { after: figure.id } : {});
  process.stderr.write(`bench: ${id} done in ${result.wallSeconds.toFixed(0)} s\n`);
}
writeMemoryFigure();
