import type { Database, ImageRow } from '../db/index.js';
import { inspectImage, perceptualHash, sha256Hex, type ImageInfo } from '../images/index.js';
import type { BlobStore } from '../storage/index.js';

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
}

export interface IngestDependencies {
  db: Pick<Database, 'images'>;
  blobs: BlobStore;
  limits: ImageLimits;
}

export interface IngestRequest {
  bytes: Uint8Array;
  label: 'cat' | 'dog' | null;
  source: string;
  originalName?: string;
}

export interface IngestResult {
  image: ImageRow;
  /** false when the same content was already stored (it is stored once). */
  inserted: boolean;
}

export const imageBlobKey = (hash: string): string => `images/${hash.slice(0, 2)}/${hash}`;

/**
 * Stores one photo by content. Validation (format by content, size, pixel count, a full decode) happens before
 * anything is written; the blob is written atomically before its row, so a crash leaves at worst an unreferenced
 * blob that the next ingest of the same photo reuses, never a row without pixels.
 */
export async function ingestImage(deps: IngestDependencies, request: IngestRequest): Promise<IngestResult> {
  return storeInspectedImage(deps, request, await inspectImage(request.bytes, deps.limits));
}

/**
 * `ingestImage` for a photo the caller has already validated: `info` is what `inspectImage` or
 * `inspectAndDecodeToRgb` answered for these bytes.
 */
export async function storeInspectedImage(deps: Omit<IngestDependencies, 'limits'>, request: IngestRequest, info: ImageInfo): Promise<IngestResult> {
  const hash = sha256Hex(request.bytes);
  const existing = await deps.db.images.get(hash);
  if (existing) {
    if (request.label && !existing.label) {
      await deps.db.images.setLabel(hash, request.label, request.source);
      return { image: { ...existing, label: request.label, source: request.source }, inserted: false };
    }
    return { image: existing, inserted: false };
  }
  const key = imageBlobKey(hash);
  const [nearDuplicateKey] = await Promise.all([
    perceptualHash(request.bytes),
    deps.blobs.has(key).then((stored) => (stored ? undefined : deps.blobs.put(key, request.bytes))),
  ]);
  return deps.db.images.insertIfAbsent({
    perceptualHash: nearDuplicateKey,
    hash,
    label: request.label,
    source: request.source,
    originalName: request.originalName ?? null,
    format: info.format,
    width: info.width,
    height: info.height,
    byteSize: request.bytes.byteLength,
  });
}
