/** What a JPEG's markers say about the work of decoding it, read without decoding anything. */
export interface JpegLayout {
  /** From the frame header; 0 when the stream has none before its first scan. */
  width: number;
  height: number;
  /** Start-of-scan markers: a progressive decoder walks every block of the image once per scan. */
  scans: number;
}

const SOS = 0xda;
const EOI = 0xd9;

/** SOF0–SOF15 but DHT (C4), JPG (C8) and DAC (CC), which share the range. */
const isFrameHeader = (marker: number): boolean => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/**
 * The frame size and number of scans of a JPEG stream, from its markers: pixels × scans bounds a progressive
 * decode's work, so thousands of valid scans in a few hundred KB can be refused before any decoder sees them.
 * Stops at the end-of-image marker or at the end of the bytes; a stream it cannot follow counts the scans seen so
 * far, as the decoders reject that stream themselves. With `enough`, it also stops at the first scan for which
 * `enough(layout)` holds: walking a refused file's remaining thousands of scans would be work spent for an
 * attacker (about a millisecond for a 4,992² bomb of 2,647 scans).
 */
export function readJpegLayout(bytes: Uint8Array, enough?: (layout: JpegLayout) => boolean): JpegLayout {
  const layout: JpegLayout = { width: 0, height: 0, scans: 0 };
  let at = 2; // past SOI
  while (at + 1 < bytes.length) {
    if (bytes[at] !== 0xff) return layout;
    const marker = bytes[at + 1]!;
    // Fill bytes: any number of 0xFF may precede a marker.
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === EOI || at + 3 >= bytes.length) return layout;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    if (isFrameHeader(marker) && layout.scans === 0 && at + 8 < bytes.length) {
      layout.height = (bytes[at + 5]! << 8) | bytes[at + 6]!;
      layout.width = (bytes[at + 7]! << 8) | bytes[at + 8]!;
    }
    at += 2 + length;
    if (marker !== SOS) continue;
    layout.scans++;
    if (enough?.(layout)) return layout;
    // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart marker (0xFFD0–D7).
    for (;;) {
      at = bytes.indexOf(0xff, at);
      if (at < 0 || at + 1 >= bytes.length) return layout;
      const next = bytes[at + 1]!;
      if (next !== 0x00 && next !== 0xff && (next < 0xd0 || next > 0xd7)) break;
      at += next === 0xff ? 1 : 2;
    }
  }
  return layout;
}
