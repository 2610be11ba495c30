import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutShared } from '../../test/support/shared.js';
import { loadManifest } from '../datasets/versions.js';
import { trainSmallModel } from '../../test/support/trained-model.js';
import { suspiciousLabels } from '../training/suspicious.js';
import { escapeHtml } from '../web/html.js';
import { catPhotos, dogPhotos, photoForm, startTestServer, type TestServer } from '../../test/support/server.js';

interface SuspiciousJson {
  hash: string;
  label: 'cat' | 'dog';
  pDog: number;
  pLabel: number;
  loss: number;
  imageUrl: string;
  thumbnailUrl: string;
}

interface ErrorJson {
  error: { code: string; message: string };
}

const PER_CLASS = 20;

describe.skipIf(skipWithoutShared)('suspicious labels over HTTP and on the Dataset page', () => {
  let t: TestServer;
  let datasetId: number;

  const json = async <T>(pathAndQuery: string, role: 'viewer' | 'admin' = 'viewer') => {
    const response = await t.fetchAs(pathAndQuery, undefined, role);
    return { status: response.status, body: (await response.json()) as T };
  };
  const page = async (pathAndQuery: string) => {
    const response = await t.fetchAs(pathAndQuery, undefined, 'viewer');
    expect(response.status, pathAndQuery).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 404 for an unknown version, 400 for a bad limit, and 409 while no model is promoted', async () => {
    const unknown = await json<ErrorJson>('/api/v1/datasets/1/suspicious');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    // The photos trainSmallModel imports next, so it reuses this version.
    for (const [label, files] of [['cat', catPhotos(PER_CLASS)], ['dog', dogPhotos(PER_CLASS)]] as const) {
      expect((await t.fetchAs('/api/v1/images', { method: 'POST', body: photoForm(files, { label }) })).status).toBe(201);
    }
    const built = await t.fetchAs('/api/v1/datasets', { method: 'POST' });
    expect(built.status).toBe(201);
    datasetId = ((await built.json()) as { id: number }).id;

    expect((await json<ErrorJson>(`/api/v1/datasets/${datasetId}/suspicious?limit=0`)).status).toBe(400);
    const unscored = await json<ErrorJson>(`/api/v1/datasets/${datasetId}/suspicious`);
    expect(unscored.status).toBe(409);
    expect(unscored.body.error.code).toBe('no_promoted_model');
    expect(await page('/dataset/suspicious')).toContain('No model is promoted yet');
  });

  it('lists the training images the promoted model disagrees with most, as `catdog dataset suspicious` does', async () => {
    const outcome = await trainSmallModel(t.app, PER_CLASS);
    expect(outcome.model.datasetId).toBe(datasetId);
    expect((await t.app.db.models.current())?.id).toBe(outcome.model.id);

    const { status, body } = await json<{ items: SuspiciousJson[] }>(`/api/v1/datasets/${datasetId}/suspicious?limit=5`);
    expect(status).toBe(200);
    expect(body.items).toHaveLength(5);
    const expected = await suspiciousLabels(t.app, datasetId, 5);
    expect(body.items.map((image) => image.hash)).toEqual(expected.map((image) => image.hash));

    const { manifest } = await loadManifest(t.app, datasetId);
    const trainLabels = new Map(manifest.items.filter((item) => item.split === 'train').map((item) => [item.hash, item.label]));
    expect(body.items.map((image) => image.loss)).toEqual([...body.items.map((image) => image.loss)].sort((a, b) => b - a));
    for (const image of body.items) {
      expect(image.label).toBe(trainLabels.get(image.hash));
      expect(image.pLabel).toBeCloseTo(image.label === 'dog' ? image.pDog : 1 - image.pDog, 12);
      expect(image.loss).toBeCloseTo(-Math.log(Math.max(image.pLabel, 1e-7)), 6);
      expect(image.imageUrl).toBe(`/api/v1/images/${image.hash}`);
      expect(image.thumbnailUrl).toBe(`/api/v1/images/${image.hash}?size=thumb`);
    }
    const thumbnail = await t.fetchAs(body.items[0]!.thumbnailUrl, undefined, 'viewer');
    expect(thumbnail.status).toBe(200);
    expect(thumbnail.headers.get('content-type')).toBe('image/jpeg');

    // Without a limit: the service's default of 20, all from the training split.
    const all = await json<{ items: SuspiciousJson[] }>(`/api/v1/datasets/${datasetId}/suspicious`);
    expect(all.body.items).toHaveLength(Math.min(20, trainLabels.size));
    expect(all.body.items.slice(0, 5).map((image) => image.hash)).toEqual(expected.map((image) => image.hash));
  }, 300_000);

  it('shows the list in the Dataset page, most suspicious first, with the stored label and its probability', async () => {
    const datasetPage = await page('/dataset');
    expect(datasetPage).toContain('<h2>Suspicious labels</h2>');
    expect(datasetPage).toContain('hx-get="/dataset/suspicious" hx-trigger="load"');

    const fragment = await page('/dataset/suspicious');
    expect(fragment).not.toContain('<html');
    const expected = await suspiciousLabels(t.app, datasetId, 12);
    const listed = [...fragment.matchAll(/<li data-hash="([0-9a-f]{64})">(.*?)<\/li>/g)];
    expect(listed.map((match) => match[1])).toEqual(expected.map((image) => image.hash));
    expected.forEach((image, i) => {
      const item = listed[i]![2]!;
      const pLabel = image.label === 'dog' ? image.pDog : 1 - image.pDog;
      expect(item).toContain(`<img src="/api/v1/images/${image.hash}?size=thumb" alt="photo labelled ${image.label}"`);
      expect(item).toContain(`<span class="tag ${image.label}">${image.label}</span>`);
      expect(item).toContain(`P(${image.label}) ${(pLabel * 100).toFixed(1)}%`);
    });
    expect(fragment).toContain(`Training photos of dataset v${datasetId} whose label model v1 finds least likely`);
  });

  it('says which manifest is missing and how to restore it, on the Dataset page and from the API, until the version is built again', async () => {
    const version = (await t.app.db.datasets.get(datasetId))!;
    await t.app.blobs.delete(version.manifestKey);

    const missing = await json<ErrorJson>(`/api/v1/datasets/${datasetId}/suspicious`);
    expect(missing.status).toBe(409);
    expect(missing.body.error.code).toBe('dataset_manifest_missing');
    const { message } = missing.body.error;
    expect(message).toContain(`dataset version v${datasetId} has no manifest: blob ${version.manifestKey} is missing from the blob store`);
    expect(message).toContain('Build the version again');
    const roc = await json<ErrorJson>('/api/v1/models/1/roc');
    expect(roc.status).toBe(409);
    expect(roc.body.error.code).toBe('dataset_manifest_missing');

    expect(await page('/dataset')).toContain(`<p class="notice error" id="manifest-missing" role="alert">${escapeHtml(message)}</p>`);
    expect(await page('/dataset/suspicious')).toBe(`<p class="notice error">${escapeHtml(message)}</p>`);

    // The labelled photos and settings are unchanged, so building again is the same version with its manifest back.
    const rebuilt = await t.fetchAs('/api/v1/datasets', { method: 'POST' });
    expect(rebuilt.status).toBe(200);
    expect((await rebuilt.json()) as { id: number; created: boolean }).toMatchObject({ id: datasetId, created: false });
    expect(await t.app.blobs.has(version.manifestKey)).toBe(true);
    expect(await page('/dataset')).not.toContain('manifest-missing');
    expect((await json<{ items: SuspiciousJson[] }>(`/api/v1/datasets/${datasetId}/suspicious?limit=3`)).body.items).toHaveLength(3);
  });
});
