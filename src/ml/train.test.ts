import os from 'node:os';
import type { Tensor } from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { extractFeatures, loadBackbone } from './backbone.js';
import { buildHead, type HeadKind } from './models.js';
import { fixedOrderBatches, maxAbsDifference, rgbPixels } from '../../test/support/ml.js';
import { binaryCrossentropyLoss, predictPDog, trainBinaryClassifier } from './train.js';
import { initTensorflow } from './tf.js';
import { trainingPath } from './training-path.js';

const onWasm = process.env.CATDOG_BACKEND === 'wasm';

/** Two-feature points whose label is the sign of the first feature, or its opposite when `flipped`. */
function signDataset(count: number, flipped: boolean): { features: Float32Array[]; labels: number[] } {
  const features = Array.from({ length: count }, (_, i) => Float32Array.of(Math.sin(i * 1.7) * 2, Math.cos(i * 0.9)));
  return { features, labels: features.map((f) => Number((f[0]! > 0) !== flipped)) };
}

describe('trainBinaryClassifier', () => {
  it('stops early when validation loss stops improving and restores the best epoch, leaking nothing', async () => {
    const { tf } = await initTensorflow();
    const before = tf.memory().numTensors;
    const train = signDataset(64, false);
    // Validation labels contradict training ones: every epoch of learning makes validation worse.
    const validation = signDataset(32, true);
    const model = buildHead('logistic', 2, 7);
    const probe = tf.tensor2d(validation.features.flatMap((f) => [...f]), [32, 2]);
    const predictionsByEpoch: Float32Array[] = [];
    const result = await trainBinaryClassifier({
      model,
      train: fixedOrderBatches(tf, train.features, train.labels, 16),
      validation: fixedOrderBatches(tf, validation.features, validation.labels, 16),
      epochs: 30,
      learningRate: 0.1,
      earlyStoppingPatience: 2,
      onEpoch: async () => {
        predictionsByEpoch.push(await predictPDog(model, probe));
      },
    });
    expect(result.stoppedEarly).toBe(true);
    const valLosses = result.epochs.map((e) => e.valLoss);
    expect(result.bestEpoch).toBe(valLosses.indexOf(Math.min(...valLosses)) + 1);
    expect(result.epochs).toHaveLength(result.bestEpoch + 2);
    // It learned the training rule while validation, which holds the opposite rule, got worse.
    expect(result.epochs.at(-1)!.loss).toBeLessThan(result.epochs[0]!.loss);
    expect(result.epochs.at(-1)!.accuracy).toBeGreaterThan(result.epochs[0]!.accuracy);
    expect(result.epochs.at(-1)!.valAccuracy).toBeLessThan(0.1);
    for (const stats of result.epochs) {
      expect(stats.imagesPerSecond).toBeGreaterThan(0);
      expect(stats.durationMs).toBeGreaterThan(0);
    }
    const restored = await predictPDog(model, probe);
    expect(Array.from(restored)).toEqual(Array.from(predictionsByEpoch[result.bestEpoch - 1]!));
    expect(Array.from(restored)).not.toEqual(Array.from(predictionsByEpoch.at(-1)!));
    probe.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports every training batch of every epoch, the last one smaller, before the epoch ends', async () => {
    const { tf } = await initTensorflow();
    const train = signDataset(64, false);
    const validation = signDataset(20, false);
    const model = buildHead('logistic', 2, 7);
    const reports: string[] = [];
    await trainBinaryClassifier({
      model,
      // 64 examples in batches of 24: 24, 24 and 16.
      train: fixedOrderBatches(tf, train.features, train.labels, 24),
      validation: fixedOrderBatches(tf, validation.features, validation.labels, 8),
      epochs: 2,
      learningRate: 0.1,
      earlyStoppingPatience: 0,
      onBatch: ({ epoch, batch, batchCount }) => reports.push(`${epoch}:${batch}/${batchCount}`),
      onEpoch: ({ epoch }) => void reports.push(`epoch ${epoch}`),
    });
    model.dispose();
    expect(reports).toEqual(['1:1/3', '1:2/3', '1:3/3', 'epoch 1', '2:1/3', '2:2/3', '2:3/3', 'epoch 2']);
  });

  it('trains the same weights from the same seed, dropout included, and other weights from another seed', async () => {
    const { tf } = await initTensorflow();
    const data = signDataset(64, false);
    const trainedWeights = async (seed: number) => {
      const model = buildHead('mlp', 2, seed);
      await trainBinaryClassifier({
        model,
        train: fixedOrderBatches(tf, data.features, data.labels, 16),
        validation: fixedOrderBatches(tf, data.features, data.labels, 16),
        epochs: 3,
        learningRate: 0.01,
        earlyStoppingPatience: 0,
      });
      const weights = await Promise.all(model.getWeights().map(async (w) => Array.from(await w.data())));
      model.dispose();
      return weights.flat();
    };
    const first = await trainedWeights(11);
    expect(await trainedWeights(11)).toEqual(first);
    expect(await trainedWeights(12)).not.toEqual(first);
  });

  it('rejects with the abort reason between batches, leaking nothing', async () => {
    const { tf } = await initTensorflow();
    const before = tf.memory().numTensors;
    const data = signDataset(64, false);
    const model = buildHead('mlp', 2, 7);
    const controller = new AbortController();
    const training = trainBinaryClassifier({
      model,
      train: fixedOrderBatches(tf, data.features, data.labels, 8),
      validation: fixedOrderBatches(tf, data.features, data.labels, 8),
      epochs: 50,
      learningRate: 0.01,
      earlyStoppingPatience: 50,
      onEpoch: (stats) => {
        if (stats.epoch === 2) controller.abort(new Error('user cancelled'));
      },
      signal: controller.signal,
    });
    await expect(training).rejects.toThrow('user cancelled');
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.skipIf(skipWithoutShared)('teaches a logistic head on real MobileNet features to tell held-out cats from dogs', async () => {
    const { tf } = await initTensorflow();
    const before = tf.memory().numTensors;
    const backbone = await loadBackbone(smallBackbone, { cacheDir: os.tmpdir() });
    const featuresOf = async (label: 'cat' | 'dog', count: number, from: number) =>
      extractFeatures(backbone, await rgbPixels(kaggleFiles(label, count, from)));
    const [trainCats, trainDogs, valCats, valDogs] = [
      await featuresOf('cat', 40, 100),
      await featuresOf('dog', 40, 100),
      await featuresOf('cat', 20, 300),
      await featuresOf('dog', 20, 300),
    ];
    backbone.dispose();
    const train = async (kind: HeadKind, eager: boolean) => {
      const head = buildHead(kind, 256, 7);
      const result = await trainBinaryClassifier({
        model: head,
        train: fixedOrderBatches(tf, [...trainCats, ...trainDogs], [...trainCats.map(() => 0), ...trainDogs.map(() => 1)], 16),
        validation: fixedOrderBatches(tf, [...valCats, ...valDogs], [...valCats.map(() => 0), ...valDogs.map(() => 1)], 16),
        epochs: 8,
        learningRate: 0.01,
        earlyStoppingPatience: 3,
        eager,
      });
      const weights = head.getWeights().map((w) => Array.from(w.dataSync()));
      head.dispose();
      return { result, weights, best: result.epochs[result.bestEpoch - 1]! };
    };
    const { result, best } = await train('logistic', false);
    console.log(`logistic head, 0.25 backbone: best epoch ${result.bestEpoch}, valAccuracy ${best.valAccuracy}, valLoss ${best.valLoss.toFixed(3)}`);
    expect(best.valAccuracy).toBeGreaterThanOrEqual(0.8);
    // The first epoch starts from random weights: learning must have lowered the validation loss.
    expect(best.valLoss).toBeLessThan(result.epochs[0]!.valLoss);
    // The graph path (the default on native TensorFlow) and the eager path train the same heads.
    if (!onWasm) {
      expect((await trainingPath()).kind).toBe('graph');
      for (const kind of ['logistic', 'mlp'] as const) {
        const [graph, eager] = [await train(kind, false), await train(kind, true)];
        expect(graph.result.bestEpoch).toBe(eager.result.bestEpoch);
        expect(Math.abs(graph.best.valAccuracy - eager.best.valAccuracy)).toBeLessThanOrEqual(0.003);
        graph.result.epochs.forEach((stats, i) => expect(stats.valLoss).toBeCloseTo(eager.result.epochs[i]!.valLoss, 4));
        expect(maxAbsDifference(graph.weights.flat(), eager.weights.flat())).toBeLessThan(1e-4);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('binaryCrossentropyLoss', () => {
  /** P(dog) on both sides of the clip range [1e-7, 1 − 1e-7], its edges included, with both labels. */
  const pDogs = [0, 1e-9, 1e-7, 3e-4, 0.2, 0.5, 0.5, 0.9, 0.9999999, 1 - 1e-9, 1, 0.7];
  const labels = [0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1];

  it("has tfjs's binary cross-entropy values and its exact gradient, in a fraction of the kernels", async () => {
    const { tf } = await initTensorflow();
    const before = tf.memory().numTensors;
    const ours = binaryCrossentropyLoss(tf);
    const [low, high] = [Math.fround(1e-7), Math.fround(1 - 1e-7)];
    // One output per example (the heads) and two (the mean over the last axis shares dy between them).
    for (const shape of [[12, 1], [6, 2]] as const) {
      const p = tf.tensor2d(pDogs, [...shape]);
      const y = tf.tensor2d(labels, [...shape]);
      const perExample = Array.from({ length: shape[0] }, (_, i) => 0.25 + i / 8);
      const dy = tf.tensor1d(perExample);
      const reference = tf.grad((pDog) => tf.metrics.binaryCrossentropy(y, pDog));
      const closedForm = tf.grad((pDog) => ours(y, pDog));
      const results = [ours(y, p), tf.metrics.binaryCrossentropy(y, p), reference(p, dy), closedForm(p, dy)];
      const [values, referenceValues, composite, actual] = await Promise.all(results.map((tensor) => tensor.data()));
      expect(Array.from(values!)).toEqual(Array.from(referenceValues!));
      pDogs.forEach((pDog, i) => {
        const q = Math.fround(pDog);
        const share = perExample[Math.floor(i / shape[1])]! / shape[1];
        const exact = q < low || q > high ? 0 : (share * (q - labels[i]!)) / (q * (1 - q));
        expect(Math.abs(actual![i]! - exact)).toBeLessThanOrEqual(1e-6 * Math.abs(exact));
        // tfjs's composite agrees except at the clip range's upper edge, where its logit rounds (−1.0 for −1.25).
        if (q !== high) expect(Math.abs(composite![i]! - exact)).toBeLessThanOrEqual(1e-6 * Math.abs(exact));
      });
      const kernels = async (gradient: typeof reference) => {
        const profile = await tf.profile(() => gradient(p, dy));
        tf.dispose(profile.result as Tensor);
        return profile.kernels.length;
      };
      expect(await kernels(closedForm)).toBeLessThan((await kernels(reference)) / 2);
      tf.dispose([p, y, dy, ...results]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it("trains a head to the weights tfjs's own loss gives, up to float rounding", async () => {
    const { tf } = await initTensorflow();
    // Large features put half the initial P(dog) outside the clip range: clipped outputs are part of training.
    const features = Array.from({ length: 96 }, (_, i) => Float32Array.from({ length: 8 }, (_, j) => Math.sin(i * 1.3 + j * 0.7) * (j + 1) * 3));
    const dogs = features.map((f) => Number(f[0]! + f[3]! > 0));
    const epochs = 6;
    const batches = fixedOrderBatches(tf, features, dogs, 16);
    const model = buildHead('logistic', 8, 5);
    const initial = model.getWeights().map((w) => Array.from(w.dataSync()));
    let trained: number[][] = [];
    const result = await trainBinaryClassifier({
      model,
      train: batches,
      validation: batches,
      epochs,
      learningRate: 0.05,
      earlyStoppingPatience: 0,
      onEpoch: () => {
        trained = model.getWeights().map((w) => Array.from(w.dataSync()));
      },
    });
    // The same steps with the loss tfjs-layers names 'binaryCrossentropy': same seed, batches and optimizer.
    const reference = buildHead('logistic', 8, 5);
    const optimizer = tf.train.adam(0.05);
    reference.compile({ optimizer, loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    for (let epoch = 1; epoch <= epochs; epoch++) {
      let lossSum = 0;
      for await (const { x, y } of batches.batches(epoch)) {
        const column = tf.reshape(y, [-1, 1]);
        const [loss] = (await reference.trainOnBatch(x, column)) as number[];
        lossSum += loss! * x.shape[0]!;
        tf.dispose([x, y, column]);
      }
      expect(result.epochs[epoch - 1]!.loss).toBeCloseTo(lossSum / features.length, 5);
    }
    const expected = reference.getWeights().map((w) => Array.from(w.dataSync()));
    expected.flat().forEach((value, i) => {
      expect(Math.abs(trained.flat()[i]! - value)).toBeLessThanOrEqual(1e-5);
    });
    expect(Math.max(...trained.flat().map((value, i) => Math.abs(value - initial.flat()[i]!)))).toBeGreaterThan(0.1);
    model.dispose();
    reference.dispose();
    optimizer.dispose();
  });
});
