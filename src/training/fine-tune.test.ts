import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp, withOverrides } from '../../test/support/app.js';
import { recordingBlobs } from '../../test/support/blobs.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { ConfigError, type CatdogConfig } from '../config/index.js';
import { buildDatasetVersion, loadManifest } from '../datasets/versions.js';
import { decodeToRgb } from '../images/index.js';
import { readModelFiles } from '../registry/artifacts.js';
import { loadClassifier } from '../registry/classifier.js';
import { evaluateOnSplit, predictStored } from '../registry/evaluate.js';
import { predictUploads } from '../serving/predict.js';
import { datasetParams, resolveTrainingParams } from './params.js';
import { trainOnDataset, type TrainingEvent, type TrainingOutcome } from './run-training.js';
import { maxAbsDifference } from '../../test/support/ml.js';

const TOP_LAYERS = ['conv_dw_12', 'conv_pw_12', 'conv_dw_13', 'conv_pw_13'];
const SPLIT_LAYER = 'conv_pw_11_relu';
/** Feature extraction, two training phases and evaluation, on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;

let app: TestApp;
let config: CatdogConfig;
let datasetId: number;
let first: { outcome: TrainingOutcome; events: TrainingEvent[] };

describe.skipIf(Boolean(skipWithoutShared))('fine-tuning the backbone in a training run, on real photos', () => {
  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 20, 600);
    // No validation split: early stopping then watches the training photos, on which fine-tuning surely lowers the
    // loss, so the phase's weights are kept and this test sees fine-tuned blocks (a real split of a few dozen
    // photos may prefer the head alone, which the run would rightly keep).
    const base = withOverrides(app.config, { epochs: 3 });
    config = {
      ...base,
      dataset: { ...base.dataset, split: { train: 0.8, validation: 0, test: 0.2 } },
      training: { ...base.training, fineTune: { enabled: true, blocks: 2, learningRate: 0.0005, epochs: 2 } },
    };
    datasetId = (await buildDatasetVersion(app, datasetParams(config))).version.id;
    const events: TrainingEvent[] = [];
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config), onEvent: (event) => events.push(event) });
    first = { outcome, events };
  }, SLOW_TEST_MS);
  afterAll(async () => app?.dispose());

  it('trains the top blocks after the head and records the phase: stage, epochs numbered on, params and metrics', async () => {
    const { outcome, events } = first;
    const stages = events.flatMap((event) => (event.type === 'stage' ? [event.stage] : []));
    expect(stages.indexOf('fine-tuning')).toBeGreaterThan(stages.indexOf('training'));
    const epochEvents = events.flatMap((event) => (event.type === 'epoch' ? [event] : []));
    const run = (await app.db.runs.get(outcome.runId))!;
    const summary = run.metrics!.fineTune!;
    expect(summary).toMatchObject({ blocks: 2, layer: SPLIT_LAYER, epochs: 2 });
    expect(summary.bestEpoch, 'fine-tuning lowered the (training) loss, so its weights are kept').toBeGreaterThan(0);
    expect(summary.after.valLoss).toBeLessThan(summary.before.valLoss);
    expect(run.params).toMatchObject({ fineTune: { enabled: true, blocks: 2, epochs: 2 } });

    const headEpochs = epochEvents.length - summary.epochs;
    expect(headEpochs).toBeGreaterThan(0);
    expect(epochEvents.map((event) => event.stats.epoch)).toEqual(epochEvents.map((_, i) => i + 1));
    expect(epochEvents.slice(headEpochs).map((event) => event.totalEpochs)).toEqual([headEpochs + 2, headEpochs + 2]);
    const recorded = await app.db.runs.epochs(outcome.runId);
    expect(recorded.map((epoch) => epoch.epoch)).toEqual(epochEvents.map((event) => event.stats.epoch));
    // What a client replaying the run from the database is told: the totals live clients saw.
    expect(recorded.map((epoch) => epoch.totalEpochs)).toEqual(epochEvents.map((event) => event.totalEpochs));
    expect(outcome.bestEpoch).toBe(headEpochs + summary.bestEpoch);
    // Both phases report their batches, the fine-tuning one numbered on like its epochs, each epoch's last batch last.
    const batchEvents = events.flatMap((event) => (event.type === 'batch' ? [event] : []));
    expect([...new Set(batchEvents.map((event) => event.epoch))]).toEqual(epochEvents.map((event) => event.stats.epoch));
    for (const epoch of epochEvents) {
      const ofEpoch = batchEvents.filter((event) => event.epoch === epoch.stats.epoch);
      expect(ofEpoch.map((event) => event.batch)).toEqual(ofEpoch.map((_, i) => i + 1));
      expect(ofEpoch.every((event) => event.batchCount === ofEpoch.length && event.totalEpochs === epoch.totalEpochs)).toBe(true);
      expect(events.indexOf(ofEpoch.at(-1)!)).toBeLessThan(events.indexOf(epoch));
    }

    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    expect(card.fineTuned).toEqual({ blocks: 2, layer: SPLIT_LAYER });
  }, SLOW_TEST_MS);

  it('stores, evaluates and serves the fine-tuned blocks, not the pretrained ones', async () => {
    const { outcome } = first;
    const backbone = await app.backbones.get(config.training.backbone);
    const classifier = await loadClassifier(app, outcome.model);
    try {
      expect(classifier.input?.id).toBe(`${backbone.id}@${SPLIT_LAYER}`);
      const network = classifier.network!;
      for (const layer of TOP_LAYERS) {
        const [stored] = network.getLayer(layer).getWeights();
        const [pretrained] = backbone.layersModel!.getLayer(layer).getWeights();
        expect(maxAbsDifference(stored!.dataSync(), pretrained!.dataSync()), layer).toBeGreaterThan(1e-5);
      }
      // The registered test metrics are what the stored model scores on the version's test split.
      const { manifest } = await loadManifest(app, datasetId);
      expect((await evaluateOnSplit(app, classifier, manifest, 'test')).accuracy).toBeCloseTo(outcome.metrics.accuracy, 6);

      // Serving decodes uploads and runs the frozen layers on them; evaluation reads cached activations: same answers.
      const photos = [...kaggleFiles('cat', 2, 600), ...kaggleFiles('dog', 2, 600)];
      const uploads = photos.map((file) => ({ bytes: fs.readFileSync(file), fileName: path.basename(file) }));
      const served = await predictUploads({ db: app.db, blobs: app.blobs, limits: app.config.images, models: { classifier: async () => classifier } }, uploads);
      const stored = await predictStored(app, classifier, served.map((prediction) => prediction.imageHash));
      served.forEach((prediction, i) => expect(prediction.probabilities.dog).toBeCloseTo(stored[i]!, 5));

      // Putting the pretrained blocks back changes the answers: serving ran the fine-tuned ones.
      const pixels = await Promise.all(uploads.map(async (upload) => (await decodeToRgb(upload.bytes, classifier.inputSize)).data));
      const tuned = (await classifier.predictPixels(pixels)).map((prediction) => prediction.pDog);
      for (const layer of TOP_LAYERS) network.getLayer(layer).setWeights(backbone.layersModel!.getLayer(layer).getWeights());
      const pretrained = (await classifier.predictPixels(pixels)).map((prediction) => prediction.pDog);
      expect(maxAbsDifference(tuned, pretrained)).toBeGreaterThan(1e-4);
      served.forEach((prediction, i) => expect(prediction.probabilities.dog).toBeCloseTo(tuned[i]!, 5));
    } finally {
      classifier.dispose();
    }
  }, SLOW_TEST_MS);

  it('reuses the cached activations on a second run: nothing is computed or written again', async () => {
    const backbone = await app.backbones.get(config.training.backbone);
    const cached = await app.blobs.list(`features/${backbone.id}@${SPLIT_LAYER}/`);
    // Training photos plain and mirrored (default augmentation), test photos for evaluation.
    expect(cached.length).toBeGreaterThan(40);
    const { store, written, read } = recordingBlobs(app.blobs);
    const again = await trainOnDataset({ ...app, blobs: store }, { datasetId, params: resolveTrainingParams(config) });
    expect(again.metrics.count).toBe(first.outcome.metrics.count);
    for (const key of cached) expect(read).toContain(key);
    expect(written.filter((key) => key.startsWith('features/'))).toEqual([]);
    expect(await app.blobs.list(`features/${backbone.id}@${SPLIT_LAYER}/`)).toEqual(cached);
  }, SLOW_TEST_MS);

  it('refuses to fine-tune a cnn, naming the setting to change', () => {
    const refusal = (() => {
      try {
        return resolveTrainingParams(config, { architecture: 'cnn' });
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as Error).message).toContain('training.fineTune.enabled');
    expect((refusal as Error).message).toContain('mobilenet');
  });
});
