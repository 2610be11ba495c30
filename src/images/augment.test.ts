import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { augment, type AugmentationConfig } from './augment.js';
import { decodeToRgb } from './decode.js';
import { seededRandom } from './random.js';

const nothing: AugmentationConfig = {
  horizontalFlip: { enabled: false, probability: 0.5 },
  rotation: { enabled: false, maxDegrees: 15 },
  zoom: { enabled: false, maxFraction: 0.15 },
  brightness: { enabled: false, maxDelta: 0.2 },
  contrast: { enabled: false, maxFraction: 0.2 },
  grayscale: { enabled: false, probability: 0.1 },
};

const everything: AugmentationConfig = {
  horizontalFlip: { enabled: true, probability: 0.5 },
  rotation: { enabled: true, maxDegrees: 15 },
  zoom: { enabled: true, maxFraction: 0.15 },
  brightness: { enabled: true, maxDelta: 0.2 },
  contrast: { enabled: true, maxFraction: 0.2 },
  grayscale: { enabled: true, probability: 0.1 },
};

const only = (overrides: Partial<AugmentationConfig>): AugmentationConfig => ({ ...nothing, ...overrides });

/** Every draw returns `value`: makes the random parameters known (e.g. 1 − ε → the maximum of each range). */
const constantDraws = (value: number) => (): number => value;

const pixel = (pixels: Uint8Array, size: number, x: number, y: number): number[] =>
  Array.from(pixels.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

const channelMean = (pixels: Uint8Array, channel: number): number => {
  let sum = 0;
  for (let i = channel; i < pixels.length; i += 3) sum += pixels[i]!;
  return sum / (pixels.length / 3);
};

const channelDeviation = (pixels: Uint8Array, channel: number): number => {
  const mean = channelMean(pixels, channel);
  let sum = 0;
  for (let i = channel; i < pixels.length; i += 3) sum += (pixels[i]! - mean) ** 2;
  return Math.sqrt(sum / (pixels.length / 3));
};

/** R = 2x, G = 2y, B = 100: a linear image, so bilinear resampling of it is exactly predictable. */
function gradient(size: number): Uint8Array {
  const pixels = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) pixels.set([2 * x, 2 * y, 100], (y * size + x) * 3);
  }
  return pixels;
}

describe.skipIf(skipWithoutShared)('augment on a real photo', () => {
  // Odd, so that one pixel sits exactly on the centre of rotation.
  const size = 65;
  let photo: Uint8Array;
  beforeAll(async () => {
    photo = (await decodeToRgb(fs.readFileSync(kaggleFiles('cat', 1, 11)[0]!), size)).data;
  });

  it('returns identical pixels in a new array when everything is disabled, and never mutates its input', () => {
    const before = photo.slice();
    const unchanged = augment(photo, size, nothing, seededRandom(1));
    expect(unchanged).toEqual(photo);
    expect(unchanged).not.toBe(photo);
    augment(photo, size, everything, seededRandom(1));
    expect(photo).toEqual(before);
  });

  it('is a pure function of the seed', () => {
    const first = augment(photo, size, everything, seededRandom(123));
    expect(augment(photo, size, everything, seededRandom(123))).toEqual(first);
    expect(augment(photo, size, everything, seededRandom(124))).not.toEqual(first);
  });

  it('horizontal flip mirrors every row exactly, or not at all, by its probability', () => {
    const flipped = augment(photo, size, only({ horizontalFlip: { enabled: true, probability: 1 } }), seededRandom(5));
    for (const [x, y] of [[0, 0], [3, 40], [64, 64], [32, 10]] as const) {
      expect(pixel(flipped, size, x, y)).toEqual(pixel(photo, size, size - 1 - x, y));
    }
    const flippedBack = augment(flipped, size, only({ horizontalFlip: { enabled: true, probability: 1 } }), seededRandom(6));
    expect(flippedBack).toEqual(photo);
    expect(augment(photo, size, only({ horizontalFlip: { enabled: true, probability: 0 } }), seededRandom(5))).toEqual(photo);
  });

  it('grayscale puts the BT.601 luma in all three channels', () => {
    const gray = augment(photo, size, only({ grayscale: { enabled: true, probability: 1 } }), seededRandom(2));
    const wrongPixels: number[] = [];
    for (let i = 0; i < gray.length; i += 3) {
      const luma = 0.299 * photo[i]! + 0.587 * photo[i + 1]! + 0.114 * photo[i + 2]!;
      const isLuma = gray[i] === gray[i + 1] && gray[i] === gray[i + 2] && Math.abs(gray[i]! - luma) <= 0.5;
      if (!isLuma) wrongPixels.push(i / 3);
    }
    expect(wrongPixels).toEqual([]);
    expect(new Set(gray).size).toBeGreaterThan(50);
  });

  it('brightness shifts every channel by the drawn delta, clamped to 0..255', () => {
    const config = only({ brightness: { enabled: true, maxDelta: 0.2 } });
    const brighter = augment(photo, size, config, constantDraws(1 - 1e-9));
    const darker = augment(photo, size, config, constantDraws(0));
    for (const i of [0, 1, 2, 500, 7000, photo.length - 1]) {
      expect(brighter[i]).toBe(Math.min(255, photo[i]! + 51));
      expect(darker[i]).toBe(Math.max(0, photo[i]! - 51));
    }
    for (const channel of [0, 1, 2]) {
      expect(channelMean(brighter, channel)).toBeGreaterThan(channelMean(photo, channel) + 30);
      expect(channelMean(darker, channel)).toBeLessThan(channelMean(photo, channel) - 30);
    }
  });

  it('contrast widens or narrows the spread around each channel mean, keeping the mean', () => {
    const config = only({ contrast: { enabled: true, maxFraction: 0.3 } });
    const stronger = augment(photo, size, config, constantDraws(1 - 1e-9));
    const weaker = augment(photo, size, config, constantDraws(0));
    for (const channel of [0, 1, 2]) {
      const spread = channelDeviation(photo, channel);
      expect(channelDeviation(weaker, channel)).toBeCloseTo(spread * 0.7, 0);
      // Less than the full 1.3: the stretched extremes clip at 0 and 255.
      expect(channelDeviation(stronger, channel)).toBeGreaterThan(spread * 1.1);
      expect(Math.abs(channelMean(weaker, channel) - channelMean(photo, channel))).toBeLessThan(1);
    }
  });

  it('rotation keeps the centre pixel and turns the rest; 90° is an exact quarter turn counter-clockwise', () => {
    const centre = (size - 1) / 2;
    const tilted = augment(photo, size, only({ rotation: { enabled: true, maxDegrees: 20 } }), constantDraws(0.9));
    expect(pixel(tilted, size, centre, centre)).toEqual(pixel(photo, size, centre, centre));
    expect(tilted).not.toEqual(photo);

    // A draw of 0.75 is three quarters of the way from −180° to +180°: +90°.
    const quarterTurn = augment(photo, size, only({ rotation: { enabled: true, maxDegrees: 180 } }), constantDraws(0.75));
    // Counter-clockwise on screen: what was at the bottom of a column is now at the right of a row.
    const expected = new Uint8Array(photo.length);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) expected.set(pixel(photo, size, size - 1 - y, x), (y * size + x) * 3);
    }
    expect(quarterTurn).toEqual(expected);
  });

  it('toggling one augmentation leaves the random choices of the others unchanged', () => {
    const rotation = only({ rotation: { enabled: true, maxDegrees: 30 } });
    const grayscale = only({ grayscale: { enabled: true, probability: 1 } });
    const rotatedThenGray = augment(photo, size, { ...rotation, grayscale: grayscale.grayscale }, seededRandom(9));
    const rotatedOnly = augment(photo, size, rotation, seededRandom(9));
    expect(rotatedThenGray).toEqual(augment(rotatedOnly, size, grayscale, seededRandom(9)));
  });
});

describe('augment geometry on a linear gradient', () => {
  const size = 101;
  const centre = (size - 1) / 2;
  const source = gradient(size);

  it('zoom crops the centre and stretches it back: a slope of 2 becomes 2 / (1 − fraction)', () => {
    // Draw 0.5: a crop of half the maximum fraction (0.2 → 0.1), centred.
    const zoomed = augment(source, size, only({ zoom: { enabled: true, maxFraction: 0.2 } }), constantDraws(0.5));
    const scale = 0.9;
    for (const [x, y] of [[0, 0], [10, 90], [50, 50], [100, 33]] as const) {
      const expected = [2 * (centre + scale * (x - centre)), 2 * (centre + scale * (y - centre)), 100];
      pixel(zoomed, size, x, y).forEach((value, channel) => expect(Math.abs(value - expected[channel]!)).toBeLessThanOrEqual(0.5));
    }
  });

  it('zoom moves the crop by the drawn offset, never past the border', () => {
    const zoomed = augment(source, size, only({ zoom: { enabled: true, maxFraction: 0.2 } }), constantDraws(1 - 1e-9));
    // The whole 20 % is cut from the top-left: the output shows source columns and rows 20..100.
    expect(pixel(zoomed, size, 0, 0)).toEqual([40, 40, 100]);
    expect(pixel(zoomed, size, size - 1, size - 1)).toEqual([200, 200, 100]);
  });

  it('flip and zoom together sample the mirrored crop in one pass', () => {
    const config = only({ horizontalFlip: { enabled: true, probability: 1 }, zoom: { enabled: true, maxFraction: 0.2 } });
    const flippedZoom = augment(source, size, config, constantDraws(0.5));
    for (const [x, y] of [[0, 0], [10, 90], [100, 33]] as const) {
      const mirroredX = size - 1 - x;
      const expected = [2 * (centre + 0.9 * (mirroredX - centre)), 2 * (centre + 0.9 * (y - centre)), 100];
      pixel(flippedZoom, size, x, y).forEach((value, channel) => expect(Math.abs(value - expected[channel]!)).toBeLessThanOrEqual(0.5));
    }
  });

  it('rotated corners are filled by reflecting the image at its border, not with black or a smeared edge', () => {
    const rotated = augment(source, size, only({ rotation: { enabled: true, maxDegrees: 45 } }), constantDraws(1 - 1e-9));
    // At +45° the top-left output pixel samples source (50, 50 − 50·√2) = (50, −20.7), which reflects to row 20.7.
    const reflectedRow = 50 * Math.SQRT2 - 50;
    expect(Math.abs(pixel(rotated, size, 0, 0)[0]! - 100)).toBeLessThanOrEqual(1);
    expect(Math.abs(pixel(rotated, size, 0, 0)[1]! - 2 * reflectedRow)).toBeLessThanOrEqual(1);
    expect(pixel(rotated, size, 0, 0)[2]).toBe(100);
  });

  it('refuses pixels whose length does not match size', () => {
    expect(() => augment(source, size - 1, nothing, seededRandom(1))).toThrow(RangeError);
  });
});
