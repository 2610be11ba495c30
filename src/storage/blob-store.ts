import { CatdogError } from '../errors.js';

/**
 * Where bytes live: images, dataset manifests, cached features and model files. Keys are `/`-separated
 * relative paths (see docs/architecture.md) so the same key works on a local folder and on an S3 bucket.
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  /** Atomic: a reader sees either the previous object or the whole new one, never a partial write. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Throws `NotFoundError('blob', key)` when the key does not exist. */
  get(key: string): Promise<Uint8Array>;
  getOrUndefined(key: string): Promise<Uint8Array | undefined>;
  has(key: string): Promise<boolean>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every key starting with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Where the blobs are, for logs and `catdog doctor`: "local folder /x/blobs", "s3://bucket/prefix". */
  describe(): string;
}

/** Marks a local file that is still being written; never part of a key. */
export const TEMP_MARKER = '.tmp-';

/**
 * Both adapters validate keys the same way, so a key accepted by S3 also works on a folder and no key can
 * name a file outside the local root.
 */
export function assertValidBlobKey(key: string): void {
  const problem =
    key === '' ? 'is empty'
    : key.includes('\0') ? 'contains a NUL character'
    : key.includes('\\') ? 'contains a backslash'
    : key.startsWith('/') ? 'is absolute'
    : key.split('/').some((segment) => segment === '') ? 'has an empty segment'
    : key.split('/').some((segment) => segment === '.' || segment === '..') ? 'has a "." or ".." segment'
    : key.includes(TEMP_MARKER) ? `contains "${TEMP_MARKER}", reserved for files being written`
    : undefined;
  if (problem !== undefined) {
    throw new CatdogError('invalid_blob_key', `blob key ${JSON.stringify(key)} ${problem}`, 400, { key });
  }
}

/** A list prefix may end anywhere inside a key, but the folders before its last `/` must be valid. */
export function assertValidBlobPrefix(prefix: string): void {
  const folders = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  if (folders !== '') assertValidBlobKey(folders.slice(0, -1));
}
