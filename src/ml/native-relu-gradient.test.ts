import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorflow, type Tf } from './index.js';
import { useNativeReluGradient } from './train.js';

let tf: Tf;
let backend: string;

beforeAll(async () => {
  ({ tf, backend } = await initTensorflow());
});

describe('useNativeReluGradient', () => {
  it("gives ReLU's gradient (dy where x > 0, else 0, also at exactly 0) through TensorFlow's ReluGrad kernel", async () => {
    if (backend !== 'tensorflow') return expect(backend).toBe('wasm');
    const x = tf.tensor4d([-2, -0.5, 0, 0.25, 3, 0, -1e-9, 1e-9], [2, 2, 2, 1]);
    const dy = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2, 1]);
    const composite = tf.grad((input) => tf.relu(input))(x, dy);
    useNativeReluGradient(tf);
    useNativeReluGradient(tf); // idempotent
    expect(tf.getKernel('CatdogNativeReluGrad', 'tensorflow')).toBeDefined();
    const native = tf.grad((input) => tf.relu(input))(x, dy);
    expect(Array.from(await native.data())).toEqual([0, 0, 0, 4, 5, 0, 0, 8]);
    expect(Array.from(await native.data())).toEqual(Array.from(await composite.data()));
    tf.dispose([x, dy, composite, native]);
  });
});
