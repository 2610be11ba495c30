import { describe, expect, it } from 'vitest';
import { maxAbsDifference } from '../../test/support/ml.js';
import { eagerColumnRegressions } from './column-regressions.js';
import { loadColumnRegressions } from './graph/column-regressions.js';
import { adamSettings } from './training-path.js';
import { initTensorflow } from './tf.js';

const onWasm = process.env.CATDOG_BACKEND === 'wasm';

describe('column regressions (cross-validation\'s grid in one weight matrix)', () => {
  it.skipIf(onWasm)('train the same weights as a graph in a session as eagerly in tfjs, step by step', async () => {
    const { tf } = await initTensorflow();
    const [rows, features, columns] = [90, 24, 6];
    const x = tf.tensor2d(Float32Array.from({ length: rows * features }, (_, i) => Math.sin(i * 12.9898) * 1.5), [rows, features]);
    const y = tf.tensor2d(Float32Array.from({ length: rows }, (_, row) => (Math.sin(row * 3.1) > 0 ? 1 : 0)), [rows, 1]);
    // Column c leaves out every row whose number is c mod 3, as a fold does; column 5 learns from no row at all.
    const learns = tf.tensor2d(Float32Array.from({ length: rows * columns }, (_, i) => (i % columns === 5 || Math.floor(i / columns) % 3 === i % columns % 3 ? 0 : 1)), [rows, columns]);
    const settings = {
      weights: tf.randomUniform([features, columns], -0.4, 0.4, 'float32', 7),
      bias: tf.zeros([columns]),
      l2: [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e-2],
      adam: adamSettings(tf, 0.01),
    };
    const graph = await loadColumnRegressions(tf, settings);
    const eager = eagerColumnRegressions(tf, settings);
    const everyRow = Int32Array.from({ length: rows }, (_, row) => row);
    try {
      graph.load(x, y, learns);
      eager.load(x, y, learns);
      const before = await graph.pDog(everyRow);
      for (let step = 0; step < 40; step++) {
        const batch = Int32Array.from({ length: 16 }, (_, i) => (step * 16 + i * 7) % rows);
        graph.step(batch);
        eager.step(batch);
      }
      const [graphAnswers, eagerAnswers] = [await graph.pDog(everyRow), await eager.pDog(everyRow)];
      expect(graphAnswers).toHaveLength(rows * columns);
      expect(maxAbsDifference(graphAnswers, eagerAnswers)).toBeLessThan(1e-4);
      // The steps moved the answers (a graph that did not step would pass the comparison above only if eager did not either).
      expect(maxAbsDifference(graphAnswers, before)).toBeGreaterThan(0.05);
    } finally {
      graph.dispose();
      eager.dispose();
      tf.dispose([x, y, learns, settings.weights, settings.bias]);
    }
  });
});
