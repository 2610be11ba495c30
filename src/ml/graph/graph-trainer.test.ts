import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCnn, buildHead } from '../models.js';
import type { PetLogits } from '../imagenet-head.js';
import { maxAbsDifference } from '../test-support.js';
import { binaryCrossentropyLoss } from '../train.js';
import { initTensorflow, type Tensorflow } from '../tf.js';
import { UnsupportedLayerError } from './from-layers.js';
import { loadGraphTrainer } from './graph-trainer.js';

const onWasm = process.env.CATDOG_BACKEND === 'wasm';
const ADAM = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999 };

/** Feature vectors whose label is carried by a few of their features, with noise: a head learns it in a few steps. */
function dataset(tf: Tensorflow, count: number, width: number): { x: Tensor; y: Tensor } {
  const x = new Float32Array(count * width);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    y[i] = i % 3 === 0 ? 1 : 0;
    for (let j = 0; j < width; j++) x[i * width + j] = Math.sin(i * 12.9898 + j * 78.233) * 0.5 + (j < 8 ? (y[i]! - 0.5) * 0.6 : 0);
  }
  return { x: tf.tensor2d(x, [count, width]), y: tf.tensor2d(y, [count, 1]) };
}

function petLogits(featureSize: number): PetLogits {
  const cats = 2;
  const dogs = 3;
  return {
    kernel: Float32Array.from({ length: featureSize * (cats + dogs) }, (_, i) => Math.cos(i * 0.37) * 0.1),
    bias: Float32Array.from({ length: cats + dogs }, (_, i) => i * 0.1),
    featureSize,
    cats,
    dogs,
  };
}

describe.skipIf(onWasm)('training a head as one TensorFlow graph', () => {
  let tf: Tensorflow;
  beforeAll(async () => {
    ({ tf } = await initTensorflow());
  });

  /**
   * The same model trained twice from the same weights on the same batches (the last one smaller): eagerly with
   * tfjs-layers' `trainOnBatch`, and through the graph trainer.
   */
  async function trainBoth(build: () => LayersModel, steps: number) {
    const width = build().inputs[0]!.shape[1]!;
    const { x, y } = dataset(tf, 100, width);
    const batches = Array.from({ length: steps }, (_, step) => {
      const start = (step * 32) % 96;
      const size = step % 4 === 3 ? 4 : 32;
      return { x: tf.slice(x, [start, 0], [size, width]), y: tf.slice(y, [start, 0], [size, 1]) };
    });
    const eager = build();
    const optimizer = tf.train.adam(ADAM.learningRate);
    eager.compile({ optimizer, loss: binaryCrossentropyLoss(tf), metrics: ['accuracy'] });
    const eagerSteps: { loss: number; correct: number }[] = [];
    for (const batch of batches) {
      const [loss, accuracy] = (await eager.trainOnBatch(batch.x, batch.y)) as number[];
      eagerSteps.push({ loss: loss! * batch.x.shape[0]!, correct: accuracy! * batch.x.shape[0]! });
    }
    const graphModel = build();
    const trainer = await loadGraphTrainer(tf, graphModel, { ...ADAM, epsilon: tf.backend().epsilon() });
    const graphSteps = batches.map((batch) => trainer.step(batch.x, batch.y));
    trainer.copyWeightsToModel();
    trainer.dispose();
    const result = {
      eagerSteps,
      graphSteps,
      eagerWeights: eager.getWeights().map((w) => w.dataSync()),
      graphWeights: graphModel.getWeights().map((w) => w.dataSync()),
      initialWeights: build().getWeights().map((w) => w.dataSync()),
    };
    tf.dispose([x, y, ...batches.flatMap((batch) => [batch.x, batch.y])]);
    optimizer.dispose();
    eager.dispose();
    graphModel.dispose();
    return result;
  }

  it.each<[string, () => LayersModel]>([
    ['logistic head (L2 penalty)', () => buildHead('logistic', 48, 5)],
    ['MLP head (ReLU, seeded dropout)', () => buildHead('mlp', 48, 5)],
    ['logistic head with the frozen zero-shot vote', () => buildHead('logistic', 48, 5, petLogits(48))],
    ['MLP head with the frozen zero-shot vote', () => buildHead('mlp', 48, 5, petLogits(48))],
  ])('%s: the same losses, answers and weights as tfjs-layers trainOnBatch, step by step', async (_, build) => {
    const { eagerSteps, graphSteps, eagerWeights, graphWeights, initialWeights } = await trainBoth(build, 24);
    for (const [i, eager] of eagerSteps.entries()) {
      expect(graphSteps[i]!.loss).toBeCloseTo(eager.loss, 4);
      expect(graphSteps[i]!.correct).toBe(Math.round(eager.correct));
    }
    // It learned something (the loss fell), and both paths moved the same weights (not the frozen ones) the same way.
    expect(graphSteps.at(-2)!.loss).toBeLessThan(graphSteps[0]!.loss);
    const moved = (weights: ArrayLike<number>[]) => weights.map((weight, i) => maxAbsDifference(weight, initialWeights[i]!) > 0);
    expect(moved(graphWeights)).toEqual(moved(eagerWeights));
    expect(moved(graphWeights)).toContain(true);
    for (const [i, eager] of eagerWeights.entries()) expect(maxAbsDifference(graphWeights[i]!, eager)).toBeLessThan(1e-5);
  });

  it('leaks no tensors and no sessions', async () => {
    const savedModels = () => (tf as unknown as typeof TensorflowNode).node.getNumOfSavedModels();
    const model = buildHead('mlp', 16, 1);
    const tensorsBefore = tf.memory().numTensors;
    const sessionsBefore = savedModels();
    const { x, y } = dataset(tf, 32, 16);
    const trainer = await loadGraphTrainer(tf, model, { ...ADAM, epsilon: 1e-7 });
    const labels = tf.reshape(y, [32]);
    trainer.step(x, y);
    trainer.step(x, labels);
    trainer.copyWeightsToModel();
    trainer.dispose();
    tf.dispose([x, y, labels]);
    expect(savedModels()).toBe(sessionsBefore);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    model.dispose();
  });

  it('refuses a network it has no training graph for (the CNN) with an UnsupportedLayerError', async () => {
    const cnn = buildCnn(32, 1);
    await expect(loadGraphTrainer(tf, cnn, { ...ADAM, epsilon: 1e-7 })).rejects.toBeInstanceOf(UnsupportedLayerError);
    cnn.dispose();
  });
});
