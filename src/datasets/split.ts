import { createHash } from 'node:crypto';

export type Split = 'train' | 'validation' | 'test';
export interface SplitRatios {
  train: number;
  validation: number;
  test: number;
}

/**
 * The split of an image is a pure function of its content hash, the seed and the ratios: adding images never
 * moves an existing one. The uniform draw is compared against the test share first, then validation, so changing
 * only the train/validation balance never moves an image into or out of the test split.
 */
export function splitOf(imageHash: string, ratios: SplitRatios, seed: number): Split {
  const digest = createHash('sha256').update(`${seed}:${imageHash}`).digest();
  const uniform = digest.readUInt32BE(0) / 2 ** 32;
  if (uniform < ratios.test) return 'test';
  if (uniform < ratios.test + ratios.validation) return 'validation';
  return 'train';
}
