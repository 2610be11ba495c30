import sharp, { type JpegOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import { progressiveScanBomb } from '../../test/support/jpeg-scan-bomb.mjs';
import { readJpegLayout } from './jpeg-scans.js';

const photo = (options: JpegOptions) =>
  sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 40, g: 120, b: 200 } } }).jpeg(options).toBuffer();

describe('readJpegLayout', () => {
  it('reads the frame size and counts the scans of baseline, progressive and scan-bomb JPEGs', async () => {
    expect(readJpegLayout(await photo({}))).toEqual({ width: 300, height: 200, scans: 1 });
    const progressive = readJpegLayout(await photo({ progressive: true }));
    expect(progressive).toMatchObject({ width: 300, height: 200 });
    expect(progressive.scans).toBeGreaterThan(1);
    expect(progressive.scans).toBeLessThanOrEqual(12);
    expect(readJpegLayout(progressiveScanBomb({ width: 640, height: 480 }))).toEqual({ width: 640, height: 480, scans: 2_647 });
  });

  it('counts the scans before the end of a stream cut short, and skips an EXIF thumbnail inside APP1', async () => {
    const bomb = progressiveScanBomb({ width: 640, height: 480, components: 1 });
    const half = readJpegLayout(bomb.subarray(0, bomb.length >> 1));
    expect(half.scans).toBeGreaterThan(100);
    expect(half.scans).toBeLessThan(883);
    const withExif = await sharp(await photo({})).withExif({ IFD0: { Make: 'catdog' } }).jpeg().toBuffer();
    expect(readJpegLayout(withExif)).toEqual({ width: 300, height: 200, scans: 1 });
  });

  it('stops at the first scan its caller has seen enough at, with the frame size already read', () => {
    const bomb = progressiveScanBomb({ width: 640, height: 480 });
    expect(readJpegLayout(bomb, (layout) => layout.scans > 100)).toEqual({ width: 640, height: 480, scans: 101 });
    expect(readJpegLayout(bomb, (layout) => layout.width * layout.height * layout.scans > 640 * 480 * 10)).toEqual({ width: 640, height: 480, scans: 11 });
    expect(readJpegLayout(bomb, () => false).scans).toBe(2_647);
  });
});
