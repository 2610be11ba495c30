import type { Classifier, Prediction } from '../registry/classifier.js';

interface Waiting {
  images: readonly Uint8Array[];
  resolve: (predictions: Prediction[]) => void;
  reject: (error: unknown) => void;
}

/** The most images one model call is handed: a request with more is split into calls of at most this many. */
export const DEFAULT_MAX_BATCH = 32;

export interface BatchingOptions {
  /** Most images in one model call (default DEFAULT_MAX_BATCH), however many a request carries. */
  maxBatch?: number;
  /** Told the number of images of every model call it makes, so the merging can be watched (metrics). */
  onModelCall?: (images: number) => void;
}

/**
 * The same classifier, with concurrent `predictPixels` calls merged into one model call: requests that arrive
 * while the model is busy wait and then run together, up to `maxBatch` images. One forward pass over n images
 * costs far less than n passes of one (per-op dispatch dominates a single 224 px image), so under load this
 * raises throughput; an idle server starts each request at once (after the current event-loop turn). A request
 * larger than `maxBatch` is split into parts of at most `maxBatch`: a model call's memory (activations of every
 * image at once, held by the native allocator afterwards) grows with its batch, so no request may choose it.
 */
export function batchPredictions(classifier: Classifier, { maxBatch = DEFAULT_MAX_BATCH, onModelCall }: BatchingOptions = {}): Classifier {
  const waiting: Waiting[] = [];
  let draining = false;

  const takeBatch = (): Waiting[] => {
    const taken: Waiting[] = [];
    let images = 0;
    // Whole parts only (each at most maxBatch), so the first one always fits.
    while (waiting.length > 0 && (taken.length === 0 || images + waiting[0]!.images.length <= maxBatch)) {
      const next = waiting.shift()!;
      taken.push(next);
      images += next.images.length;
    }
    return taken;
  };

  const drain = async (): Promise<void> => {
    while (waiting.length > 0) {
      const batch = takeBatch();
      const images = batch.flatMap((request) => request.images);
      onModelCall?.(images.length);
      try {
        const predictions = await classifier.predictPixels(images);
        let offset = 0;
        for (const request of batch) {
          request.resolve(predictions.slice(offset, offset + request.images.length));
          offset += request.images.length;
        }
      } catch (error) {
        for (const request of batch) request.reject(error);
      }
    }
    draining = false;
  };

  return {
    ...classifier,
    async predictPixels(images) {
      const parts: Promise<Prediction[]>[] = [];
      for (let start = 0; start < images.length; start += maxBatch) {
        parts.push(new Promise((resolve, reject) => waiting.push({ images: images.slice(start, start + maxBatch), resolve, reject })));
      }
      if (parts.length > 0 && !draining) {
        draining = true;
        // setImmediate: requests parsed in the same event-loop turn join the first call too.
        setImmediate(() => void drain());
      }
      return (await Promise.all(parts)).flat();
    },
    dispose: () => classifier.dispose(),
  };
}
