import { sql, type Kysely, type Selectable } from 'kysely';
import { NotFoundError } from '../../errors.js';
import type { ImagesTable, Schema } from '../schema.js';
import { nowIso, toNumber, type Dialect } from '../support.js';
import type { GalleryFilter, ImageLabel, ImageRow, NewImage, Page } from '../types.js';

export interface ImageListFilter {
  label?: ImageLabel | 'unlabelled';
  limit: number;
  offset: number;
}

function toImage(row: Selectable<ImagesTable>): ImageRow {
  return {
    hash: row.hash,
    label: row.label as ImageLabel | null,
    source: row.source,
    originalName: row.original_name,
    format: row.format,
    width: row.width,
    height: row.height,
    byteSize: row.byte_size,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
    perceptualHash: row.perceptual_hash,
    pDog: row.p_dog,
    scoreModelId: row.p_dog_model_id,
  };
}

/** Bound parameters per `where hash in (…)`: far below every dialect's limit. */
const HASHES_PER_QUERY = 500;

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

export function imagesRepository(db: Kysely<Schema>, dialect: Dialect) {
  async function get(hash: string): Promise<ImageRow | undefined> {
    const row = await db.selectFrom('images').selectAll().where('hash', '=', hash).executeTakeFirst();
    return row && toImage(row);
  }

  return {
    get,

    /** The same content twice is stored once: the first row, with its label and source, wins. */
    async insertIfAbsent(image: NewImage): Promise<{ inserted: boolean; image: ImageRow }> {
      const now = nowIso();
      const insert = db.insertInto('images').values({
        hash: image.hash,
        label: image.label,
        source: image.source,
        original_name: image.originalName,
        format: image.format,
        width: image.width,
        height: image.height,
        byte_size: image.byteSize,
        created_at: now,
        updated_at: now,
        deleted_at: null,
        perceptual_hash: image.perceptualHash ?? null,
        p_dog: null,
        p_dog_model_id: null,
      });
      const result = await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('hash').doNothing()))
        .executeTakeFirst();
      const inserted = toNumber(result.numInsertedOrUpdatedRows) > 0;
      const stored = await get(image.hash);
      if (!stored) throw new Error(`image ${image.hash} vanished right after its insert`);
      return { inserted, image: stored };
    },

    /**
     * `source` records who decided the label, e.g. `upload` or `feedback:prd_…`. A person labelling a deleted photo
     * (uploading it again, validating a prediction of it) wants it back in the data set.
     */
    async setLabel(hash: string, label: ImageLabel | null, source: string): Promise<ImageRow> {
      await db
        .updateTable('images')
        .set({ label, source, updated_at: nowIso(), ...(label === null ? {} : { deleted_at: null }) })
        .where('hash', '=', hash)
        .execute();
      const image = await get(hash);
      if (!image) throw new NotFoundError('image', hash);
      return image;
    },

    /** Newest first; deleted photos are left out. */
    async list({ label, limit, offset }: ImageListFilter): Promise<Page<ImageRow>> {
      let query = db.selectFrom('images').where('deleted_at', 'is', null);
      if (label === 'unlabelled') query = query.where('label', 'is', null);
      else if (label) query = query.where('label', '=', label);
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('created_at', 'desc').orderBy('hash').limit(limit).offset(offset).execute(),
        query.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toImage), total: toNumber(count.total) };
    },

    async countByLabel(): Promise<{ cat: number; dog: number; unlabelled: number }> {
      const rows = await db
        .selectFrom('images')
        .select((eb) => ['label', eb.fn.countAll().as('count')])
        .where('deleted_at', 'is', null)
        .groupBy('label')
        .execute();
      const counts = { cat: 0, dog: 0, unlabelled: 0 };
      for (const row of rows) {
        if (row.label === 'cat' || row.label === 'dog') counts[row.label] = toNumber(row.count);
        else if (row.label === null) counts.unlabelled = toNumber(row.count);
      }
      return counts;
    },

    /** Every labelled image not deleted, ordered by hash so a dataset built from it is reproducible. */
    async listLabelled(): Promise<{ hash: string; label: ImageLabel }[]> {
      const rows = await db
        .selectFrom('images')
        .select(['hash', 'label'])
        .where('label', 'is not', null)
        .where('deleted_at', 'is', null)
        .orderBy('hash')
        .execute();
      return rows.map((row) => ({ hash: row.hash, label: row.label as ImageLabel }));
    },

    /** The rows of `hashes` that exist, in the order asked. */
    async getMany(hashes: readonly string[]): Promise<ImageRow[]> {
      const byHash = new Map<string, ImageRow>();
      for (const chunk of chunks(hashes, HASHES_PER_QUERY)) {
        for (const row of await db.selectFrom('images').selectAll().where('hash', 'in', chunk).execute()) byHash.set(row.hash, toImage(row));
      }
      return hashes.flatMap((hash) => byHash.get(hash) ?? []);
    },

    /**
     * The hashes of the photos in the data set (not deleted) that pass `filter`, in its order, without paging:
     * the caller pages, after filters that are no column (the split).
     */
    async galleryHashes(filter: Omit<GalleryFilter, 'limit' | 'offset'>): Promise<string[]> {
      let query = db.selectFrom('images').select('hash').where('deleted_at', 'is', null);
      if (filter.label === 'unlabelled') query = query.where('label', 'is', null);
      else if (filter.label) query = query.where('label', '=', filter.label);
      if (filter.sourceKind) query = query.where((eb) => eb.or([eb('source', '=', filter.sourceKind!), eb('source', 'like', `${filter.sourceKind}:%`)]));
      const labelProbability = sql<number>`case when label = 'dog' then p_dog else 1 - p_dog end`;
      const modelFilters = filter.disagreement !== undefined || filter.maxConfidence !== undefined || filter.maxLabelProbability !== undefined;
      if (modelFilters || filter.order === 'suspicious') {
        query = query.where('p_dog_model_id', '=', filter.scoreModelId ?? '').where('p_dog', 'is not', null);
      }
      if (filter.disagreement !== undefined) {
        query = query.where('label', 'is not', null).where(filter.disagreement ? sql<boolean>`${labelProbability} < 0.5` : sql<boolean>`${labelProbability} >= 0.5`);
      }
      if (filter.maxConfidence !== undefined) query = query.where(sql<boolean>`abs(p_dog - 0.5) + 0.5 <= ${filter.maxConfidence}`);
      if (filter.maxLabelProbability !== undefined) {
        query = query.where('label', 'is not', null).where(sql<boolean>`${labelProbability} <= ${filter.maxLabelProbability}`);
      }
      const ordered = filter.order === 'suspicious' ? query.orderBy(labelProbability).orderBy('hash') : query.orderBy('created_at', 'desc').orderBy('hash');
      return (await ordered.execute()).map((row) => row.hash);
    },

    /** Takes photos out of the data set; returns how many were in it. Their blobs and built versions stay. */
    async softDelete(hashes: readonly string[]): Promise<number> {
      const now = nowIso();
      let changed = 0;
      for (const chunk of chunks(hashes, HASHES_PER_QUERY)) {
        const result = await db.updateTable('images').set({ deleted_at: now, updated_at: now }).where('hash', 'in', chunk).where('deleted_at', 'is', null).executeTakeFirst();
        changed += toNumber(result.numUpdatedRows);
      }
      return changed;
    },

    /** Records `modelId`'s P(dog) of each photo, replacing an older model's. */
    async setScores(modelId: string, scores: readonly { hash: string; pDog: number }[]): Promise<void> {
      await db.transaction().execute(async (trx) => {
        for (const { hash, pDog } of scores) {
          await trx.updateTable('images').set({ p_dog: pDog, p_dog_model_id: modelId }).where('hash', '=', hash).execute();
        }
      });
    },

    /** Labelled photos of the data set that `modelId` has not scored yet, oldest first. */
    async unscored(modelId: string, limit: number): Promise<{ hashes: string[]; total: number }> {
      const query = db
        .selectFrom('images')
        .where('deleted_at', 'is', null)
        .where('label', 'is not', null)
        .where((eb) => eb.or([eb('p_dog_model_id', 'is', null), eb('p_dog_model_id', '!=', modelId)]));
      const [rows, count] = await Promise.all([
        query.select('hash').orderBy('created_at').orderBy('hash').limit(limit).execute(),
        query.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { hashes: rows.map((row) => row.hash), total: toNumber(count.total) };
    },

    async setPerceptualHash(hash: string, perceptualHash: string): Promise<void> {
      await db.updateTable('images').set({ perceptual_hash: perceptualHash }).where('hash', '=', hash).execute();
    },

    /** Photos of the data set stored before perceptual hashes were kept (or whose hashing failed). */
    async withoutPerceptualHash(limit: number): Promise<{ hashes: string[]; total: number }> {
      const query = db.selectFrom('images').where('deleted_at', 'is', null).where('perceptual_hash', 'is', null);
      const [rows, count] = await Promise.all([
        query.select('hash').orderBy('hash').limit(limit).execute(),
        query.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { hashes: rows.map((row) => row.hash), total: toNumber(count.total) };
    },

    /** Every photo of the data set with its perceptual hash, for grouping near-duplicates. */
    async perceptualHashes(): Promise<{ hash: string; label: ImageLabel | null; perceptualHash: string }[]> {
      const rows = await db
        .selectFrom('images')
        .select(['hash', 'label', 'perceptual_hash'])
        .where('deleted_at', 'is', null)
        .where('perceptual_hash', 'is not', null)
        .orderBy('hash')
        .execute();
      return rows.map((row) => ({ hash: row.hash, label: row.label as ImageLabel | null, perceptualHash: row.perceptual_hash! }));
    },
  };
}

export type ImagesRepository = ReturnType<typeof imagesRepository>;
