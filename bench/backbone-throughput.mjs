#!/usr/bin/env node
// The backbone's own photos/s at batch 32 (decode excluded) for a training.preset, as serving runs it: the preset's
// backbones (catalogue names read from ../shared/models through training.backboneDir) loaded by catdog's
// BackboneProvider at the preset's input size, one forward pass per batch giving features and ImageNet
// probabilities (what an answer and its "neither" check need). Issue 16 sets serving's load figure against it
// (bench/load.mjs runs this in the same run and reports the ratio). Runs dist/ (npm run build first).
// Usage: node bench/backbone-throughput.mjs [--preset <default preset>] [--seconds 20]
import path from 'node:path';
import { loadAverage, machine, options, presetBackbone, repoRoot, requireShared } from './lib.mjs';

const opts = options({ preset: '', seconds: 20 });
requireShared();
const { initTensorflow } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));

const BATCH = 32;
const { backbone, preset, sources, close } = await presetBackbone(opts.preset);
try {
  const { tf } = await initTensorflow();
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
    preset,
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
  await close();
}
