import { UnsupportedLayerError } from './graph/from-layers.js';
import { type GraphTrainer, loadGraphTrainer } from './graph/graph-trainer.js';
import type { AdamSettings } from './graph/training-graph.js';
import { initTensorflow, type Tensorflow } from './tf.js';
import type { LayersModel } from '@tensorflow/tfjs';

/** How `trainBinaryClassifier` runs a training step in this process. */
export interface TrainingPath {
  /** `graph`: one TensorFlow session call per step for the networks the training graph translates; `eager`: tfjs-layers' `trainOnBatch` for every network. */
  kind: 'graph' | 'eager';
  /** What trains which way, or why the graph path is off: for `catdog doctor`. */
  detail: string;
}

const GRAPH_DETAIL = 'heads (logistic, MLP, with or without the zero-shot vote), fine-tuned backbone blocks and the CNN as one TensorFlow graph per step';

let probing: Promise<TrainingPath> | undefined;

/**
 * Chosen once per process: the graph path where native TensorFlow loads a training graph (a tiny one is trained
 * one step to make sure), else the eager path, with one line on stderr when the graph path failed.
 * `CATDOG_TRAINING_STEP=eager` turns the graph path off.
 */
export function trainingPath(): Promise<TrainingPath> {
  probing ??= probe();
  return probing;
}

async function probe(): Promise<TrainingPath> {
  const { tf, backend } = await initTensorflow();
  if (backend !== 'tensorflow') return { kind: 'eager', detail: 'every network eagerly: the WebAssembly backend cannot run TensorFlow graphs' };
  if (process.env.CATDOG_TRAINING_STEP === 'eager') return { kind: 'eager', detail: 'every network eagerly: CATDOG_TRAINING_STEP=eager is set' };
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1, activation: 'sigmoid' })] });
  const [x, y] = [tf.ones([1, 2]), tf.ones([1, 1])];
  try {
    const trainer = await loadGraphTrainer(tf, model, adamSettings(tf, 1e-3));
    try {
      trainer.step(x, y);
    } finally {
      trainer.dispose();
    }
    return { kind: 'graph', detail: GRAPH_DETAIL };
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    process.stderr.write(`catdog: training runs eagerly (slower): native TensorFlow could not run a training graph (${reason}).\n`);
    return { kind: 'eager', detail: `every network eagerly: native TensorFlow could not run a training graph (${reason})` };
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
}

/** tfjs's `tf.train.adam(learningRate)` defaults, which the eager path compiles with and the graph path applies. */
export function adamSettings(tf: Tensorflow, learningRate: number): AdamSettings {
  return { learningRate, beta1: 0.9, beta2: 0.999, epsilon: tf.backend().epsilon() };
}

/** A graph trainer for `model` on the graph path, or undefined where it trains eagerly (the eager path, or a network the training graph does not translate). */
export async function graphTrainerFor(tf: Tensorflow, model: LayersModel, adam: AdamSettings): Promise<GraphTrainer | undefined> {
  if ((await trainingPath()).kind !== 'graph') return undefined;
  try {
    return await loadGraphTrainer(tf, model, adam);
  } catch (error) {
    if (error instanceof UnsupportedLayerError) return undefined;
    throw error;
  }
}
