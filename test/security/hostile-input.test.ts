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
  'image_empty',
  'image_too_large',
  'image_unsupported_format',
  'image_corrupt',
  'image_too_many_pixels',
  'payload_too_large',
  'invalid_request',
]);

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
      expect(path.relative(blobRoot, file), 'an image blob named by its sha256').toMatch(/^images\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
      const bytes = fs.readFileSync(file);
      expect(path.basename(file)).toBe(sha256Hex(bytes));
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
});
