import { describe, expect, it } from 'vitest';
import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import { deserializeModel, serializeModel } from './model-io.js';
import { buildCnn, buildHead } from './models.js';
import { initTensorflow } from './tf.js';

async function roundTripDifference(model: LayersModel, input: Tensor): Promise<number> {
  const { tf } = await initTensorflow();
  const files = await serializeModel(model);
  const manifest = JSON.parse(new TextDecoder().decode(files.modelJson)) as { weightsManifest: { paths: string[] }[] };
  expect(manifest.weightsManifest.map((group) => group.paths)).toEqual([['weights.bin']]);
  const loaded = await deserializeModel(files);
  try {
    return tf.tidy(() => {
      const before = model.predict(input) as Tensor;
      const after = loaded.predict(input) as Tensor;
      expect(after.shape).toEqual(before.shape);
      return tf.max(tf.abs(tf.sub(before, after))).dataSync()[0]!;
    });
  } finally {
    loaded.dispose();
  }
}

describe('serializeModel / deserializeModel', () => {
  it('round-trips the CNN with its Rescaling and trained BatchNorm statistics', async () => {
    const { tf } = await initTensorflow();
    const cnn = buildCnn(32, 7);
    const input = tf.randomUniform([4, 32, 32, 3], 0, 255, 'float32', 7);
    // Non-default moving statistics and weights, so a round trip that dropped them would show.
    const perturbed = tf.tidy(() =>
      cnn.getWeights().map((weight, i) => tf.add(weight, tf.randomUniform(weight.shape, -0.05, 0.05, 'float32', i))),
    );
    cnn.setWeights(perturbed);
    tf.dispose(perturbed);
    expect(cnn.layers[0]!.getClassName()).toBe('Rescaling');
    const difference = await roundTripDifference(cnn, input);
    expect(difference).toBeLessThan(1e-6);
    const reference = tf.tidy(() => (cnn.predict(input) as Tensor).dataSync());
    expect(new Set(reference).size).toBe(4);
    cnn.dispose();
    input.dispose();
  });

  it('round-trips both heads', async () => {
    const { tf } = await initTensorflow();
    const features = tf.randomNormal([5, 16], 0, 1, 'float32', 3);
    for (const kind of ['logistic', 'mlp'] as const) {
      const head = buildHead(kind, 16, 7);
      expect(await roundTripDifference(head, features)).toBeLessThan(1e-6);
      head.dispose();
    }
    features.dispose();
  });

  it('reports files that are not a model as invalid_model', async () => {
    const { tf } = await initTensorflow();
    const head = buildHead('logistic', 4, 7);
    const files = await serializeModel(head);
    head.dispose();
    const before = tf.memory().numTensors;
    for (const broken of [
      { ...files, modelJson: new TextEncoder().encode('{"not":"a model"}') },
      { ...files, weights: files.weights.subarray(0, 8) },
    ]) {
      const error = await deserializeModel(broken).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CatdogError);
      expect(error).toMatchObject({ code: 'invalid_model' });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
