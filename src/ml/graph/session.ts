import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { NamedTensorMap, Tensor, Tensor4D } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import type { Tensorflow } from '../tf.js';
import type { LayersGraph } from './from-layers.js';
import { encodeSavedModel, type Signature } from './saved-model.js';

type SavedModel = Awaited<ReturnType<typeof TensorflowNode.node.loadSavedModel>>;

/** A frozen graph loaded into a TensorFlow session, run through named signatures (each a set of outputs). */
export interface GraphSession<Name extends string, Output extends string> {
  /** The folder holding the graph's `saved_model.pb`. */
  folder: string;
  /** One session run fetching the signature's outputs for a batch of images; the caller owns the tensors. */
  run(signature: Name, images: Tensor4D): Partial<Record<Output, Tensor>>;
  dispose(): void;
}

const TAGS = ['serve'];
const INPUT_KEY = 'images';

/**
 * Writes the graph as a SavedModel into `cacheDir/graphs/<name>-<content hash>/` (once: the same graph from another
 * load or process is reused) and loads it into a TensorFlow session, which optimizes the whole graph (Grappler)
 * before its first run. Native TensorFlow only: tfjs-node's SavedModel support runs it.
 */
export async function loadGraphSession<Name extends string, Output extends string>(
  tf: Tensorflow,
  graph: LayersGraph,
  signatures: { readonly [signature in Name]?: readonly Output[] },
  { cacheDir, name }: { cacheDir: string; name: string },
): Promise<GraphSession<Name, Output>> {
  const { node } = tf as unknown as typeof TensorflowNode;
  if (!node?.loadSavedModel) throw new Error('the TensorFlow backend in use cannot load SavedModels (tfjs-node can)');
  const bytes = encodeSavedModel({
    nodes: graph.nodes,
    tags: TAGS,
    signatures: Object.fromEntries(
      (Object.entries(signatures) as [Name, readonly Output[]][]).map(([signature, outputs]): [string, Signature] => [
        signature,
        { inputs: { [INPUT_KEY]: graph.input }, outputs: Object.fromEntries(outputs.map((output) => [output, requiredOutput(graph, output)])) },
      ]),
    ),
  });
  const folder = path.join(cacheDir, 'graphs', `${name}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`);
  await writeOnce(folder, bytes);

  const loaded = new Map<Name, SavedModel>();
  const dispose = () => {
    for (const model of loaded.values()) model.dispose();
    loaded.clear();
  };
  try {
    // tfjs-node shares one session between the signatures of a folder.
    for (const signature of Object.keys(signatures) as Name[]) loaded.set(signature, await node.loadSavedModel(folder, TAGS, signature));
  } catch (error) {
    dispose();
    throw error;
  }
  return {
    folder,
    run(signature, images) {
      const model = loaded.get(signature);
      if (!model) throw new Error(`the graph in ${folder} has no signature ${signature} (or was disposed)`);
      const input = images.dtype === 'float32' ? images : tf.cast(images, 'float32');
      try {
        return model.predict({ [INPUT_KEY]: input }) as NamedTensorMap as Partial<Record<Output, Tensor>>;
      } finally {
        if (input !== images) input.dispose();
      }
    },
    dispose,
  };
}

function requiredOutput(graph: LayersGraph, output: string) {
  const tensor = graph.outputs[output];
  if (!tensor) throw new Error(`the graph has no output ${output}; it has ${Object.keys(graph.outputs).join(', ')}`);
  return tensor;
}

async function writeOnce(folder: string, savedModel: Uint8Array): Promise<void> {
  const file = path.join(folder, 'saved_model.pb');
  if (await exists(file)) return;
  const parent = path.dirname(folder);
  await fs.mkdir(parent, { recursive: true });
  const temporary = path.join(parent, `.writing-${randomUUID()}`);
  await fs.mkdir(temporary);
  try {
    await fs.writeFile(path.join(temporary, 'saved_model.pb'), savedModel);
    await fs.rename(temporary, folder).catch(async (error: unknown) => {
      // Another process wrote the same graph first; its copy has the same bytes.
      if (!(await exists(file))) throw error;
    });
  } finally {
    await fs.rm(temporary, { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
