import type { CatdogConfig } from '../config/index.js';
import { ConfigError, effectiveImageSize, trainingConflicts, NO_PRESET_EXTRAS } from '../config/index.js';
import type { TrainingParams } from '../db/index.js';
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

/** What a dataset version is built with: which photos go to which split. */
export function datasetParams(config: CatdogConfig): DatasetParams {
  return { split: config.dataset.split, seed: config.dataset.seed };
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
    ...(toCnn ? { ...NO_PRESET_EXTRAS, ensemble: [] } : {}),
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
