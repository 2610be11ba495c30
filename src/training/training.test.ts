import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp, withOverrides } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { buildDatasetVersion, loadManifest } from '../datasets/versions.js';
import { evaluatedRunMetrics } from '../db/index.js';
import { decodeToRgb } from '../images/index.js';
import { loadClassifier } from '../registry/classifier.js';
import { degenerateReason } from '../registry/degenerate.js';
import { evaluateOnSplit, predictStored } from '../registry/evaluate.js';
import { predictUploads } from '../serving/predict.js';
import { HEAD_L2_GRID } from './head-selection.js';
import { datasetParams, resolveTrainingParams } from './params.js';
import { trainOnDataset, type TrainingEvent } from './run-training.js';

let app: TestApp;
let datasetId: number;

describe.skipIf(Boolean(skipWithoutShared))('training runs, registry and promotion on real photos', () => {
  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 24, 100);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
  });
  afterAll(async () => app?.dispose());

  it('records a transfer-learning run end to end and promotes the first model', async () => {
    const events: TrainingEvent[] = [];
    const config = withOverrides(app.config, { epochs: 4 });
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config), onEvent: (event) => events.push(event) });

    const run = await app.db.runs.get(outcome.runId);
    expect(run).toMatchObject({ status: 'succeeded', datasetId, modelId: outcome.model.id, codeVersion: app.codeVersion });
    expect(run!.durationMs).toBeGreaterThan(0);
    const epochs = await app.db.runs.epochs(outcome.runId);
    expect(epochs.map((epoch) => epoch.epoch)).toEqual(outcome.epochs.map((epoch) => epoch.epoch));
    expect(epochs.length).toBeGreaterThan(0);
    expect(events.filter((event) => event.type === 'epoch')).toHaveLength(epochs.length);
    expect(events.at(-1)).toMatchObject({ type: 'finished', modelId: outcome.model.id });

    // The default head chose its L2 weight and epoch count by cross-validation, trained that many epochs, and says so.
    expect(events.some((event) => event.type === 'stage' && event.stage === 'cross-validating')).toBe(true);
    const selection = evaluatedRunMetrics(run!.metrics)?.headSelection;
    if (selection === undefined) throw new Error(`the run recorded no head selection: ${JSON.stringify(run?.metrics)}`);
    expect(selection.candidates.map((candidate) => candidate.l2)).toEqual([...HEAD_L2_GRID]);
    expect(HEAD_L2_GRID).toContain(selection.chosen.l2);
    expect(outcome.epochs).toHaveLength(selection.chosen.epochs);

    expect(outcome.promotion).toMatchObject({ promoted: true, reason: 'first model' });
    expect((await app.db.models.current())?.id).toBe(outcome.model.id);
    // The registered test metrics are what the stored model scores on the version's test split.
    const { manifest } = await loadManifest(app, datasetId);
    const classifier = await loadClassifier(app, outcome.model);
    expect((await evaluateOnSplit(app, classifier, manifest, 'test')).accuracy).toBeCloseTo(outcome.metrics.accuracy, 6);
    expect(outcome.metrics.count).toBe(manifest.items.filter((item) => item.split === 'test').length);
    classifier.dispose();
  });

  it('serves the pixels training saw: stored-feature and upload predictions agree for the same photo', async () => {
    const model = (await app.db.models.current())!;
    const classifier = await loadClassifier(app, model);
    const photos = [...kaggleFiles('cat', 2, 100), ...kaggleFiles('dog', 2, 100)];
    const uploads = photos.map((file) => ({ bytes: fs.readFileSync(file), fileName: path.basename(file) }));
    const served = await predictUploads({ db: app.db, blobs: app.blobs, limits: app.config.images, models: { classifier: async () => classifier } }, uploads);
    // Training reads cached features computed from the stored blob; serving decodes the upload: same numbers.
    const stored = await predictStored(app, classifier, served.map((prediction) => prediction.imageHash));
    served.forEach((prediction, i) => expect(prediction.probabilities.dog).toBeCloseTo(stored[i]!, 5));
    // And both see RGB: swapping red and blue changes the answer, so a BGR mix-up would not go unnoticed.
    const rgb = (await decodeToRgb(uploads[2]!.bytes, classifier.inputSize)).data;
    const bgr = rgb.slice();
    for (let i = 0; i < bgr.length; i += 3) [bgr[i], bgr[i + 2]] = [rgb[i + 2]!, rgb[i]!];
    const [asRgb, asBgr] = await classifier.predictPixels([rgb, bgr]);
    expect(asRgb!.pDog).toBeCloseTo(served[2]!.probabilities.dog, 5);
    expect(Math.abs(asRgb!.pDog - asBgr!.pDog)).toBeGreaterThan(1e-4);
    classifier.dispose();
  });

  it('promotes a new model only if it beats the serving one on the same test split', async () => {
    const before = await app.db.models.current();
    const config = withOverrides(app.config, { architecture: 'cnn', imageSize: 32, epochs: 1 });
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config) });
    // A CNN this small may answer one class only: such a model is never promoted, whatever its accuracy.
    const degenerate = degenerateReason(outcome.metrics);
    const incumbent = outcome.promotion.incumbent;
    expect(outcome.promotion).toMatchObject(degenerate ? { promoted: false, reason: degenerate } : { incumbent: { modelId: before!.id } });
    expect(outcome.promotion.promoted).toBe(!degenerate && outcome.metrics.accuracy > incumbent!.value);
    expect((await app.db.models.current())!.id).toBe(outcome.promotion.promoted ? outcome.model.id : before!.id);

    // Rollback is promoting the older model again; the history keeps both decisions.
    await app.db.models.promote(before!.id, { reason: 'rollback', actor: 'test' });
    expect((await app.db.models.current())!.id).toBe(before!.id);
    expect((await app.db.models.promotions()).map((promotion) => promotion.reason)).toContain('rollback');
  });
});
