#!/usr/bin/env node
// Foundation target: `catdog train` on the first 1,000 photos per class of kaggle-dev with the shared MobileNet
// v1 0.75, then `catdog evaluate` on every other kaggle-dev photo. Reports accuracy and the train wall time.
// Usage: node bench/train-mobilenet-accuracy.mjs [perClass=1000] [--train-only]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, repoRoot, requireShared, sharedDir } from './lib.mjs';

requireShared();
const trainOnly = process.argv.includes('--train-only');
const perClass = Number(process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? 1000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-accuracy-'));
const trainDir = path.join(work, 'train');
const heldOutDir = path.join(work, 'held-out');

// Symlinks, not copies: the photos stay in shared/.
for (const label of ['cat', 'dog']) {
  const source = path.join(sharedDir, 'data', 'kaggle-dev', label);
  const numbered = fs.readdirSync(source).map((name) => ({ name, n: Number(name.split('.')[1]) })).sort((a, b) => a.n - b.n);
  for (const [dir, files] of [[trainDir, numbered.slice(0, perClass)], [heldOutDir, numbered.slice(perClass)]]) {
    fs.mkdirSync(path.join(dir, label), { recursive: true });
    for (const { name } of files) fs.symlinkSync(path.join(source, name), path.join(dir, label, name));
  }
}

const env = {
  ...process.env,
  CATDOG_HOME: path.join(work, 'home'),
  CATDOG_BACKBONE_URL: path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json'),
  TF_CPP_MIN_LOG_LEVEL: '2',
};
const catdog = (args) => {
  const started = Date.now();
  const result = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (result.status !== 0) throw new Error(`catdog ${args.join(' ')} failed with ${result.status}`);
  return { seconds: (Date.now() - started) / 1000, json: JSON.parse(result.stdout) };
};

const train = catdog(['train', '--data', trainDir, '--json']);
const evaluation = trainOnly ? { seconds: 0, json: {} } : catdog(['evaluate', '--data', heldOutDir, '--json']);
fs.rmSync(work, { recursive: true, force: true });

const summary = {
  figure: 'mobilenet-transfer-accuracy',
  machine: machine(),
  trainPhotos: perClass * 2,
  trainWallSeconds: train.seconds,
  testSplitAccuracy: train.json.metrics.accuracy,
  heldOutPhotos: evaluation.json.count,
  heldOutAccuracy: evaluation.json.accuracy,
  heldOutRocAuc: evaluation.json.rocAuc,
  evaluateWallSeconds: evaluation.seconds,
  targets: { heldOutAccuracy: 0.975, trainWallSeconds: 180 },
};
console.log(JSON.stringify(summary));
