import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { progressiveScanBomb } from '../../test/support/jpeg-scan-bomb.mjs';
import { kaggleDev, kaggleFiles, kaggleFullRes, skipWithoutShared } from '../../test/support/shared.js';
import { configSchema } from '../config/schema.js';
import { CatdogError } from '../errors.js';
import {
  decodeToRgb,
  encodeJpeg,
  inspectAndDecodeToRgb,
  inspectImage,
  thumbnailJpeg,
  type RgbImage,
} from './decode.js';
import { ImageError, type ImageErrorCode } from './errors.js';
import type { ImageFormat } from './format.js';
import { seededRandom } from './random.js';

type Rgb = [number, number, number];
const red: Rgb = [255, 0, 0];
const green: Rgb = [0, 255, 0];
const blue: Rgb = [0, 0, 255];
const white: Rgb = [255, 255, 255];

const roomyLimits = { maxBytes: 20_000_000, maxPixels: 50_000_000, maxJpegScans: 100, maxJpegScanPixels: 5_000_000_000 };

const pixelAt = (image: RgbImage, x: number, y: number): number[] =>
  Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

const meanAbsoluteDifference = (a: Uint8Array, b: Uint8Array): number => {
  expect(a.length).toBe(b.length);
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs(a[i]! - b[i]!);
  return total / a.length;
};

function expectColour(actual: number[], expected: Rgb, tolerance: number): void {
  expect(actual).toHaveLength(3);
  actual.forEach((value, channel) => expect(Math.abs(value - expected[channel]!)).toBeLessThanOrEqual(tolerance));
}

async function expectImageError(promise: Promise<unknown>, code: ImageErrorCode, httpStatus: number): Promise<ImageError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ImageError);
  expect(error).toBeInstanceOf(CatdogError);
  expect(error).toMatchObject({ code, httpStatus });
  return error as ImageError;
}

/** A width × height image whose four quadrants have the given colours (top-left, top-right, bottom-left, bottom-right). */
function quadrants(width: number, height: number, colours: [Rgb, Rgb, Rgb, Rgb]): Sharp {
  const raw = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = colours[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]!;
      raw.set(colour, (y * width + x) * 3);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

const solid = (colour: Rgb, channels: 3 | 4 = 3, alpha = 1): Sharp =>
  sharp({ create: { width: 16, height: 16, channels, background: { r: colour[0], g: colour[1], b: colour[2], alpha } } });

/** A PNG whose IHDR declares the given size but whose IDAT holds only a few bytes: under a hundred bytes in all. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const crc32 = (bytes: Uint8Array): number => {
    let crc = 0xffffffff;
    for (const byte of bytes) {
      crc ^= byte;
      for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
    return (crc ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array): Uint8Array => {
    const bytes = new Uint8Array(12 + data.length);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, data.length);
    bytes.set(new TextEncoder().encode(type), 4);
    bytes.set(data, 8);
    view.setUint32(8 + data.length, crc32(bytes.subarray(4, 8 + data.length)));
    return bytes;
  };
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, adaptive filtering, not interlaced
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const pixelData = chunk('IDAT', zlib.deflateSync(new Uint8Array(8)));
  return new Uint8Array([...signature, ...chunk('IHDR', header), ...pixelData, ...chunk('IEND', new Uint8Array())]);
}

describe.skipIf(skipWithoutShared)('real photos in every accepted format', () => {
  const photo = fs.readFileSync(path.join(kaggleFullRes, 'dog', 'dog.5.jpg'));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-images-'));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  // Worst mean per-channel error against the lossless decode: GIF pays for its 256-colour palette.
  const encodings: Record<ImageFormat, { encode: (image: Sharp) => Sharp; tolerance: number }> = {
    png: { encode: (image) => image.png(), tolerance: 0 },
    jpeg: { encode: (image) => image.jpeg({ quality: 90 }), tolerance: 4 },
    webp: { encode: (image) => image.webp({ quality: 90 }), tolerance: 4 },
    avif: { encode: (image) => image.avif({ quality: 70, effort: 0 }), tolerance: 6 },
    gif: { encode: (image) => image.gif({ effort: 1 }), tolerance: 12 },
  };

  it.each(Object.keys(encodings) as ImageFormat[])('%s decodes by content under a misleading file name', async (format) => {
    const { encode, tolerance } = encodings[format];
    // What a user's upload looks like after it was saved under the wrong extension, or under no name at all.
    const misnamed = path.join(scratch, format === 'png' ? 'photo.jpg' : 'photo.png');
    fs.writeFileSync(misnamed, await encode(sharp(photo)).toBuffer());
    const bytes = new Uint8Array(fs.readFileSync(misnamed));

    expect(await inspectImage(bytes, roomyLimits)).toEqual({ format, width: 499, height: 376 });
    const reference = await decodeToRgb(await sharp(photo).png().toBuffer(), 96);
    const decoded = await decodeToRgb(bytes, 96);
    expect(meanAbsoluteDifference(decoded.data, reference.data)).toBeLessThanOrEqual(tolerance);
  });

  it('squashes a full-resolution photo to 224 and 128 the way the publisher squashed the 200×200 copy', async () => {
    // 327×499 original: cropping instead of squashing would misalign it with the 200×200 copy by a lot.
    const sameDogFull = fs.readFileSync(path.join(kaggleFullRes, 'dog', 'dog.1.jpg'));
    const sameDogSmall = fs.readFileSync(path.join(kaggleDev, 'dog', 'dog.1.jpg'));
    const otherPhotoFull = fs.readFileSync(path.join(kaggleFullRes, 'cat', 'cat.2.jpg'));
    for (const size of [224, 128]) {
      const full = await decodeToRgb(sameDogFull, size);
      expect(full).toMatchObject({ width: size, height: size, channels: 3 });
      expect(full.data).toHaveLength(size * size * 3);
      expect(full.data).not.toBeInstanceOf(Buffer);
      const small = await decodeToRgb(sameDogSmall, size);
      const other = await decodeToRgb(otherPhotoFull, size);
      const sameDistance = meanAbsoluteDifference(full.data, small.data);
      expect(sameDistance).toBeLessThan(12);
      expect(meanAbsoluteDifference(full.data, other.data)).toBeGreaterThan(3 * sameDistance);
    }
  });

  it('refuses a real photo cut in half as corrupt, both when inspecting and when decoding', async () => {
    const truncated = photo.subarray(0, photo.length >> 1);
    const inspected = await expectImageError(inspectImage(truncated, roomyLimits), 'image_corrupt', 422);
    expect(inspected.message).toMatch(/jpeg.*damaged or incomplete/i);
    await expectImageError(decodeToRgb(truncated, 64), 'image_corrupt', 422);
    await expectImageError(thumbnailJpeg(truncated, roomyLimits), 'image_corrupt', 422);
  });

  it('refuses a PNG whose compressed pixel data was damaged', async () => {
    const png = new Uint8Array(await sharp(photo).png().toBuffer());
    const damaged = png.slice();
    for (let i = 200; i < damaged.length - 200; i += 97) damaged[i] = damaged[i]! ^ 0x5a;
    await expectImageError(inspectImage(damaged, roomyLimits), 'image_corrupt', 422);
  });

  it('enforces the byte and pixel limits at their exact boundaries', async () => {
    const pixels = 499 * 376;
    await expect(inspectImage(photo, { ...roomyLimits, maxBytes: photo.length, maxPixels: pixels })).resolves.toMatchObject({
      format: 'jpeg',
    });
    const tooLarge = await expectImageError(
      inspectImage(photo, { ...roomyLimits, maxBytes: photo.length - 1, maxPixels: pixels }),
      'image_too_large',
      413,
    );
    expect(tooLarge.message).toContain(String(photo.length));
    await expectImageError(
      inspectImage(photo, { ...roomyLimits, maxBytes: photo.length, maxPixels: pixels - 1 }),
      'image_too_many_pixels',
      413,
    );
  });

  it('refuses an output size that is not a positive whole number of pixels', async () => {
    await expect(decodeToRgb(photo, 0)).rejects.toThrow(RangeError);
    await expect(thumbnailJpeg(photo, roomyLimits, 12.5)).rejects.toThrow(RangeError);
  });

  it('makes a JPEG thumbnail that fits inside the box, keeps the aspect ratio and never enlarges', async () => {
    const thumbnail = await thumbnailJpeg(photo, roomyLimits, 128);
    const meta = await sharp(thumbnail).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 128 });
    expect(Math.abs(meta.height - (128 * 376) / 499)).toBeLessThanOrEqual(1);
    const small = fs.readFileSync(kaggleFiles('cat', 1)[0]!);
    expect(await sharp(await thumbnailJpeg(small, roomyLimits)).metadata()).toMatchObject({ width: 200, height: 200 });
  });
});

describe.skipIf(skipWithoutShared)('one decode to validate and predict', () => {
  const photo = fs.readFileSync(path.join(kaggleFullRes, 'dog', 'dog.5.jpg')); // 499×376

  const samePixels = (a: RgbImage, b: RgbImage): boolean =>
    a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

  it('inspectAndDecodeToRgb answers inspectImage\'s facts and decodeToRgb\'s pixels, and refuses what inspectImage refuses', async () => {
    const { info, rgb } = await inspectAndDecodeToRgb(photo, roomyLimits, 224);
    expect(info).toEqual(await inspectImage(photo, roomyLimits));
    expect(samePixels(rgb, await decodeToRgb(photo, 224))).toBe(true);

    await expectImageError(inspectAndDecodeToRgb(photo.subarray(0, photo.length >> 1), roomyLimits, 224), 'image_corrupt', 422);
    await expectImageError(inspectAndDecodeToRgb(photo, { ...roomyLimits, maxBytes: photo.length - 1, maxPixels: 499 * 376 }, 224), 'image_too_large', 413);
    const tooMany = await expectImageError(inspectAndDecodeToRgb(photo, { ...roomyLimits, maxBytes: photo.length, maxPixels: 499 * 376 - 1 }, 224), 'image_too_many_pixels', 413);
    expect(tooMany.details).toMatchObject({ width: 499, height: 376 });
    await expectImageError(inspectAndDecodeToRgb(new TextEncoder().encode('<!doctype html>'), roomyLimits, 224), 'image_unsupported_format', 415);
    await expect(inspectAndDecodeToRgb(photo, roomyLimits, 0)).rejects.toThrow(RangeError);
  });
});

describe('EXIF orientation', () => {
  // Stored 60 wide × 40 high, left half red and right half blue; orientation 6 means "rotate 90° clockwise to display".
  const storedSideways = (): Promise<Buffer> =>
    quadrants(60, 40, [red, blue, red, blue]).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();

  it('reports the displayed size, with width and height swapped', async () => {
    const bytes = await storedSideways();
    expect(await sharp(bytes).metadata()).toMatchObject({ width: 60, height: 40, orientation: 6 });
    expect(await inspectImage(bytes, roomyLimits)).toEqual({ format: 'jpeg', width: 40, height: 60 });
  });

  it('rotates the pixels: the stored left half ends up on top', async () => {
    const image = await decodeToRgb(await storedSideways(), 32);
    expectColour(pixelAt(image, 16, 2), red, 12);
    expectColour(pixelAt(image, 16, 29), blue, 12);
  });

  it('orients the thumbnail and strips the metadata that said how', async () => {
    const thumbnail = await thumbnailJpeg(await storedSideways(), roomyLimits);
    const meta = await sharp(thumbnail).metadata();
    expect(meta).toMatchObject({ width: 40, height: 60 });
    expect(meta.orientation).toBeUndefined();
    expect(meta.exif).toBeUndefined();
  });
});

describe('resampling to the model\'s size', () => {
  // A full-size photo's shape, squashed to 224 px as for MobileNet: a shrink of 2.2 across and 1.7 down.
  const width = 499;
  const height = 376;
  const columns = (level: (x: number) => number): Sharp =>
    sharp(Uint8Array.from({ length: width * height * 3 }, (_, i) => level(Math.floor(i / 3) % width)), { raw: { width, height, channels: 3 } });
  const range = (data: Uint8Array): [number, number] => [data.reduce((a, b) => Math.min(a, b), 255), data.reduce((a, b) => Math.max(a, b), 0)];

  it('keeps a sharp edge between its two levels, where sharp\'s default lanczos3 overshoots both', async () => {
    const edge = columns((x) => (x < width / 2 ? 64 : 192));
    expect(range((await decodeToRgb(await edge.clone().png().toBuffer(), 224)).data)).toEqual([64, 192]);
    const [darkest, brightest] = range(await edge.clone().resize(224, 224, { fit: 'fill' }).raw().toBuffer());
    expect(darkest).toBeLessThan(64);
    expect(brightest).toBeGreaterThan(192);
  });

  it('averages one-pixel stripes to grey instead of picking some of them', async () => {
    const stripes = columns((x) => (x % 2 ? 255 : 0));
    const [darkest, brightest] = range((await decodeToRgb(await stripes.clone().png().toBuffer(), 224)).data);
    expect(darkest).toBeGreaterThan(80);
    expect(brightest).toBeLessThan(175);
    expect(range(await stripes.clone().resize(224, 224, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer())).toEqual([0, 255]);
  });
});

describe('channel order and layout', () => {
  it.each([
    ['PNG', 'red', red],
    ['PNG', 'blue', blue],
    ['JPEG', 'red', red],
    ['JPEG', 'blue', blue],
  ] as const)('a pure %s %s decodes to R,G,B = its colour', async (container, _name, colour) => {
    const image = solid(colour);
    const bytes = await (container === 'PNG' ? image.png() : image.jpeg({ quality: 95 })).toBuffer();
    const decoded = await decodeToRgb(bytes, 8);
    expectColour(pixelAt(decoded, 0, 0), colour, container === 'PNG' ? 0 : 3);
    expectColour(pixelAt(decoded, 7, 7), colour, container === 'PNG' ? 0 : 3);
  });

  it('stores rows top to bottom and pixels left to right (HWC)', async () => {
    const bytes = await quadrants(16, 16, [red, green, blue, white]).png().toBuffer();
    const decoded = await decodeToRgb(bytes, 16);
    expect(pixelAt(decoded, 0, 0)).toEqual(red);
    expect(pixelAt(decoded, 15, 0)).toEqual(green);
    expect(pixelAt(decoded, 0, 15)).toEqual(blue);
    expect(pixelAt(decoded, 15, 15)).toEqual(white);
  });
});

describe('colour models become 3-channel sRGB', () => {
  it('grayscale PNG → R = G = B at the original level', async () => {
    const levels = Uint8Array.from({ length: 16 * 16 }, (_, i) => i);
    const bytes = await sharp(levels, { raw: { width: 16, height: 16, channels: 1 } })
      .toColourspace('b-w')
      .png().toBuffer();
    expect((await sharp(bytes).metadata()).channels).toBe(1);
    const decoded = await decodeToRgb(bytes, 16);
    expect(decoded.data).toHaveLength(16 * 16 * 3);
    for (const [x, y] of [[0, 0], [5, 3], [15, 15]] as const) {
      expect(pixelAt(decoded, x, y)).toEqual(new Array(3).fill(y * 16 + x));
    }
  });

  it('RGBA PNG → transparency flattened onto white', async () => {
    const transparent = await decodeToRgb(await solid(red, 4, 0).png().toBuffer(), 8);
    expect(pixelAt(transparent, 3, 3)).toEqual(white);
    const halfRed = await decodeToRgb(await solid(red, 4, 0.5).png().toBuffer(), 8);
    expectColour(pixelAt(halfRed, 3, 3), [255, 127, 127], 2);
  });

  it('CMYK JPEG, 16-bit PNG and palette PNG → 8-bit RGB', async () => {
    const orange: Rgb = [250, 140, 20];
    const cmyk = await solid(orange).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect(await sharp(cmyk).metadata()).toMatchObject({ space: 'cmyk', channels: 4 });
    expectColour(pixelAt(await decodeToRgb(cmyk, 8), 2, 2), orange, 40);

    const sixteenBit = await solid(orange).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(sixteenBit).metadata()).depth).toBe('ushort');
    expect(pixelAt(await decodeToRgb(sixteenBit, 8), 2, 2)).toEqual(orange);

    const palette = await quadrants(16, 16, [red, green, blue, white]).png({ palette: true }).toBuffer();
    expect((await sharp(palette).metadata()).isPalette).toBe(true);
    expect(pixelAt(await decodeToRgb(palette, 16), 15, 0)).toEqual(green);
  });

  it('animated GIF → its first frame only', async () => {
    const frames = await Promise.all([solid(red).png().toBuffer(), solid(blue).png().toBuffer()]);
    const animation = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(animation).metadata()).pages).toBe(2);
    expect(await inspectImage(animation, roomyLimits)).toEqual({ format: 'gif', width: 16, height: 16 });
    expectColour(pixelAt(await decodeToRgb(animation, 8), 4, 4), red, 8);
  });
});

const randomBytes = (length: number): Uint8Array => {
  const random = seededRandom(length);
  return Uint8Array.from({ length }, () => Math.floor(random() * 256));
};

describe('inputs that are not usable photos', () => {
  it('empty input → image_empty', async () => {
    await expectImageError(inspectImage(new Uint8Array(), roomyLimits), 'image_empty', 400);
    await expectImageError(decodeToRgb(new Uint8Array(), 8), 'image_empty', 400);
  });

  it.each([
    ['random bytes', () => randomBytes(4096), 'binary'],
    ['SVG', () => new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), 'SVG'],
    ['HTML', () => new TextEncoder().encode('<!doctype html><title>Not found</title>'), 'HTML'],
    ['PDF', () => new TextEncoder().encode('%PDF-1.4\n1 0 obj\n<<>>\nendobj\n'), 'PDF'],
    ['plain text', () => new TextEncoder().encode('a cat sat on the mat\n'), 'text'],
  ])('%s → image_unsupported_format naming what it is and what is accepted', async (_name, makeBytes, looksLike) => {
    const error = await expectImageError(inspectImage(makeBytes(), roomyLimits), 'image_unsupported_format', 415);
    expect(error.message).toContain(looksLike);
    expect(error.message).toContain('JPEG, PNG, WebP, GIF or AVIF');
    await expectImageError(decodeToRgb(makeBytes(), 8), 'image_unsupported_format', 415);
  });

  it('a header declaring 60000×60000 → image_too_many_pixels from the header alone', async () => {
    // The file holds no pixel data at all: a decode attempt would end in a truncation error, not this one.
    const bomb = pngHeaderOnly(60_000, 60_000);
    expect(bomb.length).toBeLessThan(100);
    const error = await expectImageError(inspectImage(bomb, roomyLimits), 'image_too_many_pixels', 413);
    expect(error.details).toMatchObject({ width: 60_000, height: 60_000 });
    expect(error.message).toContain('60000×60000');
    await expectImageError(decodeToRgb(bomb, 8), 'image_too_many_pixels', 413);
  });
});

describe('encodeJpeg', () => {
  it('encodes pixels that decode back to nearly the same image', async () => {
    const original = await decodeToRgb(await quadrants(32, 32, [red, green, blue, white]).png().toBuffer(), 32);
    const jpeg = await encodeJpeg(original);
    expect(await sharp(jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 32, height: 32 });
    expect(meanAbsoluteDifference((await decodeToRgb(jpeg, 32)).data, original.data)).toBeLessThan(6);
  });

  it('refuses pixels that do not match the stated size', async () => {
    await expect(encodeJpeg({ data: new Uint8Array(10), width: 2, height: 2, channels: 3 })).rejects.toThrow(RangeError);
  });
});

describe('decode work an upload may cost', () => {
  const defaults = configSchema.parse({}).images;

  it('refuses a progressive JPEG of thousands of valid scans from its markers, before either decoder sees it', async () => {
    // 2,048² pixels in 2,647 scans (72 KB): decoding it costs seconds of CPU in libjpeg-turbo and in libvips.
    const bomb = progressiveScanBomb({ width: 2_048, height: 2_048 });
    expect(bomb.length).toBeLessThan(100_000);
    const error = await expectImageError(inspectImage(bomb, defaults), 'image_too_complex', 422);
    // Counting stops at the first scan past the limit: the refusal needs no more of the file.
    expect(error.details).toMatchObject({ scans: 101, width: 2_048, height: 2_048, maxJpegScans: 100 });
    expect(error.message).toContain('at least 101 scans');
    await expectImageError(inspectAndDecodeToRgb(bomb, defaults, 224), 'image_too_complex', 422);
    await expectImageError(thumbnailJpeg(bomb, defaults), 'image_too_complex', 422);
  });

  it('bounds pixels × scans: few scans over many pixels pass, the same scans over more pixels do not', async () => {
    const bomb = progressiveScanBomb({ width: 512, height: 512, components: 1 }); // 883 scans
    const limits = { ...defaults, maxJpegScans: 1_000, maxJpegScanPixels: 512 * 512 * 883 };
    await expect(inspectImage(bomb, limits)).resolves.toMatchObject({ format: 'jpeg', width: 512, height: 512 });
    await expectImageError(inspectImage(bomb, { ...limits, maxJpegScanPixels: 512 * 512 * 883 - 1 }), 'image_too_complex', 422);
    await expectImageError(inspectImage(bomb, { ...limits, maxJpegScans: 882 }), 'image_too_complex', 422);
  });

  it('refuses by default a 40-megapixel PNG of about 100 KB from its header', async () => {
    const png = await sharp({ create: { width: 8_000, height: 5_000, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png({ compressionLevel: 9 }).toBuffer();
    expect(png.length).toBeLessThan(200_000);
    const error = await expectImageError(inspectImage(png, defaults), 'image_too_many_pixels', 413);
    expect(error.details).toMatchObject({ width: 8_000, height: 5_000, maxPixels: 25_000_000 });
  });
});

describe.skipIf(skipWithoutShared)('labelled photos decode without a warning', () => {
  const photo = fs.readFileSync(path.join(kaggleFullRes, 'dog', 'dog.5.jpg'));
  const strict = { strict: true };

  /** `photo` with its entropy-coded data (after the scan header) replaced by bytes that never form a marker. */
  function garbageEntropy(): Uint8Array {
    const bytes = Uint8Array.from(photo);
    let sos = 2;
    while (!(bytes[sos] === 0xff && bytes[sos + 1] === 0xda)) sos += 2 + ((bytes[sos + 2]! << 8) | bytes[sos + 3]!);
    const dataStart = sos + 2 + ((bytes[sos + 2]! << 8) | bytes[sos + 3]!);
    const random = seededRandom(3);
    for (let i = dataStart; i < bytes.length - 2; i++) bytes[i] = Math.floor(random() * 255);
    return bytes;
  }

  it.each([
    ['entropy data corrupt throughout', garbageEntropy],
    ['cut short but ending with an end-of-image marker', () => Uint8Array.from([...photo.subarray(0, photo.length >> 1), 0xff, 0xd9])],
  ])('a JPEG with %s decodes (grey fill) for a prediction, but is refused as labelled data', async (_name, make) => {
    const damaged = make();
    await expect(inspectImage(damaged, roomyLimits)).resolves.toMatchObject({ format: 'jpeg' });
    const error = await expectImageError(inspectImage(damaged, roomyLimits, strict), 'image_corrupt', 422);
    expect(error.message).toMatch(/decodes only with warnings \(libjpeg warning: /);
  });

  it('takes clean photos of every format as labelled data', async () => {
    await expect(inspectImage(photo, roomyLimits, strict)).resolves.toMatchObject({ format: 'jpeg', width: 499, height: 376 });
    for (const encoded of [sharp(photo).png(), sharp(photo).webp(), sharp(photo).gif(), sharp(photo).jpeg({ progressive: true })]) {
      await expect(inspectImage(await encoded.toBuffer(), roomyLimits, strict)).resolves.toMatchObject({ width: 499, height: 376 });
    }
  });
});
