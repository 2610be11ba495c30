import fs from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { describeUnsupportedContent, sniffImageFormat, type ImageFormat } from './format.js';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** An ISO-BMFF file start: a `ftyp` box with the given brands, followed by some unrelated bytes. */
function ftypBox(majorBrand: string, compatibleBrands: string[]): Uint8Array {
  const size = 16 + 4 * compatibleBrands.length;
  const box = new Uint8Array(size + 8);
  new DataView(box.buffer).setUint32(0, size);
  box.set(ascii(`ftyp${majorBrand}\0\0\0\0${compatibleBrands.join('')}`), 4);
  box.set(ascii('\0\0\0\bmeta'), size);
  return box;
}

describe.skipIf(skipWithoutShared)('sniffImageFormat on real photos re-encoded by sharp', () => {
  const photo = fs.readFileSync(kaggleFiles('dog', 1, 3)[0]!);
  const encoders: Record<ImageFormat, (image: Sharp) => Sharp> = {
    jpeg: (image) => image.jpeg(),
    png: (image) => image.png(),
    webp: (image) => image.webp(),
    gif: (image) => image.gif(),
    avif: (image) => image.avif({ effort: 0 }),
  };
  for (const [format, encode] of Object.entries(encoders) as [ImageFormat, (image: Sharp) => Sharp][]) {
    it(`recognises ${format} by its bytes`, async () => {
      const bytes = await encode(sharp(photo)).toBuffer();
      expect(sniffImageFormat(bytes)).toBe(format);
      expect((await sharp(bytes).metadata()).format).toBe(format === 'avif' ? 'heif' : format);
    });
  }
});

describe('sniffImageFormat on crafted headers', () => {
  it('finds AVIF in the compatible brands as well as the major brand', () => {
    expect(sniffImageFormat(ftypBox('avif', ['mif1', 'miaf']))).toBe('avif');
    expect(sniffImageFormat(ftypBox('mif1', ['miaf', 'avis']))).toBe('avif');
  });

  it('does not take HEIC or MP4 for AVIF, nor read brands past the ftyp box', () => {
    expect(sniffImageFormat(ftypBox('heic', ['mif1', 'heic']))).toBeUndefined();
    expect(sniffImageFormat(ftypBox('isom', ['mp41']))).toBeUndefined();
    const boxThenAvifText = new Uint8Array([...ftypBox('isom', []), ...ascii('avif')]);
    expect(sniffImageFormat(boxThenAvifText)).toBeUndefined();
  });

  it('needs the whole signature: a WebP is RIFF with WEBP at offset 8, not any RIFF', () => {
    expect(sniffImageFormat(ascii('RIFF\x10\0\0\0WEBPVP8 '))).toBe('webp');
    expect(sniffImageFormat(ascii('RIFF\x10\0\0\0WAVEfmt '))).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
    expect(sniffImageFormat(ascii('GIF88a'))).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array())).toBeUndefined();
  });

  it('rejects formats sharp could decode but the product does not accept', async () => {
    const tiny = sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } });
    const tiff = await tiny.clone().tiff().toBuffer();
    expect(sniffImageFormat(tiff)).toBeUndefined();
    expect(describeUnsupportedContent(tiff)).toBe('a TIFF image');
    const svg = ascii('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    expect((await sharp(svg).metadata()).format).toBe('svg');
    expect(sniffImageFormat(svg)).toBeUndefined();
    expect(describeUnsupportedContent(svg)).toBe('an SVG drawing');
  });

  it('names what an unsupported upload looks like', () => {
    expect(describeUnsupportedContent(ascii('  <!DOCTYPE html><html><body>404</body></html>'))).toBe('an HTML page');
    expect(describeUnsupportedContent(ascii('%PDF-1.7\n%\xe2\xe3'))).toBe('a PDF document');
    expect(describeUnsupportedContent(ascii('cat,dog\n1,0\n'))).toBe('text');
    expect(describeUnsupportedContent(ftypBox('heic', ['mif1']))).toBe('a HEIC image');
    expect(describeUnsupportedContent(new Uint8Array([0, 1, 2, 250, 7, 0]))).toBe('an unrecognised binary file');
  });
});
