import { describe, expect, it } from 'vitest';
import { modelMetricsDocument } from '../db/index.js';
import { binaryMetrics } from '../ml/index.js';
import { degenerateReason, MIN_PHOTOS_PER_CLASS } from './degenerate.js';

/** 6 cats then 5 dogs. */
const labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
const scores = (pDog: (i: number) => number) => labels.map((_, i) => pDog(i));

describe('degenerateReason', () => {
  it('names the one class a model answers for every photo of a two-class split', () => {
    expect(degenerateReason(binaryMetrics(labels, scores((i) => 0.1 + i * 0.03)))).toBe('degenerate: it answers cat for all 11 test photos (5 of them dogs)');
    expect(degenerateReason(binaryMetrics(labels, scores((i) => 0.5 + i * 0.01)))).toBe('degenerate: it answers dog for all 11 test photos (6 of them cats)');
  });

  it('passes a model that answers both classes, even a poor one', () => {
    // One cat called a dog, every dog called a cat: bad, but it does not answer one class only.
    expect(degenerateReason(binaryMetrics(labels, scores((i) => (i === 0 ? 0.9 : 0.2))))).toBeUndefined();
  });

  it(`cannot judge a split with fewer than ${MIN_PHOTOS_PER_CLASS} photos of either class`, () => {
    expect(degenerateReason(binaryMetrics([0, 0, 1, 1, 1, 1, 1, 1], [0.6, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9]))).toBeUndefined();
    expect(degenerateReason(binaryMetrics([0, 0, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]))).toBeUndefined();
  });

  it('reads metrics as a model row stores them', () => {
    const cell = { table: 'models', column: 'metrics', rowId: 'mdl_test' };
    const stored = modelMetricsDocument.read(modelMetricsDocument.write(binaryMetrics(labels, scores(() => 0.4)), cell), cell);
    expect(degenerateReason(stored)).toContain('answers cat');
  });
});
