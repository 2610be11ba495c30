#!/usr/bin/env node
// Where one training step's time goes on tfjs-node: every kernel of a trainOnBatch call with its wall time
// (native TensorFlow runs CPU kernels synchronously, so a kernel's wall time is its cost), summed by kernel name.
// Prints one JSON line: step time, the kernel count, time inside kernels, and the top kernels (tf.profile counts a
// composite kernel and the kernels it runs, e.g. fusedMatMul__op and _FusedMatMul); then, in `native`, as many
// unprofiled steps with each call of tfjs-node's binding into TensorFlow timed: TensorFlow ops executed, tensors
// created from JavaScript values, reads and frees per step, and the step time outside them (tfjs's JavaScript).
// --model head profiles the logistic transfer head on 768-d features instead of the CNN.
// --nativeReluGrad 0 measures tfjs's own ReLU gradient, --closedFormLoss 0 tfjs's own binary cross-entropy
// gradient (what trainBinaryClassifier replaced).
// Usage: node bench/profile-train.mjs [--model cnn|head] [--imageSize 128] [--batch 32] [--steps 3]
//   [--nativeReluGrad 1] [--closedFormLoss 1]
import path from 'node:path';
import { options, repoRoot } from './lib.mjs';

const FEATURES = 768;
const { model: kind, imageSize, batch, steps, nativeReluGrad, closedFormLoss } = options({ model: 'cnn', imageSize: 128, batch: 32, steps: 3, nativeReluGrad: 1, closedFormLoss: 1 });
const { buildCnn, buildHead, initTensorflow } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
const { tf } = await initTensorflow();
const { binaryCrossentropyLoss, useNativeReluGradient } = await import(path.join(repoRoot, 'dist', 'ml', 'train.js'));
if (nativeReluGrad) useNativeReluGradient(tf);
const model = kind === 'head' ? buildHead('logistic', FEATURES, 1) : buildCnn(imageSize, 1);
const loss = closedFormLoss ? binaryCrossentropyLoss(tf) : 'binaryCrossentropy';
model.compile({ optimizer: tf.train.adam(1e-3), loss, metrics: ['accuracy'] });
const x = tf.randomUniform(kind === 'head' ? [batch, FEATURES] : [batch, imageSize, imageSize, 3], 0, 256);
const y = tf.randomUniform([batch, 1], 0, 2, 'int32').toFloat();
for (let step = 0; step < 3; step++) await model.trainOnBatch(x, y); // warm-up: variables, optimizer slots

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
const backend = tf.backend();
const binding = backend.binding;
const calls = Object.fromEntries(['executeOp', 'createTensor', 'tensorDataSync', 'deleteTensor'].map((name) => [name, { calls: 0, ms: 0 }]));
// The binding's functions are read-only: the backend gets a timing stand-in that inherits everything else.
backend.binding = Object.create(binding);
for (const [name, entry] of Object.entries(calls)) {
  const call = binding[name].bind(binding);
  const timed = (...args) => {
    const callStarted = performance.now();
    try {
      return call(...args);
    } finally {
      entry.calls++;
      entry.ms += performance.now() - callStarted;
    }
  };
  Object.defineProperty(backend.binding, name, { value: timed });
}
const unprofiledStarted = performance.now();
for (let step = 0; step < steps; step++) await model.trainOnBatch(x, y);
const unprofiledMs = (performance.now() - unprofiledStarted) / steps;
const perStep = (value) => Number((value / steps).toFixed(3));
const nativeMs = Object.values(calls).reduce((sum, entry) => sum + entry.ms, 0);
const native = {
  stepMs: Number(unprofiledMs.toFixed(3)),
  ...Object.fromEntries(Object.entries(calls).map(([name, entry]) => [name, { callsPerStep: perStep(entry.calls), msPerStep: perStep(entry.ms) }])),
  javascriptMsPerStep: Number((unprofiledMs - nativeMs / steps).toFixed(3)),
};
console.log(JSON.stringify({ model: kind, imageSize: kind === 'head' ? undefined : imageSize, batch, nativeReluGrad, closedFormLoss, stepMs, kernelsPerStep: kernels / steps, kernelMsPerStep: kernelMs / steps, top, native }));
