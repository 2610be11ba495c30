import type { z } from '@hono/zod-openapi';
import type { Database, DatasetVersionRow, ImageRow, ModelRow, PredictionRow, RunRow } from '../db/index.js';
import type { ModelCard } from '../registry/artifacts.js';
import { storedNeitherReason } from '../serving/neither.js';
import type { PredictionResult } from '../serving/predict.js';
import type { SuspiciousImage } from '../training/suspicious.js';
import { runWarnings } from '../training/warnings.js';
import type { DatasetSchema, ImageSchema, ModelSchema, PredictionSchema, RunSchema, SuspiciousImageSchema } from './schemas.js';

/** The JSON shapes of the API, built in one place so every route answers the same way. */

export const imageUrl = (hash: string): string => `/api/v1/images/${hash}`;
export const thumbnailUrl = (hash: string): string => `${imageUrl(hash)}?size=thumb`;

export function presentPredictionResult(result: PredictionResult): z.infer<typeof PredictionSchema> {
  return { ...result, imageUrl: imageUrl(result.imageHash) };
}

export function presentPrediction(row: PredictionRow, modelVersion: number | null): z.infer<typeof PredictionSchema> {
  const { dog } = row.probabilities;
  return {
    id: row.id,
    label: row.label,
    reason: storedNeitherReason(row),
    confidence: row.confidence,
    probabilities: { cat: 1 - dog, dog },
    modelId: row.modelId,
    modelVersion,
    imageHash: row.imageHash,
    imageUrl: imageUrl(row.imageHash),
    latencyMs: row.latencyMs,
    createdAt: row.createdAt,
    validatedLabel: row.validatedLabel,
    validatedAt: row.validatedAt,
  };
}

/** Model id → version, for listing predictions without one query per row. */
export async function modelVersions(db: Pick<Database, 'models'>): Promise<(modelId: string) => number | null> {
  const versions = new Map((await db.models.list()).map((model) => [model.id, model.version]));
  return (modelId) => versions.get(modelId) ?? null;
}

export function presentImage(row: ImageRow): z.infer<typeof ImageSchema> {
  const { updatedAt: _updatedAt, ...fields } = row;
  return { ...fields, url: imageUrl(row.hash), thumbnailUrl: thumbnailUrl(row.hash) };
}

export function presentDataset(row: DatasetVersionRow): z.infer<typeof DatasetSchema> {
  return {
    id: row.id,
    createdAt: row.createdAt,
    imageCount: row.imageCount,
    params: row.params,
    counts: row.counts as z.infer<typeof DatasetSchema>['counts'],
  };
}

export function presentSuspiciousImage(image: SuspiciousImage): z.infer<typeof SuspiciousImageSchema> {
  return { ...image, pLabel: image.label === 'dog' ? image.pDog : 1 - image.pDog, imageUrl: imageUrl(image.hash), thumbnailUrl: thumbnailUrl(image.hash) };
}

/** `card` is the model's `catdog.json`, undefined when its files are gone. */
export function presentModel(row: ModelRow, servingModelId: string | undefined, card: ModelCard | undefined): z.infer<typeof ModelSchema> {
  const { artifactPrefix: _artifactPrefix, ...fields } = row;
  return {
    ...fields,
    serving: row.id === servingModelId,
    decodeId: card?.decodeId ?? null,
  };
}

export function presentRun(run: RunRow): z.infer<typeof RunSchema> {
  return { ...run, warnings: runWarnings(run) };
}
