import { z } from 'zod';
import { defineJob } from '../jobs/index.js';
import { trainingParamsPayloadSchema, validationSummarySchema } from '../db/index.js';
import type { CandidateOutcome } from './run-training.js';

/** A training the server (API, web UI) started: its run was recorded as queued when it was asked for. */
export const trainJob = defineJob(
  'train',
  z.object({
    runId: z.string().min(1),
    datasetId: z.int().min(1),
    params: trainingParamsPayloadSchema,
  }),
);

/** One combination of a sweep's grid: trained and stored, judged on validation only. */
export const trainCandidateJob = defineJob(
  'train-candidate',
  z.object({
    datasetId: z.int().min(1),
    params: trainingParamsPayloadSchema,
  }),
);

const storedCandidateSchema = z.object({
  runId: z.string().min(1),
  datasetId: z.int().min(1),
  modelId: z.string().min(1),
  artifactPrefix: z.string().min(1),
  params: trainingParamsPayloadSchema,
});

/** A sweep's winner: evaluated on the test split, registered, promoted if better. */
export const finalizeCandidateJob = defineJob('finalize-candidate', z.object({ candidate: storedCandidateSchema }));

/** Automatic retraining from user feedback. */
export const retrainJob = defineJob(
  'retrain',
  z.object({
    /** Why it was enqueued, for the logs and the job list. */
    reason: z.string(),
    /** The latest dataset version when it was enqueued; the retraining builds the next one. */
    afterDatasetId: z.int().nullable(),
  }),
);

/** What a finished `train-candidate` job answers: enough to compare candidates and finalize the winner. */
export type CandidateSummary = Omit<CandidateOutcome, 'epochs'> & { epochsRun: number };

export const candidateSummarySchema = storedCandidateSchema.extend({
  validation: validationSummarySchema,
  durationMs: z.number(),
  epochsRun: z.int(),
});

export interface FinalizeCandidateResult {
  modelId: string;
  modelVersion: number;
  metrics: Record<string, unknown>;
  promotion: { promoted: boolean; reason: string };
}

export const finalizeCandidateResultSchema = z.object({
  modelId: z.string(),
  modelVersion: z.int(),
  metrics: z.record(z.string(), z.unknown()),
  promotion: z.object({ promoted: z.boolean(), reason: z.string() }),
});
