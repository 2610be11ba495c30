import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatdogError, NotFoundError } from '../errors.js';
import { createBlobStore, LocalBlobStore, S3BlobStore, type BlobStore } from './index.js';
import { startTestS3Server, type TestS3Server } from '../../test/support/s3-server.js';

interface StoreUnderTest {
  store: BlobStore;
  cleanUp(): Promise<void>;
}

const adapters: { kind: BlobStore['kind']; open(): Promise<StoreUnderTest> }[] = [
  {
    kind: 'local',
    async open() {
      const root = await mkdtemp(path.join(tmpdir(), 'catdog-blobs-'));
      return { store: createBlobStore({ kind: 'local', path: root }), cleanUp: () => rm(root, { recursive: true, force: true }) };
    },
  },
  {
    kind: 's3',
    async open() {
      const server: TestS3Server = await startTestS3Server();
      const store = createBlobStore({ kind: 's3', ...server.storeOptions });
      return {
        store,
        async cleanUp() {
          (store as S3BlobStore).close();
          await server.stop();
        },
      };
    },
  },
];

describe.each(adapters)('$kind BlobStore', ({ kind, open }) => {
  let subject: StoreUnderTest;
  let store: BlobStore;
  beforeAll(async () => {
    subject = await open();
    store = subject.store;
  });
  afterAll(async () => {
    await subject.cleanUp();
  });

  it('has the kind and describes where it stores', () => {
    expect(store.kind).toBe(kind);
    expect(store.describe()).toMatch(kind === 'local' ? /^local folder \/.*catdog-blobs-/ : /^s3:\/\/catdog-test\/catdog\/$/);
  });

  it('round-trips binary data byte for byte, including every byte value and an empty object', async () => {
    const bytes = new Uint8Array(70_000).map((_, index) => index % 256);
    await store.put('roundtrip/all-bytes.bin', bytes);
    expect(await store.get('roundtrip/all-bytes.bin')).toEqual(bytes);
    await store.put('roundtrip/empty', new Uint8Array());
    expect(await store.get('roundtrip/empty')).toEqual(new Uint8Array());
  });

  it('overwrites an existing key', async () => {
    await store.put('overwrite/key', new TextEncoder().encode('first'));
    await store.put('overwrite/key', new TextEncoder().encode('second, longer'));
    expect(new TextDecoder().decode(await store.get('overwrite/key'))).toBe('second, longer');
  });

  it('answers has, deletes, and treats deleting a missing key as done', async () => {
    await store.put('has/one', new Uint8Array([1]));
    expect(await store.has('has/one')).toBe(true);
    expect(await store.has('has/two')).toBe(false);
    await store.delete('has/one');
    expect(await store.has('has/one')).toBe(false);
    await expect(store.delete('has/one')).resolves.toBeUndefined();
  });

  it('throws NotFoundError for a missing key and getOrUndefined answers undefined', async () => {
    const error = await store.get('missing/key').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toBe('blob missing/key does not exist');
    expect(await store.getOrUndefined('missing/key')).toBeUndefined();
  });

  it('lists keys by prefix, sorted, across more than one S3 page', async () => {
    const keys = Array.from({ length: 1050 }, (_, index) => `many/${String(index).padStart(4, '0')}`);
    await Promise.all(keys.map((key) => store.put(key, new Uint8Array([1]))));
    await store.put('many-not-this-folder/x', new Uint8Array([1]));
    await store.put('manyfolder/deeper/y', new Uint8Array([1]));

    expect(await store.list('many/')).toEqual(keys);
    expect(await store.list('many/10')).toEqual(keys.filter((key) => key.startsWith('many/10')));
    expect(await store.list('manyf')).toEqual(['manyfolder/deeper/y']);
    expect(await store.list('nothing-here/')).toEqual([]);
  });

  it('rejects keys that could escape the store or are not plain paths', async () => {
    for (const key of ['', '../outside', 'a/../../outside', '/etc/passwd', 'a\\b', 'a//b', 'a/', 'nul\0byte', './a', 'a/x.tmp-1']) {
      const error = await store.put(key, new Uint8Array([1])).catch((caught: unknown) => caught);
      expect(error, key).toBeInstanceOf(CatdogError);
      expect((error as CatdogError).code, key).toBe('invalid_blob_key');
    }
    await expect(store.get('../outside')).rejects.toMatchObject({ code: 'invalid_blob_key' });
    await expect(store.list('../')).rejects.toMatchObject({ code: 'invalid_blob_key' });
  });
});

describe('LocalBlobStore atomic put', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'catdog-blobs-atomic-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  // s3rver writes in place, so only the local adapter can be shown atomic here; S3 PutObject is atomic by contract.
  it('never shows a concurrent reader a partial object while a large put is in progress', async () => {
    const store = new LocalBlobStore(root);
    const size = 20 * 1024 * 1024;
    await store.put('large/object', new Uint8Array(size).fill(1));

    let putDone = false;
    const put = store.put('large/object', new Uint8Array(size).fill(2)).finally(() => {
      putDone = true;
    });
    const seen = new Set<string>();
    while (!putDone) {
      const bytes = await store.get('large/object');
      expect(bytes.length).toBe(size);
      const first = bytes[0];
      expect(bytes.every((byte) => byte === first)).toBe(true);
      seen.add(String(first));
    }
    await put;
    expect([...(await store.get('large/object')).subarray(0, 1)]).toEqual([2]);
    expect(seen.has('1')).toBe(true);
    expect(await readdir(path.join(root, 'large'))).toEqual(['object']);
  });

  it('leaves no temp file behind and keeps temp files out of list while a put is in flight', async () => {
    const store = new LocalBlobStore(root);
    const put = store.put('inflight/object', randomBytes(8 * 1024 * 1024));
    expect(await store.list('inflight/')).toEqual([]);
    await put;
    expect(await store.list('inflight/')).toEqual(['inflight/object']);
    expect(await readdir(path.join(root, 'inflight'))).toEqual(['object']);
  });
});
