#!/usr/bin/env node
// Figure 2: MobileNet v1 0.75 feature extraction (768-d pooled features), images/s at batch 1 and batch 32:
// catdog (loadBackbone + features from dist/, tfjs-node) vs Keras 3 on TensorFlow, both with the shared model's
// ImageNet weights and the scaling inside the model; input is random 0..255 pixels (throughput is what counts).
// Usage: node bench/features.mjs [--images 96] [--rounds 2]
import path from 'node:path';
import { interleaved, loadAverage, options, peerPython, repoRoot, report, requireShared, runMeasured, sharedDir } from './lib.mjs';

const backbonePath = path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json');

async function measureCatdog({ batch, images }) {
  const { initTensorflow, loadBackbone } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
  const { tf } = await initTensorflow();
  const backbone = await loadBackbone(backbonePath, { cacheDir: path.join(repoRoot, 'test-output') });
  const pixels = new Float32Array(batch * 224 * 224 * 3).map(() => Math.floor(Math.random() * 256));
  const step = async () => {
    const features = tf.tidy(() => backbone.features(tf.tensor4d(pixels, [batch, 224, 224, 3])));
    await features.data();
    features.dispose();
  };
  for (let i = 0; i < 3; i++) await step();
  const batches = Math.max(1, Math.round(images / batch));
  const started = performance.now();
  for (let i = 0; i < batches; i++) await step();
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ value: (batch * batches) / seconds, batches, seconds, forwardPass: backbone.forwardPass?.kind ?? 'eager' }));
}

async function main() {
  const opts = options({ images: 96, rounds: 2, side: '', batch: 1 });
  if (opts.side === 'catdog') return measureCatdog(opts);
  requireShared();
  const python = peerPython();
  const loadBefore = loadAverage();
  const rows = [];
  const forwardPasses = new Set();
  for (const batch of [1, 32]) {
    const batches = Math.max(1, Math.round(opts.images / batch));
    const medians = interleaved({
      'catdog (tfjs-node)': () => runMeasured(process.execPath, [new URL(import.meta.url).pathname, '--side', 'catdog', '--batch', String(batch), '--images', String(opts.images)]),
      'Keras 3 (TF 2.21)': () => runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'keras_features.py'), String(batch), String(batches)]),
    }, opts.rounds);
    for (const [impl, result] of Object.entries(medians)) {
      if (result.forwardPass) forwardPasses.add(result.forwardPass);
      rows.push({ group: `batch ${batch}`, impl, value: result.value, values: result.values, peakRssMiB: result.peakRssMiB });
    }
  }
  report('features', {
    unit: 'images/s',
    what: `MobileNet v1 0.75 forward pass to 768-d features, ${opts.images} images per measurement, best of ${opts.rounds} interleaved rounds; same ImageNet weights on both sides; catdog's backbone runs ${[...forwardPasses].map((kind) => (kind === 'graph' ? 'as one TensorFlow graph in a session' : 'eagerly, layer by layer')).join(' and ')}`,
    loadBefore,
    loadAfter: loadAverage(),
    rows,
  });
}

await main();
