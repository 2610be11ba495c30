import { z } from 'zod';
import type { AppContext } from '../app/context.js';
import type { ModelRow } from '../db/index.js';
import { loadManifest } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import { binaryMetrics, type BinaryMetrics } from '../ml/index.js';
import { degenerateReason } from './degenerate.js';
import { predictStoredWith } from './evaluate.js';
import { findModel } from './resolve.js';

/** The most models one comparison shows side by side: beyond that the page and the disagreement list stop being readable. */
export const MAX_COMPARED_MODELS = 6;

/** One model's P(dog) for each test photo of one dataset version: what every comparison is computed from. */
const StoredEvaluationSchema = z.object({
  format: z.literal('catdog-evaluation/1'),
  modelId: z.string(),
  datasetId: z.number().int(),
  hashes: z.array(z.string()),
  labels: z.array(z.union([z.literal(0), z.literal(1)])),
  pDog: z.array(z.number()),
  evaluatedAt: z.string(),
});
type StoredEvaluation = z.infer<typeof StoredEvaluationSchema>;

type ComparisonDependencies = Pick<AppContext, 'db' | 'blobs' | 'backbones'>;

/** Models and dataset versions are immutable, so one model's scores on one version never change once stored. */
const evaluationKey = (modelId: string, datasetId: number): string => `evaluations/${modelId}/dataset-${datasetId}.json`;

async function readEvaluation(deps: Pick<AppContext, 'blobs'>, modelId: string, datasetId: number): Promise<StoredEvaluation | undefined> {
  const bytes = await deps.blobs.getOrUndefined(evaluationKey(modelId, datasetId));
  if (bytes === undefined) return undefined;
  const parsed = StoredEvaluationSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
  // An unreadable record (written by another catdog version) is scored again rather than trusted.
  return parsed.success ? parsed.data : undefined;
}

export interface ModelEvaluation {
  modelId: string;
  datasetId: number;
  metrics: BinaryMetrics;
  /** Set when the model answers one class for every photo of the split. */
  degenerate: string | null;
  evaluatedAt: string;
}

const summarize = (stored: StoredEvaluation): ModelEvaluation => {
  const metrics = binaryMetrics(stored.labels, stored.pDog);
  return { modelId: stored.modelId, datasetId: stored.datasetId, metrics, degenerate: degenerateReason(metrics) ?? null, evaluatedAt: stored.evaluatedAt };
};

async function scoreAndStore(deps: ComparisonDependencies, model: ModelRow, datasetId: number): Promise<StoredEvaluation> {
  const { manifest } = await loadManifest(deps, datasetId);
  const test = manifest.items.filter((item) => item.split === 'test');
  if (test.length === 0) throw new CatdogError('empty_test_split', `dataset v${datasetId} has no test photos: build a version with a test share above 0`, 409);
  const pDog = await predictStoredWith(deps, model, test.map((item) => item.hash));
  const stored: StoredEvaluation = {
    format: 'catdog-evaluation/1',
    modelId: model.id,
    datasetId,
    hashes: test.map((item) => item.hash),
    labels: test.map((item) => (item.label === 'dog' ? 1 : 0)),
    pDog,
    evaluatedAt: new Date().toISOString(),
  };
  await deps.blobs.put(evaluationKey(model.id, datasetId), new TextEncoder().encode(JSON.stringify(stored)));
  return stored;
}

async function requireModel(deps: Pick<AppContext, 'db'>, reference: string): Promise<ModelRow> {
  const model = await findModel(deps, reference);
  if (!model) throw new CatdogError('not_found', 'no model is promoted yet: name a model by id or version', 404);
  return model;
}

/**
 * Scores a model on a dataset version's test split (any version, not only the one it was trained on) and keeps
 * the per-photo scores, so later comparisons on that split cost nothing. Already scored: the stored result.
 */
export async function evaluateModelOn(deps: ComparisonDependencies, reference: string, datasetId: number): Promise<ModelEvaluation> {
  const model = await requireModel(deps, reference);
  return summarize((await readEvaluation(deps, model.id, datasetId)) ?? (await scoreAndStore(deps, model, datasetId)));
}

export interface DisagreedPhoto {
  hash: string;
  label: 'cat' | 'dog';
  /** P(dog) per compared model, in the comparison's model order. */
  pDog: number[];
}

export interface ModelComparison {
  datasetId: number;
  testCount: number;
  models: { model: ModelRow; evaluation: ModelEvaluation | null }[];
  /** Test photos that the evaluated models do not all label the same way, most contested first. */
  disagreements: DisagreedPhoto[];
}

/**
 * Two or more models on one dataset version's test split. Only stored evaluations are read: a model not yet
 * scored on that split has `evaluation: null` (scoring it is `evaluateModelOn`, a heavier and rarer act).
 */
export async function compareModels(deps: ComparisonDependencies, references: readonly string[], datasetId: number): Promise<ModelComparison> {
  const unique = [...new Set(references)];
  if (unique.length < 2 || unique.length > MAX_COMPARED_MODELS) {
    throw new CatdogError('invalid_comparison', `compare 2 to ${MAX_COMPARED_MODELS} different models (got ${unique.length})`, 400);
  }
  const [{ manifest }, models] = await Promise.all([loadManifest(deps, datasetId), Promise.all(unique.map((reference) => requireModel(deps, reference)))]);
  const stored = await Promise.all(models.map((model) => readEvaluation(deps, model.id, datasetId)));
  const scored = stored.filter((evaluation): evaluation is StoredEvaluation => evaluation !== undefined);
  return {
    datasetId,
    testCount: manifest.items.filter((item) => item.split === 'test').length,
    models: models.map((model, i) => ({ model, evaluation: stored[i] ? summarize(stored[i]) : null })),
    disagreements: scored.length < 2 ? [] : disagreements(scored),
  };
}

function disagreements(evaluations: StoredEvaluation[]): DisagreedPhoto[] {
  const [first] = evaluations;
  const photos: (DisagreedPhoto & { spread: number })[] = [];
  first!.hashes.forEach((hash, i) => {
    const pDog = evaluations.map((evaluation) => evaluation.pDog[i]!);
    const saysDog = pDog.map((p) => p >= 0.5);
    if (saysDog.every((answer) => answer === saysDog[0])) return;
    photos.push({ hash, label: first!.labels[i] === 1 ? 'dog' : 'cat', pDog, spread: Math.max(...pDog) - Math.min(...pDog) });
  });
  return photos.sort((a, b) => b.spread - a.spread).map(({ spread: _spread, ...photo }) => photo);
}
