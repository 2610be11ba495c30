#!/usr/bin/env node
// Foundation target: `catdog train --data` on the first 1,000 photos per class of kaggle-dev with the default config
// (its training.preset's backbones read from ../shared/models; CATDOG_TRAINING__PRESET in the environment picks
// another), then `catdog evaluate` on every other kaggle-dev photo, or with --heldOutFrom N on those numbered >= N
// (issue 16: 4000, the 1,996 photos its table counts errors on). Reports accuracy, errors and the train wall time.
// Usage: node bench/train-mobilenet-accuracy.mjs [perClass=1000] [--train-only] [--heldOutFrom N]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, repoRoot, requireShared, sharedDir } from './lib.mjs';

requireShared();
const trainOnly = process.argv.includes('--train-only');
const heldOutFromAt = process.argv.indexOf('--heldOutFrom');
const heldOutFrom = heldOutFromAt > 0 ? Number(process.argv[heldOutFromAt + 1]) : 0;
const perClass = Number(process.argv.slice(2).find((arg, i, args) => !arg.startsWith('--') && args[i - 1] !== '--heldOutFrom') ?? 1000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-accuracy-'));
const trainDir = path.join(work, 'train');
const heldOutDir = path.join(work, 'held-out');

// Symlinks, not copies: the photos stay in shared/.
for (const label of ['cat', 'dog']) {
  const source = path.join(sharedDir, 'data', 'kaggle-dev', label);
  const numbered = fs.readdirSync(source).map((name) => ({ name, n: Number(name.split('.')[1]) })).sort((a, b) => a.n - b.n);
  for (const [dir, files] of [[trainDir, numbered.slice(0, perClass)], [heldOutDir, numbered.slice(perClass).filter(({ n }) => n >= heldOutFrom)]]) {
    fs.mkdirSync(path.join(dir, label), { recursive: true });
    for (const { name } of files) fs.symlinkSync(path.join(source, name), path.join(dir, label, name));
  }
}

const env = {
  ...process.env,
  CATDOG_HOME: path.join(work, 'home'),
  CATDOG_BACKBONE_DIR: path.join(sharedDir, 'models'),
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
  heldOutErrors: evaluation.json.count === undefined ? undefined : Math.round((1 - evaluation.json.accuracy) * evaluation.json.count),
  preset: process.env.CATDOG_TRAINING__PRESET ?? 'default',
  heldOutRocAuc: evaluation.json.rocAuc,
  evaluateWallSeconds: evaluation.seconds,
  targets: { heldOutAccuracy: 0.975, trainWallSeconds: 180 },
};
console.log(JSON.stringify(summary));
