import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/images/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { kaggleFiles, skipWithoutShared } from '../support/shared.js';
import { generateHostileCorpus, type HostileFile } from './hostile-corpus.js';
import type { ErrorJson } from './support.js';

/** Every code an upload may be refused with: clients can rely on these. */
const STABLE_UPLOAD_CODES = new Set([
  'too_many_files',
  'image_empty',
  'image_too_large',
  'image_unsupported_format',
  'image_corrupt',
  'image_too_many_pixels',
  'image_too_complex',
  'payload_too_large',
  'invalid_request',
]);

/** Value of one unlabelled series in the Prometheus text exposition (0 when absent). */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

function listFiles(folder: string): string[] {
  return fs.readdirSync(folder, { withFileTypes: true, recursive: true }).filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

describe.skipIf(skipWithoutShared)('hostile uploads', () => {
  let t: TestServer;
  let corpus: HostileFile[];

  beforeAll(async () => {
    t = await startTestServer({ CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0' });
    corpus = await generateHostileCorpus();
  });
  afterAll(async () => {
    await t?.close();
  });

  const state = async () => {
    const count = async (table: 'images' | 'predictions') =>
      Number((await t.app.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    return { images: await count('images'), predictions: await count('predictions'), blobs: (await t.app.blobs.list('images/')).sort() };
  };

  const upload = (route: '/api/v1/predictions' | '/api/v1/images', file: HostileFile) => {
    const form = new FormData();
    form.append('file', new Blob([file.bytes]), file.name);
    if (route === '/api/v1/images') form.append('label', 'cat');
    return t.fetchAs(route, { method: 'POST', body: form });
  };

  it('answers every file of a generated corpus of 200+ with a 4xx JSON code or a valid answer, writing nothing for a refusal', async () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    const outcomes: Record<string, number> = {};
    for (const file of corpus) {
      for (const route of ['/api/v1/predictions', '/api/v1/images'] as const) {
        const name = `${route} ${file.kind} ${JSON.stringify(file.name.slice(0, 80))}`;
        const before = await state();
        const response = await upload(route, file);
        expect(response.status, name).toBeLessThan(500);
        expect(response.headers.get('content-type'), name).toContain('application/json');
        const body = (await response.json()) as ErrorJson & { predictions?: unknown[]; items?: unknown[] };
        if (response.status >= 400) {
          expect(STABLE_UPLOAD_CODES, `${name}: ${body.error.code}`).toContain(body.error.code);
          expect(await state(), `${name} was refused but wrote something`).toEqual(before);
          outcomes[body.error.code] = (outcomes[body.error.code] ?? 0) + 1;
        } else {
          expect(file.expect, `${name} must be refused, got ${response.status}`).toBe('either');
          expect(body.predictions ?? body.items, name).toHaveLength(1);
          outcomes.accepted = (outcomes.accepted ?? 0) + 1;
        }
      }
    }
    console.info(`hostile corpus: ${corpus.length} files × 2 endpoints →`, outcomes);
    expect(Object.keys(outcomes).length).toBeGreaterThanOrEqual(4);
    expect((await t.fetchAs('/api/v1/health')).status).toBe(200);
  }, 300_000);

  it('never uses an uploaded file name as a path: everything written is a content-addressed blob', async () => {
    const blobRoot = path.join(t.home, 'blobs');
    for (const file of listFiles(t.home)) {
      const relative = path.relative(t.home, file);
      if (!relative.startsWith(`blobs${path.sep}`)) {
        // Beside the blobs: the database, and the backbone's TensorFlow graph named by the backbone's id and hash.
        expect(relative, 'only the database and the backbone graph live beside the blobs').toMatch(
          /^(catdog\.db(-wal|-shm)?|cache\/graphs\/[\w.-]+-[0-9a-f]{12}-[0-9a-f]{12}\/saved_model\.pb)$/,
        );
        continue;
      }
      const key = path.relative(blobRoot, file);
      expect(key, 'an image blob named by its sha256, or its thumbnail').toMatch(/^(images|thumbnails)\/[0-9a-f]{2}\/[0-9a-f]{64}(-256)?$/);
      if (key.startsWith('images/')) expect(path.basename(file)).toBe(sha256Hex(fs.readFileSync(file)));
    }
    const names = (await t.app.db.images.list({ limit: 200, offset: 0 })).items.map((image) => image.originalName);
    expect(names.some((name) => name?.includes('..'))).toBe(true);
  });

  it('refuses a body over images.maxBytes with 413 payload_too_large before reading it all', async () => {
    const huge = new Uint8Array(t.app.config.images.maxBytes + 1024 * 1024);
    huge.set([0xff, 0xd8, 0xff]);
    const before = await state();
    const response = await upload('/api/v1/predictions', { kind: 'oversized', name: 'huge.jpg', bytes: huge, expect: 'reject' });
    expect(response.status).toBe(413);
    expect(((await response.json()) as ErrorJson).error.code).toBe('payload_too_large');
    expect(await state()).toEqual(before);
  });

  const filesForm = (files: readonly { name: string; bytes: Uint8Array }[], label?: string) => {
    const form = new FormData();
    for (const file of files) form.append('file', new Blob([file.bytes]), file.name);
    if (label) form.append('label', label);
    return form;
  };
  const realPhotos = (label: 'cat' | 'dog', count: number, from: number) =>
    kaggleFiles(label, count, from).map((file) => ({ name: path.basename(file), bytes: new Uint8Array(fs.readFileSync(file)) }));
  const truncated = (photo: { bytes: Uint8Array }) => ({ name: 'truncated.jpg', bytes: photo.bytes.subarray(0, Math.floor(photo.bytes.length / 2)) });

  it('answers the corpus as many-file requests: per file for predictions, all or nothing for labelled uploads, writing nothing for a refused file', async () => {
    const perRequest = t.app.config.server.maxFilesPerRequest;
    const hashOf = (key: string) => key.slice(key.lastIndexOf('/') + 1);
    for (let start = 0; start < corpus.length; start += perRequest) {
      const chunk = corpus.slice(start, start + perRequest);
      const name = `corpus files ${start}..${start + chunk.length - 1}`;

      let before = await state();
      const predicted = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: filesForm(chunk) });
      expect(predicted.status, name).toBeLessThan(500);
      const body = (await predicted.json()) as ErrorJson & { predictions?: { imageHash: string }[]; errors?: { index: number; code: string }[] };
      const after = await state();
      if (predicted.status === 200) {
        const refused = new Set(body.errors!.map((error) => error.index));
        expect(body.predictions!.length + refused.size, name).toBe(chunk.length);
        chunk.forEach((file, index) => {
          if (file.expect === 'reject') expect(refused.has(index), `${name}: ${file.kind} ${JSON.stringify(file.name.slice(0, 80))} must be refused`).toBe(true);
        });
        for (const error of body.errors!) expect(STABLE_UPLOAD_CODES, `${name}: ${error.code}`).toContain(error.code);
        expect(after.predictions - before.predictions, name).toBe(body.predictions!.length);
        const classified = new Set(body.predictions!.map((prediction) => prediction.imageHash));
        for (const key of after.blobs.filter((blob) => !before.blobs.includes(blob))) expect(classified.has(hashOf(key)), `${name}: ${key} was written for a refused file`).toBe(true);
      } else {
        expect(STABLE_UPLOAD_CODES, `${name}: ${body.error.code}`).toContain(body.error.code);
        expect(after, `${name} was refused but wrote something`).toEqual(before);
      }

      before = await state();
      const labelled = await t.fetchAs('/api/v1/images', { method: 'POST', body: filesForm(chunk, 'cat') });
      if (chunk.some((file) => file.expect === 'reject')) {
        expect(labelled.status, `${name} as labelled photos`).toBeGreaterThanOrEqual(400);
        expect(labelled.status, `${name} as labelled photos`).toBeLessThan(500);
        expect(STABLE_UPLOAD_CODES).toContain(((await labelled.json()) as ErrorJson).error.code);
        expect(await state(), `${name} as labelled photos was refused but wrote something`).toEqual(before);
      } else {
        expect(labelled.status, `${name} as labelled photos`).toBeLessThan(300);
        await labelled.body?.cancel();
      }
    }
  }, 300_000);

  it('refuses more files than server.maxFilesPerRequest with 413 too_many_files, before decoding or writing any', async () => {
    const limit = t.app.config.server.maxFilesPerRequest;
    const [photo] = realPhotos('cat', 1, 500);
    const many = Array.from({ length: limit + 1 }, (_, i) => ({ name: `copy-${i}.jpg`, bytes: photo!.bytes }));
    for (const [route, label] of [['/api/v1/predictions', undefined], ['/api/v1/images', 'cat']] as const) {
      const before = await state();
      const response = await t.fetchAs(route, { method: 'POST', body: filesForm(many, label) });
      expect(response.status, route).toBe(413);
      const { error } = (await response.json()) as ErrorJson;
      expect(error.code, route).toBe('too_many_files');
      expect(error.message, route).toContain('server.maxFilesPerRequest');
      expect(await state(), `${route} refused but wrote something`).toEqual(before);
    }
  });

  it('hands the model at most its maximum batch (32), whatever one request carries', async () => {
    const photos = [...realPhotos('cat', 32, 510), ...realPhotos('dog', 32, 510)];
    expect(photos.length).toBeLessThanOrEqual(t.app.config.server.maxFilesPerRequest);
    const calls = async () => {
      const text = await (await t.fetchAs('/metrics')).text();
      return { all: metricValue(text, 'catdog_model_batch_size_count'), upTo32: metricValue(text, 'catdog_model_batch_size_bucket{le="32"}') };
    };
    const before = await calls();
    const response = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: filesForm(photos) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { predictions: unknown[] }).predictions).toHaveLength(64);
    const after = await calls();
    expect(after.all - before.all, 'model calls for 64 photos').toBeGreaterThanOrEqual(2);
    expect(after.upTo32 - before.upTo32, 'model calls of more than 32 photos').toBe(after.all - before.all);
  });

  it('answers a multi-file prediction per file: the good photos are classified, each bad file has its code, and nothing of those is written', async () => {
    const good = realPhotos('dog', 3, 600);
    const broken = truncated(realPhotos('cat', 1, 601)[0]!);
    const text = { name: 'notes.txt', bytes: new TextEncoder().encode('not a photo at all') };
    const before = await state();
    const response = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: filesForm([good[0]!, broken, good[1]!, text, good[2]!]) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { predictions: { fileName: string; imageHash: string }[]; errors: { index: number; file: string; code: string; message: string }[] };
    expect(body.predictions.map((prediction) => prediction.fileName)).toEqual(good.map((photo) => photo.name));
    expect(body.errors.map(({ index, file, code }) => ({ index, file, code }))).toEqual([
      { index: 1, file: 'truncated.jpg', code: 'image_corrupt' },
      { index: 3, file: 'notes.txt', code: 'image_unsupported_format' },
    ]);
    expect(body.errors.every((error) => error.message.length > 0)).toBe(true);
    const after = await state();
    expect(after.images - before.images).toBe(3);
    expect(after.predictions - before.predictions).toBe(3);
    const written = after.blobs.filter((key) => !before.blobs.includes(key));
    expect(written.sort()).toEqual(good.map((photo) => `images/${sha256Hex(photo.bytes).slice(0, 2)}/${sha256Hex(photo.bytes)}`).sort());

    const allBad = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: filesForm([text, broken]) });
    expect(allBad.status, 'every file refused: the first one\'s error').toBe(415);
    expect(((await allBad.json()) as ErrorJson).error).toMatchObject({ code: 'image_unsupported_format', file: 'notes.txt' });
  });

  it('stores a labelled upload all or nothing: one truncated photo among 20 writes and relabels nothing', async () => {
    const stored = realPhotos('cat', 5, 700);
    expect((await t.fetchAs('/api/v1/images', { method: 'POST', body: filesForm(stored, 'cat') })).status).toBe(201);
    // 5 already stored as cats (a dog label would overwrite theirs), 15 new, and a broken one last.
    const upload = [...stored, ...realPhotos('dog', 15, 705), truncated(realPhotos('dog', 1, 720)[0]!)];
    const before = await state();
    const response = await t.fetchAs('/api/v1/images', { method: 'POST', body: filesForm(upload, 'dog') });
    expect(response.status).toBe(422);
    expect(((await response.json()) as ErrorJson).error).toMatchObject({ code: 'image_corrupt', file: 'truncated.jpg' });
    expect(await state()).toEqual(before);
    for (const photo of stored) expect((await t.app.db.images.get(sha256Hex(photo.bytes)))?.label, photo.name).toBe('cat');
  });

  it('keeps the uploaded bytes (the image identity) but serves them without EXIF, XMP or GPS data', async () => {
    const [photo] = kaggleFiles('dog', 1, 450);
    const tagged = await sharp(photo!)
      .resize(300, 200, { fit: 'fill' })
      .withExif({ IFD0: { Make: 'SpyCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const taggedMetadata = await sharp(tagged).metadata();
    expect(taggedMetadata).toMatchObject({ orientation: 6, width: 300, height: 200 });
    const response = await upload('/api/v1/predictions', { kind: 'exif', name: 'gps.jpg', bytes: tagged, expect: 'either' });
    expect(response.status).toBe(200);
    const { predictions } = (await response.json()) as { predictions: { imageHash: string; imageUrl: string }[] };
    const { imageHash, imageUrl } = predictions[0]!;
    expect(imageHash).toBe(sha256Hex(tagged));
    expect(Buffer.from(await t.app.blobs.get(`images/${imageHash.slice(0, 2)}/${imageHash}`)).equals(tagged)).toBe(true);

    for (const url of [imageUrl, `${imageUrl}?size=thumb`]) {
      const served = Buffer.from(await (await t.fetchAs(url)).arrayBuffer());
      expect(served.includes(Buffer.from('SpyCam')), url).toBe(false);
      const metadata = await sharp(served).metadata();
      expect(metadata.exif, url).toBeUndefined();
      expect(metadata.xmp, url).toBeUndefined();
      // Stored 300 × 200 with EXIF orientation 6 (rotate 90°): served upright, taller than wide.
      expect(metadata.height! > metadata.width!, url).toBe(true);
    }
  });

  it('makes a thumbnail once, keeps it in the blob store and serves it from there afterwards', async () => {
    const [photo] = kaggleFiles('cat', 1, 470);
    const response = await upload('/api/v1/predictions', { kind: 'photo', name: 'cat.jpg', bytes: fs.readFileSync(photo!), expect: 'either' });
    const { predictions } = (await response.json()) as { predictions: { imageHash: string; imageUrl: string }[] };
    const { imageHash, imageUrl } = predictions[0]!;
    const key = `thumbnails/${imageHash.slice(0, 2)}/${imageHash}-256`;
    expect(await t.app.blobs.has(key)).toBe(false);
    const first = Buffer.from(await (await t.fetchAs(`${imageUrl}?size=thumb`)).arrayBuffer());
    expect(Buffer.from(await t.app.blobs.get(key)).equals(first)).toBe(true);
    // Served from the store, not made again: a different JPEG put under the key is what comes back.
    const replaced = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } }).jpeg().toBuffer();
    await t.app.blobs.put(key, replaced);
    const second = Buffer.from(await (await t.fetchAs(`${imageUrl}?size=thumb`)).arrayBuffer());
    expect(second.equals(replaced)).toBe(true);
  });

  it('predicts on a JPEG whose entropy data is garbage, but refuses it as a labelled photo', async () => {
    const [photo] = kaggleFiles('dog', 1, 480);
    const bytes = Uint8Array.from(fs.readFileSync(photo!));
    // After the scan header, bytes that never form a marker: libjpeg decodes them to grey blocks with warnings only.
    let at = 2;
    while (!(bytes[at] === 0xff && bytes[at + 1] === 0xda)) at += 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
    const dataStart = at + 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
    for (let i = dataStart; i < bytes.length - 2; i++) bytes[i] = (i * 131) % 255;
    const file: HostileFile = { kind: 'corrupt', name: 'grey.jpg', bytes, expect: 'either' };
    const predicted = await upload('/api/v1/predictions', file);
    expect(predicted.status).toBe(200);
    const { predictions } = (await predicted.json()) as { predictions: { id: string; imageHash: string }[] };
    const { id, imageHash } = predictions[0]!;

    // A verdict would make it labelled data too: "cat" is refused, "neither" (out of the data set) is taken.
    const verdict = (label: string) =>
      t.fetchAs(`/api/v1/predictions/${id}/validation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label }) });
    const refused = await verdict('cat');
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as ErrorJson).error.message).toMatch(/decodes only with warnings.*"neither"/);
    expect((await t.app.db.images.get(imageHash))?.label).toBeNull();
    expect((await verdict('neither')).status).toBe(200);

    const before = await state();
    const labelled = await upload('/api/v1/images', file);
    expect(labelled.status).toBe(422);
    const body = (await labelled.json()) as ErrorJson;
    expect(body.error.code).toBe('image_corrupt');
    expect(body.error.message).toMatch(/decodes only with warnings/);
    expect(await state()).toEqual(before);
  });
});
