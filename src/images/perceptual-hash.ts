import sharp from 'sharp';

/** A 64-bit difference hash as 16 lowercase hex digits. */
export type PerceptualHash = string;

/**
 * Hashes at most this many bits apart are near-duplicates. Measured on the 399 kaggle-dev photos that
 * kaggle-fullres-sample holds at full size: the same photo at 200 px and at full size lands 0–6 bits apart, while
 * no two different photos of those 399 (79,401 pairs) come closer than 10.
 */
export const NEAR_DUPLICATE_DISTANCE = 6;

const GRID = 8;
/** The first, area-averaging shrink: straight to 9×8 lets a few fine details of a full-size photo flip bits. */
const SMOOTHING_SIDE = 32;

/**
 * dHash: the photo greyscaled (EXIF orientation applied), averaged down to 32×32, then to 9×8, one bit per
 * horizontal neighbour pair (is the left one brighter?). Resizing and re-encoding move few bits.
 */
export async function perceptualHash(bytes: Uint8Array): Promise<PerceptualHash> {
  // Called on photos already inspected within the limits; a prediction's photo may decode with warnings, and its grey
  // fill still hashes.
  const smooth = await sharp(bytes, { limitInputPixels: false, failOn: 'none' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .greyscale()
    .resize(SMOOTHING_SIDE, SMOOTHING_SIDE, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const grid = await sharp(smooth.data, { raw: { width: SMOOTHING_SIDE, height: SMOOTHING_SIDE, channels: smooth.info.channels } })
    .resize(GRID + 1, GRID, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { channels } = grid.info;
  const grey = (row: number, column: number) => grid.data[(row * (GRID + 1) + column) * channels]!;
  let bits = 0n;
  for (let row = 0; row < GRID; row++) {
    for (let column = 0; column < GRID; column++) bits = (bits << 1n) | (grey(row, column) > grey(row, column + 1) ? 1n : 0n);
  }
  return bits.toString(16).padStart(16, '0');
}

const popcount32 = (value: number): number => {
  let v = value - ((value >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};

/** How many of the 64 bits differ. */
export function hammingDistance(a: PerceptualHash, b: PerceptualHash): number {
  return (
    popcount32(Number.parseInt(a.slice(0, 8), 16) ^ Number.parseInt(b.slice(0, 8), 16)) +
    popcount32(Number.parseInt(a.slice(8), 16) ^ Number.parseInt(b.slice(8), 16))
  );
}

/**
 * Groups of hashes whose members are each within `maxDistance` of another member (single linkage). A pair within
 * d ≤ 7 bits agrees on at least one of 8 bytes, so only hashes sharing a byte at some position are compared:
 * near-linear on 25,000 photos instead of 312 million pairs.
 */
export function nearDuplicateGroups<T extends { perceptualHash: PerceptualHash }>(items: readonly T[], maxDistance = NEAR_DUPLICATE_DISTANCE): T[][] {
  if (maxDistance > 7) throw new RangeError(`maxDistance ${maxDistance} is above 7, the most the byte buckets find`);
  const parent = items.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  // Parsed once: the pair loop below runs millions of times on 25,000 photos.
  const high = Uint32Array.from(items, (item) => Number.parseInt(item.perceptualHash.slice(0, 8), 16));
  const low = Uint32Array.from(items, (item) => Number.parseInt(item.perceptualHash.slice(8), 16));
  for (let position = 0; position < 8; position++) {
    const word = position < 4 ? high : low;
    const shift = 24 - (position % 4) * 8;
    const buckets = new Map<number, number[]>();
    for (let i = 0; i < items.length; i++) {
      const key = (word[i]! >>> shift) & 0xff;
      const bucket = buckets.get(key);
      if (bucket) bucket.push(i);
      else buckets.set(key, [i]);
    }
    for (const bucket of buckets.values()) {
      for (let a = 0; a < bucket.length; a++) {
        const i = bucket[a]!;
        for (let b = a + 1; b < bucket.length; b++) {
          const j = bucket[b]!;
          if (popcount32(high[i]! ^ high[j]!) + popcount32(low[i]! ^ low[j]!) <= maxDistance && root(i) !== root(j)) parent[root(i)] = root(j);
        }
      }
    }
  }
  const groups = new Map<number, T[]>();
  items.forEach((item, i) => {
    const group = groups.get(root(i));
    if (group) group.push(item);
    else groups.set(root(i), [item]);
  });
  return [...groups.values()].filter((group) => group.length > 1);
}
