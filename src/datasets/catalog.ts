import type { Database, DatasetVersionRow } from '../db/index.js';

/** Every dataset version, newest first. */
export const listDatasetVersions = (deps: { db: Pick<Database, 'datasets'> }): Promise<DatasetVersionRow[]> => deps.db.datasets.list();
