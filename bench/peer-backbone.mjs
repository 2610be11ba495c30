#!/usr/bin/env node
// The Keras peers' backbone for a training.preset (figures 2 and 4): catdog's backbone of that preset (lib.mjs
// presetBackbone: its catalogue backbones from ../shared/models at the preset's input size, an ensemble's features
// side by side) exported by catdog's own Keras exporter (src/ml/keras/export.ts) with its x/127.5 − 1 scaling in
// front, so Keras takes the same RGB 0..255 pixels and computes with the very same weights. Writes
// test-output/bench-peers/<backbone id>.keras, then checks the file: a few kaggle-dev photos, decoded by catdog at the
// backbone's input size, go through catdog's backbone and through Keras (bench/peers/keras_features.py --features),
// and the largest absolute difference between their feature values is printed (expected ≤ ~1e-4: float32 on two
// runtimes, catdog's with its BatchNorm folded into the convolutions; 0 for networks without BatchNorm, which both
// run through the same TensorFlow kernels). A difference above 1e-2 fails the script.
// Prints one JSON line. Usage: node bench/peer-backbone.mjs [--preset <default preset>]
import fs from 'node:fs';
import path from 'node:path';
import { options, peerPython, presetBackbone, repoRoot, requireShared, runJson, sharedDir } from './lib.mjs';

const MAX_ABS_DIFF = 1e-2;
const CHECK_PHOTOS = ['cat/cat.0.jpg', 'cat/cat.1.jpg', 'dog/dog.0.jpg', 'dog/dog.1.jpg'];

const opts = options({ preset: '' });
requireShared();
const { initTensorflow } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
const { exportKeras } = await import(path.join(repoRoot, 'dist', 'ml', 'keras', 'export.js'));
const { decodeToRgb } = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
const { tf } = await initTensorflow();
const peer = await presetBackbone(opts.preset);
try {
  const { backbone } = peer;
  const folder = path.join(repoRoot, 'test-output', 'bench-peers');
  fs.mkdirSync(folder, { recursive: true });
  const kerasFile = path.join(folder, `${backbone.id}.keras`);
  if (!backbone.featureModel) throw new Error(`preset ${opts.preset}'s backbone ${backbone.id} has no layers (a TF.js graph model): the Keras peer cannot load the same weights`);
  fs.writeFileSync(kerasFile, await exportKeras(backbone.featureModel, { preprocessing: 'mobilenet' }));

  const side = backbone.inputSize;
  const pixels = new Float32Array(CHECK_PHOTOS.length * side * side * 3);
  for (const [i, photo] of CHECK_PHOTOS.entries()) {
    const rgb = await decodeToRgb(fs.readFileSync(path.join(sharedDir, 'data', 'kaggle-dev', photo)), side);
    pixels.set(rgb.data, i * side * side * 3);
  }
  const features = tf.tidy(() => backbone.features(tf.tensor4d(pixels, [CHECK_PHOTOS.length, side, side, 3])));
  const catdogFeatures = await features.data();
  features.dispose();

  const pixelsFile = path.join(folder, `${backbone.id}.check-pixels.f32`);
  const kerasFeaturesFile = path.join(folder, `${backbone.id}.check-features.f32`);
  fs.writeFileSync(pixelsFile, pixels);
  runJson(peerPython(), [path.join(repoRoot, 'bench', 'peers', 'keras_features.py'), kerasFile, '--features', pixelsFile, kerasFeaturesFile]);
  const kerasFeatures = new Float32Array(fs.readFileSync(kerasFeaturesFile).buffer.slice(0));
  fs.rmSync(pixelsFile);
  fs.rmSync(kerasFeaturesFile);
  if (kerasFeatures.length !== catdogFeatures.length) {
    throw new Error(`Keras gave ${kerasFeatures.length} feature values for the check photos, catdog ${catdogFeatures.length}: ${kerasFile} is not the same network`);
  }
  let maxAbsDiff = 0;
  let maxAbsFeature = 0;
  for (let i = 0; i < catdogFeatures.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(catdogFeatures[i] - kerasFeatures[i]));
    maxAbsFeature = Math.max(maxAbsFeature, Math.abs(catdogFeatures[i]));
  }
  const result = {
    preset: peer.preset,
    backbones: peer.sources,
    subject: peer.subject,
    backboneId: backbone.id,
    inputSize: side,
    featureSize: backbone.featureSize,
    kerasFile,
    checkPhotos: CHECK_PHOTOS,
    maxAbsDiff,
    maxAbsFeature,
  };
  if (!(maxAbsDiff <= MAX_ABS_DIFF)) {
    throw new Error(`Keras's features from ${kerasFile} differ from catdog's by up to ${maxAbsDiff} (largest feature ${maxAbsFeature}), above ${MAX_ABS_DIFF}: the export changed the network`);
  }
  console.log(JSON.stringify(result));
} finally {
  await peer.close();
}
