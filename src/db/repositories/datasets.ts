import type { Kysely, Selectable } from 'kysely';
import { datasetParamsDocument, splitCountsDocument } from '../documents/dataset-version.js';
import type { DocumentLocation } from '../documents/index.js';
import type { DatasetVersionsTable, Schema } from '../schema.js';
import { nextNumber, nowIso, toNumber, withConflictRetry } from '../support.js';
import type { DatasetItemRow, DatasetVersionRow, ImageLabel, NewDatasetVersion, Page, Split } from '../types.js';

export interface DatasetItemFilter {
  split?: Split;
  label?: ImageLabel;
  /** All matching items when absent. */
  limit?: number;
  offset?: number;
}

/** 4 values a row: far below the bound-parameter limits of MySQL (65,535) and SQLite (32,766). */
const itemsPerInsert = 1000;

const column = (name: 'params' | 'counts', rowId: number): DocumentLocation => ({ table: 'dataset_versions', column: name, rowId });

function toDatasetVersion(row: Selectable<DatasetVersionsTable>): DatasetVersionRow {
  return {
    id: row.id,
    createdAt: row.created_at,
    params: datasetParamsDocument.read(row.params, column('params', row.id)),
    manifestKey: row.manifest_key,
    imageCount: row.image_count,
    counts: splitCountsDocument.read(row.counts, column('counts', row.id)),
  };
}

export function datasetsRepository(db: Kysely<Schema>) {
  return {
    /** Numbers versions 1, 2, 3… and stores the version with all its items, or nothing. */
    async create(version: NewDatasetVersion): Promise<DatasetVersionRow> {
      return withConflictRetry(db, async (trx) => {
        const id = await nextNumber(trx, ['dataset_versions', 'id']);
        const row = {
          id,
          created_at: nowIso(),
          params: datasetParamsDocument.write(version.params, column('params', id)),
          manifest_key: typeof version.manifestKey === 'function' ? version.manifestKey(id) : version.manifestKey,
          image_count: version.items.length,
          counts: splitCountsDocument.write(version.counts, column('counts', id)),
        };
        await trx.insertInto('dataset_versions').values(row).execute();
        for (let start = 0; start < version.items.length; start += itemsPerInsert) {
          const chunk = version.items.slice(start, start + itemsPerInsert);
          await trx
            .insertInto('dataset_items')
            .values(chunk.map((item) => ({ dataset_id: id, image_hash: item.hash, label: item.label, split: item.split })))
            .execute();
        }
        return toDatasetVersion(row);
      });
    },

    async get(id: number): Promise<DatasetVersionRow | undefined> {
      const row = await db.selectFrom('dataset_versions').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toDatasetVersion(row);
    },

    async latest(): Promise<DatasetVersionRow | undefined> {
      const row = await db.selectFrom('dataset_versions').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
      return row && toDatasetVersion(row);
    },

    /** Newest first. */
    async list(): Promise<DatasetVersionRow[]> {
      const rows = await db.selectFrom('dataset_versions').selectAll().orderBy('id', 'desc').execute();
      return rows.map(toDatasetVersion);
    },

    /** Ordered by image hash. */
    async items(id: number, { split, label, limit, offset = 0 }: DatasetItemFilter = {}): Promise<Page<DatasetItemRow>> {
      let query = db.selectFrom('dataset_items').where('dataset_id', '=', id);
      if (split) query = query.where('split', '=', split);
      if (label) query = query.where('label', '=', label);
      let page = query.select(['image_hash', 'label', 'split']).orderBy('image_hash');
      // MySQL accepts OFFSET only after a LIMIT.
      if (limit !== undefined || offset > 0) page = page.limit(limit ?? Number.MAX_SAFE_INTEGER).offset(offset);
      const [rows, count] = await Promise.all([
        page.execute(),
        query.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return {
        items: rows.map((row) => ({ hash: row.image_hash, label: row.label as ImageLabel, split: row.split as Split })),
        total: toNumber(count.total),
      };
    },
  };
}

export type DatasetsRepository = ReturnType<typeof datasetsRepository>;
