import { createHash } from 'node:crypto';
import { newId, type Database, type FineTuneParams, type FineTuneSummary, type HeadSelectionSummary, type ModelRow, type RunOutcome, type TrainingParams, type ValidationSummary } from '../db/index.js';
import { imageBlobKey } from '../storage/index.js';
import { loadManifest, type DatasetManifest, type ManifestEntry } from '../datasets/versions.js';
import { augment, DECODE_ID, decodeToRgb, seededRandom, type AugmentationConfig } from '../images/index.js';
import {
  buildCnn,
  buildHead,
  featuresFromActivations,
  fineTuneSplitLayer,
  fineTuningNetwork,
  initTensorflow,
  petLogits,
  pooledFeatures,
  serializeModel,
  splitBackbone,
  trainBinaryClassifier,
  binaryMetrics,
  DEFAULT_LOGISTIC_L2,
  animalMassesOfFeatures,
  type Backbone,
  type BackboneSplit,
  type Batches,
  type BatchProgress,
  type BinaryMetrics,
  type EpochStats,
  type LayersModel,
  type NetworkInput,
  type TrainResult,
} from '../ml/index.js';
import { classCentroids, nearestCentroidDistance, quantile } from '../ml/centroids.js';
import { readModelFiles, writeModelCard, writeModelFiles, type ModelCard, type NeitherReference } from '../registry/artifacts.js';
import { fitCalibration, withTestReliability, writeReliabilityPng } from '../registry/calibration.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { classifierFor, loadClassifier } from '../registry/classifier.js';
import { scoreSplit } from '../registry/evaluate.js';
import { registerAndPromote, type PromotionDecision } from '../registry/promotion.js';
import type { BlobStore } from '../storage/index.js';
import { featureBatches, pixelBatches } from './batches.js';
import { thisProcessOwner } from '../app/process-owner.js';
import { CatdogError } from '../errors.js';
import { CANCELLED_REASON } from '../jobs/index.js';
import { cancelledBeforeItStarted } from './attempts.js';
import { featuresForRequests, type FeatureVariant } from '../ml/feature-cache.js';
import { foldOf, HEAD_L2_GRID, HEAD_SELECTION_FOLDS, selectHeadL2, type HeadSelection } from './head-selection.js';

export type TrainingStage = 'features' | 'decoding' | 'cross-validating' | 'training' | 'fine-tuning' | 'calibrating' | 'evaluating' | 'saving' | 'promoting';

export type TrainingEvent =
  | { type: 'started'; runId: string; datasetId: number; params: TrainingParams }
  | { type: 'stage'; runId: string; stage: TrainingStage; done?: number; total?: number }
  | { type: 'epoch'; runId: string; stats: EpochStats; totalEpochs: number; etaMs: number }
  | { type: 'batch'; runId: string; epoch: number; totalEpochs: number; batch: number; batchCount: number }
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

/**
 * The one augmented copy a backbone's cached features keep per photo. An enabled flip always mirrors it: the copy is
 * drawn once, not each epoch as the cnn's are, so a flip probability of 0.5 made half the copies repeat their photo
 * (issue 16's probe learned from every photo's mirror image; through catdog's head, preset best went from 19 held-out
 * errors to 16 once every copy was mirrored, docs/benchmarks.md).
 */
function augmentationVariant(augmentation: AugmentationConfig, imageSize: number, seed: number): FeatureVariant {
  const config = augmentation.horizontalFlip.enabled ? { ...augmentation, horizontalFlip: { ...augmentation.horizontalFlip, probability: 1 } } : augmentation;
  const key = `aug-${createHash('sha256').update(JSON.stringify({ config, seed })).digest('hex').slice(0, 12)}`;
  return { key, transform: (pixels, hash) => augment(pixels, imageSize, config, seededRandom(imageSeed(hash, seed))) };
}

interface Trainable {
  network: LayersModel;
  /** What a transfer model's network is fed; null for the CNN, which takes pixels. */
  input: NetworkInput | null;
  train: Batches;
  /** Absent for a cross-validated head: its refit trains on every photo it may learn from, for the epochs chosen. */
  validation?: Batches;
  card: Pick<ModelCard, 'imageSize' | 'backbone' | 'ensemble' | 'head' | 'neither' | 'fineTuned'>;
  /** Set when the backbone's top blocks are fine-tuned after the head. */
  fineTuning?: FineTuning;
  /**
   * Set when cross-validation chose the head's L2 weight and epoch count: the network then trains on the train and
   * validation splits together, for that many epochs, and the out-of-fold answers stand in for a validation split.
   */
  headSelection?: HeadSelection;
}

/** The second phase's material: the cut backbone, its pretrained top blocks and batches of cached activations. */
interface FineTuning {
  split: BackboneSplit;
  top: LayersModel;
  train: Batches;
  validation: Batches;
}

/**
 * Real cats and dogs of the validation split lie at most this far from a class centroid in all but 0.1% of
 * cases; the margin leaves room for photos from other sources, so only clearly foreign features count.
 */
const FAR_DISTANCE_QUANTILE = 0.999;
const FAR_DISTANCE_MARGIN = 1.5;

/**
 * The share of the training and validation photos, all cats and dogs, that the learned ImageNet-mass threshold may
 * call "neither": half of the 0.5% issue 16 allows on photos the model never saw, as a margin for them.
 */
const NEITHER_ANIMAL_LOSS = 0.0025;
/**
 * Fewer photos than this leave the threshold to one or two of them (on 72 photos, the smallest mass flagged 4 of 80
 * held-out photos): such a model keeps serving.neither.threshold.
 */
const NEITHER_THRESHOLD_MIN_PHOTOS = 3 / NEITHER_ANIMAL_LOSS;

function neitherReference(backbone: Backbone, trainFeatures: Float32Array[], trainLabels: number[], heldOutFeatures: Float32Array[]): NeitherReference {
  const centroids = classCentroids(trainFeatures, trainLabels);
  const distances = heldOutFeatures.map((vector) => nearestCentroidDistance(vector, centroids));
  const photos = heldOutFeatures === trainFeatures ? trainFeatures : [...trainFeatures, ...heldOutFeatures];
  const masses = photos.length >= NEITHER_THRESHOLD_MIN_PHOTOS ? animalMassesOfFeatures(backbone, photos)?.sort((a, b) => a - b) : undefined;
  return {
    centroids,
    farDistance: quantile(distances, FAR_DISTANCE_QUANTILE) * FAR_DISTANCE_MARGIN,
    ...(masses && { animalMassThreshold: masses[Math.floor(NEITHER_ANIMAL_LOSS * masses.length)]! }),
  };
}

/**
 * The head's training material from cached backbone features. With fine-tuning, what is cached is the frozen
 * blocks' activations below the cut (per image and augmentation variant), the head's features are the pretrained
 * top blocks run on them, and the activations are kept for the second phase.
 */
async function prepareTransfer(deps: TrainingDependencies, manifest: DatasetManifest, params: TrainingParams, emit: (event: TrainingEvent) => void, runId: string, signal?: AbortSignal): Promise<Trainable> {
  const { tf } = await initTensorflow();
  const sources = [params.backbone, ...(params.ensemble ?? [])];
  const inputSize = params.backboneImageSize ?? undefined;
  const parts = await Promise.all(sources.map((source) => deps.backbones.get(source, inputSize)));
  const backbone = await deps.backbones.combined(sources, inputSize);
  // Read before any feature is computed: a backbone without an ImageNet head fails at once, not minutes later.
  const zeroShot = params.zeroShotVote ? petLogits(backbone) : undefined;
  const fineTune = params.fineTune?.enabled ? params.fineTune : undefined;
  const split = fineTune ? await splitBackbone(backbone, fineTuneSplitLayer(backbone, fineTune.blocks)) : undefined;
  const extractor = split ?? backbone;
  const trainItems = manifest.items.filter((item) => item.split === 'train');
  const validationItems = manifest.items.filter((item) => item.split === 'validation');
  // Fine-tuning stops early on the validation split, so that split must stay out of the head's training; the
  // cross-validated regressions see the features alone, not the zero-shot vote a head would add to them; and a
  // fold needs photos to hold out.
  const crossValidated = params.head === 'logistic' && params.headL2 === 'cv' && !fineTune && !zeroShot && trainItems.length + validationItems.length >= 2 * HEAD_SELECTION_FOLDS;
  const learnedItems = crossValidated ? [...trainItems, ...validationItems] : trainItems;
  const variant = anyAugmentation(params.augmentation) ? augmentationVariant(params.augmentation, backbone.inputSize, params.seed) : undefined;
  const hashesOf = (items: ManifestEntry[]) => items.map((item) => item.hash);
  const outputs = await featuresForRequests(
    deps,
    extractor,
    [{ hashes: hashesOf(trainItems) }, { hashes: hashesOf(validationItems) }, ...(variant ? [{ hashes: hashesOf(learnedItems), variant }] : [])],
    {
      onProgress: ({ done, total }) => {
        signal?.throwIfAborted();
        emit({ type: 'stage', runId, stage: 'features', done, total });
      },
    },
  );
  // The third request, and so its answer, exists only with a variant.
  const [trainOutputs, validationOutputs] = [outputs[0]!, outputs[1]!];
  const augmentedOutputs = outputs[2] ?? [];

  const top = split ? await split.pretrainedTop() : undefined;
  const pooled = (outputs: Float32Array[]) => (top && split ? featuresFromActivations(top, outputs, split.featureShape) : Promise.resolve(outputs));
  const trainFeatures = await pooled(trainOutputs);
  const validationFeatures = await pooled(validationOutputs);
  const augmentedFeatures = await pooled(augmentedOutputs);
  const trainLabels = trainItems.map(labelValue);
  const validationLabels = validationItems.map(labelValue);
  const neither = neitherReference(backbone, trainFeatures, trainLabels, validationFeatures.length > 0 ? validationFeatures : trainFeatures);
  const [primary, ...others] = parts.map((part, index) => ({ id: part.id, source: sources[index]!, ...deps.backbones.declared(sources[index]!) }));
  const card = { imageSize: backbone.inputSize, backbone: primary, ...(others.length > 0 ? { ensemble: others } : {}), head: params.head, neither };
  const headWith = (l2: number) => buildHead(params.head, backbone.featureSize, params.seed, zeroShot, l2);

  if (crossValidated) {
    const features = [...trainFeatures, ...validationFeatures];
    const labels = [...trainLabels, ...validationLabels];
    emit({ type: 'stage', runId, stage: 'cross-validating' });
    const headSelection = await selectHeadL2(
      tf,
      { features, augmented: augmentedFeatures, labels, folds: learnedItems.map((item) => foldOf(item.hash, HEAD_SELECTION_FOLDS)) },
      { grid: HEAD_L2_GRID, folds: HEAD_SELECTION_FOLDS, epochs: params.epochs, learningRate: params.learningRate, batchSize: params.batchSize, seed: params.seed, signal },
    );
    return {
      network: headWith(headSelection.chosen.l2),
      input: pooledFeatures(backbone),
      train: featureBatches(tf, [...features, ...augmentedFeatures], [...labels, ...(variant ? labels : [])], params.batchSize, params.seed, true),
      card,
      headSelection,
    };
  }
  const allTrainLabels = [...trainLabels, ...(variant ? trainLabels : [])];

  /** Training batches and validation batches (the training split itself when there is no validation split). */
  const batchesOf = (train: Float32Array[], validation: Float32Array[], validationBatch: number, shape?: number[]) => ({
    train: featureBatches(tf, train, allTrainLabels, params.batchSize, params.seed, true, shape),
    validation: validation.length > 0
      ? featureBatches(tf, validation, validationLabels, validationBatch, params.seed, false, shape)
      : featureBatches(tf, train, allTrainLabels, validationBatch, params.seed, false, shape),
  });
  return {
    network: headWith(typeof params.headL2 === 'number' ? params.headL2 : DEFAULT_LOGISTIC_L2),
    input: pooledFeatures(backbone),
    ...batchesOf([...trainFeatures, ...augmentedFeatures], validationFeatures, 256),
    card,
    // Activations are large (a 14×14×384 map per image for MobileNet v1 0.75 cut 2 blocks down): smaller batches.
    fineTuning: split && top ? { split, top, ...batchesOf([...trainOutputs, ...augmentedOutputs], validationOutputs, 64, split.featureShape) } : undefined,
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
    input: null,
    card: { imageSize: size },
  };
}

export interface CandidateOutcome {
  runId: string;
  datasetId: number;
  modelId: string;
  artifactPrefix: string;
  params: TrainingParams;
  validation: ValidationSummary;
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
  // Features and pixels alike come from this process's decode: the feature cache is keyed by it.
  decodeId: DECODE_ID,
  datasetId: candidate.datasetId,
  runId: candidate.runId,
  params: candidate.params,
  metrics,
  codeVersion,
  createdAt: new Date().toISOString(),
});

/** A trained model whose files are stored, with what its training recorded; not yet registered. */
interface TrainedModel {
  candidate: Omit<CandidateOutcome, 'durationMs'>;
  fineTuned?: FineTuneSummary;
  headSelection?: HeadSelectionSummary;
}

/** A run cancelled between its job's pick-up and its start ends the job cancelled, not failed. */
async function markRunning(deps: TrainingDependencies, runId: string): Promise<void> {
  try {
    await deps.db.runs.markRunning(runId, thisProcessOwner());
  } catch (error) {
    if (error instanceof CatdogError && error.code === 'run_state_conflict' && (await deps.db.runs.get(runId))?.status === 'cancelled') {
      throw cancelledBeforeItStarted(runId);
    }
    throw error;
  }
}

/**
 * Runs `work` as the training run `request` names (or a new one): marks it running, reports `started`, and records
 * how it ended — failed, or cancelled when the request's signal aborted it.
 */
async function asRun<T>(
  deps: TrainingDependencies,
  request: TrainingRequest,
  work: (runId: string, emit: (event: TrainingEvent) => void) => Promise<{ value: T; outcome: RunOutcome }>,
): Promise<T> {
  const emit = (event: TrainingEvent) => request.onEvent?.(event);
  const run = request.runId ? { id: request.runId } : await deps.db.runs.create({ datasetId: request.datasetId, params: request.params, codeVersion: deps.codeVersion, owner: thisProcessOwner() });
  await markRunning(deps, run.id);
  emit({ type: 'started', runId: run.id, datasetId: request.datasetId, params: request.params });
  try {
    const { value, outcome } = await work(run.id, emit);
    await deps.db.runs.finish(run.id, outcome);
    return value;
  } catch (error) {
    // Only a cancel ends a run cancelled; a worker shutting down interrupts it, and the job's next attempt opens another.
    const cancelled = request.signal?.aborted === true && request.signal.reason === CANCELLED_REASON;
    const message = request.signal?.aborted && !cancelled ? `interrupted: ${String(request.signal.reason)}` : (error as Error).message;
    await deps.db.runs.finish(run.id, { status: cancelled ? 'cancelled' : 'failed', error: message });
    emit({ type: 'failed', runId: run.id, error: message });
    throw error;
  }
}

/**
 * Trains one model on a dataset version's training split, picks its epoch and temperature on the validation split,
 * and stores its files (card included). The test split is not looked at: finalizing does that, once.
 */
async function trainModel(deps: TrainingDependencies, request: TrainingRequest, runId: string, emit: (event: TrainingEvent) => void): Promise<TrainedModel> {
  const { manifest } = await loadManifest({ db: deps.db as Pick<Database, 'datasets' | 'images'>, blobs: deps.blobs }, request.datasetId);
  const { params } = request;
  let trainable: Trainable | undefined;
  try {
    trainable = params.architecture === 'mobilenet'
      ? await prepareTransfer(deps, manifest, params, emit, runId, request.signal)
      : await prepareCnn(deps, manifest, params, emit, runId);

    emit({ type: 'stage', runId, stage: 'training' });
    const phaseReporter = progressRecorder(deps, runId, emit);
    const { headSelection } = trainable;
    const headEpochs = headSelection?.chosen.epochs ?? params.epochs;
    const headPhase = await trainBinaryClassifier({
      model: trainable.network,
      train: trainable.train,
      ...(trainable.validation && { validation: trainable.validation }),
      epochs: headEpochs,
      learningRate: params.learningRate,
      earlyStoppingPatience: headSelection ? 0 : params.earlyStoppingPatience,
      signal: request.signal,
      ...phaseReporter(0, headEpochs),
    });
    let history = { epochs: headPhase.epochs, bestEpoch: headPhase.bestEpoch };
    let fineTuned: FineTuneSummary | undefined;
    if (trainable.fineTuning && params.fineTune) {
      emit({ type: 'stage', runId, stage: 'fine-tuning' });
      const settings = params.fineTune;
      const offset = headPhase.epochs.length;
      const tuning = await fineTuneBlocks(trainable, trainable.fineTuning, headPhase, settings, {
        earlyStoppingPatience: params.earlyStoppingPatience,
        signal: request.signal,
        ...phaseReporter(offset, settings.epochs),
      });
      fineTuned = tuning.summary;
      history = {
        epochs: [...headPhase.epochs, ...tuning.result.epochs.map((stats) => ({ ...stats, epoch: offset + stats.epoch }))],
        bestEpoch: tuning.result.bestEpoch === 0 ? headPhase.bestEpoch : offset + tuning.result.bestEpoch,
      };
    }
    const best = history.epochs.find((stats) => stats.epoch === history.bestEpoch) ?? history.epochs[history.epochs.length - 1]!;
    const candidate: Omit<CandidateOutcome, 'durationMs'> = {
      runId,
      datasetId: request.datasetId,
      modelId: request.modelId ?? newId('mdl'),
      artifactPrefix: '',
      params,
      validation: headSelection
        ? { accuracy: headSelection.chosen.outOfFoldAccuracy, loss: headSelection.chosen.outOfFoldLoss, bestEpoch: headEpochs }
        : { accuracy: best.valAccuracy, loss: best.valLoss, bestEpoch: history.bestEpoch },
      epochs: history.epochs,
    };

    const card = modelCard(candidate, trainable, deps.codeVersion, { validation: candidate.validation });
    const scoring = classifierFor({ modelId: candidate.modelId, version: null, card, input: trainable.input, network: trainable.network });
    emit({ type: 'stage', runId, stage: 'calibrating' });
    card.calibration = fitCalibration(
      headSelection?.outOfFold ?? (await scoreSplit(deps, scoring, manifest, manifest.items.some((item) => item.split === 'validation') ? 'validation' : 'train')),
    );
    emit({ type: 'stage', runId, stage: 'saving' });
    candidate.artifactPrefix = await writeModelFiles(deps.blobs, { ...(await serializeModel(trainable.network)), card });
    await writeReliabilityPng(deps.blobs, candidate.artifactPrefix, card.calibration);
    const selection: HeadSelectionSummary | undefined = headSelection && { chosen: headSelection.chosen, candidates: headSelection.candidates, durationMs: headSelection.durationMs };
    return { candidate, ...(fineTuned && { fineTuned }), ...(selection && { headSelection: selection }) };
  } finally {
    trainable?.network.dispose();
    // Once fine-tuning starts, the pretrained top blocks are part of the network; before that they stand alone.
    if (trainable?.fineTuning && !trainable.card.fineTuned) trainable.fineTuning.top.dispose();
  }
}

/**
 * Records each epoch of a training phase and reports it and each of its batches, numbered after `offset` so that
 * the fine-tuning phase continues the head's epochs (one curve, one epoch table per run).
 */
function progressRecorder(deps: TrainingDependencies, runId: string, emit: (event: TrainingEvent) => void) {
  return (offset: number, phaseEpochs: number) => {
    const started = Date.now();
    const totalEpochs = offset + phaseEpochs;
    return {
      onEpoch: async (phaseStats: EpochStats) => {
        const stats = { ...phaseStats, epoch: offset + phaseStats.epoch };
        await deps.db.runs.addEpoch(runId, { ...stats, totalEpochs });
        // phaseStats.epoch is 1-based.
        const averageMs = (Date.now() - started) / phaseStats.epoch;
        emit({ type: 'epoch', runId, stats, totalEpochs, etaMs: averageMs * (phaseEpochs - phaseStats.epoch) });
      },
      onBatch: ({ epoch, batch, batchCount }: BatchProgress) => emit({ type: 'batch', runId, epoch: offset + epoch, totalEpochs, batch, batchCount }),
    };
  };
}

/**
 * The second phase: the pretrained top blocks and the trained head as one network on the cached activations,
 * trained at the fine-tuning learning rate with BatchNormalization frozen. It starts from the head's best
 * validation loss, so an epoch is kept only if it beats the head alone. Afterwards the trainable is that network,
 * fed the activations at the cut.
 */
async function fineTuneBlocks(
  trainable: Trainable,
  material: FineTuning,
  head: TrainResult,
  settings: FineTuneParams,
  options: { earlyStoppingPatience: number; signal?: AbortSignal; onEpoch: (stats: EpochStats) => Promise<void>; onBatch: (progress: BatchProgress) => void },
): Promise<{ result: TrainResult; summary: FineTuneSummary }> {
  const started = Date.now();
  const headBest = head.epochs.find((stats) => stats.epoch === head.bestEpoch) ?? head.epochs[head.epochs.length - 1]!;
  trainable.network = fineTuningNetwork(material.top, trainable.network);
  trainable.input = material.split;
  trainable.card.fineTuned = { blocks: settings.blocks, layer: material.split.layerName };
  const result = await trainBinaryClassifier({
    model: trainable.network,
    train: material.train,
    validation: material.validation,
    epochs: settings.epochs,
    learningRate: settings.learningRate,
    earlyStoppingPatience: options.earlyStoppingPatience,
    initialValLoss: headBest.valLoss,
    signal: options.signal,
    onEpoch: options.onEpoch,
    onBatch: options.onBatch,
  });
  const kept = result.epochs.find((stats) => stats.epoch === result.bestEpoch) ?? headBest;
  return {
    result,
    summary: {
      blocks: settings.blocks,
      layer: material.split.layerName,
      epochs: result.epochs.length,
      bestEpoch: result.bestEpoch,
      before: { valLoss: headBest.valLoss, valAccuracy: headBest.valAccuracy },
      after: { valLoss: kept.valLoss, valAccuracy: kept.valAccuracy },
      durationMs: Date.now() - started,
    },
  };
}

/**
 * Train, evaluate on the test split, register, promote if better: a whole training, whoever asks for it (the CLI,
 * a queue job started from the API or web UI, retraining).
 */
export async function trainOnDataset(deps: TrainingDependencies, request: TrainingRequest): Promise<TrainingOutcome> {
  const started = Date.now();
  return asRun(deps, request, async (runId, emit) => {
    const { candidate, fineTuned, headSelection } = await trainModel(deps, request, runId, emit);
    // A cancel that came after the last epoch still registers nothing.
    request.signal?.throwIfAborted();
    const { model, metrics, promotion } = await finalizeCandidate(deps, candidate, { actor: request.actor ?? 'training', emit });
    emit({ type: 'finished', runId, modelId: model.id, metrics, promotion });
    const { bestEpoch } = candidate.validation;
    return {
      value: { runId, model, metrics, promotion, epochs: candidate.epochs, bestEpoch, durationMs: Date.now() - started },
      outcome: { status: 'succeeded', metrics: { ...metrics, bestEpoch, promoted: promotion.promoted, promotion: promotion.reason, ...(fineTuned && { fineTune: fineTuned }), ...(headSelection && { headSelection }) }, modelId: model.id },
    };
  });
}

/** Train and store a sweep candidate or a pipeline step's model, without touching the test split or the registry. */
export async function trainCandidate(deps: TrainingDependencies, request: TrainingRequest): Promise<CandidateOutcome> {
  const started = Date.now();
  return asRun(deps, request, async (runId, emit) => {
    const { candidate, fineTuned, headSelection } = await trainModel(deps, request, runId, emit);
    return {
      value: { ...candidate, durationMs: Date.now() - started },
      outcome: {
        status: 'succeeded',
        metrics: { validation: candidate.validation, candidate: { modelId: candidate.modelId, artifactPrefix: candidate.artifactPrefix }, ...(fineTuned && { fineTune: fineTuned }), ...(headSelection && { headSelection }) },
      },
    };
  });
}

/** What finalizing needs of a stored model: where its files are and how it was trained. */
export type StoredCandidate = Pick<CandidateOutcome, 'runId' | 'datasetId' | 'modelId' | 'artifactPrefix' | 'params'>;

/** The stored model behind a registered row, as `finalizeCandidate` takes it to decide its promotion again. */
export function storedCandidateOf(model: ModelRow, runId: string): StoredCandidate {
  if ('importedFrom' in model.params) {
    throw new CatdogError('not_a_trained_model', `model ${model.id} was imported from ${model.params.importedFrom}, not trained by a run: there is no training to finish`, 409, { id: model.id });
  }
  return { runId, datasetId: model.datasetId, modelId: model.id, artifactPrefix: model.artifactPrefix, params: model.params };
}

const MODEL_NAME_SUFFIX: Record<string, string> = { sweep: ' (sweep winner)', pipeline: ' (pipeline)' };

/**
 * The end of every training: the stored model is evaluated on its dataset version's test split (the first time
 * anything looks at it), the metrics and the test reliability go into its card, then it is registered and promoted
 * if it beats the serving model on that split. A model an earlier attempt already registered keeps its recorded
 * metrics and only has its promotion decided again.
 */
export async function finalizeCandidate(
  deps: TrainingDependencies,
  candidate: StoredCandidate,
  options: { actor: string; emit?: (event: TrainingEvent) => void },
): Promise<{ model: ModelRow; metrics: BinaryMetrics; promotion: PromotionDecision }> {
  const { manifest } = await loadManifest({ db: deps.db as Pick<Database, 'datasets' | 'images'>, blobs: deps.blobs }, candidate.datasetId);
  const registered = await deps.db.models.get(candidate.modelId);
  const metrics = registered ? registered.metrics : await evaluateStoredCandidate(deps, candidate, manifest, options.emit);
  options.emit?.({ type: 'stage', runId: candidate.runId, stage: 'promoting' });
  const { model, promotion } = await registerAndPromote(
    deps,
    {
      id: candidate.modelId,
      name: `${candidate.params.architecture} on dataset v${candidate.datasetId}${MODEL_NAME_SUFFIX[options.actor] ?? ''}`,
      architecture: candidate.params.architecture,
      datasetId: candidate.datasetId,
      runId: candidate.runId,
      params: candidate.params,
      metrics,
      artifactPrefix: candidate.artifactPrefix,
    },
    metrics,
    manifest,
    candidate.params.promotion,
    options.actor,
  );
  return { model, metrics, promotion };
}

async function evaluateStoredCandidate(deps: TrainingDependencies, candidate: StoredCandidate, manifest: DatasetManifest, emit?: (event: TrainingEvent) => void): Promise<BinaryMetrics> {
  emit?.({ type: 'stage', runId: candidate.runId, stage: 'evaluating' });
  const classifier = await loadClassifier(deps, { id: candidate.modelId, version: null, artifactPrefix: candidate.artifactPrefix });
  try {
    const test = await scoreSplit(deps, classifier, manifest, 'test');
    const metrics = binaryMetrics(test.labels, test.pDog);
    const { card } = await readModelFiles(deps.blobs, candidate.artifactPrefix);
    const calibration = card.calibration && withTestReliability(card.calibration, test);
    await writeModelCard(deps.blobs, candidate.artifactPrefix, { ...card, metrics: { ...metrics }, ...(calibration && { calibration }) });
    if (calibration) await writeReliabilityPng(deps.blobs, candidate.artifactPrefix, calibration);
    return metrics;
  } finally {
    classifier.dispose();
  }
}
