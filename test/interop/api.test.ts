import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { ingestImage } from '../../src/datasets/ingest.js';
import type { ModelRow } from '../../src/db/index.js';
import { decodeToRgb } from '../../src/images/index.js';
import { loadClassifier } from '../../src/registry/classifier.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { datasetParams, trainingParams, withOverrides } from '../../src/training/params.js';
import { trainOnDataset } from '../../src/training/run-training.js';
import { kaggleFiles, sharedPath, skipWithoutShared } from '../support/shared.js';

const TOLERANCE = 1e-4;
/** Training and model uploads on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;

interface ImportAnswer {
  model: { id: string; architecture: string; name: string; serving: boolean };
  promotion: { promoted: boolean; reason: string };
}

describe.skipIf(skipWithoutShared)(`model export and import over the API${skipWithoutShared && ` (skipped: ${skipWithoutShared})`}`, () => {
  let t: TestServer;
  let source: ModelRow;
  let images: Uint8Array[];
  let expected: number[];

  const predictions = async (model: ModelRow) => {
    const classifier = await loadClassifier(t.app, model);
    try {
      return (await classifier.predictPixels(images)).map((prediction) => prediction.pDog);
    } finally {
      classifier.dispose();
    }
  };

  const expectClose = (actual: readonly number[]) => {
    expect(actual).toHaveLength(expected.length);
    expect(Math.max(...actual.map((value, i) => Math.abs(value - expected[i]!)))).toBeLessThan(TOLERANCE);
  };

  const download = async (format: string) => {
    const response = await t.fetchAs(`/api/v1/models/${source.id}/export?format=${format}`, {}, 'viewer');
    return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
  };

  const upload = async (files: { name: string; bytes: Uint8Array }[], role: 'admin' | 'viewer' = 'admin') => {
    const form = new FormData();
    for (const file of files) form.append('file', new Blob([file.bytes]), file.name);
    form.append('name', `round trip of ${files.map((file) => file.name).join(' + ')}`);
    const response = await t.fetchAs('/api/v1/models/import', { method: 'POST', body: form }, role);
    return { response, body: (await response.json()) as ImportAnswer & { error?: { code: string } } };
  };

  const imported = async (answer: ImportAnswer): Promise<ModelRow> => (await t.app.db.models.get(answer.model.id))!;

  beforeAll(async () => {
    t = await startTestServer();
    const { app } = t;
    for (const label of ['cat', 'dog'] as const) {
      for (const file of kaggleFiles(label, 12, 40)) {
        await ingestImage({ db: app.db, blobs: app.blobs, limits: app.config.images }, { bytes: fs.readFileSync(file), label, source: 'test', originalName: path.basename(file) });
      }
    }
    const config = withOverrides(app.config, { architecture: 'mobilenet', epochs: 2 });
    const datasetId = (await buildDatasetVersion(app, datasetParams(config))).version.id;
    source = (await trainOnDataset(app, { datasetId, params: trainingParams(config, datasetParams(config)) })).model;
    const photos = [...kaggleFiles('cat', 3, 400), ...kaggleFiles('dog', 3, 400)];
    images = await Promise.all(photos.map(async (file) => (await decodeToRgb(fs.readFileSync(file), 224)).data));
    expected = await predictions(source);
  }, SLOW_TEST_MS);
  afterAll(async () => t?.close());

  it('downloads .keras and a TF.js zip as attachments; an unknown format is a 400', async () => {
    const keras = await download('keras');
    expect(keras.response.status).toBe(200);
    expect(keras.response.headers.get('content-type')).toBe('application/octet-stream');
    expect(keras.response.headers.get('content-disposition')).toBe(`attachment; filename="catdog-v${source.version}-${source.id}.keras"`);
    expect(Object.keys(unzipSync(keras.bytes))).toEqual(['metadata.json', 'config.json', 'model.weights.h5']);

    const tfjs = await download('tfjs');
    expect(tfjs.response.status).toBe(200);
    expect(tfjs.response.headers.get('content-type')).toBe('application/zip');
    expect(tfjs.response.headers.get('content-disposition')).toBe(`attachment; filename="catdog-v${source.version}-${source.id}-tfjs.zip"`);
    expect(Object.keys(unzipSync(tfjs.bytes)).sort()).toEqual(['catdog.json', 'model.json', 'weights.bin']);

    const onnx = await t.fetchAs(`/api/v1/models/${source.id}/export?format=onnx`, {}, 'viewer');
    expect(onnx.status).toBe(400);
  }, SLOW_TEST_MS);

  it('imports what it exported (.keras, TF.js zip, TF.js files), each answering as the source model; only admins may import', async () => {
    const keras = await download('keras');
    const refused = await upload([{ name: 'model.keras', bytes: keras.bytes }], 'viewer');
    expect(refused.response.status).toBe(403);

    const fromKeras = await upload([{ name: 'model.keras', bytes: keras.bytes }]);
    expect(fromKeras.response.status).toBe(201);
    expect(fromKeras.body.model).toMatchObject({ architecture: 'imported', name: 'round trip of model.keras' });
    expect(typeof fromKeras.body.promotion.reason).toBe('string');
    expectClose(await predictions(await imported(fromKeras.body)));

    const zip = (await download('tfjs')).bytes;
    const fromZip = await upload([{ name: 'model-tfjs.zip', bytes: zip }]);
    expect(fromZip.response.status).toBe(201);
    expectClose(await predictions(await imported(fromZip.body)));

    const files = unzipSync(zip);
    const fromFiles = await upload([
      { name: 'model.json', bytes: files['model.json']! },
      { name: 'weights.bin', bytes: files['weights.bin']! },
    ]);
    expect(fromFiles.response.status).toBe(201);
    expectClose(await predictions(await imported(fromFiles.body)));
  }, SLOW_TEST_MS);

  it('answers 422 naming the shapes when the upload is not one image in and P(dog) out', async () => {
    const bad = await upload([{ name: 'mnist.keras', bytes: fs.readFileSync(sharedPath('keras-fixtures', 'k3_ammar_mnist_dense.keras')) }]);
    expect(bad.response.status).toBe(422);
    expect(bad.body.error?.code).toBe('incompatible_model');
  });

  it('links both downloads from the Models page', async () => {
    const page = await (await t.fetchAs('/models', {}, 'viewer')).text();
    expect(page).toContain(`href="/api/v1/models/${source.id}/export?format=keras"`);
    expect(page).toContain(`href="/api/v1/models/${source.id}/export?format=tfjs"`);
  });
});
