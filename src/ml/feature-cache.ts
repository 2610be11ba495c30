import { DECODE_ID, decodeToRgb } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';
import { extractFeatures, type FeatureExtractor } from './backbone.js';

/** A deterministic pixel transform whose features are cached under its own key (e.g. a seeded augmentation). */
export interface FeatureVariant {
  key: string;
  transform(pixels: Uint8Array, imageHash: string): Uint8Array;
}

/** The photo mirrored left to right: test-time augmentation averages P(dog) over it and the original. */
export const mirroredVariant: FeatureVariant = {
  key: 'mirrored',
  transform(pixels) {
    const size = Math.round(Math.sqrt(pixels.length / 3));
    const mirrored = new Uint8Array(pixels.length);
    for (let row = 0; row < size; row++) {
      for (let x = 0; x < size; x++) {
        const from = (row * size + x) * 3;
        mirrored.set(pixels.subarray(from, from + 3), (row * size + size - 1 - x) * 3);
      }
    }
    return mirrored;
  },
};

export interface FeatureProgress {
  done: number;
  total: number;
  cached: number;
}

/** The decode's id is part of the key: features of pixels decoded another way (another resize filter) are not these. */
const featureKey = (extractorId: string, variant: string, hash: string): string =>
  `features/${extractorId}/${DECODE_ID}/${variant}/${hash}.f32`;

function toFloat32(bytes: Uint8Array): Float32Array {
  // Blob stores may hand back views at any offset; Float32Array needs 4-byte alignment, so copy.
  return new Float32Array(bytes.slice().buffer);
}

type FeatureOptions = { variant?: FeatureVariant; batchSize?: number; onProgress?: (progress: FeatureProgress) => void };

/**
 * Features per (extractor, variant, image hash), computed once and kept in the blob store: the frozen backbone is
 * >95% of the work, so every later training run on the same images only trains what sits on top. An ensemble's
 * features are its parts' cached features side by side, so adding a backbone reuses the others'.
 */
export async function featuresFor(
  deps: { blobs: BlobStore },
  extractor: FeatureExtractor,
  hashes: readonly string[],
  options: FeatureOptions = {},
): Promise<Float32Array[]> {
  if (!extractor.parts) return cachedFeatures(deps, extractor, hashes, options);
  const { parts } = extractor;
  const byPart: Float32Array[][] = [];
  for (const [index, part] of parts.entries()) {
    const onProgress = options.onProgress && ((progress: FeatureProgress) =>
      options.onProgress!({ ...progress, done: Math.floor((index * hashes.length + progress.done) / parts.length) }));
    byPart.push(await featuresFor(deps, part, hashes, { ...options, onProgress }));
  }
  return hashes.map((_, image) => {
    const joined = new Float32Array(extractor.featureSize);
    let offset = 0;
    for (const features of byPart) {
      joined.set(features[image]!, offset);
      offset += features[image]!.length;
    }
    return joined;
  });
}

async function cachedFeatures(deps: { blobs: BlobStore }, extractor: FeatureExtractor, hashes: readonly string[], options: FeatureOptions): Promise<Float32Array[]> {
  const variantKey = options.variant?.key ?? 'plain';
  const result: Float32Array[] = new Array(hashes.length);
  const missing: number[] = [];
  await Promise.all(
    hashes.map(async (hash, index) => {
      const cached = await deps.blobs.getOrUndefined(featureKey(extractor.id, variantKey, hash));
      if (cached && cached.byteLength === extractor.featureSize * 4) result[index] = toFloat32(cached);
      else missing.push(index);
    }),
  );
  missing.sort((a, b) => a - b);
  const cachedCount = hashes.length - missing.length;
  options.onProgress?.({ done: cachedCount, total: hashes.length, cached: cachedCount });

  const chunkSize = options.batchSize ?? 32;
  const decodeChunk = (start: number) =>
    Promise.all(
      missing.slice(start, start + chunkSize).map(async (index) => {
        const hash = hashes[index]!;
        const rgb = await decodeToRgb(await deps.blobs.get(imageBlobKey(hash)), extractor.inputSize);
        return options.variant ? options.variant.transform(rgb.data, hash) : rgb.data;
      }),
    );
  // The next chunk decodes on libuv's pool and this chunk's features are written while the backbone runs: the three
  // overlap instead of taking turns. Writes are awaited at the end; a failed one fails the call there.
  const writes: Promise<void>[] = [];
  let writeFailure: { error: unknown } | undefined;
  let decoding = missing.length > 0 ? decodeChunk(0) : undefined;
  for (let start = 0; start < missing.length; start += chunkSize) {
    const pixels = await decoding!;
    decoding = start + chunkSize < missing.length ? decodeChunk(start + chunkSize) : undefined;
    // Awaited in the next turn of the loop; until then a failure must not count as unhandled.
    decoding?.catch(() => undefined);
    const chunk = missing.slice(start, start + chunkSize);
    const features = await extractFeatures(extractor, pixels, chunkSize);
    chunk.forEach((index, position) => {
      const vector = features[position]!;
      result[index] = vector;
      const write = deps.blobs.put(featureKey(extractor.id, variantKey, hashes[index]!), new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
      writes.push(write.catch((error: unknown) => void (writeFailure ??= { error })));
    });
    options.onProgress?.({ done: cachedCount + Math.min(start + chunkSize, missing.length), total: hashes.length, cached: cachedCount });
  }
  await Promise.all(writes);
  if (writeFailure) throw writeFailure.error;
  return result;
}
