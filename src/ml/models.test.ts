import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCnn, buildHead } from './models.js';
import { initTensorflow, type Tensorflow } from './tf.js';

describe('dropout in the networks catdog builds', () => {
  let tf: Tensorflow;
  beforeAll(async () => {
    ({ tf } = await initTensorflow());
  });

  const firstDropout = (model: LayersModel) => model.layers.find((layer) => layer.getClassName() === 'Dropout')!;

  /** Which units of a batch of ones each call of `model`'s first dropout layer keeps (1) or drops (0). */
  function keptUnits(model: LayersModel, calls: number, training = true): number[][] {
    const dropout = firstDropout(model);
    const units = dropout.outputShape.at(-1) as number;
    return Array.from({ length: calls }, () =>
      tf.tidy(() => Array.from((dropout.apply(tf.ones([16, units]), { training }) as Tensor).dataSync(), (value) => (value > 0 ? 1 : 0))),
    );
  }

  it('drops other units at every training step of one batch size, the same sequence from the same seed', () => {
    for (const build of [() => buildHead('mlp', 48, 5), () => buildCnn(32, 5)]) {
      const [model, again] = [build(), build()];
      const [first, second, third] = keptUnits(model, 3);
      expect(first).not.toEqual(second);
      expect(second).not.toEqual(third);
      expect(keptUnits(again, 3)).toEqual([first, second, third]);
      expect(keptUnits(again, 1, false)[0]!.every((kept) => kept === 1)).toBe(true);
      // Saved files name the seed the network was built with, however far training moved it.
      expect(firstDropout(model).getConfig()['seed']).toBe(firstDropout(build()).getConfig()['seed']);
      model.dispose();
      again.dispose();
    }
  });

  it('moves on with trainOnBatch, and inference neither drops units nor moves it', async () => {
    const [trained, reference] = [buildHead('mlp', 48, 5), buildHead('mlp', 48, 5)];
    trained.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
    const [x, y] = [tf.randomUniform([8, 48], 0, 1, 'float32', 1), tf.ones([8, 1])];
    trained.predict(x);
    await trained.trainOnBatch(x, y);
    // One training step drew the reference's first mask; the trained layer now draws its second.
    expect(keptUnits(trained, 1)).toEqual(keptUnits(reference, 2).slice(1));
    tf.dispose([x, y]);
    trained.dispose();
    reference.dispose();
  });
});
