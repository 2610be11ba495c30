import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';

const draws = (seed: number, count: number): number[] => Array.from({ length: count }, seededRandom(seed));

describe('seededRandom', () => {
  it('replays the same sequence for the same seed and a different one for another seed', () => {
    expect(draws(42, 100)).toEqual(draws(42, 100));
    expect(draws(42, 100)).not.toEqual(draws(43, 100));
  });

  it('is uniform on [0, 1): every decile gets about a tenth of the draws', () => {
    const sample = draws(7, 100_000);
    expect(sample.filter((value) => value < 0 || value >= 1)).toEqual([]);
    const deciles = new Array<number>(10).fill(0);
    for (const value of sample) deciles[Math.floor(value * 10)]!++;
    for (const count of deciles) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});
