import { imageBlobKey } from '../storage/index.js';
import type { Database, PredictionRow } from '../db/index.js';
import { NotFoundError } from '../errors.js';
import { ImageError, inspectImage, type ImageLimits } from '../images/index.js';
import type { BlobStore } from '../storage/index.js';

export type FeedbackLabel = 'cat' | 'dog' | 'neither';

export interface FeedbackDependencies {
  db: Pick<Database, 'predictions' | 'images'>;
  /** Where the photo is read back from to check it can become labelled data. */
  blobs: BlobStore;
  config: { images: ImageLimits };
}

/**
 * A prediction took its photo leniently; a cat or dog verdict makes it labelled training data, which must decode
 * without a single warning, as a labelled upload must.
 */
async function assertLabellable(deps: FeedbackDependencies, imageHash: string): Promise<void> {
  try {
    await inspectImage(await deps.blobs.get(imageBlobKey(imageHash)), deps.config.images, { strict: true });
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    throw new ImageError(
      error.code,
      `${error.message} Validate this prediction as "neither" to take it out of the review queue.`,
      error.details,
    );
  }
}

/**
 * A user's verdict on a prediction. The photo takes the user's label (never the model's), so the next dataset
 * version trains on it; "neither" keeps it out of the data set. Changing the verdict later or undoing it keeps
 * the history and moves the image's label with it.
 */
export async function validatePrediction(deps: FeedbackDependencies, predictionId: string, label: FeedbackLabel, actor: string): Promise<PredictionRow> {
  const prediction = await deps.db.predictions.get(predictionId);
  if (!prediction) throw new NotFoundError('prediction', predictionId);
  if (label !== 'neither') await assertLabellable(deps, prediction.imageHash);
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
