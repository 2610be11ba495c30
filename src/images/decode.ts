import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { acceptedFormatsText, ImageError } from './errors.js';
import { describeUnsupportedContent, sniffImageFormat, type ImageFormat } from './format.js';
import type { DecodeSlots } from './decode-slots.js';
import { decodeJpegScaled, findJpegWarning, jpegFastPathAvailable } from './jpeg-fast-path.js';
import { readJpegLayout, type JpegLayout } from './jpeg-scans.js';

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
  /** Scans a JPEG may have: a baseline JPEG has 1 (one per component at most), a progressive one about 10. */
  maxJpegScans: number;
  /** width × height × scans a JPEG may have: a progressive decode walks the whole image once per scan. */
  maxJpegScanPixels: number;
}

/** Whose turn a decode is taken in: the uploads of one client (token or address) share its part of the slots. */
export interface DecodeTurn {
  slots: DecodeSlots;
  client: string;
}

export interface InspectOptions {
  /**
   * Refuse a photo that decodes only with warnings (entropy data corrupt throughout or cut short, which decoders
   * fill with grey): labelled photos teach the model, so they must be the pixels the photographer took.
   */
  strict?: boolean;
  turn?: DecodeTurn;
}

export interface ImageInfo {
  format: ImageFormat;
  /** Displayed width, i.e. after EXIF orientation. */
  width: number;
  /** Displayed height, i.e. after EXIF orientation. */
  height: number;
}

/** Pixels in row-major height × width × channel order, channels R, G, B. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

/**
 * `failOn: 'error'` rejects truncated and undecodable data but tolerates libjpeg warnings such as
 * "extraneous bytes before marker", which many camera and phone JPEGs carry and which decode fine.
 */
const decodeOptions = (maxPixels?: number, failOn: 'error' | 'warning' = 'error'): SharpOptions => ({
  failOn,
  ...(maxPixels === undefined ? {} : { limitInputPixels: maxPixels }),
});

const white = { r: 255, g: 255, b: 255 };

/** A bad size is the caller's bug; checked here so sharp's complaint about it is not reported as a corrupt photo. */
function assertPixelSize(size: number): void {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
}

function formatOrThrow(bytes: Uint8Array): ImageFormat {
  if (bytes.length === 0) {
    throw new ImageError('image_empty', `The file is empty; send a ${acceptedFormatsText} photo.`);
  }
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    const looksLike = describeUnsupportedContent(bytes);
    throw new ImageError(
      'image_unsupported_format',
      `The file looks like ${looksLike}, not a supported photo; send a ${acceptedFormatsText} image.`,
      { looksLike },
    );
  }
  return format;
}

function tooManyPixels(width: number, height: number, maxPixels: number): ImageError {
  return new ImageError(
    'image_too_many_pixels',
    `The image declares ${width}×${height} = ${width * height} pixels, more than the ${maxPixels} accepted; ` +
      'resize it and send it again.',
    { width, height, maxPixels },
  );
}

/** Turns a sharp failure on sniffed-good bytes into the error the user can act on. */
function decodeFailure(format: ImageFormat, cause: unknown): ImageError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  if (/pixel limit/i.test(reason)) {
    return new ImageError(
      'image_too_many_pixels',
      `The ${format} image has more pixels than can be decoded safely; resize it and send it again.`,
      { format, reason },
    );
  }
  return new ImageError(
    'image_corrupt',
    `The ${format} file is damaged or incomplete and cannot be decoded (${reason}); ` +
      `send the complete original ${acceptedFormatsText} file.`,
    { format, reason },
  );
}

/** Displayed orientation, transparency on white: the start of every decode for training and serving. */
const orientedOnWhite = (bytes: Uint8Array, maxPixels?: number, failOn?: 'error' | 'warning'): Sharp =>
  sharp(bytes, decodeOptions(maxPixels, failOn)).rotate().flatten({ background: white });

/** 8-bit sRGB pixels out of `pipeline`, which must make them `width × height`; a failure blames the `format` photo. */
async function rgbPixels(pipeline: Sharp, format: ImageFormat, width: number, height: number): Promise<RgbImage> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw decodeFailure(format, cause);
  }
  const { data, info } = decoded;
  if (info.channels !== 3 || data.length !== width * height * 3) {
    throw new Error(`sharp produced ${info.width}×${info.height}×${info.channels} for a ${width}×${height} RGB decode`);
  }
  // A plain view, not a Buffer: Buffer#slice shares memory where Uint8Array#slice copies, a trap for callers.
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, channels: 3 };
}

/**
 * The resampling filter of every decode for the models: a triangle as wide as the scale (libvips widens it by the
 * shrink factor, so every source pixel counts), Pillow's BILINEAR. sharp's default, lanczos3, cost 4.5 M more
 * instructions per full-size photo at 224 px (decode alone: 23.7 M against 19.2 M) for features the models classify
 * no better: 97.8% against 97.7% on 999 held-out kaggle-dev photos (docs/benchmarks.md, "Speed work").
 */
const MODEL_RESIZE_KERNEL = 'linear';

/**
 * Names the pixels `decodeToRgb` gives, filter and JPEG decoder included: part of the key of every value cached from
 * them (training's features), so values computed from other pixels are never reused. Change it whenever the
 * decode's pixels change. Full-size JPEGs through the DCT-scaled fast path come out 1.9 (224 px) and 2.9 (128 px)
 * grey levels from sharp's pixels on average, and 200×200 ones enlarged to 224 px inside the IDCT about 4.5 (they
 * went to sharp under the previous id, `-jpeg-dct-scaled`, whose cached features must not be reused for them).
 */
export const DECODE_ID = `squash-${MODEL_RESIZE_KERNEL}${jpegFastPathAvailable ? '-jpeg-dct-scaled-enlarging' : ''}`;

/** sharp's own `limitInputPixels` default, which applies when the caller sets no limit. */
const SHARP_DEFAULT_PIXEL_LIMIT = 0x3fff * 0x3fff;
/** Photos already stored were checked against the limits when they came in; the addon takes a number all the same. */
const NO_SCAN_LIMIT = 0xffff_ffff;

/**
 * JPEGs that shrink or enlarge at most 2× go through libjpeg-turbo's DCT scaling first (src/images/jpeg-fast-path.ts):
 * decoding at M/8 of the size (M = 1..16) skips most of the work of a full decode and of libvips's pipeline. Whatever it declines, damaged
 * files included, goes to sharp, so errors and every other format are exactly as before.
 */
async function decodeRgb(bytes: Uint8Array, format: ImageFormat, size: number, limits?: ImageLimits): Promise<RgbImage> {
  if (format === 'jpeg') {
    const fast = await decodeJpegScaled(bytes, size, limits?.maxPixels ?? SHARP_DEFAULT_PIXEL_LIMIT, limits?.maxJpegScans ?? NO_SCAN_LIMIT);
    if ('pixels' in fast) return { data: fast.pixels, width: size, height: size, channels: 3 };
  }
  return rgbPixels(orientedOnWhite(bytes, limits?.maxPixels).resize(size, size, { fit: 'fill', kernel: MODEL_RESIZE_KERNEL }), format, size, size);
}

/**
 * A progressive JPEG costs its pixels times its scans to decode, in either decoder, and libvips has no scan limit:
 * read from the markers, so thousands of valid scans in a few hundred KB are refused before any decode, and before
 * sharp reads the header (which walks every scan too).
 */
function assertJpegWorkWithinLimits(bytes: Uint8Array, limits: ImageLimits): void {
  const withinLimits = ({ width, height, scans }: JpegLayout) => scans <= limits.maxJpegScans && width * height * scans <= limits.maxJpegScanPixels;
  const { width, height, scans } = readJpegLayout(bytes, (layout) => !withinLimits(layout));
  if (width * height > limits.maxPixels) throw tooManyPixels(width, height, limits.maxPixels);
  if (withinLimits({ width, height, scans })) return;
  throw new ImageError(
    'image_too_complex',
    `The JPEG has at least ${scans} scans over ${width}×${height} pixels, more decoding work than accepted (at most ` +
      `${limits.maxJpegScans} scans and ${limits.maxJpegScanPixels} pixels × scans); save it again as a baseline ` +
      'or ordinary progressive JPEG and send it again.',
    { scans, width, height, maxJpegScans: limits.maxJpegScans, maxJpegScanPixels: limits.maxJpegScanPixels },
  );
}

/** Why the photo decodes only with warnings (libjpeg's, else libvips's first one), undefined when it decodes cleanly. */
async function decodeWarning(bytes: Uint8Array, format: ImageFormat, limits: ImageLimits): Promise<string | undefined> {
  const jpegWarning = format === 'jpeg' ? await findJpegWarning(bytes, limits.maxJpegScans) : undefined;
  if (jpegWarning !== undefined) return jpegWarning ?? undefined;
  try {
    await orientedOnWhite(bytes, limits.maxPixels, 'warning').resize(VALIDATION_SIZE, VALIDATION_SIZE, { fit: 'fill' }).raw().toBuffer();
    return undefined;
  } catch (cause) {
    return cause instanceof Error ? cause.message : String(cause);
  }
}

/** Fails when the photo decodes only with warnings: what `InspectOptions.strict` asks for. */
async function assertDecodesCleanly(bytes: Uint8Array, format: ImageFormat, limits: ImageLimits): Promise<void> {
  const reason = await decodeWarning(bytes, format, limits);
  if (reason === undefined) return;
  throw new ImageError(
    'image_corrupt',
    `The ${format} file decodes only with warnings (${reason}): part of its pixels would be made up by the decoder, ` +
      `so it cannot be labelled training data; send the complete original ${acceptedFormatsText} file.`,
    { format, reason },
  );
}

/** Size, format by content, declared pixel count: from the header, so a decompression bomb is refused unexpanded. */
async function inspectHeader(bytes: Uint8Array, limits: ImageLimits): Promise<ImageInfo> {
  if (bytes.length > limits.maxBytes) {
    throw new ImageError(
      'image_too_large',
      `The file is ${bytes.length} bytes, more than the ${limits.maxBytes} accepted; send a smaller ` +
        `${acceptedFormatsText} photo.`,
      { bytes: bytes.length, maxBytes: limits.maxBytes },
    );
  }
  const format = formatOrThrow(bytes);
  if (format === 'jpeg') assertJpegWorkWithinLimits(bytes, limits);
  let header: Metadata;
  try {
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (cause) {
    throw decodeFailure(format, cause);
  }
  if (header.width * header.height > limits.maxPixels) {
    throw tooManyPixels(header.width, header.height, limits.maxPixels);
  }
  return { format, width: header.autoOrient.width, height: header.autoOrient.height };
}

/**
 * Side of the square an upload is decoded to when only its decodability is checked. The decode still reads and
 * decodes the whole file (a truncated or damaged one fails it) but holds only this many pixels; it is the decode
 * training and serving use, so an accepted file is known to decode for them too.
 */
const VALIDATION_SIZE = 16;

/** `work` in the client's turn for a decode slot, or at once when the caller shares no slots (CLI, import). */
const inTurn = <T>(turn: DecodeTurn | undefined, work: () => Promise<T>): Promise<T> => (turn ? turn.slots.run(turn.client, work) : work());

/**
 * Validates an upload before anything keeps it: size, format by content, declared pixel count and JPEG scans,
 * then one full decode so that every accepted file is known to be trainable.
 */
export async function inspectImage(bytes: Uint8Array, limits: ImageLimits, options: InspectOptions = {}): Promise<ImageInfo> {
  return inTurn(options.turn, async () => {
    const info = await inspectHeader(bytes, limits);
    if (options.strict) await assertDecodesCleanly(bytes, info.format, limits);
    await decodeRgb(bytes, info.format, VALIDATION_SIZE, limits);
    return info;
  });
}

/**
 * `inspectImage` and `decodeToRgb(bytes, size)` with one decode, for callers that need both (serving): the decode
 * that gives the pixels is the one that proves the photo decodes.
 */
export async function inspectAndDecodeToRgb(
  bytes: Uint8Array,
  limits: ImageLimits,
  size: number,
  turn?: DecodeTurn,
): Promise<{ info: ImageInfo; rgb: RgbImage }> {
  assertPixelSize(size);
  return inTurn(turn, async () => {
    const info = await inspectHeader(bytes, limits);
    return { info, rgb: await decodeRgb(bytes, info.format, size, limits) };
  });
}

/**
 * The one decode used by training and serving alike: displayed orientation, transparency on white, sRGB,
 * first frame of an animation, squashed (not cropped) to `size × size`.
 */
export async function decodeToRgb(bytes: Uint8Array, size: number): Promise<RgbImage> {
  assertPixelSize(size);
  return decodeRgb(bytes, formatOrThrow(bytes), size);
}

/**
 * A small preview for the UI: displayed orientation, never enlarged, no metadata (EXIF may hold GPS). The photo is
 * checked against `limits` first, as photos stored before a limit was lowered were not.
 */
export async function thumbnailJpeg(bytes: Uint8Array, limits: ImageLimits, size = 256, turn?: DecodeTurn): Promise<Uint8Array> {
  assertPixelSize(size);
  return inTurn(turn, async () => {
    const { format } = await inspectHeader(bytes, { ...limits, maxBytes: Number.POSITIVE_INFINITY });
    return thumbnailOf(bytes, format, size, limits.maxPixels);
  });
}

async function thumbnailOf(bytes: Uint8Array, format: ImageFormat, size: number, maxPixels: number): Promise<Uint8Array> {
  try {
    const jpeg = await sharp(bytes, decodeOptions(maxPixels))
      .rotate()
      .flatten({ background: white })
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 80 })
      .toBuffer();
    return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length);
  } catch (cause) {
    throw decodeFailure(format, cause);
  }
}

/** Encodes decoded (for example augmented) pixels so the UI can show what the model was trained on. */
export async function encodeJpeg(rgb: RgbImage, quality = 90): Promise<Uint8Array> {
  if (rgb.data.length !== rgb.width * rgb.height * 3) {
    throw new RangeError(`expected ${rgb.width}×${rgb.height}×3 = ${rgb.width * rgb.height * 3} bytes, got ${rgb.data.length}`);
  }
  const jpeg = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length);
}
