#!/usr/bin/env node
// The backbone's own photos/s at batch 32 (decode excluded) for a training.preset, as serving runs it: the preset's
// backbones (catalogue names read from ../shared/models through training.backboneDir) loaded by catdog's
// BackboneProvider at the preset's input size, one forward pass per batch giving features and ImageNet
// probabilities (what an answer and its "neither" check need). Issue 16 sets serving's load figure against it
// (bench/load.mjs runs this in the same run and reports the ratio). Runs dist/ (npm run build first).
// Usage: node bench/backbone-throughput.mjs [--preset <default preset>] [--seconds 20]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAverage, machine, options, repoRoot, requireShared, sharedDir } from './lib.mjs';

const opts = options({ preset: '', seconds: 20 });
requireShared();
const dist = (module) => import(path.join(repoRoot, 'dist', module));
const { loadConfig } = await dist('config/index.js');
const { openApp } = await dist('app/context.js');
const { createLogger } = await dist('app/logger.js');
const { initTensorflow } = await dist('ml/index.js');

const BATCH = 32;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-backbone-'));
const env = { CATDOG_HOME: path.join(work, 'home'), CATDOG_BACKBONE_DIR: path.join(sharedDir, 'models'), ...(opts.preset && { CATDOG_TRAINING__PRESET: opts.preset }) };
const app = await openApp(loadConfig({ env, cwd: work }), { logger: createLogger('warn') });
try {
  const { tf } = await initTensorflow();
  const { training } = app.config;
  const sources = [training.backbone, ...training.ensemble];
  const backbone = await app.backbones.combined(sources, training.backboneImageSize ?? undefined);
  const side = backbone.inputSize;
  // Real pixel values of one kaggle-dev photo per slot would not change the arithmetic: the work is the same per pixel.
  const input = tf.tidy(() => tf.randomUniform([BATCH, side, side, 3], 0, 255, 'float32', 1));
  const pass = async () => {
    const { features, imagenet } = backbone.featuresAndImagenet(input);
    await features.data();
    if (imagenet) await imagenet.data();
    tf.dispose([features, imagenet]);
  };
  for (let i = 0; i < 3; i++) await pass();
  const loadBefore = loadAverage();
  let batches = 0;
  const started = performance.now();
  while (performance.now() - started < opts.seconds * 1000) {
    await pass();
    batches += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  input.dispose();
  console.log(JSON.stringify({
    figure: 'backbone-throughput',
    machine: machine(),
    preset: training.preset,
    backbones: sources,
    inputSize: side,
    withImagenet: backbone.imagenet !== undefined,
    batch: BATCH,
    photosPerSecond: (batches * BATCH) / seconds,
    seconds,
    loadBefore,
    loadAfter: loadAverage(),
  }));
} finally {
  await app.close();
  fs.rmSync(work, { recursive: true, force: true });
}
