#!/usr/bin/env node
// CPU instructions per photo of the decode work in figures 1 and 5, counted by valgrind (callgrind): a figure that
// does not depend on the load of a shared machine, unlike the wall-clock figures. Each contender runs twice under
// valgrind, on the first `images` kaggle-fullres-sample photos and on none (same modules, same photos read); the
// difference divided by `images` is its cost per photo, start-up excluded. One thread each (sharp.concurrency(1)).
// Needs valgrind (apt-get install -y valgrind); slow, a few minutes per contender.
// Usage: node bench/instructions.mjs [--images 30] [--only catdog-224,opencv-224,…]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAverage, machine, normalisedPixels, options, peersPython, repoRoot, requireShared, sharedDir } from './lib.mjs';

const folder = path.join(sharedDir, 'data', 'kaggle-fullres-sample');
const LIMITS = { maxBytes: 20 * 1024 * 1024, maxPixels: 25_000_000, maxJpegScans: 100, maxJpegScanPixels: 1_000_000_000 };

/** The catdog stages, run by this script itself under valgrind (`--stage`). */
const STAGES = {
  // Figure 1 as the bench does it, at each of its sizes.
  'catdog-224': async (images, bytes) => normalisedPixels((await images.decodeToRgb(bytes, 224)).data),
  'catdog-128': async (images, bytes) => normalisedPixels((await images.decodeToRgb(bytes, 128)).data),
  // Figure 5's decode of an upload: validation and the model's pixels in one decode, and in two as before.
  'catdog-inspect-decode': (images, bytes) => images.inspectAndDecodeToRgb(bytes, LIMITS, 224),
  'catdog-inspect-then-decode': async (images, bytes) => {
    await images.inspectImage(bytes, LIMITS);
    await images.decodeToRgb(bytes, 224);
  },
  'catdog-inspect': (images, bytes) => images.inspectImage(bytes, LIMITS),
};

/** Python contenders: bench/peers/preprocess.py in its inline mode. */
const PEERS = {
  'opencv-224': ['--library', 'opencv', '--size', '224'],
  'opencv-128': ['--library', 'opencv', '--size', '128'],
  'pillow-224': ['--library', 'pillow', '--size', '224'],
  'pillow-128': ['--library', 'pillow', '--size', '128'],
};

const WHAT = {
  'catdog-224': 'figure 1 at 224 px, catdog: decodeToRgb + normalise',
  'catdog-128': 'figure 1 at 128 px, catdog: decodeToRgb + normalise',
  'opencv-224': 'figure 1 at 224 px, OpenCV: imdecode + resize(INTER_AREA) + normalise',
  'opencv-128': 'figure 1 at 128 px, OpenCV: imdecode + resize(INTER_AREA) + normalise',
  'pillow-224': 'figure 1 at 224 px and figure 5\'s Flask peer: Pillow open + exif_transpose + resize(BILINEAR) + normalise',
  'pillow-128': 'figure 1 at 128 px, Pillow: open + exif_transpose + resize(BILINEAR) + normalise',
  'catdog-inspect-decode': 'figure 5, catdog: inspectAndDecodeToRgb(224) (validate + pixels, one decode)',
  'catdog-inspect-then-decode': 'figure 5, catdog in two decodes: inspectImage + decodeToRgb(224)',
  'catdog-inspect': 'catdog import: inspectImage alone',
};

function photoFiles(count) {
  return ['cat', 'dog'].flatMap((label) => fs.readdirSync(path.join(folder, label)).sort().map((name) => path.join(folder, label, name))).slice(0, count);
}

async function runStage(stage, count) {
  const { default: sharp } = await import('sharp');
  sharp.concurrency(1);
  const images = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
  const photos = photoFiles(Math.max(count, 1)).map((file) => fs.readFileSync(file));
  for (const bytes of photos.slice(0, count)) await STAGES[stage](images, bytes);
}

/** Instructions of one run of `command` under callgrind (all threads). */
function instructions(command, args) {
  const outFile = path.join(os.tmpdir(), `catdog-callgrind-${process.pid}-${Date.now()}.out`);
  try {
    const run = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${outFile}`, command, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    });
    const collected = /Collected : (\d+)/.exec(run.stderr);
    if (run.status !== 0 || !collected) throw new Error(`${command} ${args.join(' ')} under valgrind failed (${run.status}):\n${run.stderr.slice(-2000)}`);
    return Number(collected[1]);
  } finally {
    fs.rmSync(outFile, { force: true });
  }
}

async function main() {
  const opts = options({ images: 30, only: '', stage: '', count: 0 });
  if (opts.stage) return runStage(opts.stage, opts.count);
  requireShared();
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    console.error('bench: valgrind not found; install it (apt-get install -y valgrind)');
    process.exit(2);
  }
  const python = peersPython();
  const self = fileURLToPath(import.meta.url);
  const commands = {
    ...Object.fromEntries(Object.keys(STAGES).map((stage) => [stage, (count) => [process.execPath, [self, '--stage', stage, '--count', String(count)]]])),
    ...Object.fromEntries(Object.entries(PEERS).map(([name, args]) => [
      name,
      (count) => [python, [path.join(repoRoot, 'bench', 'peers', 'preprocess.py'), ...args, '--inline', '--images', String(count)]],
    ])),
  };
  const chosen = opts.only ? opts.only.split(',') : Object.keys(commands);
  const loadBefore = loadAverage();
  const rows = [];
  for (const name of chosen) {
    if (!commands[name]) throw new Error(`unknown contender ${name}; known: ${Object.keys(commands).join(', ')}`);
    const [withPhotos, without] = [opts.images, 0].map((count) => instructions(...commands[name](count)));
    rows.push({ impl: name, what: WHAT[name], millionInstructionsPerPhoto: Number(((withPhotos - without) / opts.images / 1e6).toFixed(1)) });
    console.error(`bench: ${name}: ${rows.at(-1).millionInstructionsPerPhoto} M instructions per photo`);
  }
  console.log(JSON.stringify({ figure: 'instructions', machine: machine(), images: opts.images, loadBefore, loadAfter: loadAverage(), rows }));
}

await main();
