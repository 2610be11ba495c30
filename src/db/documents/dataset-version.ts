import { z } from 'zod';
import { storedDocument } from './stored-document.js';

/**
 * `dataset_versions.params`: what decides which photo goes to which split, and nothing else. Image size and
 * augmentation are settings of the training run (recorded in `training_runs.params`), so two builds of the same
 * photos never differ by them.
 */
export const datasetParamsSchema = z.object({
  split: z.object({ train: z.number(), validation: z.number(), test: z.number() }),
  seed: z.int(),
});

// A type alias, not an interface: it is stored as a JSON object column.
export type DatasetParams = z.infer<typeof datasetParamsSchema>;

export const datasetParamsDocument = storedDocument('dataset version parameters', datasetParamsSchema);

const labelCountsSchema = z.object({ cat: z.int().min(0), dog: z.int().min(0) });

/** `dataset_versions.counts`: photos per split and label, as the version was built. */
export const splitCountsSchema = z.object({ train: labelCountsSchema, validation: labelCountsSchema, test: labelCountsSchema });

export type SplitCounts = z.infer<typeof splitCountsSchema>;

export const splitCountsDocument = storedDocument('dataset version counts', splitCountsSchema);
