import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LayersModel, NamedTensorMap, Tensor } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import type { Tensorflow } from '../tf.js';
import { encodeSavedModel, type GraphNode, type Signature } from './saved-model.js';
import { takeDropoutSeed } from '../dropout-seed.js';
import { type AdamSettings, type DropoutMask, type TrainingSignature, trainingGraph } from './training-graph.js';

type SavedModel = Awaited<ReturnType<typeof TensorflowNode.node.loadSavedModel>>;

/** A model's training step running in a TensorFlow session that holds its weights and Adam's state. */
export interface GraphTrainer {
  /** One Adam step on a batch (`y`: [n] or [n, 1] labels): its loss summed over the examples and its correct answers. */
  step(x: Tensor, y: Tensor): { loss: number; correct: number };
  /** Keeps `x` (every example of a split) and `y` ([n] or [n, 1] labels) in the session, for `stepOnRows`; the caller keeps its tensors. */
  loadExamples(x: Tensor, y: Tensor): void;
  /** `step` on these rows of the loaded examples, which stay in the session: only the indices cross into it. */
  stepOnRows(rows: Int32Array): { loss: number; correct: number };
  /** Copies the session's weights into the model, which validation, snapshots and saving read. */
  copyWeightsToModel(): void;
  dispose(): void;
}

const SIGNATURES: readonly TrainingSignature[] = ['assign', 'step', 'read', 'load', 'resident_step'];

const TAGS = ['serve'];

/** Signatures of one graph loaded into a TensorFlow session of its own, which holds the graph's variables. */
export interface GraphSignatures<Name extends string> {
  run(signature: Name, inputs: NamedTensorMap): NamedTensorMap;
  dispose(): void;
}

/** Loads `nodes` with `signatures` into a session of its own (native TensorFlow only), each of `names` callable. */
export async function loadGraphSignatures<Name extends string>(
  tf: Tensorflow,
  nodes: readonly GraphNode[],
  signatures: Readonly<Record<Name, Signature>>,
  names: readonly Name[],
): Promise<GraphSignatures<Name>> {
  const { node } = tf as unknown as typeof TensorflowNode;
  if (!node?.loadSavedModel) throw new Error('the TensorFlow backend in use cannot load SavedModels (tfjs-node can)');
  const bytes = encodeSavedModel({ nodes, tags: TAGS, signatures });
  // tfjs-node gives every load of one folder the same session, and the variables live in the session: each graph
  // loads from a folder of its own, which is not needed once loaded.
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-training-graph-'));
  const loaded = new Map<Name, SavedModel>();
  const dispose = () => {
    for (const savedModel of loaded.values()) savedModel.dispose();
    loaded.clear();
  };
  try {
    await fs.writeFile(path.join(folder, 'saved_model.pb'), bytes);
    for (const name of names) loaded.set(name, await node.loadSavedModel(folder, TAGS, name));
  } catch (error) {
    dispose();
    throw error;
  } finally {
    await fs.rm(folder, { recursive: true, force: true });
  }
  return {
    run(signature, inputs) {
      const savedModel = loaded.get(signature);
      if (!savedModel) throw new Error('the graph session was disposed');
      return savedModel.predict(inputs) as NamedTensorMap;
    },
    dispose,
  };
}

/**
 * Loads `model`'s training graph (`trainingGraph`) into a session of its own, starting from the model's current
 * weights and a fresh Adam. Native TensorFlow only. Throws UnsupportedLayerError for a model the training graph
 * does not translate.
 */
export async function loadGraphTrainer(tf: Tensorflow, model: LayersModel, adam: AdamSettings): Promise<GraphTrainer> {
  const graph = trainingGraph(tf, model, adam);
  const session = await loadGraphSignatures(tf, graph.nodes, graph.signatures, SIGNATURES);
  const run = session.run;
  const disposeSessions = session.dispose;
  const weightKey = (i: number) => `weight_${i}`;

  tf.dispose(Object.values(run('assign', Object.fromEntries(model.weights.map((weight, i) => [weightKey(i), weight.read()])))));
  const masks = dropoutMasks(tf, graph.dropouts);
  const asFloat = (tensor: Tensor) => (tensor.dtype === 'float32' ? tensor : tf.cast(tensor, 'float32'));
  const asLabels = (y: Tensor, count: number) => (y.rank === 2 && y.dtype === 'float32' ? y : tf.tidy(() => tf.cast(tf.reshape(y, [count, 1]), 'float32')));
  /** Runs `signature` (step or resident_step) on a batch of `batch` examples with its dropout masks. */
  const runStep = (signature: 'step' | 'resident_step', inputs: NamedTensorMap, batch: number) => {
    const dropouts = masks.forBatch(batch);
    try {
      const { sums } = run(signature, { ...inputs, ...dropouts.tensors });
      const [loss, correct] = sums!.dataSync();
      sums!.dispose();
      return { loss: loss!, correct: correct! };
    } finally {
      dropouts.release();
    }
  };
  /** Calls `use` with float32 [n, …] inputs and [n, 1] labels made from `x` and `y`, disposing whichever it made. */
  const withFloats = <T>(x: Tensor, y: Tensor, use: (inputs: Tensor, labels: Tensor) => T): T => {
    const inputs = asFloat(x);
    const labels = asLabels(y, x.shape[0] ?? 0);
    try {
      return use(inputs, labels);
    } finally {
      if (inputs !== x) inputs.dispose();
      if (labels !== y) labels.dispose();
    }
  };
  return {
    step: (x, y) => withFloats(x, y, (inputs, labels) => runStep('step', { x: inputs, y: labels }, x.shape[0] ?? 0)),
    loadExamples(x, y) {
      withFloats(x, y, (inputs, labels) => tf.dispose(Object.values(run('load', { examples_x: inputs, examples_y: labels }))));
    },
    stepOnRows(rows) {
      const indices = tf.tensor1d(rows, 'int32');
      try {
        return runStep('resident_step', { rows: indices }, rows.length);
      } finally {
        indices.dispose();
      }
    },
    copyWeightsToModel() {
      const read = run('read', {});
      const values = model.weights.map((_, i) => read[weightKey(i)]!);
      try {
        model.setWeights(values);
      } finally {
        tf.dispose(values);
      }
    },
    dispose: disposeSessions,
  };
}

/**
 * The dropout masks of a step, drawn exactly as tfjs's `dropout` draws them: an unseeded layer's from fresh random
 * numbers, a seeded layer's from the seed it holds for this step, which then moves on as on the eager path.
 */
function dropoutMasks(tf: Tensorflow, dropouts: readonly DropoutMask[]) {
  return {
    forBatch(batch: number) {
      const tensors = Object.fromEntries(
        dropouts.map(({ key, rate, layer, units }) => {
          const seed = takeDropoutSeed(layer);
          const keep = 1 - rate;
          return [key, tf.tidy(() => tf.div(tf.floor(tf.add(tf.randomUniform([batch, units], 0, 1, 'float32', seed), keep)), keep))];
        }),
      );
      return { tensors, release: () => tf.dispose(Object.values(tensors)) };
    },
  };
}
