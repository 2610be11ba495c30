import { createRequire } from 'node:module';

/** The addon in native/jpeg-decode, built at install time by scripts/build-native.mjs. */
interface JpegDecodeAddon {
  /**
   * `size × size` RGB pixels decoded with libjpeg-turbo's DCT scaling, or the reason this JPEG is left to sharp
   * (a colour space, profile, orientation, enlargement beyond 2×, pixel count, scan count or stream fault sharp
   * handles its own way).
   */
  decodeScaled(jpeg: Uint8Array, size: number, maxPixels: number, maxScans: number): Promise<Buffer | string>;
  /** The first libjpeg warning or error of a whole decode (extraneous bytes included), or null when there is none. */
  findWarning(jpeg: Uint8Array, maxScans: number): Promise<string | null>;
}

/** From src/images or dist/images alike: both are two levels below the repository root. */
const ADDON_PATH = '../../native/jpeg-decode/build/Release/jpeg_decode.node';

/**
 * The addon when it was built and loads (its build may fail, e.g. without libjpeg's headers, or the checkout may
 * predate it): the fast path is an optimisation, so without it every JPEG simply goes to sharp.
 */
function loadAddon(): JpegDecodeAddon | undefined {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as JpegDecodeAddon;
  } catch {
    return undefined;
  }
}

const addon = loadAddon();

/** Whether JPEGs can take the fast path in this process; the decode's pixels, and so `DECODE_ID`, depend on it. */
export const jpegFastPathAvailable = addon !== undefined;

export type FastJpegDecode = { pixels: Uint8Array } | { declined: string };

/**
 * Decodes `jpeg` to `size × size` RGB through libjpeg-turbo at the smallest M/8 scale (M ≤ 16) that covers `size`, off
 * the event loop. Declines (and the caller uses sharp) for anything the fast path does not reproduce exactly as
 * sharp would display it, including every damaged stream, so errors always come from sharp. A stream of more than
 * `maxScans` scans is declined after reading one scan more.
 */
export async function decodeJpegScaled(jpeg: Uint8Array, size: number, maxPixels: number, maxScans: number): Promise<FastJpegDecode> {
  if (addon === undefined) return { declined: 'the native JPEG decoder is not built' };
  const result = await addon.decodeScaled(jpeg, size, maxPixels, maxScans);
  if (typeof result === 'string') return { declined: result };
  // A plain view, not a Buffer, like sharp's path gives: Buffer#slice shares memory where Uint8Array#slice copies.
  return { pixels: new Uint8Array(result.buffer, result.byteOffset, result.length) };
}

/**
 * libjpeg's first complaint about `jpeg` (corrupt entropy data, a stream cut short, …) over a whole decode at 1/8
 * scale, null when it decodes cleanly, undefined when the addon is not built (the caller then asks sharp).
 */
export async function findJpegWarning(jpeg: Uint8Array, maxScans: number): Promise<string | null | undefined> {
  return addon === undefined ? undefined : addon.findWarning(jpeg, maxScans);
}
