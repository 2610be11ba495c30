import type { BinaryMetrics } from '../ml/metrics.js';
import type { DatasetParams, SplitCounts } from './documents/dataset-version.js';
import type { ModelParams, PredictionProbabilities, RunMetrics, TrainingParams } from './documents/index.js';

/** A label a user or a model can give a photo; `neither` marks photos that are no cat and no dog. */
export type Label = 'cat' | 'dog' | 'neither';
/** Only cats and dogs train a model, so an image's label is one of these or null (unlabelled). */
export type ImageLabel = 'cat' | 'dog';
export type Split = 'train' | 'validation' | 'test';
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type FinishedRunStatus = Exclude<RunStatus, 'queued' | 'running'>;
export type ReviewStrategy = 'uncertain' | 'oldest' | 'random';
/** The states of a background job, in every queue (the `jobs` table keeps those of in-process queues). */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'cancelled';

export interface Page<T> {
  items: T[];
  /** How many rows match the filters, ignoring limit and offset. */
  total: number;
}

export interface ImageRow {
  hash: string;
  label: ImageLabel | null;
  source: string;
  originalName: string | null;
  format: string;
  width: number;
  height: number;
  byteSize: number;
  createdAt: string;
  updatedAt: string;
  /** When a curator took the photo out of the data set; built versions keep it. */
  deletedAt: string | null;
  perceptualHash: string | null;
  /** The latest P(dog) of model `scoreModelId` for this photo (null until scored). */
  pDog: number | null;
  scoreModelId: string | null;
}

export type NewImage = Omit<ImageRow, 'createdAt' | 'updatedAt' | 'deletedAt' | 'perceptualHash' | 'pDog' | 'scoreModelId'> & {
  perceptualHash?: string | null;
};

/** What the gallery filters on; every filter is optional. */
export interface GalleryFilter {
  label?: ImageLabel | 'unlabelled';
  /** The source's kind: `upload`, `import`, `feedback`, … (the part before the first colon). */
  sourceKind?: string;
  /** Only photos scored by this model count for the model filters below. */
  scoreModelId?: string;
  /** The scoring model calls the photo the other class than its label. */
  disagreement?: boolean;
  /** max(P(dog), 1 − P(dog)) at most this. */
  maxConfidence?: number;
  /** The scoring model's probability of the stored label at most this (low = suspicious). */
  maxLabelProbability?: number;
  order: 'newest' | 'suspicious';
  limit: number;
  offset: number;
}

export interface DatasetVersionRow {
  id: number;
  createdAt: string;
  params: DatasetParams;
  manifestKey: string;
  imageCount: number;
  counts: SplitCounts;
}

export interface DatasetItemRow {
  hash: string;
  label: ImageLabel;
  split: Split;
}

export interface NewDatasetVersion {
  params: DatasetParams;
  /** A function when the key contains the version number, which is only known inside the transaction. */
  manifestKey: string | ((id: number) => string);
  counts: SplitCounts;
  items: DatasetItemRow[];
}

export interface RunRow {
  id: string;
  datasetId: number;
  status: RunStatus;
  params: TrainingParams;
  codeVersion: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
  /** Null until the run succeeds. */
  metrics: RunMetrics | null;
  modelId: string | null;
  owner: string | null;
  /** The queue job that trains it; null for a run trained by the process that asked (`catdog train`). */
  jobId: string | null;
}

export interface NewRun {
  /** Pass an id from `newId('run')` when something (a queue job) must name the run before it exists. */
  id?: string;
  datasetId: number;
  params: TrainingParams;
  codeVersion: string;
  /** `host:pid` of the process that will hold the run. */
  owner?: string;
  jobId?: string;
}

export interface RunOutcome {
  status: FinishedRunStatus;
  error?: string;
  metrics?: RunMetrics;
  modelId?: string;
}

export interface EpochRow {
  epoch: number;
  loss: number | null;
  accuracy: number | null;
  valLoss: number | null;
  valAccuracy: number | null;
  durationMs: number;
  /** How many epochs the run expected when it recorded this one (the fine-tuning phase adds its own); null if unknown. */
  totalEpochs?: number | null;
}

export interface ModelRow {
  id: string;
  version: number;
  name: string;
  architecture: string;
  datasetId: number;
  runId: string | null;
  params: ModelParams;
  /** Metrics on the dataset version's test split. */
  metrics: BinaryMetrics;
  /** Blob key prefix of the artifacts, e.g. `models/mdl_…/`. */
  artifactPrefix: string;
  createdAt: string;
}

export interface NewModel {
  /** Pass an id from `newId('mdl')` when the artifacts are written before the model is registered. */
  id?: string;
  name: string;
  architecture: string;
  datasetId: number;
  runId?: string | null;
  params: ModelParams;
  metrics: BinaryMetrics;
  artifactPrefix: string;
}

export interface PromotionRow {
  id: number;
  modelId: string;
  promotedAt: string;
  reason: string;
  actor: string;
  previousModelId: string | null;
}

export interface PredictionRow {
  id: string;
  imageHash: string;
  modelId: string;
  label: Label;
  /** max(p, 1 − p): 0.5 is a coin flip, 1 is certain. */
  confidence: number;
  probabilities: PredictionProbabilities;
  latencyMs: number;
  createdAt: string;
  validatedLabel: Label | null;
  validatedAt: string | null;
}

export type NewPrediction = Omit<PredictionRow, 'id' | 'createdAt' | 'validatedLabel' | 'validatedAt'>;

export interface PredictionFilter {
  validated?: boolean;
  /** The predicted label (not the validated one). */
  label?: Label;
  modelId?: string;
  /** Inclusive lower bound on `createdAt` (any date string `Date` parses). */
  since?: string;
  /** Exclusive upper bound on `createdAt`. */
  until?: string;
  limit: number;
  offset: number;
}

export interface ValidationRow {
  id: string;
  predictionId: string;
  label: Label;
  actor: string;
  createdAt: string;
  undoneAt: string | null;
}

/** A job of an in-process (`jobs.kind` inline) queue, kept in the database so that it outlives the process. */
export interface JobRow {
  id: string;
  name: string;
  data: unknown;
  state: JobState;
  /** 0..1, as last reported by the handler. */
  progress: number;
  progressMessage: string | null;
  /** Runs started so far, the running one included. */
  attempts: number;
  /** Runs before the job fails for good. */
  maxAttempts: number;
  backoffMs: number;
  /** Runs cut short because the process running them stopped without returning the job. */
  stalls: number;
  /** What the handler answered; undefined until the job completes. */
  result: unknown;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** A waiting job is not run before this time (a retry waiting out its backoff); null: at once. */
  runAfter: string | null;
  workerId: string | null;
  /** `host:pid` of the process whose queue holds the job; null once released for the next process to take. */
  owner: string | null;
  /** Another process asked to cancel the job while this one's owner runs it; the owner aborts it when it sees this. */
  cancelRequested: boolean;
}
