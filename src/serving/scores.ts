import type { Database } from '../db/index.js';
import type { Classifier } from '../registry/classifier.js';
import { predictStored } from '../registry/evaluate.js';
import type { BlobStore } from '../storage/index.js';

export interface ScoreDependencies {
  db: Pick<Database, 'images' | 'predictions'>;
  blobs: BlobStore;
  models: { classifier(): Promise<Classifier> };
}

/** Photos scored per call: a review page load or one click of the gallery's Score button stays within seconds. */
export const SCORE_BATCH = 256;

async function score(deps: ScoreDependencies, classifier: Classifier, hashes: readonly string[]): Promise<void> {
  if (hashes.length === 0) return;
  const pDog = await predictStored(deps, classifier, hashes);
  await deps.db.images.setScores(
    classifier.modelId,
    hashes.map((hash, i) => ({ hash, pDog: pDog[i]! })),
  );
}

/**
 * Stores the serving model's P(dog) of up to `limit` labelled photos it has not scored yet, so the gallery's
 * disagreement, confidence and suspicious filters are SQL over stored numbers, never a model run per page view.
 * Returns how many were scored and how many remain.
 */
export async function scoreLabelledPhotos(deps: ScoreDependencies, limit = SCORE_BATCH): Promise<{ modelId: string; scored: number; remaining: number }> {
  const classifier = await deps.models.classifier();
  const { hashes, total } = await deps.db.images.unscored(classifier.modelId, limit);
  await score(deps, classifier, hashes);
  return { modelId: classifier.modelId, scored: hashes.length, remaining: total - hashes.length };
}

/** The same for the photos waiting in the review queue, which rank by the serving model's current uncertainty. */
export async function scorePendingReview(deps: ScoreDependencies, limit = SCORE_BATCH): Promise<Classifier> {
  const classifier = await deps.models.classifier();
  await score(deps, classifier, await deps.db.predictions.pendingImageHashes(limit, classifier.modelId));
  return classifier;
}

/** Which model the gallery's model filters speak for, and how many labelled photos it has not scored yet. */
export async function scoringStatus(deps: ScoreDependencies): Promise<{ modelId: string; version: number | null; unscored: number }> {
  const classifier = await deps.models.classifier();
  const { total } = await deps.db.images.unscored(classifier.modelId, 1);
  return { modelId: classifier.modelId, version: classifier.version, unscored: total };
}
