import type { Database, ImageRow } from '../db/index.js';
import { inspectImage, perceptualHash, sha256Hex, type DecodeTurn, type ImageInfo, type ImageLimits } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';

export type { ImageLimits } from '../images/index.js';

export interface IngestDependencies {
  db: Pick<Database, 'images'>;
  blobs: BlobStore;
  limits: ImageLimits;
  /** The uploading client's turn for the server's decode slots; none for the CLI's imports. */
  turn?: DecodeTurn;
}

export interface IngestRequest {
  bytes: Uint8Array;
  label: 'cat' | 'dog' | null;
  source: string;
  originalName?: string;
  /**
   * Leave the perceptual hash to the Dataset health view's backfill (`backfillPerceptualHashes`): a folder import
   * does, since its own decode costs more CPU than all of the photo's checks together (over half of a photo's import).
   */
  deferPerceptualHash?: boolean;
}

export interface IngestResult {
  image: ImageRow;
  /** false when the same content was already stored (it is stored once). */
  inserted: boolean;
}

/**
 * Stores one photo by content. Validation (format by content, size, pixel count, a full decode) happens before
 * anything is written; the blob is written atomically before its row, so a crash leaves at worst an unreferenced
 * blob that the next ingest of the same photo reuses, never a row without pixels. A labelled photo must also decode
 * without a single warning: a corrupt or cut-short one would teach the model the decoder's grey fill.
 */
export async function ingestImage(deps: IngestDependencies, request: IngestRequest): Promise<IngestResult> {
  const info = await inspectImage(request.bytes, deps.limits, { strict: request.label !== null, turn: deps.turn });
  return storeInspectedImage(deps, request, info);
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
    request.deferPerceptualHash ? null : perceptualHash(request.bytes),
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
