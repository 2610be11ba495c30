import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LayersModel, NamedTensorMap, SymbolicTensor, Tensor, Variable } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { fineTuningNetwork } from '../fine-tune.js';
import { buildCnn, buildHead } from '../models.js';
import type { PetLogits } from '../imagenet-head.js';
import { maxAbsDifference } from '../../../test/support/ml.js';
import { binaryCrossentropyLoss } from '../train.js';
import { initTensorflow, type Tensorflow } from '../tf.js';
import { UnsupportedLayerError } from './from-layers.js';
import { loadGraphTrainer } from './graph-trainer.js';
import { DataType, encodeSavedModel } from './saved-model.js';
import { trainingGraph } from './training-graph.js';

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

describe.skipIf(onWasm)('training as one TensorFlow graph', () => {
  let tf: Tensorflow;
  beforeAll(async () => {
    ({ tf } = await initTensorflow());
  });

  /**
   * The same model trained twice from the same weights on the same batches of `x` (the last of every four smaller):
   * eagerly with tfjs-layers' `trainOnBatch`, and through the graph trainer.
   */
  async function trainBoth(build: () => LayersModel, { x, y }: { x: Tensor; y: Tensor }, steps: number) {
    const count = x.shape[0]!;
    const batches = Array.from({ length: steps }, (_, step) => {
      const start = (step * 32) % (count - 32);
      const size = step % 4 === 3 ? 4 : 32;
      return { x: tf.slice(x, start, size), y: tf.slice(y, start, size) };
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
    const { eagerSteps, graphSteps, eagerWeights, graphWeights, initialWeights } = await trainBoth(build, dataset(tf, 100, 48), 24);
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

  it('trains the CNN (convolutions, BatchNorm in training mode, pooling, dropout) as trainOnBatch does, moving statistics included', async () => {
    const pixels = tf.tidy(() => tf.floor(tf.randomUniform([72, 32, 32, 3], 0, 256, 'float32', 3)));
    const labels = tf.tidy(() => tf.reshape(tf.cast(tf.greater(tf.mean(tf.slice(pixels, [0, 0, 0, 0], [-1, 16, 32, 1]), [1, 2, 3]), tf.mean(pixels, [1, 2, 3])), 'float32'), [-1, 1]));
    const { eagerSteps, graphSteps, eagerWeights, graphWeights, initialWeights } = await trainBoth(() => buildCnn(32, 5), { x: pixels, y: labels }, 1);
    expect(graphSteps[0]!.loss).toBeCloseTo(eagerSteps[0]!.loss, 3);
    expect(graphSteps[0]!.correct).toBe(Math.round(eagerSteps[0]!.correct));
    // Adam's first step moves every weight by ±learning rate, the sign of its gradient: where a gradient is rounding
    // noise (a convolution's bias before BatchNorm, whose exact gradient is 0; a kernel element whose terms cancel) the
    // two paths' sums round to either sign. Every other element, and the moving statistics, agree to float rounding.
    let differing = 0;
    let elements = 0;
    for (const [i, eager] of eagerWeights.entries()) {
      expect(maxAbsDifference(graphWeights[i]!, initialWeights[i]!)).toBeGreaterThan(0);
      eager.forEach((value, j) => {
        elements += 1;
        if (Math.abs(graphWeights[i]![j]! - value) > 1e-5 * Math.max(1, Math.abs(value))) differing += 1;
      });
    }
    expect(differing / elements).toBeLessThan(0.005);
  });

  /** Every trainable weight's gradient of the training graph against tfjs's tape on the loss trainOnBatch minimises. */
  async function expectTfjsGradients(model: LayersModel, x: Tensor, y: Tensor) {
    const loss = binaryCrossentropyLoss(tf);
    const { grads } = tf.variableGrads(
      () => tf.mean(loss(y, model.apply(x, { training: true }) as Tensor)) as ReturnType<Tensorflow['scalar']>,
      model.trainableWeights.map((weight) => weight.read() as Variable),
    );
    // The graph: its gradient nodes fetched through a signature of the test's own.
    const graph = trainingGraph(tf, model, { ...ADAM, epsilon: 1e-7 });
    const tensorName = (node: string) => (node.includes(':') ? node : `${node}:0`);
    const gradientOutputs = Object.fromEntries(
      graph.gradients.flatMap((node, i) => (node ? [[`gradient_${i}`, { tensor: tensorName(node), dtype: DataType.float32, shape: model.weights[i]!.shape as number[] }]] : [])),
    );
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-gradients-'));
    await fs.writeFile(
      path.join(folder, 'saved_model.pb'),
      encodeSavedModel({ nodes: graph.nodes, tags: ['serve'], signatures: { ...graph.signatures, gradients: { inputs: { x: graph.signatures.step.inputs.x!, y: graph.signatures.step.inputs.y! }, outputs: gradientOutputs } } }),
    );
    const { node } = tf as unknown as typeof TensorflowNode;
    const [assign, gradients] = [await node.loadSavedModel(folder, ['serve'], 'assign'), await node.loadSavedModel(folder, ['serve'], 'gradients')];
    await fs.rm(folder, { recursive: true });
    tf.dispose(Object.values(assign.predict(Object.fromEntries(model.weights.map((weight, i) => [`weight_${i}`, weight.read()]))) as NamedTensorMap));
    const fromGraph = gradients.predict({ x, y }) as NamedTensorMap;
    expect(Object.keys(fromGraph)).toHaveLength(model.trainableWeights.length);
    for (const [i, weight] of model.weights.entries()) {
      if (!model.trainableWeights.includes(weight)) continue;
      const actual = fromGraph[`gradient_${i}`]!.dataSync();
      const reference = grads[(weight.read() as Variable).name]!.dataSync();
      const scale = Math.max(...Array.from(reference, Math.abs));
      expect(scale, weight.name).toBeGreaterThan(0);
      expect(maxAbsDifference(actual, reference) / scale, weight.name).toBeLessThan(1e-4);
    }
    assign.dispose();
    gradients.dispose();
    tf.dispose([x, y, ...Object.values(grads), ...Object.values(fromGraph)]);
  }

  it("gives tfjs's own gradients for every weight of convolutions, BatchNorm, pooling and dense layers on random data", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.rescaling({ inputShape: [9, 9, 3], scale: 1 / 64, offset: -1 }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' }),
        tf.layers.batchNormalization(),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 6, kernelSize: 2, strides: 1, activation: 'relu' }),
        tf.layers.batchNormalization(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 5, activation: 'relu' }),
        tf.layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
    });
    await expectTfjsGradients(model, tf.randomUniform([6, 9, 9, 3], 0, 128, 'float32', 7), tf.tensor2d([0, 1, 1, 0, 1, 0], [6, 1]));
    model.dispose();
  });

  /**
   * A fine-tuning network as `fineTuningNetwork` builds it from MobileNet-style blocks (Keras's strided block starts
   * with ZeroPadding2D; ReLU6 as a layer and as an activation; a depthwise convolution with a bias and a depth
   * multiplier), its BatchNorm frozen with pretrained-like statistics, the head nested as a model; weights from `seed`.
   */
  function fineTuningBlocks(seed: number): LayersModel {
    const activations = tf.input({ shape: [9, 9, 4] });
    const features = [
      tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 1, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: 'relu6' }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2 }),
      tf.layers.globalAveragePooling2d({}),
    ].reduce<SymbolicTensor>((input, layer) => layer.apply(input) as SymbolicTensor, activations);
    const top = tf.model({ inputs: activations, outputs: features });
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [12], units: 5, activation: 'relu' }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
    const network = fineTuningNetwork(top, head);
    const statistics = new Set(network.layers.filter((layer) => layer.getClassName() === 'BatchNormalization').flatMap((layer) => layer.weights.slice(2)));
    network.setWeights(
      network.weights.map((weight, i) =>
        tf.tidy(() => {
          const shape = weight.shape as number[];
          // Moving variance (the 4th weight of a BatchNorm) positive; scales near 1; kernels large enough that some ReLU6 caps.
          if (statistics.has(weight)) return weight.name.includes('variance') ? tf.randomUniform(shape, 0.5, 2, 'float32', seed + i) : tf.randomUniform(shape, -0.5, 0.5, 'float32', seed + i);
          return tf.randomUniform(shape, -1, 1.5, 'float32', seed + i);
        }),
      ),
    );
    return network;
  }

  it("gives tfjs's own gradients through fine-tuned MobileNet blocks (padding, depthwise convolutions, frozen BatchNorm, ReLU6, global pooling, a nested head) on random data", async () => {
    const network = fineTuningBlocks(11);
    expect(network.layers.map((layer) => layer.getClassName())).toContain('Sequential');
    await expectTfjsGradients(network, tf.randomUniform([6, 9, 9, 4], -1, 6, 'float32', 7), tf.tensor2d([0, 1, 1, 0, 1, 0], [6, 1]));
    network.dispose();
  });

  it('trains fine-tuned blocks as trainOnBatch does, their frozen BatchNorm statistics untouched', async () => {
    const pixels = tf.randomUniform([72, 9, 9, 4], -1, 6, 'float32', 5);
    const labels = tf.tidy(() => tf.reshape(tf.cast(tf.greater(tf.mean(tf.slice(pixels, [0, 0, 0, 0], [-1, 4, 9, 1]), [1, 2, 3]), tf.mean(pixels, [1, 2, 3])), 'float32'), [-1, 1]));
    const { eagerSteps, graphSteps, eagerWeights, graphWeights, initialWeights } = await trainBoth(() => fineTuningBlocks(3), { x: pixels, y: labels }, 12);
    for (const [i, eager] of eagerSteps.entries()) {
      expect(graphSteps[i]!.loss).toBeCloseTo(eager.loss, 3);
      expect(graphSteps[i]!.correct).toBe(Math.round(eager.correct));
    }
    const moved = (weights: ArrayLike<number>[]) => weights.map((weight, i) => maxAbsDifference(weight, initialWeights[i]!) > 0);
    expect(moved(graphWeights)).toEqual(moved(eagerWeights));
    // The three kernels, the depthwise bias and the head's four weights move; the four weights of each frozen BatchNorm do not.
    expect(moved(graphWeights).filter(Boolean)).toHaveLength(8);
    for (const [i, eager] of eagerWeights.entries()) expect(maxAbsDifference(graphWeights[i]!, eager) / Math.max(1, ...Array.from(eager, Math.abs))).toBeLessThan(1e-4);
  });

  it('refuses a network it has no training graph for (a ReLU capped at 4) with an UnsupportedLayerError', async () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [8], units: 4 }), tf.layers.reLU({ maxValue: 4 }), tf.layers.dense({ units: 1, activation: 'sigmoid' })],
    });
    await expect(loadGraphTrainer(tf, model, { ...ADAM, epsilon: 1e-7 })).rejects.toBeInstanceOf(UnsupportedLayerError);
    model.dispose();
  });
});
