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

/** Where the graph cache reports what it could not tidy up: nothing anyone has to act on. */
export interface DebugLogger {
  debug(details: object, message: string): void;
}

const TAGS = ['serve'];
const INPUT_KEY = 'images';
const HASH_CHARS = 12;
const GRAPH_HASH = new RegExp(`^[0-9a-f]{${HASH_CHARS}}$`);
const WRITING_PREFIX = '.writing-';
/** Writing a graph takes seconds: a temporary folder this old was left by a process killed before its rename. */
const ABANDONED_WRITE_MS = 60 * 60 * 1000;

/**
 * Writes the graph as a SavedModel into `cacheDir/graphs/<name>-<content hash>/` (once: the same graph from another
 * load or process is reused) and loads it into a TensorFlow session, which optimizes the whole graph (Grappler)
 * before its first run. Native TensorFlow only: tfjs-node's SavedModel support runs it. Writing a new one removes
 * the graphs of the same name with other hashes, and the temporary folders of writes abandoned long ago.
 */
export async function loadGraphSession<Name extends string, Output extends string>(
  tf: Tensorflow,
  graph: LayersGraph,
  signatures: { readonly [signature in Name]?: readonly Output[] },
  { cacheDir, name, logger }: { cacheDir: string; name: string; logger?: DebugLogger },
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
  const folder = path.join(cacheDir, 'graphs', `${name}-${createHash('sha256').update(bytes).digest('hex').slice(0, HASH_CHARS)}`);
  if (await writeOnce(folder, bytes)) await tidyGraphCache(folder, name, logger);

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

/** True when this call put the graph there, false when it already was (from an earlier load or another process). */
async function writeOnce(folder: string, savedModel: Uint8Array): Promise<boolean> {
  const file = path.join(folder, 'saved_model.pb');
  if (await exists(file)) return false;
  const parent = path.dirname(folder);
  await fs.mkdir(parent, { recursive: true });
  const temporary = path.join(parent, `${WRITING_PREFIX}${randomUUID()}`);
  await fs.mkdir(temporary);
  try {
    await fs.writeFile(path.join(temporary, 'saved_model.pb'), savedModel);
    return await fs.rename(temporary, folder).then(
      () => true,
      async (error: unknown) => {
        // Another process wrote the same graph first; its copy has the same bytes.
        if (!(await exists(file))) throw error;
        return false;
      },
    );
  } finally {
    await fs.rm(temporary, { recursive: true, force: true });
  }
}

/**
 * The same backbone's graphs from other bytes (written before an upgrade changed how its graph is built): each
 * holds a full copy of the weights, and this version never loads them again. A process that still runs one has
 * it in memory already. Another process may be removing the same folders, so a folder that does not go is left
 * for the next new graph. Also removes the temporary folders of writes whose process was killed before the
 * rename, once they are too old to be another process's write in progress.
 */
async function tidyGraphCache(folder: string, name: string, logger: DebugLogger | undefined): Promise<void> {
  const parent = path.dirname(folder);
  const prefix = `${name}-`;
  const isOtherVersion = (entry: string) => entry !== path.basename(folder) && entry.startsWith(prefix) && GRAPH_HASH.test(entry.slice(prefix.length));
  let entries: string[];
  try {
    entries = await fs.readdir(parent);
  } catch (error) {
    logger?.debug({ err: error, folder: parent }, 'could not list the backbone graph cache to remove old graphs');
    return;
  }
  const remove = (entry: string, what: string) =>
    fs.rm(path.join(parent, entry), { recursive: true, force: true }).catch((error: unknown) => {
      logger?.debug({ err: error, folder: path.join(parent, entry) }, `could not remove ${what}`);
    });
  await Promise.all([
    ...entries.filter(isOtherVersion).map((entry) => remove(entry, 'an old backbone graph')),
    ...entries
      .filter((entry) => entry.startsWith(WRITING_PREFIX))
      .map(async (entry) => {
        if (await isAbandonedWrite(path.join(parent, entry), logger)) await remove(entry, 'an abandoned backbone graph write');
      }),
  ]);
}

async function isAbandonedWrite(temporary: string, logger: DebugLogger | undefined): Promise<boolean> {
  try {
    return Date.now() - (await fs.stat(temporary)).mtimeMs > ABANDONED_WRITE_MS;
  } catch (error) {
    // Gone meanwhile: its writer renamed it, or another process removed it.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger?.debug({ err: error, folder: temporary }, 'could not read the age of a temporary backbone graph folder');
    }
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
