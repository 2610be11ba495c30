import type { GraphModel, io, Tensor, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import type { Backbone } from './backbone.js';
import { type BackboneOutputNames, NATIVE_SCALING, type PixelScaling } from './catalogue.js';
import { type ForwardPasses, loadGraphPasses, messageOf } from './forward-passes.js';
import {
  type GraphModelInput,
  type GraphModelJson,
  graphModelGraph,
  graphModelInput,
  graphModelOutputs,
  hasNode,
  poolingCandidates,
} from './graph/from-graph-model.js';
import { type ConstTensor, DataType } from './graph/saved-model.js';
import type { DebugLogger } from './graph/session.js';
import { pixelMap, type PixelMap } from './pixel-scaling.js';
import type { LoadedTensorflow, Tensorflow } from './tf.js';

const IMAGENET_CLASSES = 1000;

export interface GraphBackboneOptions {
  source: string;
  id: string;
  cacheDir: string;
  logger?: DebugLogger;
  /** The image side fed (absent: the side the graph's input declares). */
  inputSize?: number;
  /** Computed on the pixels before the graph's input (absent: x/127.5 − 1). */
  scaling?: PixelScaling;
  outputs?: BackboneOutputNames;
}

/**
 * A TF.js graph model as a backbone: its declared (or only) output as the features, its declared ImageNet output
 * as the 1000 ImageNet probabilities. It runs as one frozen TensorFlow graph in a session where native TensorFlow
 * does (the GraphDef given its weights back as Const nodes), else through tfjs's GraphModel. A graph has no layers,
 * so it has no `layersModel` to export or fine-tune.
 */
export async function loadGraphBackbone(loaded: LoadedTensorflow, model: GraphModelJson, shards: readonly Buffer[], options: GraphBackboneOptions): Promise<Backbone> {
  const { tf } = loaded;
  const { source } = options;
  const input = graphModelInput(model, source);
  const inputSize = imageSide(input, options.inputSize, source);
  const outputs = outputNodes(model, options.outputs, source);
  const map = pixelMap(options.scaling ?? NATIVE_SCALING);
  const weights = decodedWeights(tf, model, shards, source);
  const passes = await forwardPasses(loaded, model, { weights, input, inputSize, map, outputs }, options);
  try {
    const featureSize = probe(tf, passes, inputSize, outputs, source);
    const how = passes.forwardPass.kind === 'graph' ? `runs as one TensorFlow graph (${passes.forwardPass.folder})` : `runs eagerly: ${passes.forwardPass.reason}`;
    // Said once per load: what the missing layers (and a missing ImageNet output) take away.
    const without = outputs.imagenet
      ? 'no fine-tuning, zero-shot vote or export, and its models\' "neither" ImageNet-mass threshold is serving.neither.threshold (none is learned from features)'
      : 'no ImageNet output declared, so no zero-shot answers or vote and "neither" from feature distance only; no fine-tuning or export';
    process.stderr.write(`catdog: backbone ${options.id} is a TF.js graph model: it ${how}; ${without}\n`);
    return {
      id: options.id,
      source,
      inputSize,
      featureShape: [featureSize],
      featureSize,
      features: passes.features,
      featuresAndImagenet: passes.featuresAndImagenet,
      ...(passes.imagenet ? { imagenet: passes.imagenet } : {}),
      forwardPass: passes.forwardPass,
      dispose: passes.dispose,
    };
  } catch (error) {
    passes.dispose();
    throw error;
  }
}

function imageSide({ name, shape }: GraphModelInput, declared: number | undefined, source: string): number {
  const [, height, width, channels] = shape;
  if (shape.length !== 4 || (channels !== 3 && channels !== -1)) {
    throw new CatdogError('backbone_unavailable', `backbone ${source} takes ${JSON.stringify(shape)} at its input ${name}, not a batch of RGB images [batch, height, width, 3]`, 400, { source });
  }
  if (declared !== undefined) return declared;
  if (height === undefined || height <= 0 || height !== width) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} does not declare a square image size at its input ${name} (${JSON.stringify(shape)}); set training.backboneImageSize to the side it takes`,
      400,
      { source },
    );
  }
  return height;
}

/** The declared outputs (each checked to exist), the features defaulting to the graph's one output. */
function outputNodes(model: GraphModelJson, declared: BackboneOutputNames | undefined, source: string): { features: string; imagenet?: string } {
  const outputs = graphModelOutputs(model);
  const candidates = [...new Set([...outputs, ...poolingCandidates(model)])].join(', ');
  for (const [key, node] of Object.entries(declared ?? {})) {
    if (node !== undefined && !hasNode(model, node)) {
      throw new CatdogError('backbone_unavailable', `backbone ${source} has no node ${node} (training.backboneOutputs ${key}); its outputs and pooling nodes are: ${candidates}`, 400, { source });
    }
  }
  const features = declared?.features ?? (outputs.length === 1 ? outputs[0] : undefined);
  if (!features) {
    throw new CatdogError(
      'backbone_output_ambiguous',
      `backbone ${source} is a TF.js graph model with ${outputs.length} outputs, so catdog cannot tell which are its pooled features: ` +
        `name that node in training.backboneOutputs ({"${source}": {"features": "<node>"}}); its outputs and pooling nodes are: ${candidates}`,
      400,
      { source },
    );
  }
  return { features, ...(declared?.imagenet ? { imagenet: declared.imagenet } : {}) };
}

/** Every weight by its Const node's name, as the converter's manifest names them (quantized weights dequantized). */
function decodedWeights(tf: Tensorflow, model: GraphModelJson, shards: readonly Buffer[], source: string): Map<string, ConstTensor> {
  const specs = model.weightsManifest.flatMap((group) => group.weights) as io.WeightsManifestEntry[];
  const joined = Buffer.concat(shards);
  const tensors = tf.io.decodeWeights(joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength) as ArrayBuffer, specs);
  const weights = new Map<string, ConstTensor>();
  try {
    for (const [name, tensor] of Object.entries(tensors)) {
      if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') {
        throw new CatdogError('backbone_unavailable', `backbone ${source}'s weight ${name} is ${tensor.dtype}; catdog takes graph models whose constants are float32 or int32 (quantized ones dequantize to float32)`, 400, { source });
      }
      const values = tensor.dataSync();
      weights.set(name, tensor.dtype === 'float32'
        ? { dtype: DataType.float32, shape: tensor.shape, values: Float32Array.from(values) }
        : { dtype: DataType.int32, shape: tensor.shape, values: Int32Array.from(values) });
    }
  } finally {
    for (const tensor of Object.values(tensors)) tensor.dispose();
  }
  return weights;
}

interface GraphPlan {
  weights: Map<string, ConstTensor>;
  input: GraphModelInput;
  inputSize: number;
  map: PixelMap;
  outputs: { features: string; imagenet?: string };
}

/** One TensorFlow session where native TensorFlow runs, else (or when its graph does not load) tfjs's GraphModel. */
async function forwardPasses(
  { tf, backend }: LoadedTensorflow,
  model: GraphModelJson,
  plan: GraphPlan,
  { cacheDir, id, logger }: GraphBackboneOptions,
): Promise<ForwardPasses> {
  const eager = (reason: string) => graphModelPasses(tf, model, plan, reason);
  if (backend !== 'tensorflow') return eager(`the ${backend} backend runs no TensorFlow graphs`);
  let passes: ForwardPasses;
  try {
    const graph = graphModelGraph(model, { weights: plan.weights, input: plan.input, inputSize: plan.inputSize, pixelMap: plan.map, outputs: plan.outputs });
    passes = await loadGraphPasses(tf, graph, plan.outputs.imagenet !== undefined, { cacheDir, id, logger });
  } catch (error) {
    return eager(`its frozen TensorFlow graph could not be built or loaded: ${messageOf(error)}`);
  }
  try {
    // An op TensorFlow has no kernel for may only fail when run.
    tf.tidy(() => passes.features(tf.zeros([1, plan.inputSize, plan.inputSize, 3])));
  } catch (error) {
    passes.dispose();
    return eager(`its frozen TensorFlow graph failed to run: ${messageOf(error)}`);
  }
  return passes;
}

/** Every pass through tfjs's GraphModel executor, op by op, the pixel scaling computed before it. */
async function graphModelPasses(tf: Tensorflow, model: GraphModelJson, { weights, input, inputSize, map, outputs }: GraphPlan, reason: string): Promise<ForwardPasses> {
  // tfjs checks what it is fed against the input's declared shape: declared at the side fed.
  const shape = { shape: { dim: [-1, inputSize, inputSize, 3].map((size) => ({ size: String(size) })) } };
  const node = model.modelTopology.node.map((graphNode) => (graphNode.name === input.name ? { ...graphNode, attr: { ...graphNode.attr, shape } } : graphNode));
  const handler: io.IOHandler = {
    load: async () => ({
      modelTopology: { ...model.modelTopology, node },
      weightSpecs: [...weights].map(([name, tensor]) => ({ name, shape: [...tensor.shape], dtype: tensor.dtype === DataType.int32 ? 'int32' : 'float32' })),
      weightData: concatenated([...weights.values()].map((tensor) => tensor.values)),
      format: 'graph-model',
    }),
  };
  const graphModel: GraphModel = await tf.loadGraphModel(handler);
  const scaled = (rgb: Tensor4D): Tensor4D => {
    const ordered = map.from.every((from, channel) => from === channel) ? rgb : tf.gather(rgb, map.from, 3);
    return tf.add(tf.mul(ordered, tf.tensor1d(map.scale)), tf.tensor1d(map.offset));
  };
  const run = (rgb: Tensor4D, names: string[]): Tensor[] =>
    tf.tidy(() => {
      const result = graphModel.execute({ [input.name]: scaled(rgb) }, names);
      return Array.isArray(result) ? result : [result];
    });
  const features = (rgb: Tensor4D) => run(rgb, [outputs.features])[0] as Tensor2D;
  const imagenetNode = outputs.imagenet;
  return {
    forwardPass: { kind: 'eager', reason: `${reason}, so it runs through tfjs's GraphModel.execute` },
    features,
    featuresAndImagenet: imagenetNode
      ? (rgb) => {
          const [featureTensor, imagenet] = run(rgb, [outputs.features, imagenetNode]) as [Tensor2D, Tensor2D];
          return { features: featureTensor, imagenet };
        }
      : (rgb) => ({ features: features(rgb) }),
    ...(imagenetNode ? { imagenet: (rgb: Tensor4D) => run(rgb, [imagenetNode])[0] as Tensor2D } : {}),
    dispose: () => graphModel.dispose(),
  };
}

/** The feature width, from one run on a black image; the ImageNet output checked to be 1000 probabilities. */
function probe(tf: Tensorflow, passes: ForwardPasses, inputSize: number, outputs: { features: string; imagenet?: string }, source: string): number {
  const shapes = tf.tidy(() => {
    const { features, imagenet } = passes.featuresAndImagenet(tf.zeros([1, inputSize, inputSize, 3]));
    return { features: features.shape, imagenet: imagenet?.shape };
  });
  const [, featureSize] = shapes.features;
  if (shapes.features.length !== 2 || featureSize === undefined) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source}'s node ${outputs.features} outputs ${JSON.stringify(shapes.features)}, not one feature vector per image; ` +
        'name its pooled features (a [batch, n] node) in training.backboneOutputs',
      400,
      { source },
    );
  }
  if (shapes.imagenet && (shapes.imagenet.length !== 2 || shapes.imagenet[1] !== IMAGENET_CLASSES)) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source}'s node ${outputs.imagenet} outputs ${JSON.stringify(shapes.imagenet)}, not the ${IMAGENET_CLASSES} ImageNet class probabilities; ` +
        'remove its imagenet entry from training.backboneOutputs, or name the softmax output',
      400,
      { source },
    );
  }
  return featureSize;
}

function concatenated(arrays: readonly (Float32Array | Int32Array)[]): ArrayBuffer {
  const bytes = new Uint8Array(arrays.reduce((sum, values) => sum + values.byteLength, 0));
  let offset = 0;
  for (const values of arrays) {
    bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    offset += values.byteLength;
  }
  return bytes.buffer;
}
