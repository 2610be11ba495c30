import type { Classifier, Prediction } from '../registry/classifier.js';

interface Waiting {
  images: readonly Uint8Array[];
  resolve: (predictions: Prediction[]) => void;
  reject: (error: unknown) => void;
}

export interface BatchingOptions {
  /** Most images in one merged model call (default 32); a single larger request still runs, alone. */
  maxBatch?: number;
  /** Told the number of images of every model call it makes, so the merging can be watched (metrics). */
  onModelCall?: (images: number) => void;
}

/**
 * The same classifier, with concurrent `predictPixels` calls merged into one model call: requests that arrive
 * while the model is busy wait and then run together, up to `maxBatch` images. One forward pass over n images
 * costs far less than n passes of one (per-op dispatch dominates a single 224 px image), so under load this
 * raises throughput; an idle server starts each request at once (after the current event-loop turn).
 */
export function batchPredictions(classifier: Classifier, { maxBatch = 32, onModelCall }: BatchingOptions = {}): Classifier {
  const waiting: Waiting[] = [];
  let draining = false;

  const takeBatch = (): Waiting[] => {
    const taken: Waiting[] = [];
    let images = 0;
    // Whole requests only; a request larger than maxBatch still runs, alone.
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
    predictPixels(images) {
      if (images.length === 0) return Promise.resolve([]);
      return new Promise((resolve, reject) => {
        waiting.push({ images, resolve, reject });
        if (!draining) {
          draining = true;
          // setImmediate: requests parsed in the same event-loop turn join the first call too.
          setImmediate(() => void drain());
        }
      });
    },
    dispose: () => classifier.dispose(),
  };
}
