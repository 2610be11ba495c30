import { z } from 'zod';
import { augmentationSchema } from '../../config/schema.js';
import { DEFAULT_LOGISTIC_L2 } from '../../ml/models.js';
import { storedDocument } from './stored-document.js';

/** The logistic head's L2 weight, or `cv`: chosen by cross-validation on the training photos. */
const headL2Schema = z.union([z.literal('cv'), z.number().min(0)]);

const fineTuneParamsSchema = z.object({
  enabled: z.boolean(),
  blocks: z.int().min(1),
  learningRate: z.number().positive(),
  epochs: z.int().min(1),
});

/** Version 1: what runs recorded before the options they lack existed (TTA, the zero-shot vote, backbone size, ensembles). */
export const trainingParamsV1Schema = z.object({
  architecture: z.enum(['mobilenet', 'cnn']),
  imageSize: z.int().min(16),
  batchSize: z.int().min(1),
  epochs: z.int().min(1),
  learningRate: z.number().positive(),
  earlyStoppingPatience: z.int().min(0),
  head: z.enum(['logistic', 'mlp']),
  headL2: headL2Schema.optional(),
  tta: z.boolean().optional(),
  zeroShotVote: z.boolean().optional(),
  backbone: z.string().min(1),
  backboneImageSize: z.int().nullable().optional(),
  ensemble: z.array(z.string().min(1)).optional(),
  fineTune: fineTuneParamsSchema.optional(),
  seed: z.int(),
  augmentation: augmentationSchema,
  promotion: z.object({ metric: z.enum(['accuracy', 'f1', 'rocAuc']), minImprovement: z.number() }),
});

/**
 * The parameters a run trains with and records (runs' and trained models' `params`, training jobs' payloads, model
 * cards). Every option is recorded; only `fineTune` may be absent, for a run without that phase.
 */
export const trainingParamsSchema = trainingParamsV1Schema.extend({
  headL2: headL2Schema,
  /** Average P(dog) over each photo and its mirror image. */
  tta: z.boolean(),
  /** The head also takes the backbone's ImageNet zero-shot vote. */
  zeroShotVote: z.boolean(),
  /** Side of the images the backbones see; null: the backbone's own. */
  backboneImageSize: z.int().nullable(),
  /** Further backbones whose features join the backbone's. */
  ensemble: z.array(z.string().min(1)),
  /** The second phase training the backbone's top blocks. */
  fineTune: fineTuneParamsSchema.optional(),
});

export type TrainingParams = z.infer<typeof trainingParamsSchema>;
export type FineTuneParams = z.infer<typeof fineTuneParamsSchema>;

/** An option a version-1 run lacks is what training did before the option existed: it was off, the head's L2 fixed. */
export const upgradeTrainingParams = (params: z.infer<typeof trainingParamsV1Schema>): TrainingParams => ({
  ...params,
  headL2: params.headL2 ?? DEFAULT_LOGISTIC_L2,
  tta: params.tta ?? false,
  zeroShotVote: params.zeroShotVote ?? false,
  backboneImageSize: params.backboneImageSize ?? null,
  ensemble: params.ensemble ?? [],
});

/** A training run's `params`. */
export const trainingParamsDocument = storedDocument('training parameters', trainingParamsV1Schema).next(trainingParamsSchema, upgradeTrainingParams);

/**
 * Training parameters in a job payload or a pipeline step's input: written by whichever catdog queued them, maybe the
 * release before this one, so every version is taken and upgraded to the newest (payloads carry no version marker;
 * the newest shape also reads as version 1 with every option present, which the upgrade keeps).
 */
export const trainingParamsPayloadSchema = trainingParamsV1Schema.transform(upgradeTrainingParams);
