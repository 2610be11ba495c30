import { seededRandom } from '../images/index.js';
import type { Batches, Tf } from '../ml/index.js';

/** Fisher–Yates with a seeded generator: every epoch sees a different order, every run the same orders. */
export function shuffledIndices(count: number, seed: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = count - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Batches of cached backbone outputs: feature vectors for a head, or activations of shape `exampleShape` for a
 * network holding fine-tuned backbone blocks. Feature vectors are also offered resident (one block the graph
 * trainer keeps in its session); activations are not, as a second copy of them would take hundreds of MB.
 */
export function featureBatches(
  tf: Tf,
  features: readonly Float32Array[],
  labels: readonly number[],
  batchSize: number,
  seed: number,
  shuffle = true,
  exampleShape: readonly number[] = [features[0]?.length ?? 0],
): Batches {
  const featureSize = features[0]?.length ?? 0;
  const order = (epoch: number) => (shuffle ? shuffledIndices(features.length, seed + epoch) : features.map((_, i) => i));
  return {
    count: features.length,
    size: batchSize,
    async *batches(epoch: number) {
      const rows = order(epoch);
      for (let start = 0; start < rows.length; start += batchSize) {
        const slice = rows.slice(start, start + batchSize);
        const x = new Float32Array(slice.length * featureSize);
        slice.forEach((index, row) => x.set(features[index]!, row * featureSize));
        yield {
          x: tf.tensor(x, [slice.length, ...exampleShape]),
          y: tf.tensor2d(slice.map((index) => labels[index]!), [slice.length, 1]),
        };
      }
    },
    ...(exampleShape.length === 1 && {
      resident() {
        const x = new Float32Array(features.length * featureSize);
        features.forEach((values, row) => x.set(values, row * featureSize));
        return { x, exampleShape, y: Float32Array.from(labels), order: (epoch: number) => Int32Array.from(order(epoch)) };
      },
    }),
  };
}

/** Batches of RGB pixels for the CNN, augmented per sample and per epoch when `augment` is given. */
export function pixelBatches(
  tf: Tf,
  images: readonly Uint8Array[],
  labels: readonly number[],
  imageSize: number,
  batchSize: number,
  seed: number,
  augment?: (pixels: Uint8Array, random: () => number) => Uint8Array,
): Batches {
  const pixelsPerImage = imageSize * imageSize * 3;
  return {
    count: images.length,
    size: batchSize,
    async *batches(epoch: number) {
      const order = augment ? shuffledIndices(images.length, seed + epoch) : images.map((_, i) => i);
      const random = seededRandom(seed * 7919 + epoch);
      for (let start = 0; start < order.length; start += batchSize) {
        const slice = order.slice(start, start + batchSize);
        const x = new Float32Array(slice.length * pixelsPerImage);
        slice.forEach((index, row) => {
          const pixels = augment ? augment(images[index]!, random) : images[index]!;
          x.set(pixels, row * pixelsPerImage);
        });
        yield {
          x: tf.tensor4d(x, [slice.length, imageSize, imageSize, 3]),
          y: tf.tensor2d(slice.map((index) => labels[index]!), [slice.length, 1]),
        };
      }
    },
  };
}
