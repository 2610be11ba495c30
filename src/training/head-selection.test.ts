import { describe, expect, it } from 'vitest';
import { seededRandom } from '../images/index.js';
import { initTensorflow } from '../ml/index.js';
import { foldOf, HEAD_L2_GRID, selectHeadL2 } from './head-selection.js';

const options = { grid: HEAD_L2_GRID, folds: 5, epochs: 12, learningRate: 0.01, batchSize: 16, seed: 3 };

/** Gaussian features (Box–Muller) from a seeded generator. */
function gaussianRows(count: number, width: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Array.from({ length: count }, () => Float32Array.from({ length: width }, normal));
}

describe('choosing the logistic head\'s L2 weight by cross-validation', () => {
  it('puts a photo in the same fold whatever else the data set holds', () => {
    const hashes = Array.from({ length: 50 }, (_, i) => (i * 2654435761).toString(16).padStart(64, '0'));
    // The fold is read from the hash's last 32 bits alone: pinned, since a change would move photos between folds.
    expect(foldOf(`${'0'.repeat(56)}0000000b`, 5)).toBe(1);
    expect(foldOf(`${'f'.repeat(56)}0000000b`, 5)).toBe(1);
    expect(foldOf(`${'a'.repeat(56)}ffffffff`, 7)).toBe(4294967295 % 7);
    expect(new Set(hashes.map((hash) => foldOf(hash, 5)))).toEqual(new Set([0, 1, 2, 3, 4]));
  });

  it('answers each photo with a regression that never learned from it', async () => {
    const { tf } = await initTensorflow();
    // One feature of its own per photo and random labels: only a regression that trained on a photo can know its label.
    const count = 60;
    const features = Array.from({ length: count }, (_, photo) => Float32Array.from({ length: count }, (_, i) => (i === photo ? 4 : 0)));
    const random = seededRandom(11);
    const labels = features.map(() => (random() < 0.5 ? 1 : 0));
    const selection = await selectHeadL2(tf, { features, augmented: features, labels, folds: features.map((_, i) => i % 5) }, options);
    expect(selection.outOfFold.pDog).toHaveLength(count);
    // A regression that learned from a photo answers its label (all 60 right after 12 epochs); one that did not can only guess.
    const right = selection.outOfFold.pDog.filter((p, i) => (p >= 0.5 ? 1 : 0) === labels[i]).length;
    expect(right / count).toBeLessThan(0.75);
  });

  it('learns a separable rule and reports every weight of the grid with its best epoch', async () => {
    const { tf } = await initTensorflow();
    const features = gaussianRows(200, 32, 5);
    const labels = features.map((row) => (row[0]! + 0.5 * row[1]! > 0 ? 1 : 0));
    const mirrored = features.map((row) => Float32Array.from(row, (value, i) => (i < 2 ? value : -value)));
    const selection = await selectHeadL2(tf, { features, augmented: mirrored, labels, folds: features.map((_, i) => i % 5) }, options);
    expect(selection.candidates.map((candidate) => candidate.l2)).toEqual([...HEAD_L2_GRID]);
    for (const candidate of selection.candidates) expect(candidate.epochs).toBeGreaterThanOrEqual(1);
    expect(selection.chosen.outOfFoldAccuracy).toBeGreaterThan(0.9);
    expect(selection.chosen.outOfFoldLoss).toBe(Math.min(...selection.candidates.map((candidate) => candidate.outOfFoldLoss)));
    // The strongest penalty keeps the weights too small for confident answers on this rule: a weaker one wins.
    expect(selection.chosen.l2).toBeLessThan(HEAD_L2_GRID.at(-1)!);
  });

  it('prefers a strong penalty when the features carry no signal', async () => {
    const { tf } = await initTensorflow();
    const features = gaussianRows(100, 200, 9);
    const random = seededRandom(13);
    const labels = features.map(() => (random() < 0.5 ? 1 : 0));
    const selection = await selectHeadL2(tf, { features, augmented: [], labels, folds: features.map((_, i) => i % 5) }, options);
    expect(selection.chosen.l2).toBeGreaterThan(HEAD_L2_GRID[0]);
    expect(selection.chosen.outOfFoldAccuracy).toBeLessThan(0.7);
  });
});
