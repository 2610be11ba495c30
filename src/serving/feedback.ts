import type { Database, PredictionRow } from '../db/index.js';
import { NotFoundError } from '../errors.js';

export type FeedbackLabel = 'cat' | 'dog' | 'neither';

export interface FeedbackDependencies {
  db: Pick<Database, 'predictions' | 'images'>;
}

/**
 * A user's verdict on a prediction. The photo takes the user's label (never the model's), so the next dataset
 * version trains on it; "neither" keeps it out of the data set. Changing the verdict later or undoing it keeps
 * the history and moves the image's label with it.
 */
export async function validatePrediction(deps: FeedbackDependencies, predictionId: string, label: FeedbackLabel, actor: string): Promise<PredictionRow> {
  const prediction = await deps.db.predictions.get(predictionId);
  if (!prediction) throw new NotFoundError('prediction', predictionId);
  const updated = await deps.db.predictions.validate(predictionId, { label, actor });
  await deps.db.images.setLabel(prediction.imageHash, label === 'neither' ? null : label, `feedback:${predictionId}`);
  return updated;
}

export async function undoValidation(deps: FeedbackDependencies, predictionId: string): Promise<PredictionRow> {
  const prediction = await deps.db.predictions.get(predictionId);
  if (!prediction) throw new NotFoundError('prediction', predictionId);
  const restored = await deps.db.predictions.undoValidation(predictionId);
  const label = restored.validatedLabel === 'cat' || restored.validatedLabel === 'dog' ? restored.validatedLabel : null;
  await deps.db.images.setLabel(prediction.imageHash, label, `feedback:${predictionId}`);
  return restored;
}
