import type { Database, ImageLabel, ImageRow } from '../db/index.js';
import { NotFoundError } from '../errors.js';
import { hammingDistance, NEAR_DUPLICATE_DISTANCE, nearDuplicateGroups, perceptualHash } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';

export interface HealthDependencies {
  db: Pick<Database, 'images' | 'datasets'>;
  blobs: BlobStore;
}

export interface DuplicateGroup {
  /** The largest distance between a member and the group's first photo, in bits of 64. */
  distance: number;
  /** Cat and dog labels in one group: the same photo (or nearly) teaches both. */
  conflicting: boolean;
  members: ImageRow[];
}

/** Photos hashed per call when photos without a perceptual hash are backfilled: about half a second's work on 2 cores. */
const BACKFILL_BATCH = 400;
/** Photos hashed at once: their decodes run on libuv's thread pool. */
const BACKFILL_CONCURRENCY = 4;

/**
 * Computes the perceptual hash of up to `limit` photos that have none (imported from a folder, which leaves it to
 * this, or stored before migration 0007; their blobs are read again); returns how many still have none. Each
 * Dataset health view does one batch.
 */
export function backfillPerceptualHashes(deps: HealthDependencies, limit = BACKFILL_BATCH): Promise<number> {
  // Health is a viewer's read: requests arriving together share one backfill instead of hashing the same photos each.
  const running = backfilling.get(deps.db);
  if (running !== undefined) return running;
  const backfill = (async () => {
    const { hashes, total } = await deps.db.images.withoutPerceptualHash(limit);
    let next = 0;
    let hashed = 0;
    const worker = async () => {
      while (next < hashes.length) {
        const hash = hashes[next++]!;
        // A photo whose blob cannot be read or decoded now stays unhashed (and outside the near-duplicate groups)
        // instead of failing every health view: the next view tries it again.
        const value = await deps.blobs.get(imageBlobKey(hash)).then(perceptualHash).catch(() => undefined);
        if (value === undefined) continue;
        await deps.db.images.setPerceptualHash(hash, value);
        hashed += 1;
      }
    };
    await Promise.all(Array.from({ length: BACKFILL_CONCURRENCY }, worker));
    return total - hashed;
  })().finally(() => backfilling.delete(deps.db));
  backfilling.set(deps.db, backfill);
  return backfill;
}

/** The backfill running on each database. */
const backfilling = new WeakMap<object, Promise<number>>();

/** A window of a health list, as `limit`/`offset` page the API's other lists. */
export interface HealthPage {
  limit: number;
  offset: number;
}

export interface DuplicateGroups {
  /** Every group found, and how many of them have conflicting labels. */
  total: number;
  conflicting: number;
  /** The groups of the page asked for. */
  groups: DuplicateGroup[];
}

/**
 * Near-duplicate groups of the data set's photos (within NEAR_DUPLICATE_DISTANCE bits), conflicting ones first, then
 * the largest: the page asked for, with the photo rows of its members only.
 */
export async function duplicateGroups(deps: Pick<HealthDependencies, 'db'>, page: HealthPage): Promise<DuplicateGroups> {
  const ranked = nearDuplicateGroups(await deps.db.images.perceptualHashes(), NEAR_DUPLICATE_DISTANCE)
    .map((members) => {
      const labels = new Set(members.map((member) => member.label).filter((label) => label !== null));
      return { members, conflicting: labels.size > 1 };
    })
    .sort((a, b) => Number(b.conflicting) - Number(a.conflicting) || b.members.length - a.members.length);
  const shown = ranked.slice(page.offset, page.offset + page.limit);
  const rows = new Map((await deps.db.images.getMany(shown.flatMap((group) => group.members.map((member) => member.hash)))).map((row) => [row.hash, row]));
  return {
    total: ranked.length,
    conflicting: ranked.filter((group) => group.conflicting).length,
    groups: shown.map(({ members, conflicting }) => ({
      distance: Math.max(...members.map((member) => hammingDistance(members[0]!.perceptualHash, member.perceptualHash))),
      conflicting,
      members: members.flatMap((member) => rows.get(member.hash) ?? []),
    })),
  };
}

export interface VersionDifference {
  added: { hash: string; label: ImageLabel }[];
  removed: { hash: string; label: ImageLabel }[];
  relabelled: { hash: string; from: ImageLabel; to: ImageLabel }[];
}

/** How many photos each list of a difference holds in all, whatever page of it is shown. */
export type ChangeCounts = Record<keyof VersionDifference, number>;

/** A difference's counts and the page asked for of each of its lists. */
export interface PagedDifference {
  counts: ChangeCounts;
  changes: VersionDifference;
}

function pageOf(changes: VersionDifference, page: HealthPage): PagedDifference {
  const window = <T>(items: T[]) => items.slice(page.offset, page.offset + page.limit);
  return {
    counts: { added: changes.added.length, removed: changes.removed.length, relabelled: changes.relabelled.length },
    changes: { added: window(changes.added), removed: window(changes.removed), relabelled: window(changes.relabelled) },
  };
}

function difference(before: ReadonlyMap<string, ImageLabel>, after: ReadonlyMap<string, ImageLabel>): VersionDifference {
  const result: VersionDifference = { added: [], removed: [], relabelled: [] };
  for (const [hash, label] of after) {
    const previous = before.get(hash);
    if (previous === undefined) result.added.push({ hash, label });
    else if (previous !== label) result.relabelled.push({ hash, from: previous, to: label });
  }
  for (const [hash, label] of before) if (!after.has(hash)) result.removed.push({ hash, label });
  return result;
}

async function versionLabels(deps: Pick<HealthDependencies, 'db'>, id: number): Promise<Map<string, ImageLabel>> {
  if (!(await deps.db.datasets.get(id))) throw new NotFoundError('dataset version', id);
  const { items } = await deps.db.datasets.items(id);
  return new Map(items.map((item) => [item.hash, item.label]));
}

/** What changed from version `from` to version `to`: photos added, removed and relabelled. */
export async function compareVersions(deps: Pick<HealthDependencies, 'db'>, from: number, to: number): Promise<VersionDifference> {
  return difference(await versionLabels(deps, from), await versionLabels(deps, to));
}

/** What the next version would change against the latest one (none when no version is built yet). */
export async function changesSinceLatestVersion(deps: Pick<HealthDependencies, 'db'>): Promise<{ versionId: number; changes: VersionDifference } | undefined> {
  const latest = await deps.db.datasets.latest();
  if (!latest) return undefined;
  const current = new Map((await deps.db.images.listLabelled()).map((row) => [row.hash, row.label]));
  return { versionId: latest.id, changes: difference(await versionLabels(deps, latest.id), current) };
}

export async function classBalance(deps: Pick<HealthDependencies, 'db'>): Promise<{ cat: number; dog: number; unlabelled: number }> {
  return deps.db.images.countByLabel();
}

/** Newest first. */
export async function listVersions(deps: Pick<HealthDependencies, 'db'>) {
  return deps.db.datasets.list();
}

export interface DatasetHealth {
  balance: { cat: number; dog: number; unlabelled: number };
  /** Photos still without a perceptual hash (folder imports, photos stored before they were kept): each look hashes one more batch. */
  notHashed: number;
  nearDuplicates: DuplicateGroups;
  /** Against the latest version; undefined when none is built. */
  sinceLatest: ({ versionId: number } & PagedDifference) | undefined;
  /** Every version's id, newest first. */
  versionIds: number[];
  /** Between the versions asked for, by default the two newest; undefined when fewer than two are built or one asked for is not. */
  comparison: ({ from: number; to: number } & PagedDifference) | undefined;
}

/**
 * Everything the Dataset health view and its API show: class balance, near-duplicate groups (hashing a batch of
 * photos stored before perceptual hashes were kept), what changed since the latest version, and the difference
 * between two versions (none when a version asked for does not exist). Every list (the groups and each list of
 * changes) holds the same `page` of itself, next to its full count.
 */
export async function datasetHealth(deps: HealthDependencies, versions: { from?: number; to?: number }, page: HealthPage): Promise<DatasetHealth> {
  const notHashed = await backfillPerceptualHashes(deps);
  const [balance, nearDuplicates, pending, built] = await Promise.all([classBalance(deps), duplicateGroups(deps, page), changesSinceLatestVersion(deps), listVersions(deps)]);
  const versionIds = built.map((version) => version.id);
  const to = versions.to ?? versionIds[0];
  const from = versions.from ?? versionIds[1];
  const known = (id: number | undefined): id is number => id !== undefined && versionIds.includes(id);
  const comparison = known(from) && known(to) ? { from, to, ...pageOf(await compareVersions(deps, from, to), page) } : undefined;
  const sinceLatest = pending && { versionId: pending.versionId, ...pageOf(pending.changes, page) };
  return { balance, notHashed, nearDuplicates, sinceLatest, versionIds, comparison };
}

/** How many labels changed: what "N new labels since vN" counts. */
export const changedLabelCount = (counts: ChangeCounts): number => counts.added + counts.removed + counts.relabelled;
