import { z } from 'zod';
import { defineJob } from '../jobs/index.js';

/** Imports a folder of labelled photos; the same path must be readable on every worker machine (shared storage). */
export const importJob = defineJob('import', z.object({ folder: z.string().min(1) }));

/**
 * Snapshots the labelled photos into a dataset version (or reuses the identical latest one), with the configured
 * split and seed. A payload queued before image size moved to the training run may still name one: it is dropped.
 */
export const buildDatasetJob = defineJob('build-dataset', z.object({}));
