import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SymbolicTensor } from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { kerasPredict, skipWithoutPython } from '../../test/support/python.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { decodeToRgb, sha256Hex } from '../images/index.js';
import { deserializeModel, initTensorflow, loadBackbone, type Tensor } from '../ml/index.js';
import { maxAbsDifference } from '../../test/support/ml.js';
import { readModelFiles } from '../registry/artifacts.js';
import { BackboneProvider } from '../ml/backbone-provider.js';
import { loadClassifier } from '../registry/classifier.js';
import { predictStored } from '../registry/evaluate.js';
import { exportModel } from '../registry/export.js';
import { datasetParams, trainingParams, withOverrides } from './params.js';
import { trainOnDataset } from './run-training.js';

/** A training run at 256 px, its exports and a Keras round trip on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;
const SIZE = 256;
const { tf } = await initTensorflow();

let app: TestApp;

describe.skipIf(Boolean(skipWithoutShared))('training.backboneImageSize: the backbone fed larger images than its own, on real photos', () => {
  let datasetId: number;

  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 16, 1500);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
  }, SLOW_TEST_MS);
  afterAll(async () => app?.dispose());

  it('runs the same weights at the new size, under its own id, and leaves the backbone at its own size alone', async () => {
    const source = app.config.training.backbone;
    const own = await app.backbones.get(source);
    const larger = await app.backbones.get(source, SIZE);
    expect(await app.backbones.get(source, own.inputSize)).toBe(own);
    expect(own.inputSize).toBe(224);
    expect(larger).toMatchObject({ id: `${own.id}-${SIZE}px`, inputSize: SIZE, featureSize: own.featureSize });
    // The same weights on the same photo at another size: other features, but close to the ones at 224 px.
    const [photo] = kaggleFiles('cat', 1, 1500);
    const bytes = fs.readFileSync(photo!);
    const at = async (backbone: typeof own) => {
      const pixels = (await decodeToRgb(bytes, backbone.inputSize)).data;
      return tf.tidy(() => backbone.features(tf.tensor4d(Float32Array.from(pixels), [1, backbone.inputSize, backbone.inputSize, 3])).dataSync());
    };
    const [small, large] = [await at(own), await at(larger)];
    expect(maxAbsDifference(small, large)).toBeGreaterThan(0);
    expect(correlation(small, large)).toBeGreaterThan(0.8);
  });

  it('trains on features of the larger images, and a fresh process serves and exports (TF.js, Keras) the same answers', async () => {
    const plain = withOverrides(app.config, { epochs: 3 });
    const config = { ...plain, training: { ...plain.training, backboneImageSize: SIZE, zeroShotVote: true } };
    const outcome = await trainOnDataset(app, { datasetId, params: trainingParams(config, datasetParams(config)) });
    const own = await app.backbones.get(config.training.backbone);
    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    expect(card.imageSize).toBe(SIZE);
    expect(card.backbone).toEqual({ id: `${own.id}-${SIZE}px`, source: config.training.backbone });
    expect(outcome.model.params).toMatchObject({ backboneImageSize: SIZE });

    // Another process: nothing loaded yet, so the card alone must say at which size the backbone runs.
    const backbones = new BackboneProvider({ cacheDir: fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-backbone-size-')) });
    const classifier = await loadClassifier({ blobs: app.blobs, backbones }, outcome.model);
    try {
      expect(classifier.inputSize).toBe(SIZE);
      const photos = [...kaggleFiles('cat', 2, 1500), ...kaggleFiles('dog', 2, 1500)];
      const bytes = photos.map((file) => fs.readFileSync(file));
      const pixels = await Promise.all(bytes.map(async (photo) => (await decodeToRgb(photo, SIZE)).data));
      const answers = (await classifier.predictPixels(pixels)).map((answer) => answer.pDog);
      // Scoring reads the features cached in training (same photos, same size): the same answers as from pixels.
      const stored = await predictStored(app, classifier, bytes.map((photo) => sha256Hex(photo)));
      expect(maxAbsDifference(stored, answers)).toBeLessThan(1e-5);

      const exported = await exportModel({ ...app, backbones }, outcome.model.id, 'tfjs');
      if (exported.format !== 'tfjs') throw new Error('expected a TF.js export');
      expect(JSON.parse(Buffer.from(exported.files['catdog.json']!).toString('utf8'))).toMatchObject({ imageSize: SIZE });
      const network = await deserializeModel({ modelJson: exported.files['model.json']!, weights: exported.files['weights.bin']! });
      const flat = Float32Array.from(pixels.flatMap((image) => [...image]));
      try {
        expect(network.inputs[0]!.shape).toEqual([null, SIZE, SIZE, 3]);
        expect(maxAbsDifference(tf.tidy(() => (network.predict(tf.tensor4d(flat, [pixels.length, SIZE, SIZE, 3])) as Tensor).dataSync()), answers)).toBeLessThan(1e-4);
      } finally {
        network.dispose();
      }

      if (skipWithoutPython) return console.log(`Keras round trip skipped: ${skipWithoutPython}`);
      const keras = await exportModel({ ...app, backbones }, outcome.model.id, 'keras');
      if (keras.format !== 'keras') throw new Error('expected a Keras export');
      expect(maxAbsDifference(await kerasPredict(keras.bytes, flat, SIZE), answers)).toBeLessThan(1e-4);
    } finally {
      classifier.dispose();
    }
  }, SLOW_TEST_MS);

  it('refuses a backbone that only takes its own size, saying which setting to change', async () => {
    // Flatten → Dense: the Dense weights fit one image size only.
    const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-fixed-size-'));
    const input = tf.input({ shape: [32, 32, 3] });
    const convolved = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 4 }).apply(input) as SymbolicTensor;
    const dense = tf.layers.dense({ units: 8 }).apply(tf.layers.flatten().apply(convolved)) as SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: dense });
    await model.save(`file://${modelDir}`);
    model.dispose();
    await expect(loadBackbone(modelDir, { cacheDir: modelDir, inputSize: 64 })).rejects.toThrow(
      expect.objectContaining({ code: 'backbone_unavailable', message: expect.stringMatching(/cannot take 64×64 px images.*set training\.backboneImageSize to null/) }),
    );
    fs.rmSync(modelDir, { recursive: true, force: true });
  });
});

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const mean = (values: ArrayLike<number>) => Array.from(values).reduce((sum, value) => sum + value, 0) / values.length;
  const [meanA, meanB] = [mean(a), mean(b)];
  let product = 0;
  let squaresA = 0;
  let squaresB = 0;
  for (let i = 0; i < a.length; i++) {
    product += (a[i]! - meanA) * (b[i]! - meanB);
    squaresA += (a[i]! - meanA) ** 2;
    squaresB += (b[i]! - meanB) ** 2;
  }
  return product / Math.sqrt(squaresA * squaresB);
}
