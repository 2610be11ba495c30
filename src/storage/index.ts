import { LocalBlobStore } from './local-blob-store.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
import type { BlobStore } from './blob-store.js';

export { assertValidBlobKey, assertValidBlobPrefix, type BlobStore } from './blob-store.js';
export { imageBlobKey } from './keys.js';
export { LocalBlobStore } from './local-blob-store.js';
export { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';

export type BlobStoreConfig = { kind: 'local'; path: string } | ({ kind: 's3' } & S3BlobStoreOptions);

export function createBlobStore(config: BlobStoreConfig): BlobStore {
  if (config.kind === 'local') return new LocalBlobStore(config.path);
  return new S3BlobStore(config);
}
