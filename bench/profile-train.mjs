#!/usr/bin/env node
// Where one CNN training step's time goes on tfjs-node: every kernel of a trainOnBatch call with its wall time
// (native TensorFlow runs CPU kernels synchronously, so a kernel's wall time is its cost), summed by kernel name.
// Prints one JSON line: step time, the kernel count, time inside kernels, and the top kernels.
// --nativeReluGrad 0 measures tfjs's own ReLU gradient (what trainBinaryClassifier replaced).
// Usage: node bench/profile-train.mjs [--imageSize 128] [--batch 32] [--steps 3] [--nativeReluGrad 1]
import path from 'node:path';
import { options, repoRoot } from './lib.mjs';

const { imageSize, batch, steps, nativeReluGrad } = options({ imageSize: 128, batch: 32, steps: 3, nativeReluGrad: 1 });
const { buildCnn, initTensorflow } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
const { tf } = await initTensorflow();
const { useNativeReluGradient } = await import(path.join(repoRoot, 'dist', 'ml', 'train.js'));
if (nativeReluGrad) useNativeReluGradient(tf);
const model = buildCnn(imageSize, 1);
model.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
const x = tf.randomUniform([batch, imageSize, imageSize, 3], 0, 256);
const y = tf.randomUniform([batch, 1], 0, 2, 'int32').toFloat();
await model.trainOnBatch(x, y); // warm-up: variables, optimizer slots

const byKernel = new Map();
let kernels = 0;
let kernelMs = 0;
const started = performance.now();
for (let step = 0; step < steps; step++) {
  const profile = await tf.profile(() => model.trainOnBatch(x, y));
  for (const kernel of profile.kernels) {
    const ms = await kernel.kernelTimeMs;
    const time = typeof ms === 'number' ? ms : 0;
    kernels++;
    kernelMs += time;
    const entry = byKernel.get(kernel.name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += time;
    byKernel.set(kernel.name, entry);
  }
}
const stepMs = (performance.now() - started) / steps;
const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)
  .map(([name, { calls, ms }]) => ({ name, callsPerStep: calls / steps, msPerStep: Number((ms / steps).toFixed(1)) }));
console.log(JSON.stringify({ imageSize, batch, nativeReluGrad, stepMs, kernelsPerStep: kernels / steps, kernelMsPerStep: kernelMs / steps, top }));
