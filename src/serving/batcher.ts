import type { Classifier, Prediction } from '../registry/classifier.js';

interface Waiting {
  images: readonly Uint8Array[];
  resolve: (predictions: Prediction[]) => void;
  reject: (error: unknown) => void;
}

/** The most images one model call is handed: a request with more is split into calls of at most this many. */
export const DEFAULT_MAX_BATCH = 32;

/**
 * The longest a model call waits for announced photos still being decoded, as a share of the previous call's
 * duration: long enough for a full batch's decodes on an idle model, short against the call it saves.
 */
export const DEFAULT_LINGER_SHARE = 0.5;

/** Whatever the previous call took (a first call at 288 px through three backbones is slow), no call waits longer. */
const MAX_LINGER_MS = 250;

export interface BatchingOptions {
  /** Most images in one model call (default DEFAULT_MAX_BATCH), however many a request carries. */
  maxBatch?: number;
  /** How long a call may wait for announced photos, as a share of the previous call's time (default DEFAULT_LINGER_SHARE). */
  lingerShare?: number;
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
 *
 * Photos announced (`announce`) while still being decoded hold a call back until they arrive, the batch is full
 * or half the previous call's time (at most MAX_LINGER_MS) has passed; an announcement too large for the room left
 * holds nothing back. Without that, under load the decodes (which share the cores with
 * the model) trickled in two at a time, and every call ran the backbones on two photos: for a three-backbone
 * preset, half the photos per second the backbones give at full batches.
 */
export function batchPredictions(classifier: Classifier, { maxBatch = DEFAULT_MAX_BATCH, lingerShare = DEFAULT_LINGER_SHARE, onModelCall }: BatchingOptions = {}): Classifier {
  const waiting: Waiting[] = [];
  let draining = false;
  /** The photo counts of the announcements not yet withdrawn. */
  const announced: number[] = [];
  let lastCallMs = 0;
  /** Wakes a call that lingers for announced photos; set only while one does. */
  let wake: (() => void) | undefined;
  const waitingImages = () => waiting.reduce((sum, request) => sum + request.images.length, 0);
  // Only an announcement that would still fit in this call is worth waiting for: a large upload joins a later one.
  const lingering = () => {
    const room = maxBatch - waitingImages();
    return announced.some((images) => images <= room);
  };

  /** Waits while announced photos are on their way and the batch is not full, at most `limitMs`. */
  const linger = async (limitMs: number): Promise<void> => {
    const deadline = performance.now() + limitMs;
    while (lingering()) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  };

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
      if (lastCallMs > 0) await linger(Math.min(lastCallMs * lingerShare, MAX_LINGER_MS));
      const batch = takeBatch();
      const images = batch.flatMap((request) => request.images);
      onModelCall?.(images.length);
      const callStarted = performance.now();
      try {
        const predictions = await classifier.predictPixels(images);
        lastCallMs = performance.now() - callStarted;
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
      wake?.();
      return (await Promise.all(parts)).flat();
    },
    announce(images) {
      announced.push(images);
      let withdrawn = false;
      return () => {
        if (withdrawn) return;
        withdrawn = true;
        announced.splice(announced.indexOf(images), 1);
        wake?.();
      };
    },
    dispose: () => classifier.dispose(),
  };
}
