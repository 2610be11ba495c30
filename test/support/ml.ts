import sharp from 'sharp';
import { expect } from 'vitest';
import type { Batches } from '../../src/ml/train.js';
import type { Tensorflow } from '../../src/ml/tf.js';

/** Real photos as the RGB HWC bytes the ml layer takes, squashed to `size` like the product does. */
export async function rgbPixels(files: string[], size = 224): Promise<Uint8Array[]> {
  return Promise.all(
    files.map(async (file) => {
      const buffer = await sharp(file).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    }),
  );
}

/**
 * A small conv + dense model with deterministic weights run on a deterministic batch: every backend must give
 * the same numbers.
 */
export function backendParityOutputs(tf: Tensorflow): number[] {
  return tf.tidy(() => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'sigmoid' }),
      ],
    });
    model.setWeights(model.weights.map((weight, w) => wave(tf, weight.shape as number[], w + 1)));
    const output = model.predict(wave(tf, [2, 8, 8, 3], 0.5)) as ReturnType<Tensorflow['tensor']>;
    const values = Array.from(output.dataSync());
    model.dispose();
    return values;
  });
}

function wave(tf: Tensorflow, shape: number[], frequency: number) {
  const size = shape.reduce((count, dimension) => count * dimension, 1);
  return tf.tensor(Float32Array.from({ length: size }, (_, i) => Math.sin(i * frequency) * 0.5), shape);
}

/** The largest element-wise difference of two equally long number lists (their lengths are asserted equal). */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/**
 * In-memory batches of `examples` (one `Float32Array` each, of shape `exampleShape`) and their 0/1 labels (as [n]),
 * reshuffled every epoch by a fixed rule, so runs repeat.
 */
export function fixedOrderBatches(tf: Tensorflow, examples: readonly Float32Array[], labels: readonly number[], size: number, exampleShape = [examples[0]!.length]): Batches {
  const width = examples[0]!.length;
  return {
    count: examples.length,
    size,
    async *batches(epoch) {
      const order = examples.map((_, i) => i).sort((a, b) => ((a * 7919 + epoch * 104729) % 1009) - ((b * 7919 + epoch * 104729) % 1009));
      for (let start = 0; start < order.length; start += size) {
        const rows = order.slice(start, start + size);
        const x = new Float32Array(rows.length * width);
        rows.forEach((row, i) => x.set(examples[row]!, i * width));
        yield { x: tf.tensor(x, [rows.length, ...exampleShape]), y: tf.tensor1d(rows.map((row) => labels[row]!)) };
      }
    },
  };
}
