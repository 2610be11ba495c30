import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { foldBatchNormalization } from './fold-batch-norm.js';
import { rgbPixels } from '../../test/support/ml.js';
import { initTensorflow, type Tensorflow } from './tf.js';

const classNames = (model: LayersModel) => model.layers.map((layer) => layer.getClassName());

async function maxAbsDifference(tf: Tensorflow, a: LayersModel, b: LayersModel, x: Tensor): Promise<number> {
  const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(a.predict(x) as Tensor, b.predict(x) as Tensor))));
  const [value] = await difference.data();
  difference.dispose();
  return value!;
}

/** Sets every BatchNorm weight ([γ], [β], moving mean, moving variance) to values far from the identity. */
function randomiseBatchNorms(tf: Tensorflow, model: LayersModel): void {
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const weights = layer.getWeights();
    const isVariance = (i: number) => i === weights.length - 1;
    const replacement = weights.map((w, i) => tf.randomUniform(w.shape, isVariance(i) ? 0.2 : -2, 2, 'float32', 100 + i));
    layer.setWeights(replacement);
    tf.dispose(replacement);
  }
}

describe('foldBatchNormalization', () => {
  it('folds conv and depthwise (multiplier 2) BatchNorms, biases and ReLU6 into the convolutions, same outputs', async () => {
    const { tf } = await initTensorflow();
    const input = tf.input({ shape: [9, 9, 3] });
    let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: true, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: 'ones' }).apply(input);
    x = tf.layers.batchNormalization({ epsilon: 1e-3 }).apply(x);
    x = tf.layers.activation({ activation: 'relu6' }).apply(x);
    x = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, useBias: false, depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x);
    // Affine only (no γ): the map folds with γ = 1; a tanh, not a ReLU6, follows and stays a layer of its own.
    x = tf.layers.batchNormalization({ scale: false }).apply(x);
    const output = tf.layers.activation({ activation: 'tanh' }).apply(x) as ReturnType<typeof tf.input>;
    const model = tf.model({ inputs: input, outputs: output });
    randomiseBatchNorms(tf, model);
    const before = tf.memory().numTensors;

    const folded = await foldBatchNormalization(model);
    expect(classNames(model)).toEqual(['InputLayer', 'Conv2D', 'BatchNormalization', 'Activation', 'DepthwiseConv2D', 'BatchNormalization', 'Activation']);
    expect(classNames(folded)).toEqual(['InputLayer', 'Conv2D', 'DepthwiseConv2D', 'Activation']);
    expect(folded.outputs[0]!.sourceLayer.name).toBe(model.outputs[0]!.sourceLayer.name);
    const x0 = tf.randomUniform([5, 9, 9, 3], -3, 3, 'float32', 7);
    expect(await maxAbsDifference(tf, model, folded, x0)).toBeLessThan(1e-4);
    x0.dispose();
    folded.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it.skipIf(skipWithoutShared)('gives the real MobileNet the same features on photos with no BatchNorm or ReLU6 layer left', async () => {
    const { tf } = await initTensorflow();
    const mobilenet = await tf.loadLayersModel(`file://${smallBackbone}`);
    const originalWeights = await Promise.all(mobilenet.getWeights().map((w) => w.data()));
    const folded = await foldBatchNormalization(mobilenet);
    expect(classNames(folded)).not.toContain('BatchNormalization');
    expect(folded.layers.filter((l) => l.getClassName() === 'Activation').map((l) => l.getConfig().activation)).toEqual(['softmax']);
    expect(classNames(folded).length).toBeLessThan(classNames(mobilenet).length / 2);

    const photos = await rgbPixels([...kaggleFiles('cat', 2), ...kaggleFiles('dog', 2)]);
    const batch = tf.tidy(() => tf.sub(tf.div(tf.tensor4d(Float32Array.from(photos.flatMap((p) => [...p])), [4, 224, 224, 3]), 127.5), 1));
    expect(await maxAbsDifference(tf, mobilenet, folded, batch)).toBeLessThan(1e-5);
    // The original keeps its own weights: export and fine-tuning still see the BatchNorm layers as loaded.
    const after = await Promise.all(mobilenet.getWeights().map((w) => w.data()));
    expect(after).toEqual(originalWeights);
    batch.dispose();
    folded.dispose();
    mobilenet.dispose();
  });

  it('returns a model with nothing to fold as it is', async () => {
    const { tf } = await initTensorflow();
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 1 })] });
    expect(await foldBatchNormalization(model)).toBe(model);
    model.dispose();
  });
});
