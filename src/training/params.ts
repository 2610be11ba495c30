import { z } from 'zod';
import type { CatdogConfig } from '../config/index.js';
import { augmentationSchema, ConfigError, effectiveImageSize, trainingConflicts, WITHOUT_BACKBONE } from '../config/index.js';
import type { DatasetParams } from '../datasets/versions.js';

/** What a person may change for one run (CLI flags, the API's and web form's fields, a sweep's grid). */
export interface TrainingOverrides {
  architecture?: 'mobilenet' | 'cnn';
  epochs?: number;
  imageSize?: number;
  learningRate?: number;
  batchSize?: number;
  head?: 'logistic' | 'mlp';
  earlyStoppingPatience?: number;
}

const headL2Schema = z.union([z.literal('cv'), z.number().min(0)]);

const fineTuneParamsSchema = z.object({
  enabled: z.boolean(),
  blocks: z.int().min(1),
  learningRate: z.number().positive(),
  epochs: z.int().min(1),
});

/**
 * The parameters a run trains with and records (runs' `params` column, training jobs' payloads, model cards).
 * Optional fields are those that runs recorded before they existed lack.
 */
export const trainingParamsSchema = z.object({
  architecture: z.enum(['mobilenet', 'cnn']),
  imageSize: z.int().min(16),
  batchSize: z.int().min(1),
  epochs: z.int().min(1),
  learningRate: z.number().positive(),
  earlyStoppingPatience: z.int().min(0),
  head: z.enum(['logistic', 'mlp']),
  /** The logistic head's L2 weight, or `cv` (chosen by cross-validation); absent in runs recorded before it existed, which used 1e-4. */
  headL2: headL2Schema.optional(),
  /** Average P(dog) over each photo and its mirror image. */
  tta: z.boolean().optional(),
  /** The head also takes the backbone's ImageNet zero-shot vote. */
  zeroShotVote: z.boolean().optional(),
  backbone: z.string().min(1),
  /** Side of the images the backbones see; null or absent: the backbone's own. */
  backboneImageSize: z.int().nullable().optional(),
  /** Further backbones whose features join the backbone's. */
  ensemble: z.array(z.string().min(1)).optional(),
  /** The second phase training the backbone's top blocks. */
  fineTune: fineTuneParamsSchema.optional(),
  seed: z.int(),
  augmentation: augmentationSchema,
  promotion: z.object({ metric: z.enum(['accuracy', 'f1', 'rocAuc']), minImprovement: z.number() }),
});

export type TrainingParams = z.infer<typeof trainingParamsSchema>;
export type FineTuneParams = z.infer<typeof fineTuneParamsSchema>;

/** Params read back from storage (a run row, a job payload, a model card): checked, never cast. */
export function parseTrainingParams(value: unknown, where: string): TrainingParams {
  const parsed = trainingParamsSchema.safeParse(value);
  if (!parsed.success) throw new ConfigError([`${where}: stored training parameters are not valid: ${z.prettifyError(parsed.error)}`]);
  return parsed.data;
}

/** What a dataset version is built with: which photos go to which split. */
export function datasetParams(config: CatdogConfig): DatasetParams {
  return {
    imageSize: effectiveImageSize(config),
    split: config.dataset.split,
    seed: config.dataset.seed,
    augmentation: config.dataset.augmentation,
  };
}

/**
 * The one place a run's parameters come from, whoever starts it (CLI, API, web, jobs, sweeps, retraining, pipeline
 * steps): the validated config with this run's overrides. Image size and augmentation are settings of the run, not
 * of the dataset version it trains on. Refuses settings that contradict each other once the overrides apply.
 */
export function resolveTrainingParams(config: CatdogConfig, overrides: TrainingOverrides = {}): TrainingParams {
  // Switching to the cnn drops what training.preset set for a backbone, as loading a cnn config does.
  const toCnn = overrides.architecture === 'cnn' && config.training.architecture !== 'cnn';
  const training = {
    ...config.training,
    ...(toCnn ? { ...WITHOUT_BACKBONE, ensemble: [] } : {}),
    architecture: overrides.architecture ?? config.training.architecture,
    epochs: overrides.epochs ?? config.training.epochs,
    learningRate: overrides.learningRate ?? config.training.learningRate,
    batchSize: overrides.batchSize ?? config.training.batchSize,
    head: overrides.head ?? config.training.head,
    earlyStoppingPatience: overrides.earlyStoppingPatience ?? config.training.earlyStoppingPatience,
  };
  const conflicts = trainingConflicts(training);
  if (conflicts.length > 0) throw new ConfigError(conflicts.map((problem) => `training.${problem.path.join('.')}: ${problem.message}`));
  return {
    architecture: training.architecture,
    imageSize: overrides.imageSize ?? effectiveImageSize({ ...config, training }),
    batchSize: training.batchSize,
    epochs: training.epochs,
    learningRate: training.learningRate,
    earlyStoppingPatience: training.earlyStoppingPatience,
    head: training.head,
    headL2: training.headL2,
    tta: training.tta,
    zeroShotVote: training.zeroShotVote,
    backbone: training.backbone,
    backboneImageSize: training.backboneImageSize,
    ensemble: training.ensemble,
    fineTune: training.fineTune,
    seed: config.dataset.seed,
    augmentation: config.dataset.augmentation,
    promotion: training.promotion,
  };
}
