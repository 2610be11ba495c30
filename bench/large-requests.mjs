#!/usr/bin/env node
// Issue 14, point 2: "memory back near its level after" a request carrying many files. `catdog serve` on embedded
// defaults (zero-shot MobileNet v1 0.75) is sent, one after the other, `repeats` prediction requests of `files`
// full-size kaggle-fullres-sample photos each (64 = server.maxFilesPerRequest, the most one request may carry; the
// batcher splits them into model calls of at most 32). Its RSS (/proc/<pid>/status) is read idle after start, then
// as the baseline after one request of 32 photos — the largest model call, whose memory TensorFlow and the
// allocator keep for the process's life whatever comes next (docs/benchmarks.md, figure 8) — then its peak over
// the large requests (VmHWM, reset at the baseline), then every second for `settle` seconds after the last answer.
// Target: `settle` s after, RSS within 10% of the baseline. Writes docs/bench/large-requests.json and the
// `bench:large-requests` section of docs/benchmarks.md; exits 1 when the target is missed.
// Usage: node bench/large-requests.mjs [--repeats 10] [--files 64] [--settle 10]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  catdogEnv,
  fullResPhotos,
  loadAverage,
  machine,
  MULTIPART_CONTENT_TYPE,
  multipartBody,
  options,
  replaceBenchmarkSection,
  repoRoot,
  requireShared,
  startServe,
} from './lib.mjs';

const opts = options({ repeats: 10, files: 64, settle: 10 });
requireShared();
/** The batcher's default cap (`maxBatch` in src/serving/batcher.ts): the largest model call the server makes. */
const FULL_BATCH = 32;
const TARGET_GROWTH = 0.1;
const photos = fullResPhotos();
/** `count` photos from the `from`-th on, wrapping around, so that repeated requests carry different photos. */
const photosFrom = (from, count) => Array.from({ length: count }, (_, i) => photos[(from + i) % photos.length]);

const statusMiB = (pid, field) => {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((candidate) => candidate.startsWith(`${field}:`));
  return Number(line.split(/\s+/)[1]) / 1024;
};

async function predict(base, token, files) {
  const sent = performance.now();
  const response = await fetch(`${base}/api/v1/predictions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': MULTIPART_CONTENT_TYPE },
    body: multipartBody(files),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`a request of ${files.length} photos answered ${response.status}: ${text.slice(0, 300)}`);
  const { predictions, errors } = JSON.parse(text);
  if (predictions.length !== files.length) throw new Error(`${files.length} photos sent, ${predictions.length} predicted: ${JSON.stringify(errors).slice(0, 300)}`);
  return performance.now() - sent;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-large-'));
const started = Date.now();
const loadBefore = loadAverage();
let server;
let outcome;
try {
  server = await startServe(catdogEnv(path.join(work, 'home')), { tokens: { 'large requests': 'viewer' } });
  const { base, servingModelId, tokens: { 'large requests': token } } = server;
  const pid = server.server.pid;
  const idleAtStart = statusMiB(pid, 'VmRSS');
  await predict(base, token, photosFrom(0, FULL_BATCH));
  await sleep(2_000);
  const baseline = statusMiB(pid, 'VmRSS');
  // Resets VmHWM to the current RSS (proc(5), clear_refs), so the peak below is the large requests' own.
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  process.stderr.write(`large-requests: ${opts.repeats} requests of ${opts.files} photos…\n`);
  const latenciesMs = [];
  for (let repeat = 0; repeat < opts.repeats; repeat++) latenciesMs.push(await predict(base, token, photosFrom(FULL_BATCH + repeat * opts.files, opts.files)));
  const peak = statusMiB(pid, 'VmHWM');
  const afterLast = statusMiB(pid, 'VmRSS');
  const settling = [];
  for (let second = 1; second <= opts.settle; second++) {
    await sleep(1_000);
    settling.push(statusMiB(pid, 'VmRSS'));
  }
  const settled = settling.at(-1);
  outcome = {
    figure: 'large-requests',
    title: `8c. Memory after large requests: ${opts.repeats} prediction requests of ${opts.files} photos each`,
    machine: machine(),
    what: `\`catdog serve\` on embedded defaults (serving ${servingModelId}), sent one after the other ${opts.repeats} prediction requests of ${opts.files} different kaggle-fullres-sample photos each, after one request of ${FULL_BATCH} photos (the largest model call) that sets the baseline`,
    command: `node bench/large-requests.mjs${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    rssMiB: { idleAtStart, baseline, peak, afterLast, settled, settling },
    settleSeconds: opts.settle,
    growthPercent: ((settled - baseline) / baseline) * 100,
    requestLatencyMs: { min: Math.min(...latenciesMs), max: Math.max(...latenciesMs), all: latenciesMs },
  };
} finally {
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

outcome.loadBefore = loadBefore;
outcome.loadAfter = loadAverage();
outcome.date = new Date().toISOString();
outcome.wallSeconds = (Date.now() - started) / 1000;
outcome.targets = { [`RSS ${opts.settle} s after within ${TARGET_GROWTH * 100}% of the baseline`]: outcome.growthPercent <= TARGET_GROWTH * 100 };
fs.writeFileSync(path.join(repoRoot, 'docs', 'bench', 'large-requests.json'), `${JSON.stringify(outcome, null, 2)}\n`);
replaceBenchmarkSection('large-requests', section(outcome));
console.log(JSON.stringify({ figure: outcome.figure, rssMiB: outcome.rssMiB, growthPercent: outcome.growthPercent, targets: outcome.targets }));
const missed = Object.entries(outcome.targets).filter(([, met]) => !met).map(([target]) => target);
if (missed.length > 0) {
  process.stderr.write(`large-requests: missed ${missed.join('; ')}\n`);
  process.exitCode = 1;
}

function section(result) {
  const mib = (value) => value.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const [target, met] = Object.entries(result.targets)[0];
  const { rssMiB } = result;
  return [
    `## ${result.title}`,
    '',
    `\`${result.command}\`: ${result.what}. Machine: ${result.machine}.`,
    `Load average (1/5/15 min) before ${result.loadBefore.join(' / ')}, after ${result.loadAfter.join(' / ')}. Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.wallSeconds.toFixed(0)} s in all; each large request took ${mib(result.requestLatencyMs.min)}–${mib(result.requestLatencyMs.max)} ms.`,
    '',
    '| server RSS | MiB |',
    '|---|---:|',
    `| idle after start | ${mib(rssMiB.idleAtStart)} |`,
    `| baseline: after one request of 32 photos | ${mib(rssMiB.baseline)} |`,
    `| peak during the large requests | ${mib(rssMiB.peak)} |`,
    `| at the last answer | ${mib(rssMiB.afterLast)} |`,
    `| ${result.settleSeconds} s after (each second: ${rssMiB.settling.map(mib).join(', ')}) | ${mib(rssMiB.settled)} |`,
    '',
    `${result.settleSeconds} s after the last answer / baseline: **${(rssMiB.settled / rssMiB.baseline).toFixed(2)}×** (${result.growthPercent >= 0 ? '+' : ''}${result.growthPercent.toFixed(1)}%; target: ${target}: ${met ? 'met' : '**missed**'}).`,
  ].join('\n');
}
