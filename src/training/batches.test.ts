import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { maxAbsDifference, rgbPixels } from '../../test/support/ml.js';
import { type Backbone, type Batches, buildHead, extractFeatures, initTensorflow, loadBackbone, type Tf, trainBinaryClassifier } from '../ml/index.js';
import { featureBatches } from './batches.js';

const onWasm = process.env.CATDOG_BACKEND === 'wasm';

describe.skipIf(skipWithoutShared)('feature batches resident in the training graph', () => {
  let tf: Tf;
  let cacheDir: string;
  let backbone: Backbone;
  let features: Float32Array[];
  let labels: number[];

  beforeAll(async () => {
    ({ tf } = await initTensorflow());
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-resident-'));
    backbone = await loadBackbone(smallBackbone, { cacheDir });
    const cats = await extractFeatures(backbone, await rgbPixels(kaggleFiles('cat', 40, 300)));
    const dogs = await extractFeatures(backbone, await rgbPixels(kaggleFiles('dog', 40, 300)));
    // Interleaved, so that an unshuffled split would still mix the labels.
    features = cats.flatMap((cat, i) => [cat, dogs[i]!]);
    labels = features.map((_, i) => i % 2);
  }, 120_000);
  afterAll(async () => {
    backbone?.dispose();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  it('offers the rows each epoch yields, in the order it yields them', async () => {
    const batches = featureBatches(tf, features, labels, 16, 3);
    const resident = batches.resident!();
    const width = backbone.featureSize;
    for (const epoch of [1, 2]) {
      const order = resident.order(epoch);
      expect([...order].sort((a, b) => a - b)).toEqual(features.map((_, i) => i));
      let row = 0;
      for await (const { x, y } of batches.batches(epoch)) {
        const [values, answers] = [x.dataSync(), y.dataSync()];
        for (let i = 0; i < x.shape[0]!; i++, row++) {
          expect(maxAbsDifference(values.subarray(i * width, (i + 1) * width), resident.x.subarray(order[row]! * width, (order[row]! + 1) * width))).toBe(0);
          expect(answers[i]).toBe(resident.y[order[row]!]);
        }
        tf.dispose([x, y]);
      }
      expect(row).toBe(features.length);
    }
    // Activations for fine-tuned blocks are not offered: a second copy of them would be too large.
    expect(featureBatches(tf, features, labels, 16, 3, true, [1, 1, width]).resident).toBeUndefined();
  });

  it.skipIf(onWasm)('trains a head on resident features to the epochs and weights of batches fed step by step, and learns', async () => {
    const train = async (resident: boolean) => {
      const batches = featureBatches(tf, features.slice(0, 64), labels.slice(0, 64), 16, 5);
      let residentCalls = 0;
      const offered: Batches = resident ? { ...batches, resident: () => (residentCalls++, batches.resident!()) } : { count: batches.count, size: batches.size, batches: batches.batches };
      const model = buildHead('mlp', backbone.featureSize, 9);
      const result = await trainBinaryClassifier({
        model,
        train: offered,
        validation: featureBatches(tf, features.slice(64), labels.slice(64), 16, 5, false),
        epochs: 8,
        learningRate: 1e-3,
        earlyStoppingPatience: 0,
      });
      const weights = model.getWeights().map((weight) => weight.dataSync().slice());
      model.dispose();
      return { result, weights, residentCalls };
    };
    const [resident, fed] = [await train(true), await train(false)];
    expect(resident.residentCalls).toBe(1);
    for (const [i, epoch] of resident.result.epochs.entries()) {
      expect(epoch.loss).toBeCloseTo(fed.result.epochs[i]!.loss, 5);
      expect(epoch.accuracy).toBe(fed.result.epochs[i]!.accuracy);
      expect(epoch.valLoss).toBeCloseTo(fed.result.epochs[i]!.valLoss, 5);
    }
    resident.weights.forEach((weight, i) => expect(maxAbsDifference(weight, fed.weights[i]!)).toBeLessThan(1e-6));
    expect(resident.result.epochs.at(-1)!.loss).toBeLessThan(resident.result.epochs[0]!.loss);
    expect(resident.result.epochs.at(-1)!.valAccuracy).toBeGreaterThanOrEqual(0.75);
  }, 120_000);
});
