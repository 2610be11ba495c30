import type { AppContext } from '../app/context.js';
import type { ModelRow } from '../db/index.js';
import type { ModelServer } from './model-server.js';

/** Makes `model` the serving one and swaps it in this process at once (other processes follow within seconds). */
export async function promoteAndServe({ app, models }: { app: Pick<AppContext, 'db'>; models: ModelServer }, model: ModelRow, reason: string): Promise<string> {
  await app.db.models.promote(model.id, { reason, actor: 'api' });
  return (await models.refresh()).modelId;
}
