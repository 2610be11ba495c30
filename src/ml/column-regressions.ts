import type { Scalar, Tensor } from '@tensorflow/tfjs';
import { type ColumnRegressions, type ColumnRegressionSettings, loadColumnRegressions } from './graph/column-regressions.js';
import { trainingPath } from './training-path.js';
import type { Tensorflow } from './tf.js';

export type { ColumnRegressions, ColumnRegressionSettings } from './graph/column-regressions.js';

/**
 * Logistic regressions as the columns of one weight matrix (`ColumnRegressions`): one TensorFlow graph in a session
 * on the graph path (`trainingPath`), eager tfjs steps elsewhere. The caller keeps its tensors.
 */
export async function columnRegressions(tf: Tensorflow, settings: ColumnRegressionSettings): Promise<ColumnRegressions> {
  return (await trainingPath()).kind === 'graph' ? loadColumnRegressions(tf, settings) : eagerColumnRegressions(tf, settings);
}

/**
 * `loadColumnRegressions`'s regressions as eager tfjs steps, where TensorFlow graphs cannot run (the
 * WebAssembly backend, `CATDOG_TRAINING_STEP=eager`): the same loss, differentiated by tfjs.
 */
export function eagerColumnRegressions(tf: Tensorflow, { weights: initialWeights, bias: initialBias, l2: l2Weights, adam }: ColumnRegressionSettings): ColumnRegressions {
  const weights = tf.variable(initialWeights.clone());
  const bias = tf.variable(initialBias.clone());
  const l2 = tf.tensor1d([...l2Weights]);
  const optimizer = tf.train.adam(adam.learningRate, adam.beta1, adam.beta2, adam.epsilon);
  let examples: { x: Tensor; y: Tensor; learns: Tensor } | undefined;
  const loadedExamples = () => {
    if (!examples) throw new Error('the column regressions have no examples loaded');
    return examples;
  };
  const gather = (tensor: Tensor, rows: Int32Array) => tf.tidy(() => tf.gather(tensor, tf.tensor1d(rows, 'int32')));
  return {
    load(x, y, learns) {
      if (examples) tf.dispose(Object.values(examples));
      examples = { x: x.clone(), y: y.clone(), learns: learns.clone() };
    },
    step(rows) {
      const all = loadedExamples();
      const [x, y, learns] = [gather(all.x, rows), gather(all.y, rows), gather(all.learns, rows)];
      try {
        const loss = optimizer.minimize(() => {
          const logits = tf.add(tf.matMul(x, weights), bias);
          const perRow = tf.sub(tf.softplus(logits), tf.mul(y, logits));
          const meanPerColumn = tf.div(tf.sum(tf.mul(perRow, learns), 0), tf.maximum(tf.sum(learns, 0), 1));
          return tf.sum<Scalar>(tf.add(meanPerColumn, tf.mul(l2, tf.sum(tf.square(weights), 0))));
        }, false, [weights, bias]);
        loss?.dispose();
      } finally {
        tf.dispose([x, y, learns]);
      }
    },
    async pDog(rows) {
      const x = gather(loadedExamples().x, rows);
      const pDog = tf.tidy(() => tf.sigmoid(tf.add(tf.matMul(x, weights), bias)));
      x.dispose();
      try {
        return (await pDog.data()) as Float32Array;
      } finally {
        pDog.dispose();
      }
    },
    dispose() {
      tf.dispose([weights, bias, l2, ...(examples ? Object.values(examples) : [])]);
      optimizer.dispose();
    },
  };
}
