import { createHash } from 'node:crypto';
import type { Database, DatasetVersionRow } from '../db/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import type { AugmentationConfig } from '../images/index.js';
import type { BlobStore } from '../storage/index.js';
import type { Label } from './labels.js';
import { splitOf, type Split, type SplitRatios } from './split.js';

// A type alias, not an interface: it is stored as a JSON object column.
export type DatasetParams = {
  imageSize: number;
  split: SplitRatios;
  seed: number;
  augmentation: AugmentationConfig;
};

export interface ManifestEntry {
  hash: string;
  label: Label;
  split: Split;
}

export interface DatasetManifest {
  format: 'catdog-dataset/1';
  params: DatasetParams;
  items: ManifestEntry[];
}

export type SplitCounts = Record<Split, Record<Label, number>>;

export interface DatasetDependencies {
  db: Pick<Database, 'images' | 'datasets'>;
  blobs: BlobStore;
}

export function countBySplit(items: readonly ManifestEntry[]): SplitCounts {
  const counts: SplitCounts = { train: { cat: 0, dog: 0 }, validation: { cat: 0, dog: 0 }, test: { cat: 0, dog: 0 } };
  for (const item of items) counts[item.split][item.label] += 1;
  return counts;
}

function assertTrainable(counts: SplitCounts): void {
  const problems: string[] = [];
  if (counts.train.cat === 0 || counts.train.dog === 0) {
    problems.push(`the training split needs cats and dogs (has ${counts.train.cat} cats, ${counts.train.dog} dogs)`);
  }
  if (counts.test.cat + counts.test.dog === 0) problems.push('the test split is empty');
  if (problems.length > 0) {
    throw new CatdogError(
      'dataset_too_small',
      `cannot build a dataset version: ${problems.join('; ')}. Import more labelled photos (catdog dataset import DIR).`,
      409,
      { counts },
    );
  }
}

/**
 * Snapshots every labelled image into an immutable, numbered version. A version is identified by its manifest:
 * building again with the same images and parameters returns the existing version instead of a copy.
 */
export async function buildDatasetVersion(
  deps: DatasetDependencies,
  params: DatasetParams,
): Promise<{ version: DatasetVersionRow; created: boolean }> {
  const labelled = await deps.db.images.listLabelled();
  const items: ManifestEntry[] = labelled
    .filter((row): row is { hash: string; label: Label } => row.label === 'cat' || row.label === 'dog')
    .map((row) => ({ hash: row.hash, label: row.label, split: splitOf(row.hash, params.split, params.seed) }));
  const counts = countBySplit(items);
  assertTrainable(counts);

  const manifest: DatasetManifest = { format: 'catdog-dataset/1', params, items };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const manifestKey = `datasets/${createHash('sha256').update(manifestBytes).digest('hex')}.json`;

  const latest = await deps.db.datasets.latest();
  if (latest?.manifestKey === manifestKey) {
    // The same bytes under the same key: building again is how a lost manifest is restored (see manifestMissing).
    if (!(await deps.blobs.has(manifestKey))) await deps.blobs.put(manifestKey, manifestBytes);
    return { version: latest, created: false };
  }

  await deps.blobs.put(manifestKey, manifestBytes);
  const version = await deps.db.datasets.create({ params, manifestKey, counts, items });
  return { version, created: true };
}

/**
 * A version whose row exists but whose manifest blob is gone (deleted or lost from the blob store): nothing can
 * train on, evaluate against or list the images of it until the version is built again.
 */
export function manifestMissing(version: Pick<DatasetVersionRow, 'id' | 'manifestKey'>): CatdogError {
  return new CatdogError(
    'dataset_manifest_missing',
    `dataset version v${version.id} has no manifest: blob ${version.manifestKey} is missing from the blob store. ` +
      `Build the version again (catdog dataset build, POST /api/v1/datasets or the Dataset page's Build form): ` +
      `with the same labelled photos and settings as v${version.id} that restores its manifest, with others it makes a new version.`,
    409,
    { datasetId: version.id, key: version.manifestKey },
  );
}

export async function loadManifest(deps: DatasetDependencies, datasetId: number): Promise<{ version: DatasetVersionRow; manifest: DatasetManifest }> {
  const version = await deps.db.datasets.get(datasetId);
  if (!version) throw new NotFoundError('dataset version', datasetId);
  const bytes = await deps.blobs.getOrUndefined(version.manifestKey);
  if (bytes === undefined) throw manifestMissing(version);
  const manifest = JSON.parse(new TextDecoder().decode(bytes)) as DatasetManifest;
  return { version, manifest };
}
