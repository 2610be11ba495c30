import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LayersModel, NamedTensorMap, Tensor } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import type { Tensorflow } from '../tf.js';
import { encodeSavedModel } from './saved-model.js';
import { type AdamSettings, type DropoutMask, type TrainingSignature, trainingGraph } from './training-graph.js';

type SavedModel = Awaited<ReturnType<typeof TensorflowNode.node.loadSavedModel>>;

/** A model's training step running in a TensorFlow session that holds its weights and Adam's state. */
export interface GraphTrainer {
  /** One Adam step on a batch (`y`: [n] or [n, 1] labels): its loss summed over the examples and its correct answers. */
  step(x: Tensor, y: Tensor): { loss: number; correct: number };
  /** Copies the session's weights into the model, which validation, snapshots and saving read. */
  copyWeightsToModel(): void;
  dispose(): void;
}

const TAGS = ['serve'];
const SIGNATURES: readonly TrainingSignature[] = ['assign', 'step', 'read'];

/**
 * Loads `model`'s training graph (`trainingGraph`) into a session of its own, starting from the model's current
 * weights and a fresh Adam. Native TensorFlow only. Throws UnsupportedLayerError for a model the training graph
 * does not translate.
 */
export async function loadGraphTrainer(tf: Tensorflow, model: LayersModel, adam: AdamSettings): Promise<GraphTrainer> {
  const { node } = tf as unknown as typeof TensorflowNode;
  if (!node?.loadSavedModel) throw new Error('the TensorFlow backend in use cannot load SavedModels (tfjs-node can)');
  const graph = trainingGraph(tf, model, adam);
  const bytes = encodeSavedModel({ nodes: graph.nodes, tags: TAGS, signatures: graph.signatures });
  // tfjs-node gives every load of one folder the same session, and the variables live in the session: each trainer
  // loads from a folder of its own, which is not needed once loaded.
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-training-graph-'));
  const loaded = new Map<TrainingSignature, SavedModel>();
  const disposeSessions = () => {
    for (const savedModel of loaded.values()) savedModel.dispose();
    loaded.clear();
  };
  try {
    await fs.writeFile(path.join(folder, 'saved_model.pb'), bytes);
    for (const signature of SIGNATURES) loaded.set(signature, await node.loadSavedModel(folder, TAGS, signature));
  } catch (error) {
    disposeSessions();
    throw error;
  } finally {
    await fs.rm(folder, { recursive: true, force: true });
  }
  const run = (signature: TrainingSignature, inputs: NamedTensorMap): NamedTensorMap => {
    const savedModel = loaded.get(signature);
    if (!savedModel) throw new Error('the graph trainer was disposed');
    return savedModel.predict(inputs) as NamedTensorMap;
  };
  const weightKey = (i: number) => `weight_${i}`;

  tf.dispose(Object.values(run('assign', Object.fromEntries(model.weights.map((weight, i) => [weightKey(i), weight.read()])))));
  const masks = dropoutMasks(tf, graph.dropouts);
  return {
    step(x, y) {
      const batch = x.shape[0] ?? 0;
      const inputs = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
      const labels = y.rank === 2 && y.dtype === 'float32' ? y : tf.tidy(() => tf.cast(tf.reshape(y, [batch, 1]), 'float32'));
      const dropouts = masks.forBatch(batch);
      try {
        const { sums } = run('step', { x: inputs, y: labels, ...dropouts.tensors });
        const [loss, correct] = sums!.dataSync();
        sums!.dispose();
        return { loss: loss!, correct: correct! };
      } finally {
        if (inputs !== x) inputs.dispose();
        if (labels !== y) labels.dispose();
        dropouts.release();
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
    dispose() {
      disposeSessions();
      masks.dispose();
    },
  };
}

/**
 * The dropout masks of a step, drawn exactly as tfjs's `dropout` draws them. With a seed tfjs draws from a new
 * generator seeded alike on every call, so a seeded layer's mask is the same for every batch of one size: it is
 * drawn once per size and kept.
 */
function dropoutMasks(tf: Tensorflow, dropouts: readonly DropoutMask[]) {
  const kept = new Map<string, Tensor>();
  const draw = ({ rate, seed, units }: DropoutMask, batch: number): Tensor =>
    tf.tidy(() => {
      const keep = 1 - rate;
      return tf.div(tf.floor(tf.add(tf.randomUniform([batch, units], 0, 1, 'float32', seed), keep)), keep);
    });
  return {
    forBatch(batch: number) {
      const fresh: Tensor[] = [];
      const tensors = Object.fromEntries(
        dropouts.map((dropout) => {
          if (dropout.seed === undefined) {
            const mask = draw(dropout, batch);
            fresh.push(mask);
            return [dropout.key, mask];
          }
          const id = `${dropout.key}/${batch}`;
          const mask = kept.get(id) ?? draw(dropout, batch);
          kept.set(id, mask);
          return [dropout.key, mask];
        }),
      );
      return { tensors, release: () => tf.dispose(fresh) };
    },
    dispose: () => tf.dispose([...kept.values()]),
  };
}
