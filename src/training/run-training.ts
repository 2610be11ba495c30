import { createHash } from 'node:crypto';
import { newId, type Database, type ModelRow } from '../db/index.js';
import { imageBlobKey } from '../datasets/ingest.js';
import { loadManifest, type DatasetManifest, type ManifestEntry } from '../datasets/versions.js';
import { augment, decodeToRgb, seededRandom, type AugmentationConfig } from '../images/index.js';
import {
  buildCnn,
  buildHead,
  initTensorflow,
  serializeModel,
  trainBinaryClassifier,
  binaryMetrics,
  type Backbone,
  type BinaryMetrics,
  type EpochStats,
} from '../ml/index.js';
import { classCentroids, nearestCentroidDistance, quantile } from '../ml/centroids.js';
import { readModelFiles, writeModelCard, writeModelFiles, type Architecture, type ModelCard, type NeitherReference } from '../registry/artifacts.js';
import { fitCalibration, withTestReliability, writeReliabilityPng } from '../registry/calibration.js';
import { classifierFor, loadClassifier, type BackboneProvider } from '../registry/classifier.js';
import { scoreSplit } from '../registry/evaluate.js';
import { promoteIfBetter, type PromotionDecision, type PromotionMetric } from '../registry/promotion.js';
import type { BlobStore } from '../storage/index.js';
import { featureBatches, pixelBatches } from './batches.js';
import { thisProcessOwner } from './run-owner.js';
import { featuresFor, type FeatureVariant } from './features.js';

// A type alias, not an interface: it is stored as a JSON object column.
export type TrainingParams = {
  architecture: Architecture;
  imageSize: number;
  batchSize: number;
  epochs: number;
  learningRate: number;
  earlyStoppingPatience: number;
  head: 'logistic' | 'mlp';
  /** Average P(dog) over each photo and its mirror image (absent in runs recorded before it existed). */
  tta?: boolean;
  backbone: string;
  seed: number;
  augmentation: AugmentationConfig;
  promotion: { metric: PromotionMetric; minImprovement: number };
};

export type TrainingStage = 'features' | 'decoding' | 'training' | 'calibrating' | 'evaluating' | 'saving' | 'promoting';

export type TrainingEvent =
  | { type: 'started'; runId: string; datasetId: number; params: TrainingParams }
  | { type: 'stage'; runId: string; stage: TrainingStage; done?: number; total?: number }
  | { type: 'epoch'; runId: string; stats: EpochStats; totalEpochs: number; etaMs: number }
  | { type: 'finished'; runId: string; modelId: string; metrics: BinaryMetrics; promotion: PromotionDecision }
  | { type: 'failed'; runId: string; error: string };

export interface TrainingOutcome {
  runId: string;
  model: ModelRow;
  metrics: BinaryMetrics;
  promotion: PromotionDecision;
  epochs: EpochStats[];
  bestEpoch: number;
  durationMs: number;
}

export interface TrainingDependencies {
  db: Pick<Database, 'runs' | 'models' | 'datasets'>;
  blobs: BlobStore;
  backbones: BackboneProvider;
  codeVersion: string;
}

const labelValue = (item: ManifestEntry): number => (item.label === 'dog' ? 1 : 0);

const anyAugmentation = (config: AugmentationConfig): boolean => Object.values(config).some((setting) => setting.enabled);

/** Per-image seed, so an image's augmented variant is the same whichever batch or run computes it. */
const imageSeed = (hash: string, seed: number): number => (Number.parseInt(hash.slice(0, 8), 16) ^ seed) >>> 0;

function augmentationVariant(config: AugmentationConfig, imageSize: number, seed: number): FeatureVariant {
  const key = `aug-${createHash('sha256').update(JSON.stringify({ config, seed })).digest('hex').slice(0, 12)}`;
  return { key, transform: (pixels, hash) => augment(pixels, imageSize, config, seededRandom(imageSeed(hash, seed))) };
}

interface Trainable {
  network: import('../ml/index.js').LayersModel;
  backbone: Backbone | null;
  train: import('../ml/index.js').Batches;
  validation: import('../ml/index.js').Batches;
  card: Pick<ModelCard, 'imageSize' | 'backbone' | 'head' | 'neither'>;
}

/**
 * Real cats and dogs of the validation split lie at most this far from a class centroid in all but 0.1% of
 * cases; the margin leaves room for photos from other sources, so only clearly foreign features count.
 */
const FAR_DISTANCE_QUANTILE = 0.999;
const FAR_DISTANCE_MARGIN = 1.5;

function neitherReference(trainFeatures: Float32Array[], trainLabels: number[], heldOutFeatures: Float32Array[]): NeitherReference {
  const centroids = classCentroids(trainFeatures, trainLabels);
  const distances = heldOutFeatures.map((vector) => nearestCentroidDistance(vector, centroids));
  return { centroids, farDistance: quantile(distances, FAR_DISTANCE_QUANTILE) * FAR_DISTANCE_MARGIN };
}

async function prepareTransfer(deps: TrainingDependencies, manifest: DatasetManifest, params: TrainingParams, emit: (event: TrainingEvent) => void, runId: string): Promise<Trainable> {
  const { tf } = await initTensorflow();
  const backbone = await deps.backbones.get(params.backbone);
  const trainItems = manifest.items.filter((item) => item.split === 'train');
  const validationItems = manifest.items.filter((item) => item.split === 'validation');
  const variant = anyAugmentation(params.augmentation) ? augmentationVariant(params.augmentation, backbone.inputSize, params.seed) : undefined;
  const total = trainItems.length * (variant ? 2 : 1) + validationItems.length;
  let offset = 0;
  const progress = ({ done }: { done: number }) => emit({ type: 'stage', runId, stage: 'features', done: offset + done, total });
  const collect = async (items: ManifestEntry[], featureVariant?: FeatureVariant) => {
    const features = await featuresFor(deps, backbone, items.map((item) => item.hash), { variant: featureVariant, onProgress: progress });
    offset += items.length;
    return features;
  };
  const trainFeatures = await collect(trainItems);
  const trainLabels = trainItems.map(labelValue);
  const validationFeatures = await collect(validationItems);
  const neither = neitherReference(trainFeatures, trainLabels, validationFeatures.length > 0 ? validationFeatures : trainFeatures);
  if (variant) {
    trainFeatures.push(...(await collect(trainItems, variant)));
    trainLabels.push(...trainItems.map(labelValue));
  }

  const network = buildHead(params.head, backbone.featureSize, params.seed);
  const validation = validationItems.length > 0
    ? featureBatches(tf, validationFeatures, validationItems.map(labelValue), 256, params.seed, false)
    : featureBatches(tf, trainFeatures, trainLabels, 256, params.seed, false);
  return {
    network,
    train: featureBatches(tf, trainFeatures, trainLabels, params.batchSize, params.seed),
    validation,
    backbone,
    card: { imageSize: backbone.inputSize, backbone: { id: backbone.id, source: params.backbone }, head: params.head, neither },
  };
}

async function decodeAll(deps: TrainingDependencies, items: ManifestEntry[], size: number, onDone: (done: number) => void): Promise<Uint8Array[]> {
  const pixels: Uint8Array[] = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      pixels[index] = (await decodeToRgb(await deps.blobs.get(imageBlobKey(items[index]!.hash)), size)).data;
      done += 1;
      if (done % 50 === 0 || done === items.length) onDone(done);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return pixels;
}

async function prepareCnn(deps: TrainingDependencies, manifest: DatasetManifest, params: TrainingParams, emit: (event: TrainingEvent) => void, runId: string): Promise<Trainable> {
  const { tf } = await initTensorflow();
  const size = params.imageSize;
  const trainItems = manifest.items.filter((item) => item.split === 'train');
  const validationItems = manifest.items.filter((item) => item.split === 'validation');
  const total = trainItems.length + validationItems.length;
  const trainPixels = await decodeAll(deps, trainItems, size, (done) => emit({ type: 'stage', runId, stage: 'decoding', done, total }));
  const validationPixels = await decodeAll(deps, validationItems, size, (done) => emit({ type: 'stage', runId, stage: 'decoding', done: trainItems.length + done, total }));
  const augmentation = anyAugmentation(params.augmentation)
    ? (pixels: Uint8Array, random: () => number) => augment(pixels, size, params.augmentation, random)
    : undefined;
  const network = buildCnn(size, params.seed);
  const trainLabels = trainItems.map(labelValue);
  return {
    network,
    train: pixelBatches(tf, trainPixels, trainLabels, size, params.batchSize, params.seed, augmentation),
    validation: validationItems.length > 0
      ? pixelBatches(tf, validationPixels, validationItems.map(labelValue), size, params.batchSize, params.seed)
      : pixelBatches(tf, trainPixels, trainLabels, size, params.batchSize, params.seed),
    backbone: null,
    card: { imageSize: size },
  };
}

export interface CandidateOutcome {
  runId: string;
  datasetId: number;
  modelId: string;
  artifactPrefix: string;
  params: TrainingParams;
  /** Validation-split figures of the best epoch: what a sweep compares candidates on. */
  validation: { accuracy: number; loss: number; bestEpoch: number };
  epochs: EpochStats[];
  durationMs: number;
}

export interface TrainingRequest {
  datasetId: number;
  params: TrainingParams;
  /** A run recorded as queued earlier (the API answers with its id before training starts). */
  runId?: string;
  /** The id the model gets; a queue job fixes it so that a retried attempt replaces its files instead of adding a model. */
  modelId?: string;
  onEvent?: (event: TrainingEvent) => void;
  signal?: AbortSignal;
  actor?: string;
}

const modelCard = (candidate: Omit<CandidateOutcome, 'epochs' | 'durationMs'>, trainable: Trainable, codeVersion: string, metrics: Record<string, unknown>): ModelCard => ({
  format: 'catdog-model/1',
  modelId: candidate.modelId,
  architecture: candidate.params.architecture,
  labels: ['cat', 'dog'],
  output: 'sigmoid-p-dog',
  ...trainable.card,
  tta: candidate.params.tta ?? false,
  datasetId: candidate.datasetId,
  runId: candidate.runId,
  params: { ...candidate.params },
  metrics,
  codeVersion,
  createdAt: new Date().toISOString(),
});

/**
 * Trains one model on a dataset version and records the run. With `finalize`, the model is then evaluated on
 * the version's test split, registered (row last) and promoted if it beats the serving model on that same split;
 * without it (a sweep candidate) its files are stored and only validation figures are reported, so the test split
 * is looked at once, for the winner only.
 */
async function trainRun(deps: TrainingDependencies, request: TrainingRequest, finalize: boolean): Promise<{ candidate: CandidateOutcome; final?: Omit<TrainingOutcome, 'epochs' | 'bestEpoch' | 'durationMs' | 'runId'> }> {
  const started = Date.now();
  const { manifest } = await loadManifest({ db: deps.db as Pick<Database, 'datasets' | 'images'>, blobs: deps.blobs }, request.datasetId);
  const { params } = request;
  const run = request.runId ? { id: request.runId } : await deps.db.runs.create({ datasetId: request.datasetId, params, codeVersion: deps.codeVersion, owner: thisProcessOwner() });
  const emit = (event: TrainingEvent) => request.onEvent?.(event);
  await deps.db.runs.markRunning(run.id, thisProcessOwner());
  emit({ type: 'started', runId: run.id, datasetId: request.datasetId, params });

  let trainable: Trainable | undefined;
  try {
    trainable = params.architecture === 'mobilenet'
      ? await prepareTransfer(deps, manifest, params, emit, run.id)
      : await prepareCnn(deps, manifest, params, emit, run.id);

    emit({ type: 'stage', runId: run.id, stage: 'training' });
    const trainingStarted = Date.now();
    const history = await trainBinaryClassifier({
      model: trainable.network,
      train: trainable.train,
      validation: trainable.validation,
      epochs: params.epochs,
      learningRate: params.learningRate,
      earlyStoppingPatience: params.earlyStoppingPatience,
      signal: request.signal,
      onEpoch: async (stats) => {
        await deps.db.runs.addEpoch(run.id, stats);
        // stats.epoch is 1-based.
        const averageMs = (Date.now() - trainingStarted) / stats.epoch;
        emit({ type: 'epoch', runId: run.id, stats, totalEpochs: params.epochs, etaMs: averageMs * (params.epochs - stats.epoch) });
      },
    });
    const best = history.epochs.find((stats) => stats.epoch === history.bestEpoch) ?? history.epochs[history.epochs.length - 1]!;
    const candidate: Omit<CandidateOutcome, 'epochs' | 'durationMs'> = {
      runId: run.id,
      datasetId: request.datasetId,
      modelId: request.modelId ?? newId('mdl'),
      artifactPrefix: '',
      params,
      validation: { accuracy: best.valAccuracy, loss: best.valLoss, bestEpoch: history.bestEpoch },
    };

    // The card without metrics is all scoring needs; temperature first (validation split), then the test split.
    const card = modelCard(candidate, trainable, deps.codeVersion, {});
    const scoring = () => classifierFor({ modelId: candidate.modelId, version: null, card, backbone: trainable!.backbone, network: trainable!.network });
    emit({ type: 'stage', runId: run.id, stage: 'calibrating' });
    card.calibration = fitCalibration(await scoreSplit(deps, scoring(), manifest, manifest.items.some((item) => item.split === 'validation') ? 'validation' : 'train'));

    let metrics: BinaryMetrics | undefined;
    if (finalize) {
      emit({ type: 'stage', runId: run.id, stage: 'evaluating' });
      const test = await scoreSplit(deps, scoring(), manifest, 'test');
      metrics = binaryMetrics(test.labels, test.pDog);
      card.calibration = withTestReliability(card.calibration, test);
    }

    emit({ type: 'stage', runId: run.id, stage: 'saving' });
    card.metrics = metrics ? { ...metrics } : { validation: candidate.validation };
    candidate.artifactPrefix = await writeModelFiles(deps.blobs, { ...(await serializeModel(trainable.network)), card });
    await writeReliabilityPng(deps.blobs, candidate.artifactPrefix, card.calibration);
    const outcome = { ...candidate, epochs: history.epochs, durationMs: Date.now() - started };
    if (!metrics) {
      await deps.db.runs.finish(run.id, { status: 'succeeded', metrics: { validation: candidate.validation, candidate: { modelId: candidate.modelId, artifactPrefix: candidate.artifactPrefix } } });
      return { candidate: outcome };
    }

    const model = await deps.db.models.create({
      id: candidate.modelId,
      name: `${params.architecture} on dataset v${request.datasetId}`,
      architecture: params.architecture,
      datasetId: request.datasetId,
      runId: run.id,
      params: { ...params },
      metrics: { ...metrics },
      artifactPrefix: candidate.artifactPrefix,
    });
    emit({ type: 'stage', runId: run.id, stage: 'promoting' });
    const promotion = await promoteIfBetter(deps, model, metrics, manifest, params.promotion, request.actor);
    await deps.db.runs.finish(run.id, { status: 'succeeded', metrics: { ...metrics, bestEpoch: history.bestEpoch, promoted: promotion.promoted }, modelId: model.id });
    emit({ type: 'finished', runId: run.id, modelId: model.id, metrics, promotion });
    return { candidate: outcome, final: { model, metrics, promotion } };
  } catch (error) {
    const message = (error as Error).message;
    const status = request.signal?.aborted ? 'cancelled' : 'failed';
    await deps.db.runs.finish(run.id, { status, error: message });
    emit({ type: 'failed', runId: run.id, error: message });
    throw error;
  } finally {
    trainable?.network.dispose();
  }
}

/** Train, evaluate on the test split, register, promote if better: what `catdog train` and the API run. */
export async function trainOnDataset(deps: TrainingDependencies, request: TrainingRequest): Promise<TrainingOutcome> {
  const { candidate, final } = await trainRun(deps, request, true);
  return { runId: candidate.runId, ...final!, epochs: candidate.epochs, bestEpoch: candidate.validation.bestEpoch, durationMs: candidate.durationMs };
}

/** Train and store a sweep candidate, without touching the test split or the registry. */
export async function trainCandidate(deps: TrainingDependencies, request: TrainingRequest): Promise<CandidateOutcome> {
  return (await trainRun(deps, request, false)).candidate;
}

/**
 * The sweep's winner: evaluated on the test split (the first time any candidate sees it), registered, and
 * promoted if it beats the serving model on that split.
 */
export async function finalizeCandidate(deps: TrainingDependencies, candidate: Pick<CandidateOutcome, 'runId' | 'datasetId' | 'modelId' | 'artifactPrefix' | 'params'>, actor = 'sweep'): Promise<{ model: ModelRow; metrics: BinaryMetrics; promotion: PromotionDecision }> {
  const { manifest } = await loadManifest({ db: deps.db as Pick<Database, 'datasets' | 'images'>, blobs: deps.blobs }, candidate.datasetId);
  const classifier = await loadClassifier(deps, { id: candidate.modelId, version: null, artifactPrefix: candidate.artifactPrefix });
  let metrics: BinaryMetrics;
  try {
    const test = await scoreSplit(deps, classifier, manifest, 'test');
    metrics = binaryMetrics(test.labels, test.pDog);
    const { card } = await readModelFiles(deps.blobs, candidate.artifactPrefix);
    if (card.calibration) {
      card.calibration = withTestReliability(card.calibration, test);
      await writeModelCard(deps.blobs, candidate.artifactPrefix, { ...card, metrics: { ...metrics } });
      await writeReliabilityPng(deps.blobs, candidate.artifactPrefix, card.calibration);
    }
  } finally {
    classifier.dispose();
  }
  const model = await deps.db.models.create({
    id: candidate.modelId,
    name: `${candidate.params.architecture} on dataset v${candidate.datasetId} (sweep winner)`,
    architecture: candidate.params.architecture,
    datasetId: candidate.datasetId,
    runId: candidate.runId,
    params: { ...candidate.params },
    metrics: { ...metrics },
    artifactPrefix: candidate.artifactPrefix,
  });
  const promotion = await promoteIfBetter(deps, model, metrics, manifest, candidate.params.promotion, actor);
  return { model, metrics, promotion };
}
