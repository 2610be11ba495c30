// A progressive JPEG of flat grey whose cost is all in its scans: every AC coefficient of every component is sent
// first at the coarsest bit and then refined bit by bit, each scan a valid run of end-of-band codes over every
// block. A decoder walks every block of a component once per scan, so the decode work is blocks × scans while the
// file stays a few hundred KB. Plain JavaScript so that both the tests and bench/load.mjs generate it.

/** Successive-approximation bits a coefficient may be split into: Al runs 0..13 for 8-bit samples. */
const MAX_AL = 13;
const MAX_EOB_RUN = 32_767;

function segment(marker, payload) {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(0xff00 | marker, 0);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, Buffer.from(payload)]);
}

/** Bits written most significant first, padded with ones and byte-stuffed as entropy-coded data requires. */
class BitWriter {
  bytes = [];
  current = 0;
  count = 0;
  write(value, length) {
    for (let bit = length - 1; bit >= 0; bit--) {
      this.current = (this.current << 1) | ((value >> bit) & 1);
      if (++this.count === 8) this.flushByte();
    }
  }
  flushByte() {
    this.bytes.push(this.current);
    if (this.current === 0xff) this.bytes.push(0);
    this.current = 0;
    this.count = 0;
  }
  finish() {
    if (this.count > 0) this.write(0xff >> this.count, 8 - this.count);
    return Buffer.from(this.bytes);
  }
}

/** Entropy data of one component's AC scan in which every block is empty: EOB runs of up to 32,767 blocks. */
function emptyBlocksScan(blocks) {
  const bits = new BitWriter();
  for (let remaining = blocks; remaining > 0; ) {
    const run = Math.min(remaining, MAX_EOB_RUN);
    const r = Math.floor(Math.log2(run));
    bits.write(r, 4); // the AC table below codes EOBr (symbol r << 4) as the 4 bits of r
    bits.write(run - (1 << r), r);
    remaining -= run;
  }
  return bits.finish();
}

/**
 * A valid progressive JPEG of `width × height` grey pixels (`components` 1 or 3, no subsampling) with
 * 1 + components × 63 × 14 scans: 2,647 for colour.
 */
export function progressiveScanBomb({ width = 6_304, height = 6_304, components = 3 } = {}) {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const ids = Array.from({ length: components }, (_, i) => i + 1);
  const parts = [Buffer.from([0xff, 0xd8])];
  parts.push(segment(0xdb, [0x00, ...new Array(64).fill(1)]));
  parts.push(segment(0xc2, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, components, ...ids.flatMap((id) => [id, 0x11, 0])]));
  // DC table 0: one code, "0", for difference category 0. AC table 0: EOB0..EOB14 as 4-bit codes 0000..1110.
  parts.push(segment(0xc4, [0x00, 1, ...new Array(15).fill(0), 0x00]));
  parts.push(segment(0xc4, [0x10, 0, 0, 0, 15, ...new Array(12).fill(0), ...Array.from({ length: 15 }, (_, r) => r << 4)]));
  // DC first scan, all components interleaved: one zero bit per block and component.
  parts.push(segment(0xda, [components, ...ids.flatMap((id) => [id, 0x00]), 0, 0, 0x00]));
  const dc = new BitWriter();
  for (let i = 0; i < blocks * components; i++) dc.write(0, 1);
  parts.push(dc.finish());
  const acData = emptyBlocksScan(blocks);
  for (let ah = 0; ah <= MAX_AL; ah++) {
    // First pass at Al = 13, then each refinement lowers Al by one: Ah = previous Al.
    const successive = ah === 0 ? MAX_AL : ((MAX_AL + 1 - ah) << 4) | (MAX_AL - ah);
    for (const id of ids) {
      for (let k = 1; k <= 63; k++) {
        parts.push(segment(0xda, [1, id, 0x00, k, k, successive]), acData);
      }
    }
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return new Uint8Array(Buffer.concat(parts));
}
