/**
 * The number of scans (SOS markers) in a JPEG stream, counted from its markers without decoding anything: a
 * progressive decoder walks every block of the image once per scan, so pixels × scans bounds its work. Stops at the
 * end-of-image marker or at the end of the bytes; a stream it cannot follow counts the scans seen so far, as the
 * decoders reject that stream themselves.
 */
export function countJpegScans(bytes: Uint8Array): number {
  const SOS = 0xda;
  const EOI = 0xd9;
  let scans = 0;
  let at = 2; // past SOI
  while (at + 1 < bytes.length) {
    if (bytes[at] !== 0xff) return scans;
    const marker = bytes[at + 1]!;
    // Fill bytes: any number of 0xFF may precede a marker.
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === EOI) return scans;
    if (at + 3 >= bytes.length) return scans;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    at += 2 + length;
    if (marker !== SOS) continue;
    scans++;
    // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart marker (0xFFD0–D7).
    for (;;) {
      at = bytes.indexOf(0xff, at);
      if (at < 0 || at + 1 >= bytes.length) return scans;
      const next = bytes[at + 1]!;
      if (next !== 0x00 && next !== 0xff && (next < 0xd0 || next > 0xd7)) break;
      at += next === 0xff ? 1 : 2;
    }
  }
  return scans;
}
