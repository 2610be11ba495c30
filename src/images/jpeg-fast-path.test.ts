import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { kaggleFiles, kaggleFullRes, skipWithoutShared } from '../../test/support/shared.js';
import { decodeToRgb, DECODE_ID } from './decode.js';
import { progressiveScanBomb } from '../../test/support/jpeg-scan-bomb.mjs';
import { decodeJpegScaled, findJpegWarning, jpegFastPathAvailable, type FastJpegDecode } from './jpeg-fast-path.js';
import { seededRandom } from './random.js';

const noPixelLimit = 0x3fff * 0x3fff;
const noScanLimit = 0xffff_ffff;

/** The first `perClass` full-size photos of each class at least `minSide` on both sides (a few are smaller). */
async function fullResPhotos(perClass: number, minSide = 224): Promise<Buffer[]> {
  const photos: Buffer[] = [];
  for (const label of ['cat', 'dog']) {
    const files = fs.readdirSync(path.join(kaggleFullRes, label)).sort();
    let taken = 0;
    for (const name of files) {
      if (taken === perClass) break;
      const bytes = fs.readFileSync(path.join(kaggleFullRes, label, name));
      const { width, height } = await sharp(bytes).metadata();
      if (Math.min(width, height) < minSide) continue;
      photos.push(bytes);
      taken++;
    }
  }
  return photos;
}

/** `jpeg` with an EXIF segment holding only the orientation tag, as a camera writes it (sharp adds an ICC profile too). */
function withExifOrientation(jpeg: Uint8Array, orientation: number): Uint8Array {
  const tiff = [0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0];
  const payload = [...new TextEncoder().encode('Exif\0\0'), ...tiff];
  const segment = [0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload];
  return Uint8Array.from([...jpeg.subarray(0, 2), ...segment, ...jpeg.subarray(2)]);
}

/** What the sharp path of `decodeToRgb` makes of a plain JPEG. */
const sharpSquash = async (bytes: Uint8Array, size: number): Promise<Uint8Array> =>
  new Uint8Array(await sharp(bytes).rotate().resize(size, size, { fit: 'fill', kernel: 'linear' }).toColourspace('srgb').raw().toBuffer());

const meanAbsoluteDifference = (a: Uint8Array, b: Uint8Array): number => {
  expect(a.length).toBe(b.length);
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs(a[i]! - b[i]!);
  return total / a.length;
};

const channelMeans = (rgb: Uint8Array): number[] => {
  const sums = [0, 0, 0];
  rgb.forEach((value, i) => (sums[i % 3]! += value));
  return sums.map((sum) => sum / (rgb.length / 3));
};

function pixelsOf(result: FastJpegDecode): Uint8Array {
  if (!('pixels' in result)) throw new Error(`expected the fast path to decode, it declined: ${result.declined}`);
  return result.pixels;
}

function declinedReason(result: FastJpegDecode): string {
  if ('pixels' in result) throw new Error('expected the fast path to decline, it decoded');
  return result.declined;
}

describe('DECODE_ID', () => {
  it('says whether JPEGs are decoded by the fast path, whose pixels differ from sharp\'s', () => {
    expect(DECODE_ID).toBe(jpegFastPathAvailable ? 'squash-linear-jpeg-dct-scaled-enlarging' : 'squash-linear');
  });
});

describe.skipIf(!jpegFastPathAvailable || skipWithoutShared)('the DCT-scaled JPEG fast path', () => {
  // A 499×376 photo is decoded at 5/8 (312×235) for 224 px and at 3/8 (188×141) for 128 px, then reduced.
  it.each([224, 128])('gives nearly sharp\'s pixels for full-size photos at %i px: same colours, same orientation', async (size) => {
    const photos = await fullResPhotos(8);
    const differences: number[] = [];
    for (const bytes of photos) {
      const fast = pixelsOf(await decodeJpegScaled(bytes, size, noPixelLimit, noScanLimit));
      const reference = await sharpSquash(bytes, size);
      differences.push(meanAbsoluteDifference(fast, reference));
      channelMeans(fast).forEach((mean, channel) => expect(Math.abs(mean - channelMeans(reference)[channel]!)).toBeLessThan(1));
      // Mirrored, the same photo is far from sharp's pixels: the small difference above is not a blurry match.
      const mirrored = new Uint8Array(await sharp(reference, { raw: { width: size, height: size, channels: 3 } }).flop().raw().toBuffer());
      expect(meanAbsoluteDifference(fast, mirrored)).toBeGreaterThan(3 * differences.at(-1)!);
    }
    // sharp's own linear and lanczos3 filters differ by 1.5-1.8 grey levels on these photos.
    expect(differences.reduce((sum, difference) => sum + difference, 0) / differences.length).toBeLessThan(3.5);
    for (const difference of differences) expect(difference).toBeLessThan(6.5);
  });

  // A 200×200 kaggle-dev photo is enlarged inside the IDCT at 9/8 (225×225) for 224 px, then reduced by the filter.
  it('gives nearly sharp\'s pixels for 200×200 photos enlarged to 224 px: same colours, same orientation', async () => {
    const photos = [...kaggleFiles('cat', 8), ...kaggleFiles('dog', 8)].map((file) => fs.readFileSync(file));
    const differences: number[] = [];
    for (const bytes of photos) {
      expect(await sharp(bytes).metadata()).toMatchObject({ width: 200, height: 200 });
      const fast = pixelsOf(await decodeJpegScaled(bytes, 224, noPixelLimit, noScanLimit));
      const reference = await sharpSquash(bytes, 224);
      differences.push(meanAbsoluteDifference(fast, reference));
      channelMeans(fast).forEach((mean, channel) => expect(Math.abs(mean - channelMeans(reference)[channel]!)).toBeLessThan(1));
      const mirrored = new Uint8Array(await sharp(reference, { raw: { width: 224, height: 224, channels: 3 } }).flop().raw().toBuffer());
      expect(meanAbsoluteDifference(fast, mirrored)).toBeGreaterThan(3 * differences.at(-1)!);
    }
    // The IDCT's 9/8 interpolation keeps detail that sharp's bilinear enlargement smooths: 1.8-6.2 grey levels apart
    // on these photos (4.7 on average), against 1.9 for shrinks; held-out accuracy is unchanged (docs/benchmarks.md,
    // "Speed work: preprocessing").
    expect(differences.reduce((sum, difference) => sum + difference, 0) / differences.length).toBeLessThan(6);
    for (const difference of differences) expect(difference).toBeLessThan(9);
    expect((await decodeToRgb(photos[0]!, 224)).data).toEqual(pixelsOf(await decodeJpegScaled(photos[0]!, 224, noPixelLimit, noScanLimit)));
  });

  it('is what decodeToRgb returns for a plain full-size JPEG', async () => {
    const [photo] = await fullResPhotos(1);
    const fast = pixelsOf(await decodeJpegScaled(photo!, 224, noPixelLimit, noScanLimit));
    expect((await decodeToRgb(photo!, 224)).data).toEqual(fast);
  });

  it('decodes greyscale and progressive JPEGs, greyscale as R = G = B', async () => {
    const [photo] = await fullResPhotos(1);
    const grey = await sharp(photo!).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer();
    expect(await sharp(grey).metadata()).toMatchObject({ channels: 1 });
    const greyPixels = pixelsOf(await decodeJpegScaled(grey, 128, noPixelLimit, noScanLimit));
    for (let i = 0; i < greyPixels.length; i += 3) expect(greyPixels[i + 1]).toBe(greyPixels[i]);
    expect(meanAbsoluteDifference(greyPixels, await sharpSquash(grey, 128))).toBeLessThan(3.5);

    const progressive = await sharp(photo!).jpeg({ quality: 90, progressive: true }).toBuffer();
    expect(await sharp(progressive).metadata()).toMatchObject({ isProgressive: true });
    expect(meanAbsoluteDifference(pixelsOf(await decodeJpegScaled(progressive, 224, noPixelLimit, noScanLimit)), await sharpSquash(progressive, 224))).toBeLessThan(3.5);
  });

  it('leaves to sharp what it would not display as sharp does: CMYK, an ICC profile, an EXIF rotation, more than 2× enlargement', async () => {
    const [photo] = await fullResPhotos(1);
    const cmyk = await sharp(photo!).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer();
    expect(declinedReason(await decodeJpegScaled(cmyk, 64, noPixelLimit, noScanLimit))).toMatch(/colour space/);
    const withProfile = await sharp(photo!).withIccProfile('p3').jpeg({ quality: 90 }).toBuffer();
    expect(declinedReason(await decodeJpegScaled(withProfile, 64, noPixelLimit, noScanLimit))).toMatch(/ICC profile/);
    const rotated = withExifOrientation(photo!, 6);
    expect(await sharp(rotated).metadata()).toMatchObject({ orientation: 6 });
    expect(declinedReason(await decodeJpegScaled(rotated, 64, noPixelLimit, noScanLimit))).toMatch(/EXIF orientation/);
    expect(pixelsOf(await decodeJpegScaled(withExifOrientation(photo!, 1), 64, noPixelLimit, noScanLimit))).toEqual(
      pixelsOf(await decodeJpegScaled(photo!, 64, noPixelLimit, noScanLimit)),
    );
    const { width, height } = await sharp(photo!).metadata();
    pixelsOf(await decodeJpegScaled(photo!, 2 * Math.min(width, height), noPixelLimit, noScanLimit));
    expect(declinedReason(await decodeJpegScaled(photo!, 2 * Math.min(width, height) + 1, noPixelLimit, noScanLimit))).toBe('enlargement beyond 2x');
    pixelsOf(await decodeJpegScaled(photo!, 64, width * height, noScanLimit));
    expect(declinedReason(await decodeJpegScaled(photo!, 64, width * height - 1, noScanLimit))).toBe('more pixels than allowed');

    // Through decodeToRgb each still comes out as sharp makes it, and displayed upright.
    const rotatedImage = await decodeToRgb(rotated, 64);
    expect(rotatedImage.data).toEqual(await sharpSquash(rotated, 64));
    expect((await decodeToRgb(cmyk, 64)).data).toHaveLength(64 * 64 * 3);
  });

  it('declines damaged, empty and non-JPEG bytes without crashing, leaving the error to sharp', async () => {
    const [photo] = await fullResPhotos(1);
    expect(declinedReason(await decodeJpegScaled(photo!.subarray(0, photo!.length >> 1), 64, noPixelLimit, noScanLimit))).toMatch(/premature end/i);
    expect(declinedReason(await decodeJpegScaled(photo!.subarray(0, 400), 64, noPixelLimit, noScanLimit))).toMatch(/libjpeg/);
    const random = seededRandom(7);
    const damaged = Uint8Array.from(photo!);
    for (let i = 2000; i < damaged.length; i += 50) damaged[i] = Math.floor(random() * 256);
    expect(declinedReason(await decodeJpegScaled(damaged, 64, noPixelLimit, noScanLimit))).toMatch(/libjpeg/);
    for (const bytes of [
      new Uint8Array(),
      Uint8Array.from([0xff, 0xd8, 0xff]),
      Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256)),
      new Uint8Array(await sharp(photo!).png().toBuffer()),
    ]) {
      expect(declinedReason(await decodeJpegScaled(bytes, 64, noPixelLimit, noScanLimit))).toMatch(/libjpeg/);
    }
  });

  it('stops a progressive stream at its scan limit after reading one scan more, not after decoding them all', async () => {
    // 1,024² grey pixels in 1 + 63 × 14 = 883 valid scans: each walks all 16,384 blocks again.
    const bomb = progressiveScanBomb({ width: 1_024, height: 1_024, components: 1 });
    const started = performance.now();
    expect(declinedReason(await decodeJpegScaled(bomb, 64, noPixelLimit, 10))).toBe('more than 10 scans');
    expect(await findJpegWarning(bomb, 10)).toBe('more than 10 scans');
    const limited = performance.now() - started;
    const full = performance.now();
    expect(await findJpegWarning(bomb, noScanLimit)).toBeNull();
    // Both limited runs together read 11 of 883 scans; the unlimited one reads them all.
    expect(limited).toBeLessThan(performance.now() - full);
  });

  it('names the warning of a JPEG whose entropy data is corrupt or cut short, which decoders otherwise fill with grey', async () => {
    const [photo] = await fullResPhotos(1);
    expect(await findJpegWarning(photo!, 100)).toBeNull();
    const entropyStart = photo!.length >> 2;
    const corrupt = Uint8Array.from(photo!);
    const random = seededRandom(11);
    for (let i = entropyStart; i < corrupt.length - 2; i++) corrupt[i] = Math.floor(random() * 255);
    expect(await findJpegWarning(corrupt, 100)).toMatch(/^libjpeg (warning|error): /);
    // Cut short, then closed with an end-of-image marker so that it looks complete.
    const truncated = Uint8Array.from([...photo!.subarray(0, photo!.length >> 1), 0xff, 0xd9]);
    expect(await findJpegWarning(truncated, 100)).toMatch(/^libjpeg warning: /);
  });
});
