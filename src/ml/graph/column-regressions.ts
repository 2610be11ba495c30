import type { Tensor } from '@tensorflow/tfjs';
import type { Tensorflow } from '../tf.js';
import { adam, type AdamSettings, FLOAT, graphBuilder, INT } from './graph-builder.js';
import { loadGraphSignatures } from './graph-trainer.js';
import { DataType, type SignatureTensor } from './saved-model.js';

export interface ColumnRegressionSettings {
  /** [features, columns]: each column's initial weights. */
  weights: Tensor;
  /** [columns] */
  bias: Tensor;
  /** Each column's L2 weight. */
  l2: readonly number[];
  adam: AdamSettings;
}

/**
 * Many logistic regressions on the same examples, one per column of a [features, columns] weight matrix, each with
 * an L2 weight of its own and learning only from the examples its mask lets it: cross-validation's grid of (weight,
 * fold) pairs trained in the same steps. The examples stay in the session; a step crosses into it as row indices.
 */
export interface ColumnRegressions {
  /** Keeps every example ([n, features]), its label ([n, 1]) and which columns learn from it ([n, columns] of 0 and 1). */
  load(x: Tensor, y: Tensor, learns: Tensor): void;
  /** One Adam step on these rows of the loaded examples. */
  step(rows: Int32Array): void;
  /** P(dog) of these rows from every column, row-major [rows, columns]. */
  pDog(rows: Int32Array): Promise<Float32Array>;
  dispose(): void;
}

/**
 * Loads the regressions' graph into a session of its own, starting from `weights` ([features, columns]) and `bias`
 * ([columns]) and a fresh Adam. Per step, each column's loss is the mean over the rows it learns from (at least one)
 * of softplus(z) − y z for its logit z, plus its L2 weight times the sum of its squared weights; the gradient is
 * written out in closed form: (sigmoid(z) − y) × mask / rows for the logits, 2 × L2 × weights for the penalty.
 */
export async function loadColumnRegressions(
  tf: Tensorflow,
  { weights, bias, l2, adam: settings }: ColumnRegressionSettings,
): Promise<ColumnRegressions> {
  const [featureCount, columns] = weights.shape as [number, number];
  const graph = graphBuilder();
  const { add, scalar, mul, sub, addV2, div, unary, sum, variable, assign, placeholder } = graph;

  const kernel = variable('regressions/weights', [featureCount, columns]);
  const offsets = variable('regressions/bias', [columns]);
  const initialKernel = placeholder('initial_weights', [featureCount, columns]);
  const initialOffsets = placeholder('initial_bias', [columns]);

  const examplesX = variable('examples/x', [-1, featureCount]);
  const examplesY = variable('examples/y', [-1, 1]);
  const examplesLearn = variable('examples/learns', [-1, columns]);
  const inputs = { x: placeholder('examples_x', [-1, featureCount]), y: placeholder('examples_y', [-1, 1]), learns: placeholder('examples_learns', [-1, columns]) };
  const loaded = graph.after('loaded', scalar('examples/done', 1), [
    assign('examples/assign_x', examplesX.handle, inputs.x),
    assign('examples/assign_y', examplesY.handle, inputs.y),
    assign('examples/assign_learns', examplesLearn.handle, inputs.learns),
  ]);

  const rows = placeholder('rows', [-1], INT);
  const gathered = (name: string, resident: { handle: string }) =>
    add(name, 'ResourceGather', [resident.handle, rows], { dtype: FLOAT, Tindices: INT, batch_dims: { int: 0 }, validate_indices: { bool: true } });
  const x = gathered('step/x', examplesX);
  const y = gathered('step/y', examplesY);
  const learns = gathered('step/learns', examplesLearn);
  const logits = addV2('step/logits', add('step/matmul', 'MatMul', [x, kernel.read], { T: FLOAT, transpose_a: { bool: false }, transpose_b: { bool: false } }), offsets.read);
  const pDog = unary('step/p_dog', 'Sigmoid', logits);

  const penalties = add('step/l2', 'Const', [], { dtype: FLOAT, value: { tensor: { dtype: DataType.float32, shape: [columns], values: Float32Array.from(l2) } } });
  const learners = add('step/learners', 'Maximum', [sum('step/learning_rows', learns, [0]), scalar('step/at_least_one', 1)], { T: FLOAT });
  const dLogits = div('step/d_logits', mul('step/masked_error', sub('step/error', pDog, y), learns), learners);
  const dKernel = addV2(
    'step/d_weights',
    add('step/d_weights_data', 'MatMul', [x, dLogits], { T: FLOAT, transpose_a: { bool: true }, transpose_b: { bool: false } }),
    mul('step/d_weights_l2', kernel.read, mul('step/l2_twice', penalties, scalar('step/two', 2))),
  );
  const dOffsets = sum('step/d_bias', dLogits, [0]);
  const optimizer = adam(graph, settings, [
    { key: 'weights', variable: kernel, shape: [featureCount, columns], gradient: dKernel, initial: initialKernel },
    { key: 'bias', variable: offsets, shape: [columns], gradient: dOffsets, initial: initialOffsets },
  ]);
  const assigned = graph.after('assigned', scalar('assign/done', 1), [
    assign('assign/weights', kernel.handle, initialKernel),
    assign('assign/bias', offsets.handle, initialOffsets),
    ...optimizer.reset,
  ]);
  const stepped = graph.after('stepped', scalar('step/done', 1), optimizer.updates);

  const float = (tensor: string, shape: readonly number[]): SignatureTensor => ({ tensor: `${tensor}:0`, dtype: DataType.float32, shape });
  const rowsInput = { rows: { tensor: `${rows}:0`, dtype: DataType.int32, shape: [-1] } };
  const signatures = {
    assign: { inputs: { weights: float(initialKernel, [featureCount, columns]), bias: float(initialOffsets, [columns]) }, outputs: { assigned: float(assigned, []) } },
    load: {
      inputs: { x: float(inputs.x, [-1, featureCount]), y: float(inputs.y, [-1, 1]), learns: float(inputs.learns, [-1, columns]) },
      outputs: { loaded: float(loaded, []) },
    },
    step: { inputs: rowsInput, outputs: { stepped: float(stepped, []) } },
    p_dog: { inputs: rowsInput, outputs: { p_dog: float(pDog, [-1, columns]) } },
  };
  const session = await loadGraphSignatures(tf, graph.nodes, signatures, ['assign', 'load', 'step', 'p_dog'] as const);
  const withRows = <T>(indices: Int32Array, use: (rowsTensor: Tensor) => T): T => {
    const rowsTensor = tf.tensor1d(indices, 'int32');
    try {
      return use(rowsTensor);
    } finally {
      rowsTensor.dispose();
    }
  };
  const run = (signature: keyof typeof signatures, feed: Record<string, Tensor>) => Object.values(session.run(signature, feed));
  try {
    tf.dispose(run('assign', { weights, bias }));
  } catch (error) {
    session.dispose();
    throw error;
  }
  return {
    load: (examples, labels, mask) => tf.dispose(run('load', { x: examples, y: labels, learns: mask })),
    step: (indices) => withRows(indices, (rowsTensor) => tf.dispose(run('step', { rows: rowsTensor }))),
    pDog: async (indices) => {
      const [answers] = withRows(indices, (rowsTensor) => run('p_dog', { rows: rowsTensor }));
      try {
        return (await answers!.data()) as Float32Array;
      } finally {
        answers!.dispose();
      }
    },
    dispose: session.dispose,
  };
}
