import { DECODE_ID, decodeToRgb, mirrorRgb } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';
import { extractFeaturesOfBatch, type FeatureExtractor } from './backbone.js';

/** A deterministic pixel transform whose features are cached under its own key (e.g. a seeded augmentation). */
export interface FeatureVariant {
  key: string;
  transform(pixels: Uint8Array, imageHash: string): Uint8Array;
}

/** The photo mirrored left to right: test-time augmentation averages P(dog) over it and the original. */
export const mirroredVariant: FeatureVariant = { key: 'mirrored', transform: (pixels) => mirrorRgb(pixels) };

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

/** Some photos, wanted as stored (no variant) or through one variant. */
export interface FeatureRequest {
  hashes: readonly string[];
  variant?: FeatureVariant;
}

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
  const [features] = await featuresForRequests(deps, extractor, [{ hashes, variant: options.variant }], options);
  return features!;
}

/** The extractors whose outputs are cached: an ensemble's parts, or the extractor itself. */
const cachedParts = (extractor: FeatureExtractor): readonly FeatureExtractor[] => extractor.parts?.flatMap(cachedParts) ?? [extractor];

/**
 * `featuresFor` of several requests at once, in their order. A photo missing from any part's or view's cache is read
 * and decoded once, each view made from those pixels and each part run on each view: an ensemble of three backbones
 * with a mirrored copy per photo would otherwise decode it six times, which took a tenth of the CPU of a training run.
 * Progress counts the requests' photos, a photo done when all its parts are.
 */
export async function featuresForRequests(
  deps: { blobs: BlobStore },
  extractor: FeatureExtractor,
  requests: readonly FeatureRequest[],
  options: Omit<FeatureOptions, 'variant'> = {},
): Promise<Float32Array[][]> {
  const parts = cachedParts(extractor);
  const variants = new Map(requests.map((request) => [request.variant?.key ?? 'plain', request.variant]));
  // One lookup per cache key, however many requests name it.
  const found = new Map<string, Promise<Float32Array | undefined>>();
  const lookup = (part: FeatureExtractor, variantKey: string, hash: string) => {
    const key = featureKey(part.id, variantKey, hash);
    const value = found.get(key) ?? deps.blobs.getOrUndefined(key).then((bytes) => (bytes?.byteLength === part.featureSize * 4 ? toFloat32(bytes) : undefined));
    found.set(key, value);
    return value;
  };
  const cached = await Promise.all(requests.map((request) => {
    const variantKey = request.variant?.key ?? 'plain';
    return Promise.all(parts.map((part) => Promise.all(request.hashes.map((hash) => lookup(part, variantKey, hash)))));
  }));
  // What each photo still needs, photos in the order the requests name them (variant key → parts),
  // and how many of the requests' photos wait for each photo's decode.
  const missing = new Map<string, Map<string, Set<number>>>();
  const waitingOn = new Map<string, number>();
  requests.forEach((request, index) => {
    const variantKey = request.variant?.key ?? 'plain';
    request.hashes.forEach((hash, image) => {
      const uncached = parts.flatMap((_, part) => (cached[index]![part]![image] ? [] : [part]));
      if (uncached.length === 0) return;
      const needs = missing.get(hash) ?? new Map<string, Set<number>>();
      missing.set(hash, needs.set(variantKey, new Set([...(needs.get(variantKey) ?? []), ...uncached])));
      waitingOn.set(hash, (waitingOn.get(hash) ?? 0) + 1);
    });
  });
  const total = requests.reduce((sum, request) => sum + request.hashes.length, 0);
  const cachedCount = total - [...waitingOn.values()].reduce((sum, count) => sum + count, 0);
  let done = cachedCount;
  options.onProgress?.({ done, total, cached: cachedCount });

  const computed = new Map<string, Float32Array>();
  const hashes = [...missing.keys()];
  const chunkSize = options.batchSize ?? 32;
  const decodeChunk = (start: number) =>
    Promise.all(hashes.slice(start, start + chunkSize).map(async (hash) => (await decodeToRgb(await deps.blobs.get(imageBlobKey(hash)), extractor.inputSize)).data));
  // The next chunk decodes on libuv's pool and this chunk's features are written while the backbone runs: the three
  // overlap instead of taking turns. Writes are awaited at the end; a failed one fails the call there.
  const writes: Promise<void>[] = [];
  let writeFailure: { error: unknown } | undefined;
  let decoding = hashes.length > 0 ? decodeChunk(0) : undefined;
  for (let start = 0; start < hashes.length; start += chunkSize) {
    const pixels = await decoding!;
    decoding = start + chunkSize < hashes.length ? decodeChunk(start + chunkSize) : undefined;
    // Awaited in the next turn of the loop; until then a failure must not count as unhandled.
    decoding?.catch(() => undefined);
    const chunk = hashes.slice(start, start + chunkSize);
    for (const [variantKey, variant] of variants) {
      const needing = chunk.flatMap((hash, position) => (missing.get(hash)!.has(variantKey) ? [position] : []));
      if (needing.length === 0) continue;
      const views = needing.map((position) => (variant ? variant.transform(pixels[position]!, chunk[position]!) : pixels[position]!));
      // Parts needing the same photos share one batch; a part cached for some of them (one added to an ensemble) runs on its own.
      const partsByPhotos = new Map<string, { positions: number[]; parts: number[] }>();
      parts.forEach((_, part) => {
        const positions = needing.filter((position) => missing.get(chunk[position]!)!.get(variantKey)!.has(part));
        const group = partsByPhotos.get(positions.join()) ?? { positions, parts: [] };
        if (positions.length > 0) partsByPhotos.set(positions.join(), { positions, parts: [...group.parts, part] });
      });
      for (const group of partsByPhotos.values()) {
        const batch = group.positions.map((position) => views[needing.indexOf(position)]!);
        const outputs = await extractFeaturesOfBatch(group.parts.map((part) => parts[part]!), batch);
        group.parts.forEach((part, output) => group.positions.forEach((position, i) => {
          const vector = outputs[output]![i]!;
          const key = featureKey(parts[part]!.id, variantKey, chunk[position]!);
          computed.set(key, vector);
          const write = deps.blobs.put(key, new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
          writes.push(write.catch((error: unknown) => void (writeFailure ??= { error })));
        }));
      }
    }
    done += chunk.reduce((sum, hash) => sum + waitingOn.get(hash)!, 0);
    options.onProgress?.({ done, total, cached: cachedCount });
  }
  await Promise.all(writes);
  if (writeFailure) throw writeFailure.error;

  return requests.map((request, index) => {
    const variantKey = request.variant?.key ?? 'plain';
    const ofParts = parts.map((part, partIndex) => request.hashes.map((hash, image) => cached[index]![partIndex]![image] ?? computed.get(featureKey(part.id, variantKey, hash))!));
    if (parts.length === 1) return ofParts[0]!;
    return request.hashes.map((_, image) => {
      const joined = new Float32Array(extractor.featureSize);
      let offset = 0;
      for (const features of ofParts) {
        joined.set(features[image]!, offset);
        offset += features[image]!.length;
      }
      return joined;
    });
  });
}
