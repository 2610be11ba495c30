import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importFolder } from '../datasets/import-folder.js';
import { loadManifest } from '../datasets/versions.js';
import { applyTemperature } from '../ml/index.js';
import { trainSmallModel } from '../../test/support/trained-model.js';
import { suspiciousLabels } from '../training/suspicious.js';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { readModelFiles } from './artifacts.js';
import { reliabilityPngKey } from './calibration.js';
import { classifierFor, loadClassifier } from './classifier.js';
import { predictStored } from './evaluate.js';

describe.skipIf(skipWithoutShared)('calibration of a trained model', () => {
  let app: TestApp;
  let outcome: Awaited<ReturnType<typeof trainSmallModel>>;
  /** Dogs imported as cats: the suspicious-label search must find them. */
  const mislabelled = kaggleFiles('dog', 6, 4100);

  beforeAll(async () => {
    app = await createTestApp();
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-mislabelled-'));
    fs.mkdirSync(path.join(folder, 'cat'));
    mislabelled.forEach((file, i) => fs.symlinkSync(file, path.join(folder, 'cat', `cat.${9000 + i}.jpg`)));
    await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, folder);
    fs.rmSync(folder, { recursive: true });
    outcome = await trainSmallModel(app, 60);
  }, 300_000);
  afterAll(() => app?.dispose());

  it('records the temperature, ECE on both splits and the test reliability diagram in the card', async () => {
    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    const calibration = card.calibration!;
    expect(calibration.temperature).toBeGreaterThan(0.05);
    expect(calibration.temperature).toBeLessThan(20);
    expect(calibration.eceValidation).toBeGreaterThanOrEqual(0);
    // A handful of test photos: ECE is noisy here (the 0.02 target is measured in bench/accuracy-variants.mjs); above 0.5
    // would mean the temperature made things worse than a coin.
    expect(calibration.eceTest).toBeLessThan(0.5);
    expect(calibration.reliability).toHaveLength(15);
    expect(calibration.reliability!.reduce((sum, bin) => sum + bin.count, 0)).toBe(outcome.metrics.count);
    expect(card.neither?.farDistance).toBeGreaterThan(0);
    expect(card.neither?.centroids.cat).toHaveLength(256);

    const png = await app.blobs.get(reliabilityPngKey(outcome.model.artifactPrefix));
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 420, height: 420 });
  });

  it('applies the temperature to every answer, stored images and pixels alike', async () => {
    const classifier = await loadClassifier(app, outcome.model);
    try {
      const raw = classifierFor({ ...classifier, network: classifier.network!, card: { ...classifier.card!, calibration: undefined } });
      const { manifest } = await loadManifest(app, outcome.model.datasetId);
      const hashes = manifest.items.filter((item) => item.split === 'test').slice(0, 8).map((item) => item.hash);
      const temperature = classifier.card!.calibration!.temperature;
      const [calibrated, uncalibrated] = [await predictStored(app, classifier, hashes), await predictStored(app, raw, hashes)];
      calibrated.forEach((p, i) => expect(p).toBeCloseTo(applyTemperature(uncalibrated[i]!, temperature), 5));

      const pixels = await sharp(fs.readFileSync(kaggleFiles('cat', 1, 4200)[0]!)).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
      const [fromPixels] = await classifier.predictPixels([new Uint8Array(pixels)]);
      const [rawFromPixels] = await raw.predictPixels([new Uint8Array(pixels)]);
      expect(fromPixels!.pDog).toBeCloseTo(applyTemperature(rawFromPixels!.pDog, temperature), 5);
      expect(fromPixels!.centroidDistance).toBeGreaterThanOrEqual(0);
    } finally {
      classifier.dispose();
    }
  });

  it('lists the dogs labelled as cats among the most suspicious training images', async () => {
    const { manifest } = await loadManifest(app, outcome.model.datasetId);
    const images = await Promise.all(manifest.items.map(async (item) => ({ item, row: await app.db.images.get(item.hash) })));
    const planted = images.filter(({ item, row }) => item.split === 'train' && row?.originalName?.startsWith('cat.90')).map(({ item }) => item.hash);
    expect(planted.length).toBeGreaterThan(0);
    const suspicious = await suspiciousLabels(app, outcome.model.datasetId, 2 * planted.length);
    expect(suspicious.map((image) => image.loss)).toEqual([...suspicious.map((image) => image.loss)].sort((a, b) => b - a));
    const found = suspicious.filter((image) => planted.includes(image.hash));
    // The head has seen these labels, so some it has learnt; by chance ~0.5 of them would be in this list.
    expect(found.length).toBeGreaterThanOrEqual(2);
    for (const image of found) expect(image).toMatchObject({ label: 'cat' });
    // The head is not seeded: how many it has learnt varies, but the model must disagree with some of them.
    expect(found.some((image) => image.pDog > 0.5)).toBe(true);
  });
});
