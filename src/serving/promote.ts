import type { Database, ModelRow } from '../db/index.js';
import type { ModelServer } from './model-server.js';

/**
 * A person's promotion (API, web UI): makes `model` the serving one and swaps it in this process at once (other
 * processes follow within seconds). Returns the id now serving.
 */
export async function promoteAndServe(
  deps: { db: Pick<Database, 'models'>; models: Pick<ModelServer, 'refresh'> },
  model: ModelRow,
  { reason, actor }: { reason: string; actor: string },
): Promise<string> {
  await deps.db.models.promote(model.id, { reason, actor });
  return (await deps.models.refresh()).modelId;
}
