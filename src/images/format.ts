export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

const ascii = (bytes: Uint8Array, start: number, end: number): string =>
  String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  return bytes.length >= at + signature.length && signature.every((byte, i) => bytes[at + i] === byte);
}

/** The brands of an ISO-BMFF `ftyp` box (major first, then compatible), or undefined if the file has none. */
function isoBmffBrands(bytes: Uint8Array): string[] | undefined {
  if (bytes.length < 16 || ascii(bytes, 4, 8) !== 'ftyp') return undefined;
  const declaredSize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  // Size 0 means "to the end of the file" and 1 means a 64-bit size follows; an ftyp box is never that big.
  const boxEnd = declaredSize < 16 ? bytes.length : Math.min(declaredSize, bytes.length);
  const brands = [ascii(bytes, 8, 12)];
  for (let offset = 16; offset + 4 <= boxEnd; offset += 4) brands.push(ascii(bytes, offset, offset + 4));
  return brands;
}

/** The image format by its magic bytes; a file name or a declared content type is never trusted. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  const brands = isoBmffBrands(bytes);
  if (brands?.some((brand) => brand === 'avif' || brand === 'avis')) return 'avif';
  return undefined;
}

/**
 * What an unsupported upload most likely is, so the error can name it ("an SVG drawing") instead of only
 * saying "not an image".
 */
export function describeUnsupportedContent(bytes: Uint8Array): string {
  const magic = ascii(bytes, 0, 4);
  if (magic === '%PDF') return 'a PDF document';
  if (magic === 'II*\0' || magic === 'MM\0*') return 'a TIFF image';
  if (magic.startsWith('BM') && bytes.length >= 26) return 'a BMP image';
  const head = ascii(bytes, 0, 512).trimStart().toLowerCase();
  if (head.includes('<svg')) return 'an SVG drawing';
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'an HTML page';
  if (isoBmffBrands(bytes)?.some((brand) => brand.startsWith('hei') || brand.startsWith('hev'))) return 'a HEIC image';
  const probe = bytes.subarray(0, 512);
  // Tab, LF, CR and printable ASCII or UTF-8 continuation/lead bytes: looks like text rather than binary data.
  const looksLikeText = probe.every((byte) => byte === 9 || byte === 10 || byte === 13 || byte >= 32);
  return looksLikeText ? 'text' : 'an unrecognised binary file';
}
