#!/usr/bin/env node
// Figure 2: a training.preset's feature extraction (default: the config default preset), images/s at batch 1 and
// batch 32: catdog (the preset's backbone as it trains and serves with it, lib.mjs presetBackbone, from dist/,
// tfjs-node) vs Keras 3 on TensorFlow running catdog's own Keras export of that backbone (bench/peer-backbone.mjs:
// the same weights, the same input size, an ensemble's features concatenated, the x/127.5 − 1 scaling inside), whose
// features on real photos are checked against catdog's first. Input is random 0..255 pixels (throughput is what
// counts). Runs dist/ (npm run build first).
// Usage: node bench/features.mjs [--preset <default preset>] [--images 96] [--rounds 2]
import path from 'node:path';
import { interleaved, kerasPeerBackbone, loadAverage, options, peerPython, presetBackbone, repoRoot, report, requireShared, runMeasured } from './lib.mjs';

async function measureCatdog({ preset, batch, images }) {
  const { initTensorflow } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
  const { tf } = await initTensorflow();
  const { backbone, close } = await presetBackbone(preset);
  const side = backbone.inputSize;
  const pixels = new Float32Array(batch * side * side * 3).map(() => Math.floor(Math.random() * 256));
  const step = async () => {
    const features = tf.tidy(() => backbone.features(tf.tensor4d(pixels, [batch, side, side, 3])));
    await features.data();
    features.dispose();
  };
  for (let i = 0; i < 3; i++) await step();
  const batches = Math.max(1, Math.round(images / batch));
  const started = performance.now();
  for (let i = 0; i < batches; i++) await step();
  const seconds = (performance.now() - started) / 1000;
  const forwardPasses = (backbone.parts ?? [backbone]).map((part) => part.forwardPass?.kind ?? 'eager');
  await close();
  console.log(JSON.stringify({ value: (batch * batches) / seconds, batches, seconds, forwardPasses }));
}

async function main() {
  const opts = options({ preset: '', images: 96, rounds: 2, side: '', batch: 1 });
  if (opts.side === 'catdog') return measureCatdog(opts);
  requireShared();
  const python = peerPython();
  const peer = kerasPeerBackbone(opts.preset);
  const loadBefore = loadAverage();
  const rows = [];
  const forwardPasses = new Set();
  for (const batch of [1, 32]) {
    const batches = Math.max(1, Math.round(opts.images / batch));
    const medians = interleaved({
      'catdog (tfjs-node)': () => runMeasured(process.execPath, [new URL(import.meta.url).pathname, '--side', 'catdog', '--preset', peer.preset, '--batch', String(batch), '--images', String(opts.images)]),
      'Keras 3 (TF 2.21)': () => runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'keras_features.py'), peer.kerasFile, String(batch), String(batches)]),
    }, opts.rounds);
    for (const [impl, result] of Object.entries(medians)) {
      for (const kind of result.forwardPasses ?? []) forwardPasses.add(kind);
      rows.push({ group: `batch ${batch}`, impl, value: result.value, values: result.values, peakRssMiB: result.peakRssMiB });
    }
  }
  const passes = [...forwardPasses].map((kind) => (kind === 'graph' ? 'as one TensorFlow graph in a session' : 'eagerly, layer by layer'));
  report('features', {
    preset: peer.preset,
    subject: peer.subject,
    unit: 'images/s',
    what:
      `forward pass to the features of ${peer.subject}${peer.backbones.length > 1 ? ' (the backbones\' features concatenated)' : ''}, ${opts.images} images per measurement, best of ${opts.rounds} interleaved rounds; ` +
      `Keras runs catdog's own Keras export of the backbone (same weights, same ${peer.inputSize} px input, scaling inside), whose features on ${peer.checkPhotos.length} kaggle-dev photos differ from catdog's by at most ${peer.maxAbsDiff.toExponential(1)} (largest feature ${peer.maxAbsFeature.toFixed(1)}); ` +
      `catdog's backbone runs ${passes.join(' and ')}`,
    peerMaxAbsDiff: peer.maxAbsDiff,
    loadBefore,
    loadAfter: loadAverage(),
    rows,
  });
}

await main();
