import type { BlobStore } from '../../src/storage/index.js';

/** A blob store that records the keys written (`put`) and looked up (`get`, `getOrUndefined`, `has`) through it. */
export function recordingBlobs(blobs: BlobStore): { store: BlobStore; written: string[]; read: string[] } {
  const written: string[] = [];
  const read: string[] = [];
  const store: BlobStore = {
    kind: blobs.kind,
    describe: () => blobs.describe(),
    delete: (key) => blobs.delete(key),
    list: (prefix) => blobs.list(prefix),
    put: (key, bytes) => {
      written.push(key);
      return blobs.put(key, bytes);
    },
    get: (key) => {
      read.push(key);
      return blobs.get(key);
    },
    getOrUndefined: (key) => {
      read.push(key);
      return blobs.getOrUndefined(key);
    },
    has: (key) => {
      read.push(key);
      return blobs.has(key);
    },
  };
  return { store, written, read };
}
