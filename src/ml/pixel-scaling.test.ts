import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { type Backbone, loadBackbone } from './backbone.js';
import { rgbPixels } from '../../test/support/ml.js';
import { initTensorflow, type Tensorflow } from './tf.js';

/** Cosine similarity of each row pair, worst first. */
function worstCosine(a: number[][], b: number[][]): number {
  return Math.min(
    ...a.map((row, i) => {
      const other = b[i]!;
      const dot = row.reduce((sum, value, j) => sum + value * other[j]!, 0);
      const norm = (values: number[]) => Math.sqrt(values.reduce((sum, value) => sum + value * value, 0));
      return dot / (norm(row) * norm(other));
    }),
  );
}

describe.skipIf(skipWithoutShared)('declared pixel scaling', () => {
  let tf: Tensorflow;
  let cacheDir: string;
  let native: Backbone;
  let photos: Uint8Array[];

  beforeAll(async () => {
    ({ tf } = await initTensorflow());
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-scaling-'));
    native = await loadBackbone(smallBackbone, { cacheDir });
    photos = await rgbPixels([...kaggleFiles('cat', 3), ...kaggleFiles('dog', 3)]);
  });
  afterAll(async () => {
    native?.dispose();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  const batch = (map: (value: number, channel: number) => number) =>
    tf.tensor4d(Float32Array.from(photos.flatMap((photo) => Array.from(photo, (value, i) => map(value, i % 3)))), [photos.length, 224, 224, 3]);

  // MobileNet v1's first convolution has no bias: the offset goes into the BatchNormalization after it.
  it.each([
    // A model wanting x/255 gets from catdog's loader what the same weights compute on x/255 = y/127.5 − 1, y = x/2 + 127.5.
    ['x/255', (value: number) => value / 2 + 127.5],
    // Caffe: BGR minus the channel means; the model's channel c reads the photo's channel 2 − c.
    ['caffe', (_value: number, channel: number, photo: Uint8Array, i: number) => 127.5 * (photo[i - channel + (2 - channel)]! - [103.939, 116.779, 123.68][channel]! + 1)],
    // Torch: x/255 minus the channel mean, over the channel's standard deviation.
    ['torch', (value: number, channel: number) => 127.5 * ((value / 255 - [0.485, 0.456, 0.406][channel]!) / [0.229, 0.224, 0.225][channel]! + 1)],
  ] as const)('folds %s into the first convolution: features equal the unscaled model fed the pixels it expects', async (scaling, expected) => {
    const declared = await loadBackbone(smallBackbone, { cacheDir, scaling });
    try {
      expect(declared.id).toBe(`${native.id}-${scaling.replace(/[^A-Za-z0-9.]/g, '')}`);
      const [ours, reference] = tf.tidy(() => {
        const fed = batch((value) => value);
        const wanted = tf.tensor4d(
          Float32Array.from(photos.flatMap((photo) => Array.from(photo, (value, i) => expected(value, i % 3, photo, i)))),
          [photos.length, 224, 224, 3],
        );
        return [declared.features(fed).arraySync() as number[][], native.features(wanted).arraySync() as number[][]];
      });
      // Exact away from the border; the first convolution's zero padding differs on the outermost pixels only.
      expect(worstCosine(ours, reference)).toBeGreaterThan(0.99);
      const plain = tf.tidy(() => native.features(batch((value) => value)).arraySync() as number[][]);
      expect(worstCosine(ours, plain)).toBeLessThan(worstCosine(ours, reference));
    } finally {
      declared.dispose();
    }
  });
});
