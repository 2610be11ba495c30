import { z } from 'zod';
import { binaryMetricsSchema, storedFigure } from '../../ml/metrics.js';
import { storedDocument } from './stored-document.js';

/** What the fine-tuning phase did. Losses and accuracies are NaN when training diverged. */
const fineTuneSummarySchema = z.object({
  blocks: z.int(),
  /** The backbone layer whose activations the fine-tuned network takes. */
  layer: z.string(),
  epochs: z.int(),
  /** 1-based epoch of the phase whose weights were kept; 0 when none beat the head alone on validation loss. */
  bestEpoch: z.int(),
  /** Validation loss and accuracy of the head alone, then of the kept fine-tuned network. */
  before: z.object({ valLoss: storedFigure, valAccuracy: storedFigure }),
  after: z.object({ valLoss: storedFigure, valAccuracy: storedFigure }),
  durationMs: z.number(),
});

const headCandidateSchema = z.object({ l2: z.number(), epochs: z.int(), outOfFoldLoss: storedFigure, outOfFoldAccuracy: storedFigure });

/** What cross-validation chose for the logistic head (L2 weight, epochs) and what each weight scored. */
const headSelectionSummarySchema = z.object({ chosen: headCandidateSchema, candidates: z.array(headCandidateSchema), durationMs: z.number() });

/** Validation-split figures of a run's best epoch: what a sweep compares candidates on. */
export const validationSummarySchema = z.object({ accuracy: storedFigure, loss: storedFigure, bestEpoch: z.int() });

/** A run that trained, evaluated and registered its model: the test-split metrics and what promotion decided. */
const evaluatedRunMetricsSchema = binaryMetricsSchema.extend({
  bestEpoch: z.int(),
  promoted: z.boolean(),
  /** Why it was or was not promoted; runs recorded before the reason was kept have none. */
  promotion: z.string().optional(),
  fineTune: fineTuneSummarySchema.optional(),
  headSelection: headSelectionSummarySchema.optional(),
});

/** A sweep's or a pipeline step's run: its stored model, not yet evaluated on the test split nor registered. */
const candidateRunMetricsSchema = z.object({
  validation: validationSummarySchema,
  candidate: z.object({ modelId: z.string().min(1), artifactPrefix: z.string().min(1) }),
  fineTune: fineTuneSummarySchema.optional(),
  headSelection: headSelectionSummarySchema.optional(),
});

export type FineTuneSummary = z.infer<typeof fineTuneSummarySchema>;
export type HeadSelectionSummary = z.infer<typeof headSelectionSummarySchema>;
export type ValidationSummary = z.infer<typeof validationSummarySchema>;
export type EvaluatedRunMetrics = z.infer<typeof evaluatedRunMetricsSchema>;
export type CandidateRunMetrics = z.infer<typeof candidateRunMetricsSchema>;
export type RunMetrics = EvaluatedRunMetrics | CandidateRunMetrics;

/** A finished run's `metrics`; a run that failed or was cancelled has none. */
export const runMetricsDocument = storedDocument('training run metrics', z.union([evaluatedRunMetricsSchema, candidateRunMetricsSchema]));

/** The metrics of a run that evaluated and registered its model; undefined for a candidate's run or an unfinished one. */
export const evaluatedRunMetrics = (metrics: RunMetrics | null): EvaluatedRunMetrics | undefined => (metrics !== null && 'promoted' in metrics ? metrics : undefined);
