import { describe, expect, it } from 'vitest';
import { seededRandom } from '../images/random.js';
import { applyTemperature, expectedCalibrationError, fitTemperature, logit, reliability, temperedLogLoss } from './calibration.js';

/** Labels drawn from sigmoid(z), reported as sigmoid(sharpness · z): a model over-confident by `sharpness`. */
function overConfident(count: number, sharpness: number, seed: number): { labels: number[]; pDog: number[] } {
  const random = seededRandom(seed);
  const labels: number[] = [];
  const pDog: number[] = [];
  for (let i = 0; i < count; i++) {
    const z = (random() - 0.5) * 8;
    labels.push(random() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
    pDog.push(1 / (1 + Math.exp(-sharpness * z)));
  }
  return { labels, pDog };
}

describe('reliability and ECE', () => {
  it('matches a worked example by hand', () => {
    // Confidences 0.9, 0.6, 0.8, 0.55 all right; 0.7 (a cat called dog) wrong. 15 bins of width 1/15.
    const labels = [1, 1, 0, 0, 0];
    const pDog = [0.9, 0.6, 0.2, 0.45, 0.7];
    const { ece, bins } = reliability(labels, pDog);
    expect(bins).toHaveLength(15);
    expect(ece).toBeCloseTo((0.1 + 0.4 + 0.2 + 0.45 + 0.7) / 5, 12);
    expect(bins[13]).toMatchObject({ count: 1, accuracy: 1 });
    expect(bins[13]!.confidence).toBeCloseTo(0.9, 12);
    expect(bins[10]).toMatchObject({ count: 1, accuracy: 0 });
    expect(bins[9]!.count + bins[8]!.count + bins[12]!.count).toBe(3);
    expect(bins.reduce((sum, bin) => sum + bin.count, 0)).toBe(5);
    expect(bins[0]).toEqual({ lower: 0, upper: 1 / 15, confidence: 0, accuracy: 0, count: 0 });
  });

  it('is 0 for certain, right predictions and puts confidence 1 in the last bin', () => {
    expect(expectedCalibrationError([1, 0], [1, 0])).toBe(0);
    expect(reliability([1], [1]).bins[14]!.count).toBe(1);
  });
});

describe('temperature scaling', () => {
  it('leaves p unchanged at T = 1, softens above 1 and keeps the side of 0.5', () => {
    expect(applyTemperature(0.9, 1)).toBe(0.9);
    expect(applyTemperature(0.9, 2)).toBeCloseTo(1 / (1 + Math.exp(-logit(0.9) / 2)), 12);
    expect(applyTemperature(0.9, 2)).toBeLessThan(0.9);
    expect(applyTemperature(0.2, 3)).toBeLessThan(0.5);
  });

  it('recovers the over-confidence factor of a synthetic model and lowers its ECE', () => {
    const { labels, pDog } = overConfident(20_000, 3, 7);
    const temperature = fitTemperature(labels, pDog);
    expect(temperature).toBeGreaterThan(2.8);
    expect(temperature).toBeLessThan(3.2);
    const calibrated = pDog.map((p) => applyTemperature(p, temperature));
    expect(expectedCalibrationError(labels, pDog)).toBeGreaterThan(0.05);
    expect(expectedCalibrationError(labels, calibrated)).toBeLessThan(0.02);
    expect(temperedLogLoss(labels, pDog, temperature)).toBeLessThan(temperedLogLoss(labels, pDog, 1));
  });

  it('sharpens an under-confident model (T < 1)', () => {
    const { labels, pDog } = overConfident(20_000, 0.5, 11);
    expect(fitTemperature(labels, pDog)).toBeCloseTo(0.5, 1);
  });

  it('returns 1 when there is nothing to fit', () => {
    expect(fitTemperature([], [])).toBe(1);
  });
});
