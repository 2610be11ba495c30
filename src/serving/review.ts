import type { Database, ImageRow, PredictionRow, ReviewStrategy } from '../db/index.js';
import { scorePendingReview, type ScoreDependencies } from './scores.js';

export interface ReviewDependencies extends ScoreDependencies {
  db: Pick<Database, 'images' | 'predictions'>;
}

export interface ReviewItem {
  prediction: PredictionRow;
  image: ImageRow;
  /** What the serving model says of the photo now (its stored score), which may differ from the prediction's model. */
  serving: { modelId: string; version: number | null; pDog: number } | null;
}

/**
 * The next photo for `actor` to label: one item per photo, only photos nobody labelled, without the ones this
 * actor skipped. Photos in the queue are scored by the serving model first, so "uncertain" ranks by what the model
 * serving now thinks, not by the (maybe zero-shot) model that made the prediction.
 */
export async function nextForReview(
  deps: ReviewDependencies,
  { actor, strategy, exclude = [] }: { actor: string; strategy: ReviewStrategy; exclude?: readonly string[] },
): Promise<ReviewItem | undefined> {
  const classifier = await scorePendingReview(deps);
  const [prediction] = await deps.db.predictions.reviewQueue({ actor, servingModelId: classifier.modelId, strategy, exclude, limit: 1 });
  if (!prediction) return undefined;
  const image = await deps.db.images.get(prediction.imageHash);
  if (!image) throw new Error(`image ${prediction.imageHash} of prediction ${prediction.id} vanished from the queue`);
  const serving = image.scoreModelId === classifier.modelId && image.pDog !== null ? { modelId: classifier.modelId, version: classifier.version, pDog: image.pDog } : null;
  return { prediction, image, serving };
}

/** Remembers that `actor` skipped the photo of this prediction: it leaves their queue until they bring skips back. */
export async function skipForReview(deps: Pick<ReviewDependencies, 'db'>, actor: string, prediction: PredictionRow): Promise<void> {
  await deps.db.predictions.skipForReview(actor, prediction.imageHash);
}

export async function restoreSkipped(deps: Pick<ReviewDependencies, 'db'>, actor: string): Promise<number> {
  return deps.db.predictions.clearReviewSkips(actor);
}

export async function reviewProgress(deps: Pick<ReviewDependencies, 'db'>, actor: string): Promise<{ validated: number; pending: number; skipped: number }> {
  const [validated, counts] = await Promise.all([
    deps.db.predictions.list({ validated: true, limit: 1, offset: 0 }),
    deps.db.predictions.reviewCounts(actor),
  ]);
  return { validated: validated.total, ...counts };
}
