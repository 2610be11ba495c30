import type { TrainingOverrides } from '../training/params.js';
import type { CandidateOutcome, TrainingParams } from '../training/run-training.js';

/** The names of the product's jobs, shared by whoever enqueues them and the worker that runs them. */
export const JOB = {
  import: 'import',
  buildDataset: 'build-dataset',
  train: 'train',
  trainCandidate: 'train-candidate',
  finalizeCandidate: 'finalize-candidate',
  retrain: 'retrain',
} as const;

export interface ImportJobData {
  /** A folder the worker can read: the same path on every machine (shared storage). */
  folder: string;
}

export interface BuildDatasetJobData {
  imageSize?: number;
}

export interface TrainJobData extends Omit<TrainingOverrides, 'imageSize'> {
  datasetId: number;
}

export interface TrainCandidateJobData {
  datasetId: number;
  params: TrainingParams;
}

/** What a finished `train-candidate` job answers: enough to compare candidates and finalize the winner. */
export type CandidateSummary = Omit<CandidateOutcome, 'epochs'> & { epochsRun: number };

export interface FinalizeCandidateJobData {
  candidate: Pick<CandidateSummary, 'runId' | 'datasetId' | 'modelId' | 'artifactPrefix' | 'params'>;
}

export interface FinalizeCandidateResult {
  modelId: string;
  modelVersion: number;
  metrics: Record<string, unknown>;
  promotion: { promoted: boolean; reason: string };
}

export interface RetrainJobData {
  /** Why it was enqueued, for the logs and the job list. */
  reason: string;
  /** The latest dataset version when it was enqueued; the retraining builds the next one. */
  afterDatasetId: number | null;
}
