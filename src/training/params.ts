import type { CatdogConfig } from '../config/index.js';
import { ConfigError, effectiveImageSize, trainingConflicts, WITHOUT_BACKBONE } from '../config/index.js';
import type { DatasetParams } from '../datasets/versions.js';
import type { TrainingParams } from './run-training.js';

export interface TrainingOverrides {
  architecture?: 'mobilenet' | 'cnn';
  epochs?: number;
  imageSize?: number;
  learningRate?: number;
  batchSize?: number;
}

/** Applies command-line overrides on top of the validated config, so both CLI and API train the same way. */
export function withOverrides(config: CatdogConfig, overrides: TrainingOverrides): CatdogConfig {
  // Switching to the cnn drops what training.preset set for a backbone, as loading a cnn config does.
  const toCnn = overrides.architecture === 'cnn' && config.training.architecture !== 'cnn';
  return {
    ...config,
    dataset: { ...config.dataset, imageSize: overrides.imageSize ?? config.dataset.imageSize },
    training: {
      ...config.training,
      ...(toCnn ? { ...WITHOUT_BACKBONE, ensemble: [] } : {}),
      architecture: overrides.architecture ?? config.training.architecture,
      epochs: overrides.epochs ?? config.training.epochs,
      learningRate: overrides.learningRate ?? config.training.learningRate,
      batchSize: overrides.batchSize ?? config.training.batchSize,
    },
  };
}

export function datasetParams(config: CatdogConfig): DatasetParams {
  return {
    imageSize: effectiveImageSize(config),
    split: config.dataset.split,
    seed: config.dataset.seed,
    augmentation: config.dataset.augmentation,
  };
}

/** The parameters a run records and trains with; refuses settings that contradict each other (after overrides). */
export function trainingParams(config: CatdogConfig, dataset: DatasetParams): TrainingParams {
  const { training } = config;
  const conflicts = trainingConflicts(training);
  if (conflicts.length > 0) throw new ConfigError(conflicts.map((problem) => `training.${problem.path.join('.')}: ${problem.message}`));
  return {
    architecture: training.architecture,
    imageSize: dataset.imageSize,
    batchSize: training.batchSize,
    epochs: training.epochs,
    learningRate: training.learningRate,
    earlyStoppingPatience: training.earlyStoppingPatience,
    head: training.head,
    tta: training.tta,
    zeroShotVote: training.zeroShotVote,
    backbone: training.backbone,
    backboneImageSize: training.backboneImageSize,
    ensemble: training.ensemble,
    fineTune: training.fineTune,
    seed: dataset.seed,
    augmentation: dataset.augmentation,
    promotion: training.promotion,
  };
}
