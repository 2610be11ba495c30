import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { recordingBlobs } from '../../test/support/blobs.js';
import { kaggleFiles, sharedPath, skipWithoutShared } from '../../test/support/shared.js';
import type { CatdogConfig } from '../config/index.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { decodeToRgb } from '../images/index.js';
import { deserializeModel, initTensorflow, type Tensor } from '../ml/index.js';
import { readModelFiles } from '../registry/artifacts.js';
import { loadClassifier } from '../registry/classifier.js';
import { predictStored } from '../registry/evaluate.js';
import { exportModel } from '../registry/export.js';
import { predictUploads } from '../serving/predict.js';
import { datasetParams, trainingParams, withOverrides } from './params.js';
import { trainOnDataset } from './run-training.js';
import { maxAbsDifference } from '../../test/support/ml.js';

const v2Trunk = sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json');
/** Two backbones over every photo, two training runs and an export, on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;

let app: TestApp;
let datasetId: number;

describe.skipIf(Boolean(skipWithoutShared))('a head on two backbones (MobileNet v1 + MobileNetV2 trunk), on real photos', () => {
  let ensembleConfig: CatdogConfig;

  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 16, 700);
    const config = withOverrides(app.config, { epochs: 3 });
    ensembleConfig = { ...config, training: { ...config.training, ensemble: [v2Trunk] } };
    datasetId = (await buildDatasetVersion(app, datasetParams(config))).version.id;
    // A single-backbone model first, as a user would have before trying the ensemble: its features are cached.
    await trainOnDataset(app, { datasetId, params: trainingParams(config, datasetParams(config)) });
  }, SLOW_TEST_MS);
  afterAll(async () => app?.dispose());

  it('trains on both backbones side by side, computing only the new backbone\'s features, and serves and exports both', async () => {
    const [v1, v2] = await Promise.all([app.backbones.get(ensembleConfig.training.backbone), app.backbones.get(v2Trunk)]);
    const { store, written } = recordingBlobs(app.blobs);
    const outcome = await trainOnDataset({ ...app, blobs: store }, { datasetId, params: trainingParams(ensembleConfig, datasetParams(ensembleConfig)) });
    expect(written.filter((key) => key.startsWith(`features/${v1.id}/`))).toEqual([]);
    expect(written.filter((key) => key.startsWith(`features/${v2.id}/`)).length).toBeGreaterThan(0);

    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    expect(card.backbone).toEqual({ id: v1.id, source: ensembleConfig.training.backbone });
    expect(card.ensemble).toEqual([{ id: v2.id, source: v2Trunk }]);
    expect(outcome.model.params).toMatchObject({ ensemble: [v2Trunk] });

    const classifier = await loadClassifier(app, outcome.model);
    try {
      expect(classifier.input?.featureSize).toBe(v1.featureSize + v2.featureSize);
      const photos = [...kaggleFiles('cat', 2, 700), ...kaggleFiles('dog', 2, 700)];
      const uploads = photos.map((file) => ({ bytes: fs.readFileSync(file), fileName: path.basename(file) }));
      const pixels = await Promise.all(uploads.map(async (upload) => (await decodeToRgb(upload.bytes, classifier.inputSize)).data));

      // What the head is fed from pixels: the v1 features, then the v2 features.
      const { tf } = await initTensorflow();
      const batch = tf.tensor4d(Float32Array.from(pixels.flatMap((image) => [...image])), [pixels.length, 224, 224, 3]);
      const [joined, own1, own2] = [classifier.input!.features(batch), v1.features(batch), v2.features(batch)].map((tensor) => {
        const values = tensor.dataSync();
        tensor.dispose();
        return values;
      });
      batch.dispose();
      const rows = (values: ArrayLike<number>, width: number) => pixels.map((_, i) => Array.from(values).slice(i * width, (i + 1) * width));
      const joinedRows = rows(joined!, v1.featureSize + v2.featureSize);
      expect(maxAbsDifference(joinedRows.flatMap((row) => row.slice(0, v1.featureSize)), own1!)).toBeLessThan(1e-5);
      expect(maxAbsDifference(joinedRows.flatMap((row) => row.slice(v1.featureSize)), own2!)).toBeLessThan(1e-5);

      // Serving (pixels through both backbones) and evaluation (both caches) agree; the ImageNet head still answers.
      const served = await predictUploads({ db: app.db, blobs: app.blobs, limits: app.config.images, models: { classifier: async () => classifier } }, uploads);
      const stored = await predictStored(app, classifier, served.map((prediction) => prediction.imageHash));
      served.forEach((prediction, i) => expect(prediction.probabilities.dog).toBeCloseTo(stored[i]!, 5));
      const answers = await classifier.predictPixels(pixels);
      for (const answer of answers) expect(answer.animalMass).toBeGreaterThan(0);

      // The TF.js export is one pixel-fed network running both trunks.
      const exported = await exportModel(app, outcome.model.id, 'tfjs');
      if (exported.format !== 'tfjs') throw new Error('expected a TF.js export');
      const network = await deserializeModel({ modelJson: exported.files['model.json']!, weights: exported.files['weights.bin']! });
      try {
        const input = tf.tensor4d(Float32Array.from(pixels.flatMap((image) => [...image])), [pixels.length, 224, 224, 3]);
        const output = network.predict(input) as Tensor;
        expect(maxAbsDifference(output.dataSync(), answers.map((answer) => answer.pDog))).toBeLessThan(1e-4);
        tf.dispose([input, output]);
      } finally {
        network.dispose();
      }
    } finally {
      classifier.dispose();
    }
  }, SLOW_TEST_MS);
});
