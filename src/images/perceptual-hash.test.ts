import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kaggleDev, kaggleFullRes, skipWithoutShared } from '../../test/support/shared.js';
import { hammingDistance, NEAR_DUPLICATE_DISTANCE, nearDuplicateGroups, perceptualHash } from './perceptual-hash.js';

const PAIRS_PER_CLASS = 40;

describe.skipIf(skipWithoutShared)('perceptual hash', () => {
  it('puts the same Kaggle photo at 200 px and at full size within the near-duplicate distance, and different photos beyond it', async () => {
    const photos: { name: string; small: string; large: string }[] = [];
    for (const label of ['cat', 'dog']) {
      const names = fs.readdirSync(path.join(kaggleFullRes, label)).sort().slice(0, PAIRS_PER_CLASS);
      for (const name of names) {
        const [small, large] = await Promise.all([
          perceptualHash(fs.readFileSync(path.join(kaggleDev, label, name))),
          perceptualHash(fs.readFileSync(path.join(kaggleFullRes, label, name))),
        ]);
        expect(small).toMatch(/^[0-9a-f]{16}$/);
        photos.push({ name: `${label}/${name}`, small, large });
      }
    }
    for (const photo of photos) expect(hammingDistance(photo.small, photo.large), photo.name).toBeLessThanOrEqual(NEAR_DUPLICATE_DISTANCE);
    for (let i = 0; i < photos.length; i++) {
      for (let j = i + 1; j < photos.length; j++) {
        expect(hammingDistance(photos[i]!.small, photos[j]!.small), `${photos[i]!.name} vs ${photos[j]!.name}`).toBeGreaterThan(NEAR_DUPLICATE_DISTANCE);
      }
    }

    const stored = photos.flatMap((photo) => [
      { name: photo.name, size: 'small', perceptualHash: photo.small },
      { name: photo.name, size: 'large', perceptualHash: photo.large },
    ]);
    const groups = nearDuplicateGroups(stored);
    expect(groups).toHaveLength(photos.length);
    for (const group of groups) expect(group.map((member) => member.size).sort(), group[0]!.name).toEqual(['large', 'small']);
    for (const group of groups) expect(new Set(group.map((member) => member.name)).size).toBe(1);
  });

  it('counts differing bits over all 64', () => {
    expect(hammingDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hammingDistance('8000000000000001', '0000000000000000')).toBe(2);
    expect(hammingDistance('0123456789abcdef', '0123456789abcdef')).toBe(0);
  });
});
