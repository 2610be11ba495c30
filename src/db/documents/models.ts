import { z } from 'zod';
import { binaryMetricsSchema } from '../../ml/metrics.js';
import { storedDocument } from './stored-document.js';
import { trainingParamsSchema, trainingParamsV1Schema, upgradeTrainingParams } from './training-params.js';

/** What is known of how an imported model was made: the file it came from. */
export const importedModelParamsSchema = z.object({
  importedFrom: z.string().min(1),
  format: z.enum(['keras', 'h5', 'tfjs', 'tflite']),
  /** Side of the RGB images the model takes. */
  imageSize: z.int().min(1),
});

export type ImportedModelParams = z.infer<typeof importedModelParamsSchema>;

/** A model's `params`: those of the run that trained it, or of its import. Versioned with the training parameters. */
const modelParamsSchema = z.union([importedModelParamsSchema, trainingParamsSchema]);
export type ModelParams = z.infer<typeof modelParamsSchema>;

export const modelParamsDocument = storedDocument('model parameters', z.union([importedModelParamsSchema, trainingParamsV1Schema])).next(
  modelParamsSchema,
  (params) => ('importedFrom' in params ? params : upgradeTrainingParams(params)),
);

/** A model's `metrics`: its figures on its dataset version's test split. */
export const modelMetricsDocument = storedDocument('model metrics', binaryMetricsSchema);
