import { describe, expect, it } from 'vitest';
import { binaryMetrics, rocAuc, rocCurve } from './metrics.js';

describe('binaryMetrics', () => {
  it('matches a worked example by hand', () => {
    // Predicted dog at 0.5: only the 0.8 → TP 1, FN 1 (the 0.35 dog), TN 2, FP 0.
    const metrics = binaryMetrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    expect(metrics.count).toBe(4);
    expect(metrics.accuracy).toBe(0.75);
    expect(metrics.precision).toBe(1);
    expect(metrics.recall).toBe(0.5);
    expect(metrics.f1).toBeCloseTo(2 / 3, 12);
    // Dog/cat pairs ranked right: 0.8 beats both cats, 0.35 beats 0.1 only → 3 of 4.
    expect(metrics.rocAuc).toBe(0.75);
    expect(metrics.confusionMatrix).toEqual({ labels: ['cat', 'dog'], matrix: [[2, 0], [1, 1]] });
  });

  it('moves predictions with the threshold', () => {
    const metrics = binaryMetrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.3);
    expect(metrics.confusionMatrix.matrix).toEqual([[1, 1], [0, 2]]);
    expect(metrics.precision).toBeCloseTo(2 / 3, 12);
    expect(metrics.recall).toBe(1);
    expect(metrics.rocAuc).toBe(0.75);
  });

  it('answers 0, not NaN, for precision, recall and f1 when nothing is predicted or present as dog', () => {
    const metrics = binaryMetrics([0, 0, 0], [0.1, 0.2, 0.3]);
    expect(metrics).toMatchObject({ accuracy: 1, precision: 0, recall: 0, f1: 0 });
    expect(metrics.rocAuc).toBeNaN();
    expect(binaryMetrics([], []).accuracy).toBe(0);
  });

  it('refuses mismatched or non-binary inputs', () => {
    expect(() => binaryMetrics([0, 1], [0.5])).toThrow(/2 labels but 1 predictions/);
    expect(() => binaryMetrics([0, 2], [0.5, 0.5])).toThrow(/label 1 is 2/);
  });
});

describe('rocAuc', () => {
  it('is 1 for a perfect separation, 0 for a perfectly wrong one and 0.5 when all scores tie', () => {
    expect(rocAuc([0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.9])).toBe(1);
    expect(rocAuc([1, 1, 0, 0], [0.1, 0.2, 0.6, 0.7])).toBe(0);
    expect(rocAuc([0, 1, 0, 1, 1], [0.5, 0.5, 0.5, 0.5, 0.5])).toBe(0.5);
  });

  it('counts a tied dog/cat pair as one half', () => {
    // Pairs (dog, cat): (0.5, 0.5) → ½, (0.5, 0.2) → 1, (0.9, 0.5) → 1, (0.9, 0.2) → 1: 3.5 / 4.
    expect(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])).toBe(0.875);
  });
});

describe('rocCurve', () => {
  it('walks from (0,0) to (1,1) through one point per distinct score', () => {
    const points = rocCurve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    expect(points.map((p) => [p.falsePositiveRate, p.truePositiveRate, p.threshold])).toEqual([
      [0, 0, Number.POSITIVE_INFINITY],
      [0, 0.5, 0.8],
      [0.5, 0.5, 0.4],
      [0.5, 1, 0.35],
      [1, 1, 0.1],
    ]);
  });

  it('merges tied scores into one step and its area equals rocAuc', () => {
    const labels = [0, 1, 0, 1, 1, 0];
    const pDog = [0.5, 0.5, 0.2, 0.9, 0.3, 0.3];
    const points = rocCurve(labels, pDog);
    expect(points).toHaveLength(5);
    let area = 0;
    for (let i = 1; i < points.length; i++) {
      const [a, b] = [points[i - 1]!, points[i]!];
      area += ((b.falsePositiveRate - a.falsePositiveRate) * (a.truePositiveRate + b.truePositiveRate)) / 2;
    }
    expect(area).toBeCloseTo(rocAuc(labels, pDog), 12);
  });
});
