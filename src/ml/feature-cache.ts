import { DECODE_ID, decodeToRgb, mirrorRgb } from '../images/index.js';
import { imageBlobKey, type BlobStore } from '../storage/index.js';
import { extractFeaturesOfBatch, type FeatureExtractor } from './backbone.js';

/** A deterministic pixel transform whose features are cached under its own key (e.g. a seeded augmentation). */
export interface FeatureVariant {
  key: string;
  /** New pixels from `pixels`, which it must leave as they are: the photo's other views are made from them too. */
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
/** The cache's name for a request's view: its variant's key, or `plain` for the photo as stored. */
const variantKeyOf = (request: FeatureRequest): string => request.variant?.key ?? 'plain';

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
 * Each part's vector goes straight into the answers that want it, so nothing else holds the features; answers naming
 * one photo twice (a photo in two requests) may share one array, so callers read them and never write.
 * Progress counts the requests' photos, a photo done when all its parts are.
 */
export async function featuresForRequests(
  deps: { blobs: BlobStore },
  extractor: FeatureExtractor,
  requests: readonly FeatureRequest[],
  options: Omit<FeatureOptions, 'variant'> = {},
): Promise<Float32Array[][]> {
  const parts = cachedParts(extractor);
  const offsets = parts.map((_, part) => parts.slice(0, part).reduce((sum, { featureSize }) => sum + featureSize, 0));
  const answers = requests.map((request) => new Array<Float32Array>(request.hashes.length));
  /** Each cache key's vector: its length, and every (request, photo, offset in the joined vector) it belongs to. */
  const wanting = new Map<string, { featureSize: number; slots: { request: number; image: number; offset: number }[] }>();
  requests.forEach((request, index) =>
    parts.forEach((part, partIndex) =>
      request.hashes.forEach((hash, image) => {
        const key = featureKey(part.id, variantKeyOf(request), hash);
        const entry = wanting.get(key) ?? { featureSize: part.featureSize, slots: [] };
        entry.slots.push({ request: index, image, offset: offsets[partIndex]! });
        wanting.set(key, entry);
      }),
    ),
  );
  const place = (key: string, vector: Float32Array) => {
    for (const { request, image, offset } of wanting.get(key)!.slots) {
      if (parts.length === 1) answers[request]![image] = vector;
      else (answers[request]![image] ??= new Float32Array(extractor.featureSize)).set(vector, offset);
    }
  };
  const uncached = new Set<string>();
  await Promise.all(
    [...wanting].map(async ([key, { featureSize }]) => {
      const bytes = await deps.blobs.getOrUndefined(key);
      if (bytes?.byteLength === featureSize * 4) place(key, toFloat32(bytes));
      else uncached.add(key);
    }),
  );
  // What each photo still needs, photos in the order the requests name them (variant key → parts), and how many of
  // the requests' photos wait for each photo's decode.
  const variants = new Map(requests.map((request) => [variantKeyOf(request), request.variant]));
  const missing = new Map<string, Map<string, Set<number>>>();
  const waitingOn = new Map<string, number>();
  for (const request of requests) {
    const variantKey = variantKeyOf(request);
    for (const hash of request.hashes) {
      const needed = parts.flatMap((part, index) => (uncached.has(featureKey(part.id, variantKey, hash)) ? [index] : []));
      if (needed.length === 0) continue;
      const needs = missing.get(hash) ?? new Map<string, Set<number>>();
      missing.set(hash, needs.set(variantKey, new Set([...(needs.get(variantKey) ?? []), ...needed])));
      waitingOn.set(hash, (waitingOn.get(hash) ?? 0) + 1);
    }
  }
  const total = requests.reduce((sum, request) => sum + request.hashes.length, 0);
  const cachedCount = total - [...waitingOn.values()].reduce((sum, count) => sum + count, 0);
  let done = cachedCount;
  options.onProgress?.({ done, total, cached: cachedCount });

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
      const views = new Map(
        chunk.flatMap((hash, position) => (missing.get(hash)!.has(variantKey) ? [[position, variant ? variant.transform(pixels[position]!, hash) : pixels[position]!] as const] : [])),
      );
      // Parts needing the same photos share one batch; a part cached for some of them (one added to an ensemble) runs on its own.
      const groups = new Map<string, { positions: number[]; parts: number[] }>();
      parts.forEach((_, part) => {
        const positions = [...views.keys()].filter((position) => missing.get(chunk[position]!)!.get(variantKey)!.has(part));
        if (positions.length === 0) return;
        const group = groups.get(positions.join()) ?? { positions, parts: [] };
        groups.set(positions.join(), { ...group, parts: [...group.parts, part] });
      });
      for (const group of groups.values()) {
        const outputs = await extractFeaturesOfBatch(group.parts.map((part) => parts[part]!), group.positions.map((position) => views.get(position)!));
        group.parts.forEach((part, output) =>
          group.positions.forEach((position, i) => {
            const vector = outputs[output]![i]!;
            const key = featureKey(parts[part]!.id, variantKey, chunk[position]!);
            place(key, vector);
            const write = deps.blobs.put(key, new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
            writes.push(write.catch((error: unknown) => void (writeFailure ??= { error })));
          }),
        );
      }
    }
    done += chunk.reduce((sum, hash) => sum + waitingOn.get(hash)!, 0);
    options.onProgress?.({ done, total, cached: cachedCount });
  }
  await Promise.all(writes);
  if (writeFailure) throw writeFailure.error;
  return answers;
}
