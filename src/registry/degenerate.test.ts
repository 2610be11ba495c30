import { describe, expect, it } from 'vitest';
import { binaryMetrics } from '../ml/index.js';
import { degenerateReason } from './degenerate.js';

const labels = [0, 0, 0, 1, 1];

describe('degenerateReason', () => {
  it('names the one class a model answers for every photo of a two-class split', () => {
    expect(degenerateReason(binaryMetrics(labels, [0.1, 0.2, 0.3, 0.4, 0.49]))).toBe('degenerate: it answers cat for all 5 test photos (2 of them dogs)');
    expect(degenerateReason(binaryMetrics(labels, [0.5, 0.6, 0.7, 0.8, 0.9]))).toBe('degenerate: it answers dog for all 5 test photos (3 of them cats)');
  });

  it('passes a model that answers both classes, even a poor one, and cannot judge on a one-class split', () => {
    expect(degenerateReason(binaryMetrics(labels, [0.9, 0.2, 0.3, 0.1, 0.49]))).toBeUndefined();
    expect(degenerateReason(binaryMetrics([0, 0, 0], [0.1, 0.2, 0.3]))).toBeUndefined();
  });

  it('reads stored metrics as they come from the database, and ignores ones without a confusion matrix', () => {
    const stored: unknown = JSON.parse(JSON.stringify(binaryMetrics(labels, [0.1, 0.2, 0.3, 0.4, 0.4])));
    expect(degenerateReason(stored)).toContain('answers cat');
    expect(degenerateReason({ accuracy: 0.5 })).toBeUndefined();
    expect(degenerateReason(null)).toBeUndefined();
  });
});
