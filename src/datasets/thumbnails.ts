import { thumbnailJpeg, type DecodeTurn, type ImageLimits } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';

/** Side of the square a thumbnail fits in. */
export const THUMBNAIL_SIZE = 256;

/** Named by the photo's hash and the side, so a thumbnail never changes once made and never needs invalidating. */
export const thumbnailBlobKey = (hash: string): string => `thumbnails/${hash.slice(0, 2)}/${hash}-${THUMBNAIL_SIZE}`;

export interface ThumbnailDependencies {
  blobs: BlobStore;
  limits: ImageLimits;
  turn?: DecodeTurn;
}

/**
 * The stored photo's thumbnail, made on first request and kept in the blob store: a page of thumbnails costs reads,
 * not a decode of every full-size photo on every view.
 */
export async function storedThumbnail(deps: ThumbnailDependencies, hash: string): Promise<Uint8Array> {
  const key = thumbnailBlobKey(hash);
  const kept = await deps.blobs.getOrUndefined(key);
  if (kept !== undefined) return kept;
  const thumbnail = await thumbnailJpeg(await deps.blobs.get(imageBlobKey(hash)), deps.limits, THUMBNAIL_SIZE, deps.turn);
  await deps.blobs.put(key, thumbnail);
  return thumbnail;
}
