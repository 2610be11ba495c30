import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCnn, buildHead } from './models.js';
import { initTensorflow, type Tensorflow } from './tf.js';

describe('dropout in the networks catdog builds', () => {
  let tf: Tensorflow;
  beforeAll(async () => {
    ({ tf } = await initTensorflow());
  });

  /** Which units of a batch of ones each training call of `model`'s first dropout layer keeps (1) or drops (0). */
  function keptUnits(model: LayersModel, calls: number, training = true): number[][] {
    const dropout = model.layers.find((layer) => layer.getClassName() === 'Dropout')!;
    const units = dropout.outputShape.at(-1) as number;
    return Array.from({ length: calls }, () => {
      const output = dropout.apply(tf.ones([16, units]), { training }) as Tensor;
      const kept = Array.from(output.dataSync(), (value) => (value > 0 ? 1 : 0));
      output.dispose();
      return kept;
    });
  }

  it('drops other units at every training step of one batch size, the same sequence from the same seed', () => {
    for (const build of [() => buildHead('mlp', 48, 5), () => buildCnn(32, 5)]) {
      const [first, second, third] = keptUnits(build(), 3);
      expect(first).not.toEqual(second);
      expect(second).not.toEqual(third);
      expect(keptUnits(build(), 3)).toEqual([first, second, third]);
      expect(keptUnits(build(), 1, false)[0]!.every((kept) => kept === 1)).toBe(true);
    }
  });

  it('inference neither drops units nor moves the training sequence on', () => {
    const model = buildHead('mlp', 48, 5);
    keptUnits(model, 2, false);
    expect(keptUnits(model, 1)).toEqual(keptUnits(buildHead('mlp', 48, 5), 1));
  });
});
