import type { Database, ModelRow, PromotionRow } from '../db/index.js';

/** Every registered model, newest version first, and the promotion history, newest first. */
export async function registryListing(deps: { db: Pick<Database, 'models'> }): Promise<{ models: ModelRow[]; promotions: PromotionRow[] }> {
  const [models, promotions] = await Promise.all([deps.db.models.list(), deps.db.models.promotions()]);
  return { models, promotions };
}
