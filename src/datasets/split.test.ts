import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { splitOf, type Split } from './split.js';

const hashes = Array.from({ length: 20_000 }, (_, i) => createHash('sha256').update(`image-${i}`).digest('hex'));
const ratios = { train: 0.7, validation: 0.2, test: 0.1 };

describe('splitOf', () => {
  it('follows the ratios on many images', () => {
    const counts: Record<Split, number> = { train: 0, validation: 0, test: 0 };
    for (const hash of hashes) counts[splitOf(hash, ratios, 42)] += 1;
    expect(counts.train / hashes.length).toBeCloseTo(0.7, 1);
    expect(counts.validation / hashes.length).toBeCloseTo(0.2, 1);
    expect(counts.test / hashes.length).toBeCloseTo(0.1, 1);
  });

  it('depends on the seed', () => {
    const moved = hashes.filter((hash) => splitOf(hash, ratios, 1) !== splitOf(hash, ratios, 2)).length;
    expect(moved).toBeGreaterThan(hashes.length * 0.2);
  });

  it('keeps test membership when only the train/validation balance changes', () => {
    const other = { train: 0.5, validation: 0.4, test: 0.1 };
    for (const hash of hashes) {
      expect(splitOf(hash, other, 42) === 'test').toBe(splitOf(hash, ratios, 42) === 'test');
    }
  });
});
