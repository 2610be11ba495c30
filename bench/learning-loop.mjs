#!/usr/bin/env node
// Issue 16's learning loop: catdog starting from nothing but its zero-shot classifier, taught only through the API.
// `catdog serve` on embedded defaults (the default preset, backbones from ../shared/models through
// training.backboneDir) with automatic retraining on; `validations` photos (the lowest-numbered kaggle-dev photos,
// half cats, half dogs) are each posted for a prediction and then validated with their true label, as a user
// confirming or correcting the answer would. Once `minNewValidated` validations have arrived, the server queues a
// retraining job that its worker process runs: a dataset version, a training, an evaluation, a promotion. The bench
// waits for that promotion, then measures zero-shot and the promoted model with `catdog evaluate` on the held-out
// kaggle-dev photos numbered ≥ 4000 (never posted). Writes the `bench:learning-loop` section of docs/benchmarks.md.
// Usage: node bench/learning-loop.mjs [--validations 220] [--minNewValidated 200] [--heldOutFrom 4000]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { kaggleTrainAndHeldOut, machine, options, repoRoot, replaceBenchmarkSection, requireShared, sharedDir } from './lib.mjs';

const opts = options({ validations: 220, minNewValidated: 200, heldOutFrom: 4000 });
requireShared();
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-loop-'));
const home = path.join(work, 'home');
const env = {
  ...process.env,
  CATDOG_HOME: home,
  CATDOG_BACKBONE_DIR: path.join(sharedDir, 'models'),
  CATDOG_RETRAINING__ENABLED: 'true',
  CATDOG_RETRAINING__MIN_NEW_VALIDATED: String(opts.minNewValidated),
  CATDOG_SERVER__LOCAL_VIEWER: 'false',
  CATDOG_LOG_LEVEL: 'warn',
};

function catdog(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, cwd: work, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`catdog ${args.join(' ')} exited ${code}`))));
  });
}

const { trainDir, heldOut } = kaggleTrainAndHeldOut(work, opts.validations / 2, opts.heldOutFrom);
const heldOutDir = path.join(work, 'held-out');
for (const { file, label } of heldOut) {
  const folder = path.join(heldOutDir, label === 1 ? 'dog' : 'cat');
  fs.mkdirSync(folder, { recursive: true });
  fs.symlinkSync(file, path.join(folder, path.basename(file)));
}
// Cats and dogs alternate, as users' photos would arrive, not one class after the other.
const [cats, dogs] = ['cat', 'dog'].map((label) => fs.readdirSync(path.join(trainDir, label)).sort().map((name) => ({ file: path.join(trainDir, label, name), label })));
const posted = cats.flatMap((cat, index) => [cat, dogs[index]]).filter(Boolean);

const evaluate = async (model) => JSON.parse(await catdog(['evaluate', '--data', heldOutDir, '--model', model, '--json']));

const token = JSON.parse(await catdog(['token', 'create', '--role', 'admin', '--json'])).secret;
const server = spawn(process.execPath, [cli, 'serve', '--port', '0'], { env, cwd: work, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  server.once('exit', (code) => reject(new Error(`catdog serve exited ${code}`)));
  server.stdout.on('data', (chunk) => {
    out += chunk;
    const match = /catdog listening on (http:\/\/\S+)/.exec(out);
    if (match) resolve(match[1].replace(/\/$/, ''));
  });
});
const api = async (route, init = {}) => {
  const response = await fetch(`${url}/api/v1${route}`, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${route}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
};

const started = Date.now();
let zeroShotRight = 0;
try {
  for (const [index, { file, label }] of posted.entries()) {
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(file)]), path.basename(file));
    const { predictions } = await api('/predictions', { method: 'POST', body: form });
    const [prediction] = predictions;
    if (prediction.label === label) zeroShotRight += 1;
    await api(`/predictions/${prediction.id}/validation`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ label }) });
    if ((index + 1) % 20 === 0) process.stderr.write(`posted and validated ${index + 1} of ${posted.length}\n`);
  }
  const validatedAt = Date.now();
  let retrain;
  for (;;) {
    const { items } = await api('/jobs?limit=100');
    retrain = items.find((job) => job.name === 'retrain');
    if (retrain !== undefined && ['completed', 'failed', 'cancelled'].includes(retrain.state)) break;
    if (Date.now() - validatedAt > 30 * 60_000) throw new Error(`no retraining finished within 30 minutes: ${JSON.stringify(retrain)}`);
    await sleep(2000);
  }
  if (retrain.state !== 'completed') throw new Error(`the retraining job ended ${retrain.state}: ${retrain.error}`);
  const promoted = await api('/models/current');
  const retrainedAfterS = (Date.now() - validatedAt) / 1000;

  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  const zeroShot = await evaluate('zero-shot');
  const learned = await evaluate('current');
  const errors = (result) => Math.round((1 - result.accuracy) * result.count);
  const result = {
    validations: posted.length,
    minNewValidated: opts.minNewValidated,
    zeroShotAgreementWhilePosting: zeroShotRight / posted.length,
    retrainJob: { id: retrain.id, result: retrain.result },
    promotedModel: { id: promoted.id, version: promoted.version, architecture: promoted.architecture },
    retrainedAfterSeconds: retrainedAfterS,
    heldOut: { photos: learned.count, zeroShotAccuracy: zeroShot.accuracy, zeroShotErrors: errors(zeroShot), learnedAccuracy: learned.accuracy, learnedErrors: errors(learned) },
    totalSeconds: (Date.now() - started) / 1000,
    machine: machine(),
  };
  console.log(JSON.stringify(result, null, 2));
  const pct = (value) => `${(value * 100).toFixed(2)}%`;
  replaceBenchmarkSection(
    'learning-loop',
    `## The learning loop from zero-shot (issue 16)

\`node bench/learning-loop.mjs --validations ${posted.length} --minNewValidated ${opts.minNewValidated}\`: \`catdog serve\` on embedded
defaults (the default preset) with automatic retraining on and no model; ${posted.length} kaggle-dev photos (the lowest-numbered, cats and dogs
alternating) each posted to \`POST /api/v1/predictions\` and validated with their true label; the server's retraining
after ${opts.minNewValidated} validations built a dataset version, trained and promoted model v${promoted.version} (${promoted.architecture})
${retrainedAfterS.toFixed(0)} s after the last validation. Measured with \`catdog evaluate\` on the ${learned.count} held-out photos numbered
≥ ${opts.heldOutFrom}, never posted:

| classifier | held-out accuracy | errors |
|---|---|---|
| zero-shot (ImageNet classes of the backbone) | ${pct(zeroShot.accuracy)} | ${errors(zeroShot)} |
| after the learning loop | **${pct(learned.accuracy)}** | **${errors(learned)}** |

${machine()}.`,
  );
  if (learned.accuracy <= zeroShot.accuracy) {
    process.stderr.write('the learned model does not beat zero-shot\n');
    process.exitCode = 1;
  }
} finally {
  server.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
}
