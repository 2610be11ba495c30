import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { effectiveImageSize } from '../config/index.js';
import { countBySplit } from '../datasets/versions.js';
import { resolveTrainingParams } from '../training/params.js';
import { DECODE_ID } from '../images/index.js';
import { kaggleFullRes, skipWithoutShared } from '../../test/support/shared.js';
import { catPhotos, dogPhotos, photoForm, readEvents, startTestServer, withBearer, type TestServer } from '../../test/support/server.js';

interface PredictionJson {
  id: string;
  label: 'cat' | 'dog';
  confidence: number;
  probabilities: { cat: number; dog: number };
  modelId: string;
  modelVersion: number | null;
  imageHash: string;
  imageUrl: string;
  latencyMs: number;
  fileName?: string;
  validatedLabel?: string | null;
}

interface ErrorJson {
  error: { code: string; message: string; file?: string };
}

describe.skipIf(skipWithoutShared)('REST API', () => {
  let t: TestServer;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-api-files-'));
  // Every call here acts as an admin; test/security covers who may do what.
  const fetch = (url: string, init?: RequestInit) => globalThis.fetch(url, withBearer(t.tokens.admin, init));

  const predict = async (files: string[]) => {
    const response = await fetch(t.url('/api/v1/predictions'), { method: 'POST', body: photoForm(files) });
    return { response, body: (await response.json()) as { predictions: PredictionJson[]; errors: { index: number; file: string; code: string }[] } & ErrorJson };
  };
  const json = async <T>(pathAndQuery: string, init?: RequestInit): Promise<{ status: number; body: T; response: Response }> => {
    const response = await fetch(t.url(pathAndQuery), init);
    return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as T, response };
  };
  const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const imageLabel = async (hash: string) => {
    const { body } = await json<{ items: { hash: string; label: string | null }[] }>('/api/v1/images?limit=200');
    return body.items.find((image) => image.hash === hash)?.label;
  };

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('classifies one photo sent like curl -F file=@photo.jpg, and serves the stored image and its thumbnail', async () => {
    const [cat] = catPhotos(1);
    const { response, body } = await predict([cat!]);
    expect(response.status).toBe(200);
    expect(body.predictions).toHaveLength(1);
    const prediction = body.predictions[0]!;
    expect(prediction).toMatchObject({ modelId: 'zero-shot', modelVersion: null, fileName: 'cat.0.jpg' });
    expect(prediction.label === 'cat' || prediction.label === 'dog').toBe(true);
    expect(prediction.probabilities.cat + prediction.probabilities.dog).toBeCloseTo(1, 6);
    expect(prediction.confidence).toBeCloseTo(Math.max(prediction.probabilities.cat, prediction.probabilities.dog), 6);
    expect(prediction.imageHash).toMatch(/^[0-9a-f]{64}$/);

    const image = await fetch(t.url(prediction.imageUrl));
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await image.arrayBuffer()).equals(fs.readFileSync(cat!))).toBe(true);
    const thumbnail = await fetch(t.url(`${prediction.imageUrl}?size=thumb`));
    expect(thumbnail.headers.get('content-type')).toBe('image/jpeg');
    expect((await thumbnail.arrayBuffer()).byteLength).toBeGreaterThan(500);

    const fetched = await json<PredictionJson>(`/api/v1/predictions/${prediction.id}`);
    expect(fetched.body).toMatchObject({ id: prediction.id, imageHash: prediction.imageHash, validatedLabel: null });
  });

  it('classifies many photos in one request, in upload order, including a full-resolution one', async () => {
    const files = [catPhotos(1, 1)[0]!, dogPhotos(1, 1)[0]!, path.join(kaggleFullRes, 'dog', 'dog.2.jpg')];
    const { response, body } = await predict(files);
    expect(response.status).toBe(200);
    expect(body.predictions.map((p) => p.fileName)).toEqual(['cat.1.jpg', 'dog.1.jpg', 'dog.2.jpg']);
    expect(new Set(body.predictions.map((p) => p.id)).size).toBe(3);
  });

  it('refuses files that are not photos with 4xx JSON naming the image error and the file', async () => {
    const text = path.join(scratch, 'notes.txt');
    fs.writeFileSync(text, 'these are not the pixels you are looking for');
    const truncated = path.join(scratch, 'broken.jpg');
    fs.writeFileSync(truncated, fs.readFileSync(catPhotos(1, 2)[0]!).subarray(0, 600));

    const unsupported = await predict([text]);
    expect(unsupported.response.status).toBe(415);
    expect(unsupported.body.error).toMatchObject({ code: 'image_unsupported_format', file: 'notes.txt' });
    expect(unsupported.body.error.message).toContain('notes.txt');

    const corrupt = await predict([truncated]);
    expect(corrupt.response.status).toBe(422);
    expect(corrupt.body.error).toMatchObject({ code: 'image_corrupt', file: 'broken.jpg' });

    const mixed = await predict([catPhotos(1, 3)[0]!, truncated]);
    expect(mixed.response.status, 'a good photo beside a bad one is still answered').toBe(200);
    expect(mixed.body.predictions.map((p) => p.fileName)).toEqual(['cat.3.jpg']);
    expect(mixed.body.errors).toMatchObject([{ index: 1, file: 'broken.jpg', code: 'image_corrupt' }]);

    const empty = await fetch(t.url('/api/v1/predictions'), { method: 'POST', body: new FormData() });
    expect(empty.status).toBe(400);
    const emptyBody = (await empty.json()) as ErrorJson;
    expect(emptyBody.error.code).toBe('invalid_request');
    expect(emptyBody.error.message).toContain('file');
  });

  it('records a validation, lets the user change it and undo it, and the image label follows every step', async () => {
    const { body } = await predict(catPhotos(1, 4));
    const prediction = body.predictions[0]!;
    const validationUrl = `/api/v1/predictions/${prediction.id}/validation`;

    const confirmed = await json<PredictionJson>(validationUrl, post({ label: 'cat' }));
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.validatedLabel).toBe('cat');
    expect(await imageLabel(prediction.imageHash)).toBe('cat');

    await json(validationUrl, post({ label: 'dog' }));
    expect(await imageLabel(prediction.imageHash)).toBe('dog');
    await json(validationUrl, post({ label: 'neither' }));
    expect(await imageLabel(prediction.imageHash)).toBeNull();

    const undone = await json<PredictionJson>(validationUrl, { method: 'DELETE' });
    expect(undone.body.validatedLabel).toBe('dog');
    expect(await imageLabel(prediction.imageHash)).toBe('dog');
    await json(validationUrl, { method: 'DELETE' });
    await json(validationUrl, { method: 'DELETE' });
    expect(await imageLabel(prediction.imageHash)).toBeNull();
    const nothing = await json<ErrorJson>(validationUrl, { method: 'DELETE' });
    expect(nothing.status).toBe(409);
    expect(nothing.body.error.code).toBe('nothing_to_undo');

    const invalid = await json<ErrorJson>(validationUrl, post({ label: 'hamster' }));
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ code: 'invalid_request' });
    expect(invalid.body.error.message).toContain('label');

    const validatedOnly = await json<{ items: PredictionJson[]; total: number }>('/api/v1/predictions?validated=true');
    expect(validatedOnly.body.items.some((p) => p.id === prediction.id)).toBe(false);
  });

  it('queues one item per photo, least certain for the serving model first, remembers skips per reviewer, and counts progress', async () => {
    type ReviewJson = PredictionJson & { serving: { modelId: string; pDog: number } | null; image: { width: number; height: number } };
    type ProgressJson = { validated: number; pending: number; skipped: number };
    const progress = async () => (await json<ProgressJson>('/api/v1/review/progress')).body;
    const start = await progress();
    const photos = [...catPhotos(2, 5), ...dogPhotos(2, 5)];
    await predict(photos);
    // The same photos predicted again are the same photos to label: the queue does not grow.
    await predict(photos);
    const afterPredictions = await progress();
    expect(afterPredictions.pending).toBe(start.pending + photos.length);

    const first = (await json<ReviewJson>('/api/v1/review/next')).body;
    expect(first.serving).toMatchObject({ modelId: first.modelId, pDog: expect.any(Number) });
    expect(first.image.width).toBeGreaterThan(0);
    expect(first.fileName).toMatch(/^(cat|dog)\.\d+\.jpg$/);
    const skipped = await json<ProgressJson>('/api/v1/review/skips', post({ predictionId: first.id }));
    expect(skipped.body).toEqual({ ...afterPredictions, pending: afterPredictions.pending - 1, skipped: 1 });
    const second = (await json<ReviewJson>('/api/v1/review/next')).body;
    expect(second.imageHash).not.toBe(first.imageHash);
    expect(Math.abs(second.serving!.pDog - 0.5)).toBeGreaterThanOrEqual(Math.abs(first.serving!.pDog - 0.5));

    await json(`/api/v1/predictions/${second.id}/validation`, post({ label: 'cat' }));
    expect(await progress()).toEqual({ validated: afterPredictions.validated + 1, pending: afterPredictions.pending - 2, skipped: 1 });
    const restored = await json<ProgressJson & { restored: number }>('/api/v1/review/skips', { method: 'DELETE' });
    expect(restored.body).toMatchObject({ restored: 1, pending: afterPredictions.pending - 1, skipped: 0 });
    expect((await json<ReviewJson>('/api/v1/review/next')).body.imageHash).toBe(first.imageHash);

    const oldest = await json<ReviewJson>('/api/v1/review/next?strategy=oldest');
    expect(oldest.status).toBe(200);
    const pending = await json<{ items: PredictionJson[] }>('/api/v1/predictions?validated=false&limit=200');
    const none = await fetch(t.url(`/api/v1/review/next?exclude=${pending.body.items.slice(0, 100).map((p) => p.id).join(',')}`));
    expect([200, 204]).toContain(none.status);
    const unknown = await json<ErrorJson>('/api/v1/review/skips', post({ predictionId: 'prd_missing' }));
    expect(unknown.status).toBe(404);
  });

  it('stores a labelled upload once by content', async () => {
    const [dog] = dogPhotos(1, 10);
    const first = await json<{ items: { hash: string; label: string; inserted: boolean }[] }>('/api/v1/images', {
      method: 'POST',
      body: photoForm([dog!], { label: 'dog' }),
    });
    expect(first.status).toBe(201);
    expect(first.body.items[0]).toMatchObject({ label: 'dog', inserted: true });
    const again = await json<{ items: { hash: string; inserted: boolean }[] }>('/api/v1/images', { method: 'POST', body: photoForm([dog!], { label: 'dog' }) });
    expect(again.status).toBe(200);
    expect(again.body.items[0]).toMatchObject({ hash: first.body.items[0]!.hash, inserted: false });
    const dogs = await json<{ items: { hash: string }[]; total: number }>('/api/v1/images?label=dog&limit=200');
    expect(dogs.body.items.filter((image) => image.hash === first.body.items[0]!.hash)).toHaveLength(1);

    const missingLabel = await json<ErrorJson>('/api/v1/images', { method: 'POST', body: photoForm([dog!]) });
    expect(missingLabel.status).toBe(400);
    expect(missingLabel.body.error.message).toContain('label');
  });

  it('builds a dataset version from the labelled photos, reuses it when nothing changed, and previews augmentation', async () => {
    const upload = await fetch(t.url('/api/v1/images'), { method: 'POST', body: photoForm(catPhotos(12, 20), { label: 'cat' }) });
    expect(upload.status).toBe(201);
    await fetch(t.url('/api/v1/images'), { method: 'POST', body: photoForm(dogPhotos(12, 20), { label: 'dog' }) });

    const badSplit = await json<ErrorJson>('/api/v1/datasets', post({ split: { train: 0.5, validation: 0.2, test: 0.2 } }));
    expect(badSplit.status).toBe(400);
    expect(badSplit.body.error.code).toBe('invalid_request');
    expect(badSplit.body.error.message).toContain('split');

    // Image size and augmentation are settings of the training run: a client still sending them learns where they went.
    const versionsBefore = (await json<{ items: unknown[] }>('/api/v1/datasets')).body.items.length;
    for (const moved of [{ imageSize: 64 }, { augmentation: { rotation: { enabled: true, maxDegrees: 20 } } }, { imageSize: null }]) {
      const refused = await json<ErrorJson>('/api/v1/datasets', post({ split: { train: 0.6, validation: 0.2, test: 0.2 }, ...moved }));
      expect(refused.status, JSON.stringify(moved)).toBe(422);
      expect(refused.body.error.code).toBe('setting_moved');
      expect(refused.body.error.message).toContain('imageSize' in moved ? 'POST /api/v1/training-runs' : 'dataset.augmentation in the config');
    }
    expect((await json<{ items: unknown[] }>('/api/v1/datasets')).body.items, 'a refused build makes no version').toHaveLength(versionsBefore);

    const settings = { split: { train: 0.6, validation: 0.2, test: 0.2 }, seed: 7 };
    const built = await json<{ id: number; created: boolean; imageCount: number; counts: Record<string, { cat: number; dog: number }>; params: Record<string, unknown> }>(
      '/api/v1/datasets',
      post(settings),
    );
    expect(built.status).toBe(201);
    expect(built.body.created).toBe(true);
    const counted = Object.values(built.body.counts).reduce((sum, split) => sum + split.cat + split.dog, 0);
    expect(counted).toBe(built.body.imageCount);
    expect(built.body.params).toEqual(settings);

    const reused = await json<{ id: number; created: boolean }>('/api/v1/datasets', post(settings));
    expect(reused.status).toBe(200);
    expect(reused.body).toMatchObject({ id: built.body.id, created: false });

    const fetched = await json<{ id: number; counts: unknown }>(`/api/v1/datasets/${built.body.id}`);
    expect(fetched.body.counts).toEqual(built.body.counts);
    const listed = await json<{ items: { id: number }[] }>('/api/v1/datasets');
    expect(listed.body.items.map((version) => version.id)).toContain(built.body.id);

    // The version has no image size: samples come at the size training would use, from the config.
    const preview = await json<{ samples: { dataUrl: string; label: string }[] }>(`/api/v1/datasets/${built.body.id}/preview?n=3`);
    expect(preview.body.samples).toHaveLength(3);
    for (const sample of preview.body.samples) {
      const jpeg = Buffer.from(sample.dataUrl.replace('data:image/jpeg;base64,', ''), 'base64');
      expect(jpeg.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))).toBe(true);
      expect((await sharp(jpeg).metadata()).width).toBe(effectiveImageSize(t.app.config));
    }

    // The Dataset page builds from split and seed only; image size and augmentation are tried out apart from it.
    const page = await (await fetch(t.url('/dataset'))).text();
    const buildForm = page.slice(page.indexOf('<form id="build-form"'), page.indexOf('</form>', page.indexOf('<form id="build-form"')));
    expect(buildForm).toContain('name="seed"');
    expect(buildForm).not.toMatch(/name="imageSize"|\.enabled"/);
    expect(page).toMatch(/<form id="training-images-form"[^]*name="imageSize"[^]*name="rotation\.enabled"/);
    const webPreview = await (await fetch(t.url('/dataset/preview?imageSize=40&rotation.enabled=on&rotation.maxDegrees=30'))).text();
    const [firstSample] = [...webPreview.matchAll(/data:image\/jpeg;base64,([^"]+)/g)].map((match) => Buffer.from(match[1]!, 'base64'));
    expect((await sharp(firstSample!).metadata()).width).toBe(40);
    const webBuild = await fetch(t.url('/dataset/versions'), { method: 'POST', body: new URLSearchParams({ train: '0.6', validation: '0.2', test: '0.2', seed: '7' }) });
    expect(webBuild.status).toBe(200);
    expect(await webBuild.text()).toContain(`Nothing changed since v${built.body.id}`);
    expect((await json<{ items: unknown[] }>('/api/v1/datasets')).body.items, 'the same photos, split and seed: no new version').toHaveLength(versionsBefore + 1);
    const missing = await json<ErrorJson>('/api/v1/datasets/999');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('relabels and soft-deletes photos one at a time or in bulk, all or nothing, and keeps them out of the next version only', async () => {
    const upload = await json<{ items: { hash: string }[] }>('/api/v1/images', { method: 'POST', body: photoForm(catPhotos(3, 40), { label: 'cat' }) });
    const [a, b, c] = upload.body.items.map((item) => item.hash) as [string, string, string];
    const put = (body: unknown): RequestInit => ({ method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect((await json(`/api/v1/images/${a}/label`, put({ label: 'dog' }))).body).toEqual({ changed: 1 });
    expect((await json(`/api/v1/images/${a}/label`, put({ label: 'dog' }))).body).toEqual({ changed: 0 });
    expect(await imageLabel(a)).toBe('dog');

    const unknown = 'ab'.repeat(32);
    const refused = await json<ErrorJson>('/api/v1/images/bulk', post({ action: 'delete', hashes: [b, unknown] }));
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe('image_not_found');
    expect(refused.body.error.message).toContain(unknown);
    expect(await imageLabel(b)).toBe('cat');
    const tooMany = await json<ErrorJson>('/api/v1/images/bulk', post({ action: 'delete', hashes: Array.from({ length: 1001 }, () => b) }));
    expect(tooMany.status).toBe(400);

    expect((await json('/api/v1/images/bulk', post({ action: 'relabel', label: 'dog', hashes: [b, c] }))).body).toEqual({ changed: 2 });
    const before = (await json<{ id: number; imageCount: number }>('/api/v1/datasets', post({}))).body;
    expect((await json('/api/v1/images/bulk', post({ action: 'delete', hashes: [b, c] }))).body).toEqual({ deleted: 2 });
    expect((await json(`/api/v1/images/${b}`, { method: 'DELETE' })).status).toBe(404);
    expect(await imageLabel(b)).toBeUndefined();
    expect((await fetch(t.url(`/api/v1/images/${b}?size=thumb`))).status).toBe(200);
    const after = (await json<{ id: number; imageCount: number }>('/api/v1/datasets', post({}))).body;
    expect(after).toMatchObject({ id: before.id + 1, imageCount: before.imageCount - 2 });
    expect((await json<{ imageCount: number }>(`/api/v1/datasets/${before.id}`)).body.imageCount).toBe(before.imageCount);
  });

  it('cancels a training through its run: it ends cancelled and registers nothing', async () => {
    const modelsBefore = (await t.app.db.models.list()).length;
    const started = await json<{ id: string; jobId: string }>('/api/v1/training-runs', post({ architecture: 'cnn', epochs: 200, imageSize: 48 }));
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body.jobId).toBe(`train-${started.body.id}`);
    // Image size is the run's own setting, where a build request's imageSize is now sent.
    expect((await t.app.db.runs.get(started.body.id))?.params).toMatchObject({ imageSize: 48 });
    const cancelled = await json<{ id: string }>(`/api/v1/training-runs/${started.body.id}/cancel`, { method: 'POST' });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(202);
    await expect.poll(async () => (await t.app.db.runs.get(started.body.id))?.status, { timeout: 60_000 }).toBe('cancelled');
    expect((await json<{ state: string }>(`/api/v1/jobs/${started.body.jobId}`)).body.state).toBe('cancelled');
    expect((await t.app.db.models.list()).length).toBe(modelsBefore);
    const again = await json<ErrorJson>(`/api/v1/training-runs/${started.body.id}/cancel`, { method: 'POST' });
    expect([again.status, again.body.error.code]).toEqual([409, 'run_not_cancellable']);
  });

  it('trains in the background, streams epochs over SSE, registers and serves the new model', async () => {
    const started = await json<{ id: string; status: string }>('/api/v1/training-runs', post({ epochs: 2 }));
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body.status).toBe('queued');

    const stream = await fetch(t.url(`/api/v1/training-runs/${started.body.id}/events`));
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(stream, (event) => event.event === 'finished' || event.event === 'failed');
    const epochs = events.filter((event) => event.event === 'epoch');
    expect(events.at(-1)!.event, JSON.stringify(events.at(-1))).toBe('finished');
    expect(epochs.length).toBeGreaterThanOrEqual(1);
    expect(epochs[0]!.data).toMatchObject({ runId: started.body.id, epoch: 1, totalEpochs: 2 });
    for (const key of ['loss', 'accuracy', 'etaMs']) expect(typeof epochs[0]!.data[key]).toBe('number');
    // The default head's epoch count was chosen by cross-validation beforehand: its refit's epochs validate nothing.
    expect(epochs[0]!.data).toMatchObject({ valLoss: null, valAccuracy: null });
    // Stages are the worker's progress as the database last saw it: a short run may end between two looks.
    expect(events[0]!.event).toBe('started');

    // A late subscriber gets the whole history replayed, ending with the outcome.
    const replay = await readEvents(await fetch(t.url(`/api/v1/training-runs/${started.body.id}/events`)), () => false);
    expect(replay.filter((event) => event.event === 'epoch').map((event) => event.data.totalEpochs)).toEqual(epochs.map((event) => event.data.totalEpochs));
    expect(replay.at(-1)!.event).toBe('finished');

    const run = await json<{ status: string; epochs: unknown[]; modelId: string }>(`/api/v1/training-runs/${started.body.id}`);
    expect(run.body.status).toBe('succeeded');
    expect(run.body.epochs).toHaveLength(epochs.length);
    const modelId = events.at(-1)!.data.modelId as string;
    expect(run.body.modelId).toBe(modelId);

    // The promotion switches serving at once, but loading the new model takes a moment: it is listed as serving
    // when that is done, and not before.
    type ModelList = { items: { id: string; serving: boolean; metrics: { accuracy: number }; decodeId: string | null }[]; servingModelId: string };
    let models = await json<ModelList>('/api/v1/models');
    for (let waited = 0; models.body.servingModelId !== modelId && waited < 60_000; waited += 250) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      models = await json<ModelList>('/api/v1/models');
    }
    expect(models.body.servingModelId).toBe(modelId);
    expect(models.body.items.find((model) => model.id === modelId)).toMatchObject({ serving: true, decodeId: DECODE_ID });

    const roc = await json<{ points: unknown[]; rocAuc: number | null }>(`/api/v1/models/${modelId}/roc`);
    expect(roc.status).toBe(200);
    expect(roc.body.points.length).toBeGreaterThanOrEqual(2);

    const { body } = await predict(dogPhotos(1, 40));
    expect(body.predictions[0]).toMatchObject({ modelId, modelVersion: 1 });
  }, 180_000);

  it('replays a run this process did not train from the database, with the epoch totals it recorded', async () => {
    // As a worker process would leave it: a fine-tuned run whose total grew when its second phase started.
    // The version an earlier test built; when this test runs alone, an empty row shaped as the product writes one
    // (the pages render its counts).
    const dataset =
      (await t.app.db.datasets.latest()) ??
      (await t.app.db.datasets.create({ params: { split: { train: 0.7, validation: 0.2, test: 0.1 }, seed: 42 }, manifestKey: 'datasets/replay-test.json', counts: countBySplit([]), items: [] }));
    const run = await t.app.db.runs.create({ datasetId: dataset.id, params: resolveTrainingParams(t.app.config, { epochs: 20 }), codeVersion: 'test' });
    await t.app.db.runs.markRunning(run.id);
    const epoch = { loss: 0.4, accuracy: 0.8, valLoss: 0.5, valAccuracy: 0.75, durationMs: 100 };
    await t.app.db.runs.addEpoch(run.id, { ...epoch, epoch: 1, totalEpochs: 20 });
    await t.app.db.runs.addEpoch(run.id, { ...epoch, epoch: 2, totalEpochs: 7 });
    await t.app.db.runs.finish(run.id, { status: 'failed', error: 'stopped by the test' });

    const replay = await readEvents(await fetch(t.url(`/api/v1/training-runs/${run.id}/events`)), () => false);
    expect(replay.filter((event) => event.event === 'epoch').map((event) => [event.data.epoch, event.data.totalEpochs])).toEqual([[1, 20], [2, 7]]);
    expect(replay.at(-1)).toMatchObject({ event: 'failed', data: { runId: run.id, error: 'stopped by the test' } });
  });

  it('publishes an OpenAPI 3.1 document listing every route', async () => {
    const response = await fetch(t.url('/api/openapi.json'));
    expect(response.headers.get('content-type')).toContain('application/json');
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
    expect(document.openapi).toBe('3.1.0');
    expect(document.components.schemas.Model!.properties.decodeId).toMatchObject({ type: ['string', 'null'], description: expect.stringContaining('DECODE_ID') });
    const operations = Object.entries(document.paths).flatMap(([route, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`));
    expect(operations.sort()).toEqual(
      [
        'POST /api/v1/predictions',
        'GET /api/v1/predictions',
        'GET /api/v1/predictions/{id}',
        'POST /api/v1/predictions/{id}/validation',
        'DELETE /api/v1/predictions/{id}/validation',
        'GET /api/v1/review/next',
        'GET /api/v1/review/progress',
        'POST /api/v1/review/skips',
        'DELETE /api/v1/review/skips',
        'PUT /api/v1/images/{hash}/label',
        'DELETE /api/v1/images/{hash}',
        'POST /api/v1/images/bulk',
        'POST /api/v1/images/scores',
        'GET /api/v1/images/{hash}',
        'GET /api/v1/images',
        'POST /api/v1/images',
        'GET /api/v1/datasets',
        'POST /api/v1/datasets',
        'GET /api/v1/datasets/health',
        'GET /api/v1/datasets/{id}',
        'GET /api/v1/datasets/{id}/preview',
        'GET /api/v1/datasets/{id}/suspicious',
        'POST /api/v1/training-runs',
        'POST /api/v1/training-runs/{id}/cancel',
        'GET /api/v1/training-runs',
        'GET /api/v1/training-runs/{id}',
        'GET /api/v1/training-runs/{id}/events',
        'GET /api/v1/model-comparisons',
        'GET /api/v1/models',
        'GET /api/v1/models/{id}',
        'GET /api/v1/models/{id}/roc',
        'GET /api/v1/models/{id}/reliability',
        'GET /api/v1/models/{id}/export',
        'POST /api/v1/models/import',
        'POST /api/v1/models/{id}/evaluations',
        'POST /api/v1/models/{id}/promote',
        'GET /api/v1/jobs',
        'GET /api/v1/jobs/{id}',
        'POST /api/v1/jobs/{id}/cancel',
        'GET /api/v1/health',
        'GET /api/v1/metrics',
        'GET /api/v1/tokens',
        'POST /api/v1/tokens',
        'DELETE /api/v1/tokens/{id}',
      ].sort(),
    );
    const docs = await fetch(t.url('/api/docs'));
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('/static/api-docs.js');
  });

  it('answers errors as JSON { error: { code, message } } with the right status and no stack', async () => {
    const unknown = await json<ErrorJson>('/api/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    const missing = await json<ErrorJson>('/api/v1/predictions/prd_missing');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const tooMany = await json<ErrorJson>('/api/v1/predictions?limit=500');
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.code).toBe('invalid_request');
    expect(tooMany.body.error.message).toContain('limit');
    const malformed = await json<ErrorJson>('/api/v1/datasets', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{ not json' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_request');
    expect(JSON.stringify(malformed.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('exposes Prometheus metrics', async () => {
    await fetch(t.url('/api/v1/health'));
    const response = await fetch(t.url('/api/v1/metrics'));
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();
    expect(text).toContain('# TYPE http_requests_total counter');
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/api\/v1\/predictions",status="200"\} \d+/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/api\/v1\/predictions\/:id",status="404"\} 1/);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{method="GET",route="\/api\/v1\/health",le="\+Inf"\} \d+/);
    expect(text).toMatch(/catdog_predictions_total\{label="(cat|dog)"\} \d+/);
    expect(text).toMatch(/catdog_serving_model_version\{model_id="mdl_[0-9a-f]+"\} 1/);
    expect(text).toMatch(/catdog_jobs\{state="completed"\} [1-9]/);
    // Earlier tests predicted: model calls were counted with their sizes, and the process gauges are live.
    expect(text).toContain('# TYPE catdog_model_batch_size histogram');
    expect(text).toMatch(/catdog_model_batch_size_count [1-9]\d*\n/);
    expect(text).toMatch(/catdog_model_batch_size_bucket\{le="32"\} [1-9]\d*\n/);
    expect(text).toMatch(/catdog_tf_tensors [1-9]\d*\n/);
    expect(text).toMatch(/process_resident_memory_bytes [1-9]\d*\n/);
    expect(await (await fetch(t.url('/metrics'))).text()).toContain('http_requests_total');
  });

  it('sets the security headers on pages, API answers, errors and static files', async () => {
    for (const route of ['/', '/review', '/dataset', '/training', '/models', '/jobs', '/api/v1/health', '/api/v1/missing', '/static/app.css', '/static/vendor/htmx.min.js']) {
      const response = await fetch(t.url(route));
      expect(response.headers.get('content-security-policy'), route).toContain("script-src 'self'");
      expect(response.headers.get('content-security-policy'), route).toContain("frame-ancestors 'none'");
      expect(response.headers.get('x-content-type-options'), route).toBe('nosniff');
      expect(response.headers.get('referrer-policy'), route).toBe('same-origin');
      if (!route.includes('missing')) expect(response.status, route).toBe(200);
      if (!route.startsWith('/api') && !route.startsWith('/static')) {
        const page = await response.text();
        expect(page, `${route} has an inline script`).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
        expect(page, `${route} has an inline style`).not.toMatch(/\sstyle=|<style/);
      }
    }
  });

  it('refuses uploads larger than images.maxBytes with 413 payload_too_large', async () => {
    const big = path.join(scratch, 'big.jpg');
    fs.writeFileSync(big, Buffer.alloc(t.app.config.images.maxBytes + 100_000, 1));
    const { response, body } = await predict([big]);
    expect(response.status).toBe(413);
    expect(body.error.code).toBe('payload_too_large');
  });

  it('reports health, and 503 once the database is gone', async () => {
    const healthy = await json<{ status: string; database: { ok: boolean }; servingModelId: string }>('/api/v1/health');
    expect(healthy.status).toBe(200);
    expect(healthy.body).toMatchObject({ status: 'ok', database: { ok: true } });
    await t.app.db.close();
    const down = await json<{ status: string; database: { ok: boolean } }>('/api/v1/health');
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'unavailable', database: { ok: false } });
  });
});
