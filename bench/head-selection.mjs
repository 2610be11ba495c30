#!/usr/bin/env node
// Figure 4's cross-validation stage alone: `selectHeadL2` (src/training/head-selection.ts, 7 L2 weights × 5 folds as
// the 35 columns of one weight matrix) on 1,804 photos' 768-d feature vectors and their 1,804 mirrored copies, as
// `catdog train --data` does for 2,000 kaggle-dev photos with the default 20 epochs and batch 32. The features are
// synthetic (a weak signal in 40 of 768 ReLU-like features), so only the timing is meant. Prints one JSON line:
// the path the regressions trained on (graph or eager, `CATDOG_TRAINING_STEP=eager` forces eager), wall and CPU
// seconds of the call (the first graph load and `trainingPath`'s probe included), and what it chose.
// Usage: node bench/head-selection.mjs [--photos 1804] [--epochs 20]
import path from 'node:path';
import { loadAverage, options, repoRoot } from './lib.mjs';

const opts = options({ photos: 1804, epochs: 20 });
const { initTensorflow, trainingPath } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
const { selectHeadL2, HEAD_L2_GRID, HEAD_SELECTION_FOLDS } = await import(path.join(repoRoot, 'dist', 'training', 'head-selection.js'));
const { seededRandom } = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
const { tf } = await initTensorflow();

const WIDTH = 768;
const random = seededRandom(1);
const labels = Array.from({ length: opts.photos }, (_, photo) => photo % 2);
const features = labels.map((label) => Float32Array.from({ length: WIDTH }, (_, j) => Math.max(0, random() * 2 - 1 + (j < 40 ? (label - 0.5) * 0.4 : 0))));
const mirrored = features.map((row) => Float32Array.from(row, (value) => value * 0.98));
const folds = labels.map((_, photo) => (photo * 7) % HEAD_SELECTION_FOLDS);

const loadBefore = loadAverage();
const cpuBefore = process.cpuUsage();
const started = performance.now();
const selection = await selectHeadL2(tf, { features, augmented: mirrored, labels, folds }, { grid: HEAD_L2_GRID, folds: HEAD_SELECTION_FOLDS, epochs: opts.epochs, learningRate: 0.001, batchSize: 32, seed: 42 });
const cpu = process.cpuUsage(cpuBefore);
console.log(JSON.stringify({
  path: (await trainingPath()).kind,
  rows: opts.photos * 2,
  epochs: opts.epochs,
  wallSeconds: (performance.now() - started) / 1000,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  chosen: selection.chosen,
  loadBefore,
  loadAfter: loadAverage(),
}));
