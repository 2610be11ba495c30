import type { AppContext } from '../app/context.js';
import { CatdogError, NotFoundError } from '../errors.js';
import type { ModelRow } from '../db/index.js';
import { loadClassifier, zeroShotClassifier, ZERO_SHOT_MODEL_ID, type Classifier } from './classifier.js';

/** `current` (the promoted model), a model id (`mdl_…`), or a version number (`3` or `v3`). */
export async function findModel(app: Pick<AppContext, 'db'>, reference: string): Promise<ModelRow | undefined> {
  if (reference === 'current') return app.db.models.current();
  const version = /^v?(\d+)$/.exec(reference);
  const model = version ? await app.db.models.getByVersion(Number(version[1])) : await app.db.models.get(reference);
  if (!model) throw new NotFoundError('model', reference);
  return model;
}

/** The classifier for a reference; `current` before any promotion is the zero-shot model. */
export async function openClassifier(app: Pick<AppContext, 'db' | 'blobs' | 'backbones' | 'config'>, reference: string): Promise<Classifier> {
  if (reference === ZERO_SHOT_MODEL_ID) return zeroShotClassifier(await app.backbones.get(app.config.training.backbone));
  const model = await findModel(app, reference);
  if (model) return loadClassifier(app, model);
  if (reference !== 'current') throw new CatdogError('model_not_found', `no model ${reference}`, 404);
  return zeroShotClassifier(await app.backbones.get(app.config.training.backbone));
}
