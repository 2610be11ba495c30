import type { ServerDeps } from '../../server/context.js';

/** "mdl_… (v3)", or what serves before any promotion. */
export async function servingLabel({ models }: Pick<ServerDeps, 'models'>): Promise<string> {
  try {
    const classifier = await models.classifier();
    return classifier.version === null ? `${classifier.modelId} (no trained model promoted yet)` : `${classifier.modelId} (v${classifier.version})`;
  } catch {
    return 'no model can be loaded (see the server log)';
  }
}
