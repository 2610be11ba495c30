import type { CatdogConfig } from '../config/index.js';
import type { Database, GalleryFilter, ImageLabel, ImageRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import { splitOf, type Split } from './split.js';

export interface CurationDependencies {
  db: Pick<Database, 'images'>;
}

/** Photos one bulk action may change: a page of the gallery selected many times over, not a whole data set by mistake. */
export const MAX_BULK = 1000;

function assertBulkSize(hashes: readonly string[]): void {
  if (hashes.length === 0) throw new CatdogError('invalid_request', 'select at least one photo', 400);
  if (hashes.length > MAX_BULK) {
    throw new CatdogError('too_many_photos', `${hashes.length} photos in one request; send at most ${MAX_BULK} at a time`, 400, { max: MAX_BULK });
  }
}

async function existing(deps: CurationDependencies, hashes: readonly string[]): Promise<ImageRow[]> {
  const unique = [...new Set(hashes)];
  assertBulkSize(unique);
  const rows = (await deps.db.images.getMany(unique)).filter((row) => row.deletedAt === null);
  if (rows.length < unique.length) {
    const found = new Set(rows.map((row) => row.hash));
    const missing = unique.filter((hash) => !found.has(hash));
    throw new CatdogError('image_not_found', `no photo ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} in the data set (unknown or deleted); nothing was changed`, 404, { missing });
  }
  return rows;
}

/**
 * A curator's label for photos of the data set: the next version trains on it. The gallery, its bulk action and
 * the API all come here. Returns the photos whose label changed.
 */
export async function relabelImages(deps: CurationDependencies, hashes: readonly string[], label: ImageLabel, actor: string): Promise<{ changed: number }> {
  const rows = await existing(deps, hashes);
  let changed = 0;
  for (const row of rows) {
    if (row.label === label) continue;
    await deps.db.images.setLabel(row.hash, label, `curation:${actor}`);
    changed++;
  }
  return { changed };
}

/**
 * Takes photos out of the data set: the next version leaves them out, while the versions already built, the models
 * trained on them and the stored bytes stay as they are (labelling the photo again brings it back).
 */
export async function deleteImages(deps: CurationDependencies, hashes: readonly string[]): Promise<{ deleted: number }> {
  const rows = await existing(deps, hashes);
  return { deleted: await deps.db.images.softDelete(rows.map((row) => row.hash)) };
}

export interface GalleryQuery extends Omit<GalleryFilter, 'scoreModelId'> {
  /** The split the photo falls in under the configured ratios and seed (the one the next version gives it). */
  split?: Split;
}

export interface GalleryPage {
  items: (ImageRow & { split: Split })[];
  total: number;
}

/**
 * A page of the data set's photos. `scoreModelId` is the serving model: the model filters count only its scores.
 * The split is no column (it is a function of the hash), so the matching hashes are listed and paged here: a list
 * of hashes only, which stays fast at 25,000 photos.
 */
export async function galleryPage(
  deps: CurationDependencies & { config: Pick<CatdogConfig, 'dataset'> },
  query: GalleryQuery,
  scoreModelId: string,
): Promise<GalleryPage> {
  const { split, limit, offset, ...filter } = query;
  const { split: ratios, seed } = deps.config.dataset;
  let hashes = await deps.db.images.galleryHashes({ ...filter, scoreModelId });
  if (split) hashes = hashes.filter((hash) => splitOf(hash, ratios, seed) === split);
  const rows = await deps.db.images.getMany(hashes.slice(offset, offset + limit));
  return { items: rows.map((row) => ({ ...row, split: splitOf(row.hash, ratios, seed) })), total: hashes.length };
}

/** Every labelled photo of the data set, ordered by hash (what the next version is built from). */
export async function labelledPhotos(deps: CurationDependencies): Promise<{ hash: string; label: ImageLabel }[]> {
  return deps.db.images.listLabelled();
}
