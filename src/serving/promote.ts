import type { AppContext } from '../app/context.js';
import type { ModelRow } from '../db/index.js';
import type { ModelServer } from './model-server.js';

/**
 * A person's promotion (API, web UI): makes `model` the serving one and swaps it in this process at once (other
 * processes follow within seconds). `actor` is who asked, kept in the promotion history. Returns the id now serving.
 */
export async function promoteAndServe(
  { app, models }: { app: Pick<AppContext, 'db'>; models: Pick<ModelServer, 'refresh'> },
  model: ModelRow,
  { reason, actor }: { reason: string; actor: string },
): Promise<string> {
  await app.db.models.promote(model.id, { reason, actor });
  return (await models.refresh()).modelId;
}
