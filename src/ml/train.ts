import type { GradSaveFunc, LayersModel, Tensor } from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { CatdogError } from '../errors.js';
import type { GraphTrainer } from './graph/graph-trainer.js';
import { initTensorflow, type Tensorflow } from './tf.js';
import { adamSettings, graphTrainerFor } from './training-path.js';

const require = createRequire(import.meta.url);

/** One batch: `x` inputs, `y` labels (0 cat, 1 dog) of shape [n] or [n, 1]. */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/**
 * A caller-provided stream of batches, so datasets can stream augmented images or cached features;
 * `batches(epoch)` is called once per epoch and the trainer disposes every tensor it yields.
 */
export interface Batches {
  /** Number of examples per epoch. */
  count: number;
  /** Examples per batch (the last one may be smaller). */
  size: number;
  batches(epoch: number): AsyncIterable<Batch>;
  /**
   * The same examples as one block, for the graph path to keep in its session (cached features): loaded once, then
   * each batch crosses into TensorFlow as its row indices only. `batches(epoch)` must yield exactly the rows of
   * `order(epoch)` in that order, `size` at a time, so both routes train the same steps. Called once, and only by a
   * trainer that uses it.
   */
  resident?(): ResidentExamples;
}

export interface ResidentExamples {
  /** Every example's values in row order, [count, ...exampleShape] flattened. */
  x: Float32Array;
  exampleShape: readonly number[];
  /** 0 cat, 1 dog per row. */
  y: Float32Array;
  /** The rows of an epoch in training order. */
  order(epoch: number): Int32Array;
}

export interface EpochStats {
  /** 1-based. */
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** The whole epoch: training and validation. */
  durationMs: number;
  /** Training throughput only. */
  imagesPerSecond: number;
}

export interface TrainOptions {
  /** Ends in one sigmoid unit = P(dog); compiled here with Adam and binary cross-entropy. */
  model: LayersModel;
  train: Batches;
  /**
   * Judges each epoch and keeps the best. Absent for a refit whose epoch count was chosen beforehand (by
   * cross-validation): every epoch runs, the last one's weights are kept, and epochs have no validation figures (NaN).
   */
  validation?: Batches;
  epochs: number;
  learningRate: number;
  /** Stop after this many epochs without a lower validation loss; 0 never stops early. */
  earlyStoppingPatience: number;
  /**
   * Validation loss of the model as given (a network continuing from a trained head): an epoch is kept only if it
   * beats it, else the model ends with the weights it came with and `bestEpoch` is 0.
   */
  initialValLoss?: number;
  onEpoch?: (stats: EpochStats) => void | Promise<void>;
  /** After each training batch, so progress shows within an epoch (an epoch of the CNN takes minutes). */
  onBatch?: (progress: BatchProgress) => void;
  /** Aborting stops between batches and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Train through tfjs-layers' `trainOnBatch` even where the graph path could: the reference it is checked and benchmarked against. */
  eager?: boolean;
}

export interface BatchProgress {
  /** 1-based. */
  epoch: number;
  /** Training batches of this epoch done, 1-based. */
  batch: number;
  batchCount: number;
}

export interface TrainResult {
  epochs: EpochStats[];
  /** 1-based epoch with the lowest validation loss, whose weights the model holds on return (0: the initial weights). */
  bestEpoch: number;
  stoppedEarly: boolean;
}

/**
 * Trains a binary classifier with early stopping on validation loss and leaves the best epoch's weights in
 * the model (the model the caller saves). On the graph path (`trainingPath`) a network the training graph
 * translates (the heads, the fine-tuned backbone blocks and the CNN) trains one TensorFlow session call per step,
 * its weights copied into the model after each epoch; the same steps as the eager path up to float rounding. Batches
 * that offer their examples resident (cached feature vectors) are loaded into that session once and each step is fed
 * only its row indices. Other
 * networks, and every network on the eager path, use `model.trainOnBatch`: for the CNN at 128 px, batch 32, on native TensorFlow it ran as fast as a
 * hand-written `optimizer.minimize` loop (5.9 vs 6.1 img/s, interleaved runs on a busy 2-core machine; `model.fit`
 * per batch 5.1), and it applies the layers' regularizers itself. The loss is `binaryCrossentropyLoss`, tfjs's
 * binary cross-entropy with its gradient in closed form.
 */
export async function trainBinaryClassifier(options: TrainOptions): Promise<TrainResult> {
  const { model, train, validation, epochs, learningRate, earlyStoppingPatience, initialValLoss, onEpoch, onBatch, signal, eager } = options;
  const { tf, backend } = await initTensorflow();
  if (backend === 'tensorflow') useNativeReluGradient(tf);
  for (const [name, batches] of [['training', train], ['validation', validation]] as const) {
    if (batches !== undefined && batches.count === 0) {
      throw new CatdogError('dataset_too_small', `The ${name} split is empty: add images or change the split ratios`);
    }
  }
  const adam = adamSettings(tf, learningRate);
  const optimizer = tf.train.adam(adam.learningRate, adam.beta1, adam.beta2, adam.epsilon);
  model.compile({ optimizer, loss: binaryCrossentropyLoss(tf), metrics: ['accuracy'] });
  const graphTrainer = eager ? undefined : await graphTrainerFor(tf, model, adam);
  const step = graphTrainer ? graphStep(graphTrainer) : eagerStep(tf, model);
  const trainEpoch = graphTrainer && train.resident
    ? residentEpochs(tf, graphTrainer, train.resident(), train.size, signal)
    : (epoch: number, afterBatch?: (batchesDone: number) => void) => accumulate(train.batches(epoch), signal, consuming(step), afterBatch);
  const history: EpochStats[] = [];
  const snapshot = () => tf.tidy(() => model.getWeights().map((w) => w.clone()));
  let best: { epoch: number; valLoss: number; weights: Tensor[] } | undefined =
    initialValLoss === undefined ? undefined : { epoch: 0, valLoss: initialValLoss, weights: snapshot() };
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      signal?.throwIfAborted();
      const started = performance.now();
      const batchCount = Math.ceil(train.count / train.size);
      const trained = await trainEpoch(epoch, onBatch && ((batch) => onBatch({ epoch, batch, batchCount })));
      graphTrainer?.copyWeightsToModel();
      const trainingMs = performance.now() - started;
      const validated = validation === undefined ? { loss: Number.NaN, accuracy: Number.NaN } : await evaluate(tf, model, validation.batches(epoch), signal);
      const stats: EpochStats = {
        epoch,
        loss: trained.loss,
        accuracy: trained.accuracy,
        valLoss: validated.loss,
        valAccuracy: validated.accuracy,
        durationMs: performance.now() - started,
        imagesPerSecond: trained.count / (trainingMs / 1000),
      };
      history.push(stats);
      if (validation === undefined) {
        await onEpoch?.(stats);
        continue;
      }
      if (!best || stats.valLoss < best.valLoss) {
        tf.dispose(best?.weights);
        best = { epoch, valLoss: stats.valLoss, weights: snapshot() };
      }
      await onEpoch?.(stats);
      if (earlyStoppingPatience > 0 && epoch - best.epoch >= earlyStoppingPatience && epoch < epochs) {
        model.setWeights(best.weights);
        return { epochs: history, bestEpoch: best.epoch, stoppedEarly: true };
      }
    }
    if (validation === undefined) return { epochs: history, bestEpoch: epochs, stoppedEarly: false };
    if (best) model.setWeights(best.weights);
    return { epochs: history, bestEpoch: best?.epoch ?? 0, stoppedEarly: false };
  } finally {
    tf.dispose(best?.weights);
    optimizer.dispose();
    graphTrainer?.dispose();
  }
}

/**
 * tfjs-layers' `binaryCrossentropy` (the same values: P(dog) clipped to [ε, 1 − ε], turned into logits, sigmoid
 * cross-entropy, mean over the last axis) with its gradient in closed form, (q − y) / (q (1 − q)) per output for
 * q the clipped P(dog), 0 where clipping cut P(dog). tfjs differentiates its composite through clip, divide, log,
 * ReLU, abs, exp and log1p: 48 kernels per step, and each kernel on native TensorFlow costs ~15 µs whatever its
 * size, which made the loss's gradient the largest part of a transfer head's step (docs/benchmarks.md, "where a
 * head training step goes"); the closed form is 12. Equal to the composite's gradient up to float rounding, and
 * exact at the clip range's upper edge, where the composite's logit rounds (−1.0 for −1.25).
 */
export function binaryCrossentropyLoss(tf: Tensorflow): (yTrue: Tensor, yPred: Tensor) => Tensor {
  return (yTrue, yPred) =>
    tf.customGrad((pDog, save) => {
      const p = pDog as Tensor;
      (save as GradSaveFunc)([p]);
      return {
        value: tf.metrics.binaryCrossentropy(yTrue, p),
        gradFunc: (dy, saved) =>
          tf.tidy(() => {
            const epsilon = tf.backend().epsilon();
            const unclipped = saved[0]!;
            const q = tf.clipByValue(unclipped, epsilon, 1 - epsilon);
            const perOutput = tf.div(tf.sub(q, yTrue), tf.mul(q, tf.sub(1, q)));
            const outputs = unclipped.shape[unclipped.rank - 1] ?? 1;
            // dy is per example: the mean over the last axis shares it among that example's outputs.
            const share = outputs === 1 ? tf.expandDims(dy, -1) : tf.div(tf.expandDims(dy, -1), outputs);
            // clipByValue's gradient: 0 outside [ε, 1 − ε], where q differs from P(dog).
            const inRange = tf.cast(tf.equal(unclipped, q), 'float32');
            return tf.mul(tf.mul(perOutput, share), inRange);
          }),
      };
    })(yPred);
}

const NATIVE_RELU_GRAD = 'CatdogNativeReluGrad';

/**
 * ReLU's gradient as TensorFlow's one `ReluGrad` kernel instead of tfjs's `dy * step(x)` (two kernels and a
 * temporary the size of the activation). For the CNN at 128 px, batch 32, the Step and Multiply kernels of the
 * ReLU gradients were the largest share of a training step (bench/profile-train.mjs). Process-wide and idempotent;
 * the gradient is the same function (0 where x ≤ 0, dy elsewhere).
 */
export function useNativeReluGradient(tf: Tensorflow): void {
  if (tf.getKernel(NATIVE_RELU_GRAD, 'tensorflow')) return;
  // tfjs-node's backend runs any TensorFlow op by name; its kernels are registered exactly like this.
  interface NodeBackend {
    executeSingleOutput(name: string, attrs: unknown[], inputs: unknown[]): Tensor;
  }
  const { createTensorsTypeOpAttr } = require('@tensorflow/tfjs-node/dist/nodejs_kernel_backend.js') as {
    createTensorsTypeOpAttr(name: string, dtype: string): unknown;
  };
  tf.registerKernel({
    kernelName: NATIVE_RELU_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) =>
      (backend as unknown as NodeBackend).executeSingleOutput('ReluGrad', [createTensorsTypeOpAttr('T', inputs.x!.dtype)], [inputs.dy, inputs.x]),
  });
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(NATIVE_RELU_GRAD, { dy: dy as Tensor, x: saved[0]! }) as Tensor }),
  });
}

/** P(dog) for every row of `x`. */
export async function predictPDog(model: LayersModel, x: Tensor, batchSize = 32): Promise<Float32Array> {
  const output = model.predict(x, { batchSize }) as Tensor;
  try {
    return (await output.data()) as Float32Array;
  } finally {
    output.dispose();
  }
}

/**
 * Native TensorFlow runs a batch synchronously and tfjs resolves its promises as microtasks, so a whole epoch can
 * pass without a timer firing. A turn of the event loop between batches lets timers run: a queue worker's job-lock
 * renewal above all, which would otherwise lapse and hand a live job to another worker.
 */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Averages {
  loss: number;
  accuracy: number;
  count: number;
}

type Step = (batch: Batch) => Promise<{ loss: number; correct: number }>;

function eagerStep(tf: Tensorflow, model: LayersModel): Step {
  return async ({ x, y }) => {
    const labels = y.rank === 1 ? tf.expandDims(y, 1) : y;
    try {
      const [meanLoss, accuracy] = (await model.trainOnBatch(x, labels)) as number[];
      const size = x.shape[0] ?? 0;
      return { loss: meanLoss! * size, correct: accuracy! * size };
    } finally {
      if (labels !== y) labels.dispose();
    }
  };
}

function graphStep(trainer: GraphTrainer): Step {
  return async ({ x, y }) => trainer.step(x, y);
}

/** `step` on a batch, which it disposes after, and the batch's number of examples. */
function consuming(step: Step): (batch: Batch) => Promise<{ loss: number; correct: number; count: number }> {
  return async (batch) => {
    try {
      return { ...(await step(batch)), count: batch.x.shape[0] ?? 0 };
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  };
}

/**
 * Epochs on examples resident in the graph trainer's session: loaded once, then one session call per batch of row
 * indices in the epoch's order, the same batches `accumulate` would feed.
 */
function residentEpochs(tf: Tensorflow, trainer: GraphTrainer, examples: ResidentExamples, batchSize: number, signal: AbortSignal | undefined) {
  const count = examples.y.length;
  tf.tidy(() => trainer.loadExamples(tf.tensor(examples.x, [count, ...examples.exampleShape]), tf.tensor2d(examples.y, [count, 1])));
  return (epoch: number, afterBatch?: (batchesDone: number) => void): Promise<Averages> => {
    const order = examples.order(epoch);
    const batches = function* () {
      for (let start = 0; start < order.length; start += batchSize) yield order.subarray(start, start + batchSize);
    };
    return accumulate(batches(), signal, async (rows) => ({ ...trainer.stepOnRows(rows), count: rows.length }), afterBatch);
  };
}

/** Binary cross-entropy (without regularization) and accuracy over every validation batch. */
async function evaluate(tf: Tensorflow, model: LayersModel, batches: AsyncIterable<Batch>, signal: AbortSignal | undefined): Promise<Averages> {
  return accumulate(batches, signal, consuming(async ({ x, y }) => {
    const sums = tf.tidy(() => {
      const pDog = model.predict(x) as Tensor;
      const labels = tf.reshape(y, pDog.shape);
      return tf.stack([tf.sum(tf.metrics.binaryCrossentropy(labels, pDog)), tf.sum(tf.metrics.binaryAccuracy(labels, pDog))]);
    });
    const [loss, correct] = await sums.data().finally(() => sums.dispose());
    return { loss: loss!, correct: correct! };
  }));
}

/**
 * Runs `step` on every item (a batch, or a batch's rows), adds up its summed loss, correct answers and
 * examples, reports each item done to `afterItem`, and checks for an abort and yields to the event loop between items.
 */
async function accumulate<Item>(
  items: AsyncIterable<Item> | Iterable<Item>,
  signal: AbortSignal | undefined,
  step: (item: Item) => Promise<{ loss: number; correct: number; count: number }>,
  afterItem?: (itemsDone: number) => void,
): Promise<Averages> {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  let done = 0;
  for await (const item of items) {
    const sums = await step(item);
    lossSum += sums.loss;
    correct += sums.correct;
    count += sums.count;
    done += 1;
    afterItem?.(done);
    signal?.throwIfAborted();
    await yieldToEventLoop();
  }
  return averages(lossSum, correct, count);
}

function averages(lossSum: number, correct: number, count: number): Averages {
  return count === 0 ? { loss: Number.NaN, accuracy: 0, count } : { loss: lossSum / count, accuracy: correct / count, count };
}
