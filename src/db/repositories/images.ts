import type { Kysely, Selectable } from 'kysely';
import { NotFoundError } from '../../errors.js';
import type { ImagesTable, Schema } from '../schema.js';
import { nowIso, toNumber, type Dialect } from '../support.js';
import type { ImageLabel, ImageRow, NewImage, Page } from '../types.js';

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
  };
}

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
      });
      const result = await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('hash').doNothing()))
        .executeTakeFirst();
      const inserted = toNumber(result.numInsertedOrUpdatedRows) > 0;
      const stored = await get(image.hash);
      if (!stored) throw new Error(`image ${image.hash} vanished right after its insert`);
      return { inserted, image: stored };
    },

    /** `source` records who decided the label, e.g. `upload` or `feedback:prd_…`. */
    async setLabel(hash: string, label: ImageLabel | null, source: string): Promise<ImageRow> {
      await db
        .updateTable('images')
        .set({ label, source, updated_at: nowIso() })
        .where('hash', '=', hash)
        .execute();
      const image = await get(hash);
      if (!image) throw new NotFoundError('image', hash);
      return image;
    },

    /** Newest first. */
    async list({ label, limit, offset }: ImageListFilter): Promise<Page<ImageRow>> {
      let query = db.selectFrom('images');
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
        .groupBy('label')
        .execute();
      const counts = { cat: 0, dog: 0, unlabelled: 0 };
      for (const row of rows) {
        if (row.label === 'cat' || row.label === 'dog') counts[row.label] = toNumber(row.count);
        else if (row.label === null) counts.unlabelled = toNumber(row.count);
      }
      return counts;
    },

    /** Every labelled image, ordered by hash so a dataset built from it is reproducible. */
    async listLabelled(): Promise<{ hash: string; label: ImageLabel }[]> {
      const rows = await db
        .selectFrom('images')
        .select(['hash', 'label'])
        .where('label', 'is not', null)
        .orderBy('hash')
        .execute();
      return rows.map((row) => ({ hash: row.hash, label: row.label as ImageLabel }));
    },
  };
}

export type ImagesRepository = ReturnType<typeof imagesRepository>;
