import { createHash } from 'node:crypto';
import { z } from 'zod';
import { datasetParamsSchema, type Database, type DatasetParams, type DatasetVersionRow, type SplitCounts } from '../db/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import type { BlobStore } from '../storage/index.js';
import { LABELS, type Label } from './labels.js';
import { splitOf } from './split.js';

export type { DatasetParams, SplitCounts } from '../db/index.js';

const MANIFEST_FORMAT = 'catdog-dataset/2';

const manifestEntrySchema = z.object({
  hash: z.string(),
  label: z.enum(LABELS),
  split: z.enum(['train', 'validation', 'test']),
});

/**
 * The manifest blob of a version. `catdog-dataset/1` manifests (built before image size and augmentation became
 * settings of the training run) also carry those two in `params`: built versions are immutable, so their blobs
 * stay as written and the two are dropped when read.
 */
const manifestSchema = z.object({
  format: z.enum(['catdog-dataset/1', MANIFEST_FORMAT]),
  params: datasetParamsSchema,
  items: z.array(manifestEntrySchema),
});

export type ManifestEntry = z.infer<typeof manifestEntrySchema>;
export type DatasetManifest = z.infer<typeof manifestSchema>;

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

const sameParams = (a: DatasetParams, b: DatasetParams): boolean =>
  a.seed === b.seed && a.split.train === b.split.train && a.split.validation === b.split.validation && a.split.test === b.split.test;

async function holdsExactly(deps: DatasetDependencies, version: DatasetVersionRow, items: readonly ManifestEntry[]): Promise<boolean> {
  if (version.imageCount !== items.length) return false;
  const stored = new Map((await deps.db.datasets.items(version.id)).items.map((item) => [item.hash, item]));
  return items.every((item) => {
    const same = stored.get(item.hash);
    return same?.label === item.label && same.split === item.split;
  });
}

/**
 * Snapshots every labelled image into an immutable, numbered version. A version is data only (photos, labels,
 * splits): building again when the labelled photos, their labels, the split ratios and the seed are the latest
 * version's returns that version instead of a copy, whatever the image size or augmentation training will use.
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

  const manifest: DatasetManifest = { format: MANIFEST_FORMAT, params: { split: params.split, seed: params.seed }, items };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));

  const latest = await deps.db.datasets.latest();
  if (latest && sameParams(latest.params, params) && (await holdsExactly(deps, latest, items))) {
    // Building again is how a lost manifest is restored (see manifestMissing). It goes back under the key the row
    // names, also for a version first written as `catdog-dataset/1`: what it lists is the same.
    if (!(await deps.blobs.has(latest.manifestKey))) await deps.blobs.put(latest.manifestKey, manifestBytes);
    return { version: latest, created: false };
  }

  const manifestKey = `datasets/${createHash('sha256').update(manifestBytes).digest('hex')}.json`;
  await deps.blobs.put(manifestKey, manifestBytes);
  const version = await deps.db.datasets.create({ params: manifest.params, manifestKey, counts, items });
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
  const parsed = manifestSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
  if (!parsed.success) {
    throw new CatdogError(
      'dataset_manifest_invalid',
      `dataset version v${version.id}: blob ${version.manifestKey} is not a dataset manifest this catdog reads (${z.prettifyError(parsed.error)}). ` +
        'Restore the blob from a backup, or build a new version (catdog dataset build).',
      409,
      { datasetId: version.id, key: version.manifestKey },
    );
  }
  return { version, manifest: parsed.data };
}
