import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { perceptualHash } from '../images/index.js';
import { imageBlobKey } from '../storage/index.js';
import { backfillPerceptualHashes } from './health.js';
import { importFolder } from './import-folder.js';
import { datasetParams } from '../training/params.js';
import { buildDatasetVersion, loadManifest, type DatasetParams } from './versions.js';

let app: TestApp;
let folder: string;

const params = (): DatasetParams => ({ split: { train: 0.7, validation: 0.2, test: 0.1 }, seed: 42 });

const ingestDeps = () => ({ db: app.db, blobs: app.blobs, limits: app.config.images });

function copy(source: string, ...target: string[]): string {
  const destination = path.join(folder, ...target);
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  fs.copyFileSync(source, destination);
  return destination;
}

describe.skipIf(Boolean(skipWithoutShared))('dataset import and versions', () => {
  beforeEach(async () => {
    app = await createTestApp();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-import-'));
  });
  afterEach(async () => {
    await app.dispose();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('imports every layout, dedupes by content and lists every skipped file with its reason', async () => {
    const [cat0, cat1, cat2] = kaggleFiles('cat', 3);
    const [dog0, dog1] = kaggleFiles('dog', 2);
    copy(cat0!, 'PetImages', 'Cat', '0.jpg');
    copy(cat1!, 'cats', 'one.jpeg');
    copy(cat2!, 'cat', 'cat.2.jpg');
    copy(dog0!, 'PetImages', 'Dog', '0.jpg');
    copy(dog1!, 'flat', 'dog.1.jpg');
    copy(cat0!, 'more', 'CAT', 'same-photo-again.jpg');
    fs.writeFileSync(path.join(folder, 'cat', 'notes.jpg'), 'this is text, not a photo');
    fs.writeFileSync(path.join(folder, 'PetImages', 'Dog', 'broken.jpg'), fs.readFileSync(dog0!).subarray(0, 3000));
    fs.writeFileSync(path.join(folder, 'unlabelled.jpg'), fs.readFileSync(dog1!));

    const report = await importFolder(ingestDeps(), folder);

    expect(report).toMatchObject({ scanned: 9, imported: 5, duplicates: 1, byLabel: { cat: 3, dog: 2 } });
    expect(report.skipped.map(({ path: file, code }) => [file, code])).toEqual([
      [path.join('cat', 'notes.jpg'), 'image_unsupported_format'],
      [path.join('PetImages', 'Dog', 'broken.jpg'), 'image_corrupt'],
      ['unlabelled.jpg', 'no_label'],
    ]);
    expect(report.skipped.every((skipped) => skipped.reason.length > 10)).toBe(true);
    expect(await app.db.images.countByLabel()).toMatchObject({ cat: 3, dog: 2 });
    // Nothing of a rejected file is stored: only the five accepted photos have blobs.
    expect(await app.blobs.list('images/')).toHaveLength(5);

    const again = await importFolder(ingestDeps(), folder);
    expect(again).toMatchObject({ imported: 0, duplicates: 6 });

    const conflicting = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-conflict-'));
    fs.mkdirSync(path.join(conflicting, 'dog'));
    fs.copyFileSync(cat2!, path.join(conflicting, 'dog', 'mislabelled.jpg'));
    const conflict = await importFolder(ingestDeps(), conflicting);
    fs.rmSync(conflicting, { recursive: true, force: true });
    expect(conflict.skipped).toEqual([expect.objectContaining({ code: 'label_conflict', reason: expect.stringMatching(/already stored as cat/) })]);
    expect(await app.db.images.countByLabel()).toMatchObject({ cat: 3, dog: 2 });
  });

  it('leaves a folder import\'s perceptual hashes to the health backfill, which computes them as ingest would', async () => {
    const cats = kaggleFiles('cat', 3);
    cats.forEach((file, i) => copy(file, 'cat', `${i}.jpg`));
    await importFolder(ingestDeps(), folder);
    expect((await app.db.images.list({ limit: 10, offset: 0 })).items.map((image) => image.perceptualHash)).toEqual([null, null, null]);

    expect(await backfillPerceptualHashes({ db: app.db, blobs: app.blobs }, 2)).toBe(1);
    expect(await backfillPerceptualHashes({ db: app.db, blobs: app.blobs })).toBe(0);
    const stored = new Map((await app.db.images.perceptualHashes()).map((row) => [row.hash, row.perceptualHash]));
    const expected = await Promise.all(cats.map(async (file) => perceptualHash(fs.readFileSync(file))));
    expect([...stored.values()].sort()).toEqual(expected.sort());
  });

  it('backfills every other photo when one photo\'s blob cannot be read, and tries that one again next time', async () => {
    kaggleFiles('cat', 3).forEach((file, i) => copy(file, 'cat', `${i}.jpg`));
    await importFolder(ingestDeps(), folder);
    const [lost] = (await app.db.images.list({ limit: 10, offset: 0 })).items;
    await app.blobs.delete(imageBlobKey(lost!.hash));

    expect(await backfillPerceptualHashes({ db: app.db, blobs: app.blobs })).toBe(1);
    expect(await backfillPerceptualHashes({ db: app.db, blobs: app.blobs })).toBe(1);
    const stored = await app.db.images.perceptualHashes();
    expect(stored.map((row) => row.hash).sort()).not.toContain(lost!.hash);
    expect(stored).toHaveLength(2);
  });

  it('numbers immutable versions, reuses an identical one, and never moves images between splits as data grows', async () => {
    for (const file of kaggleFiles('cat', 15)) copy(file, 'cat', path.basename(file));
    for (const file of kaggleFiles('dog', 15)) copy(file, 'dog', path.basename(file));
    await importFolder(ingestDeps(), folder);
    const first = await buildDatasetVersion(app, params());
    expect(first).toMatchObject({ created: true, version: { id: 1, imageCount: 30 } });
    expect((await buildDatasetVersion(app, params())).created).toBe(false);

    for (const file of kaggleFiles('cat', 15, 15)) copy(file, 'cat', path.basename(file));
    for (const file of kaggleFiles('dog', 15, 15)) copy(file, 'dog', path.basename(file));
    await importFolder(ingestDeps(), folder);
    const second = await buildDatasetVersion(app, params());
    expect(second.version.id).toBe(2);
    expect(second.version.imageCount).toBe(60);

    const v1 = await loadManifest(app, 1);
    const v2 = await loadManifest(app, 2);
    const splitInV2 = new Map(v2.manifest.items.map((item) => [item.hash, item.split]));
    for (const item of v1.manifest.items) expect(splitInV2.get(item.hash)).toBe(item.split);
    // Version 1 is immutable: its manifest still lists exactly its 30 images.
    expect(v1.manifest.items).toHaveLength(30);
    const counts = v2.version.counts as Record<string, Record<string, number>>;
    expect(counts.train!.cat! + counts.validation!.cat! + counts.test!.cat!).toBe(30);
  });

  it('is data only: another image size or augmentation gives the same version, another photo, label, split or seed a new one', async () => {
    for (const file of kaggleFiles('cat', 10)) copy(file, 'cat', path.basename(file));
    for (const file of kaggleFiles('dog', 10)) copy(file, 'dog', path.basename(file));
    await importFolder(ingestDeps(), folder);
    const first = await buildDatasetVersion(app, datasetParams(app.config));
    expect(first.created).toBe(true);

    // What every entry point does: the dataset params of the config, here a config whose training image settings differ.
    const { dataset } = app.config;
    const retuned = {
      ...app.config,
      dataset: {
        ...dataset,
        imageSize: (dataset.imageSize ?? 224) + 32,
        augmentation: { ...dataset.augmentation, horizontalFlip: { ...dataset.augmentation.horizontalFlip, enabled: !dataset.augmentation.horizontalFlip.enabled }, rotation: { enabled: true, maxDegrees: 30 } },
      },
    };
    expect(await buildDatasetVersion(app, datasetParams(retuned))).toMatchObject({ created: false, version: { id: first.version.id } });
    expect(await app.blobs.list('datasets/')).toHaveLength(1);

    const reseeded = await buildDatasetVersion(app, { ...datasetParams(app.config), seed: dataset.seed + 1 });
    expect(reseeded.version.id).toBe(first.version.id + 1);
    const resplit = await buildDatasetVersion(app, { ...datasetParams(app.config), split: { train: 0.6, validation: 0.2, test: 0.2 } });
    expect(resplit.version.id).toBe(first.version.id + 2);
    expect((await buildDatasetVersion(app, { ...datasetParams(app.config), split: { train: 0.6, validation: 0.2, test: 0.2 } })).created).toBe(false);

    const [relabelled] = (await loadManifest(app, resplit.version.id)).manifest.items;
    await app.db.images.setLabel(relabelled!.hash, relabelled!.label === 'cat' ? 'dog' : 'cat', 'test');
    const afterRelabel = await buildDatasetVersion(app, { ...datasetParams(app.config), split: { train: 0.6, validation: 0.2, test: 0.2 } });
    expect(afterRelabel).toMatchObject({ created: true, version: { id: resplit.version.id + 1, imageCount: 20 } });

    copy(kaggleFiles('cat', 1, 10)[0]!, 'cat', 'one-more.jpg');
    await importFolder(ingestDeps(), folder);
    const afterPhoto = await buildDatasetVersion(app, { ...datasetParams(app.config), split: { train: 0.6, validation: 0.2, test: 0.2 } });
    expect(afterPhoto).toMatchObject({ created: true, version: { imageCount: 21 } });
    expect((await loadManifest(app, afterPhoto.version.id)).manifest).toMatchObject({ format: 'catdog-dataset/2', params: { split: { train: 0.6 }, seed: dataset.seed } });
    expect(Object.keys((await loadManifest(app, afterPhoto.version.id)).manifest.params).sort()).toEqual(['seed', 'split']);
  });

  it('reads a version built before image size moved to training, and builds it again (restoring its manifest) instead of copying it', async () => {
    for (const file of kaggleFiles('cat', 8)) copy(file, 'cat', path.basename(file));
    for (const file of kaggleFiles('dog', 8)) copy(file, 'dog', path.basename(file));
    await importFolder(ingestDeps(), folder);
    // As the previous release stored a version (its row as migration 0008 leaves it): a `catdog-dataset/1` manifest
    // with the image size and augmentation in its params.
    const current = await buildDatasetVersion(app, params());
    const { manifest } = await loadManifest(app, current.version.id);
    const legacyKey = 'datasets/written-by-the-previous-release.json';
    const legacyManifest = { format: 'catdog-dataset/1', params: { imageSize: 128, ...params(), augmentation: app.config.dataset.augmentation }, items: manifest.items };
    await app.blobs.put(legacyKey, new TextEncoder().encode(JSON.stringify(legacyManifest)));
    const legacy = await app.db.datasets.create({ params: params(), manifestKey: legacyKey, counts: current.version.counts, items: manifest.items });

    const loaded = await loadManifest(app, legacy.id);
    expect(loaded.manifest).toEqual({ format: 'catdog-dataset/1', params: params(), items: manifest.items });

    expect(await buildDatasetVersion(app, params())).toMatchObject({ created: false, version: { id: legacy.id } });
    await app.blobs.delete(legacyKey);
    await expect(loadManifest(app, legacy.id)).rejects.toMatchObject({ code: 'dataset_manifest_missing' });
    expect(await buildDatasetVersion(app, params())).toMatchObject({ created: false, version: { id: legacy.id } });
    expect((await loadManifest(app, legacy.id)).manifest).toEqual({ format: 'catdog-dataset/2', params: params(), items: manifest.items });

    await app.blobs.put(legacyKey, new TextEncoder().encode(JSON.stringify({ format: 'catdog-dataset/9', items: [] })));
    await expect(loadManifest(app, legacy.id)).rejects.toMatchObject({ code: 'dataset_manifest_invalid', message: expect.stringContaining(legacyKey) });
  });

  it('refuses a dataset without both classes, naming what is missing', async () => {
    for (const file of kaggleFiles('cat', 5)) copy(file, 'cat', path.basename(file));
    await importFolder(ingestDeps(), folder);
    await expect(buildDatasetVersion(app, params())).rejects.toMatchObject({ code: 'dataset_too_small', message: expect.stringMatching(/0 dogs/) });
  });
});
