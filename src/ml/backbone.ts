import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { io, LayersModel, SymbolicTensor, Tensor, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import { z } from 'zod';
import { CatdogError } from '../errors.js';
import { type BackboneOutputNames, NATIVE_SCALING, type PixelScaling } from './catalogue.js';
import { foldBatchNormalization } from './fold-batch-norm.js';
import { loadGraphBackbone } from './graph-backbone.js';
import { graphModelInput, graphModelJsonSchema } from './graph/from-graph-model.js';
import { type LayersGraph, layersGraph, UnsupportedLayerError } from './graph/from-layers.js';
import type { DebugLogger } from './graph/session.js';
import { type ForwardPasses, loadGraphPasses, messageOf } from './forward-passes.js';
import { importKerasModel } from './keras/import.js';
import { serializeModel, weightBytes } from './model-io.js';
import { foldPixelMap, pixelMap, samePixelMap, type PixelMap } from './pixel-scaling.js';
import { isTfliteSource, readTflite, tfliteToLayers } from './tflite/index.js';
import { initTensorflow, type LoadedTensorflow, tensorflow, type Tensorflow } from './tf.js';

/**
 * Pixels in, a fixed-size array of floats per image out, computed by frozen pretrained layers: what the training
 * feature cache keeps per image (a backbone's pooled features, its activations where fine-tuning splits it, an
 * ensemble's concatenated features).
 */
export interface FeatureExtractor {
  /** Names the cached values, so it changes whenever they would. */
  id: string;
  inputSize: number;
  /** One image's output: `[n]` for a feature vector, `[height, width, channels]` for activations. */
  featureShape: number[];
  /** Floats per image: the product of `featureShape`. */
  featureSize: number;
  /** RGB float32 0..255, NHWC at `inputSize` → `[batch, ...featureShape]`; the `x/127.5 − 1` scaling happens inside. */
  features(rgb: Tensor4D): Tensor;
  /** Set when the output is these extractors' feature vectors concatenated: the cache keeps each part's own. */
  parts?: readonly FeatureExtractor[];
}

/**
 * What a transfer model's network is fed, computed from pixels: a backbone's pooled features, or its activations
 * below the blocks a fine-tuned network holds.
 */
export interface NetworkInput extends FeatureExtractor {
  /**
   * One forward pass: the network's input, the pooled pretrained features (where the "neither" centroids live)
   * and the ImageNet probabilities when the backbone has that head.
   */
  forward(rgb: Tensor4D): { input: Tensor; features: Tensor2D; imagenet?: Tensor2D };
  /**
   * Scaled pixels (x/127.5 − 1) → the network's input, as one layers model: what exports put before the network.
   * Absent on a TF.js graph model backbone, which has no layers to compose.
   */
  model?: LayersModel;
}

/** A pretrained image network used as a frozen feature extractor (and, when it has one, an ImageNet classifier). */
export interface Backbone extends FeatureExtractor {
  /** An ensemble's backbones, in the order of their features. */
  parts?: readonly Backbone[];
  /** `<model folder name>-<first 12 hex of sha256(model.json + weights)>`: changes whenever the weights do. */
  id: string;
  source: string;
  features(rgb: Tensor4D): Tensor2D;
  /** The 1000 ImageNet class probabilities; absent when the model has no ImageNet head. */
  imagenet?(rgb: Tensor4D): Tensor2D;
  /** Features and ImageNet probabilities from one forward pass. */
  featuresAndImagenet(rgb: Tensor4D): { features: Tensor2D; imagenet?: Tensor2D };
  /** The whole loaded model, for export and fine-tuning; absent for a TF.js graph model, which has no layers. */
  layersModel?: LayersModel;
  /**
   * The trunk alone (input already scaled x/127.5 − 1 → features), to compose a model that runs without catdog;
   * absent for a TF.js graph model (and an ensemble with one).
   */
  featureModel?: LayersModel;
  /** How `features`, `featuresAndImagenet` and `imagenet` run; absent for an ensemble, whose parts each say. */
  forwardPass?: ForwardPass;
  dispose(): void;
}

/**
 * A backbone's inference runs as one TensorFlow graph in a session (whole-graph optimization: each convolution
 * fused with its bias and activation), or eagerly, op by op through tfjs, when the graph cannot run (why is said).
 */
export type ForwardPass = { kind: 'graph'; folder: string } | { kind: 'eager'; reason: string };

export interface LoadBackboneOptions {
  /** Downloaded backbones live in `cacheDir/backbones/<sha256(url) prefix>/`, their graphs in `cacheDir/graphs/`. */
  cacheDir: string;
  onDownload?: (receivedBytes: number, totalBytes: number | undefined) => void;
  logger?: DebugLogger;
  /**
   * Feed the backbone images of this side instead of the size its model.json declares (a fully convolutional
   * network with global pooling takes any size); its id then ends in `-<size>px`.
   */
  inputSize?: number;
  /**
   * How the model wants its pixels scaled (absent: what a TFLite file's input quantization states, else x/127.5 − 1);
   * it is folded into the first convolution, so that the backbone takes x/127.5 − 1 like every backbone. A TFLite
   * file's own scaling must agree with a declared one. A declared scaling other than x/127.5 − 1 ends the id in
   * `-<scaling>`.
   */
  scaling?: PixelScaling;
  /** A TF.js graph model's output nodes; declared for another kind of model, it is refused. */
  outputs?: BackboneOutputNames;
}

const IMAGENET_CLASSES = 1000;

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: io.WeightsManifestEntry[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
}

/**
 * Loads a backbone from an `http(s)://` URL (downloaded once into the cache, offline afterwards), a `file://` URL
 * or a path: a TF.js layers or graph model.json (or the folder holding it; a graph model runs as its graph,
 * `ml/graph-backbone.ts`), a TFLite `.tflite` file (rebuilt as float
 * layers, `ml/tflite/`) or a Keras `.keras` / `.h5` full model (`ml/keras/`: Keras applications built with
 * `include_top=False, pooling='avg'` load as they are).
 */
export async function loadBackbone(source: string, options: LoadBackboneOptions): Promise<Backbone> {
  const loaded = await initTensorflow();
  const { tf } = loaded;
  const format = singleFileFormat(source);
  let modelPath: string;
  try {
    modelPath = /^https?:\/\//i.test(source)
      ? await downloadOnce(source, options, format)
      : await localModelPath(source);
  } catch (error) {
    throw unavailable(source, error);
  }
  let files: ModelFiles & { pixelMap?: PixelMap };
  try {
    files = format ? await rebuiltModelFiles(tf, format, await fs.readFile(modelPath), path.basename(modelPath)) : await readModelFiles(modelPath);
  } catch (error) {
    throw unavailable(source, error, `reading ${modelPath}`);
  }
  if (files.modelJson.format === GRAPH_MODEL_FORMAT) return graphBackbone(loaded, files, source, options);
  if (options.outputs) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} is not a TF.js graph model, so it takes no declared output nodes: catdog finds a layers model's pooled features itself; remove its entry from training.backboneOutputs`,
      400,
      { source },
    );
  }
  const resized = options.inputSize === undefined ? undefined : withInputSize(files.modelJson, options.inputSize, source);
  let model: LayersModel;
  try {
    model = await tf.loadLayersModel(memoryHandler(resized ? { ...files, modelJson: resized.modelJson } : files));
  } catch (error) {
    if (resized?.changed) {
      throw new CatdogError(
        'backbone_unavailable',
        `backbone ${source} cannot take ${options.inputSize}×${options.inputSize} px images (${messageOf(error)}): only a fully convolutional ` +
          'backbone takes another size than its own; set training.backboneImageSize to null',
        400,
        { source },
      );
    }
    throw unavailable(source, error, `building the TensorFlow.js layers model from ${modelPath}`);
  }
  let inference: LayersModel | undefined;
  try {
    const scaling = inputScaling(source, files.pixelMap, options.scaling);
    foldPixelMap(model, scaling.map, 'scaled', (reason) => cannotFold(source, scaling.tag, reason));
    inference = await foldBatchNormalization(model);
    const id = [
      backboneId(source, files),
      ...(options.scaling && options.scaling !== NATIVE_SCALING && !files.pixelMap ? [scalingTag(options.scaling)] : []),
      ...(resized?.changed ? [`${options.inputSize}px`] : []),
    ].join('-');
    const outputs = backboneOutputs(tf, { model, inference }, source);
    const passes = await forwardPasses(loaded, { model, inference }, outputs, { cacheDir: options.cacheDir, id, logger: options.logger });
    process.stderr.write(
      passes.forwardPass.kind === 'graph'
        ? `catdog: backbone ${id} runs as one TensorFlow graph (${passes.forwardPass.folder})\n`
        : `catdog: backbone ${id} runs eagerly, layer by layer: ${passes.forwardPass.reason}\n`,
    );
    return wrapBackbone(model, outputs, passes, source, id);
  } catch (error) {
    if (inference !== model) inference?.dispose();
    model.dispose();
    throw error;
  }
}

const GRAPH_MODEL_FORMAT = 'graph-model';

/** A TF.js graph model's files as a backbone; its declared outputs name its id too, since they choose its features. */
async function graphBackbone(loaded: LoadedTensorflow, files: ModelFiles, source: string, options: LoadBackboneOptions): Promise<Backbone> {
  const parsed = graphModelJsonSchema.safeParse(files.modelJson);
  if (!parsed.success) throw unavailable(source, new Error(`its model.json is not a TF.js graph model: ${z.prettifyError(parsed.error)}`));
  const id = [
    backboneId(source, files),
    ...(options.scaling && options.scaling !== NATIVE_SCALING ? [scalingTag(options.scaling)] : []),
    // As for a layers model, only a side other than the graph's own names another backbone: training (which may
    // leave the side unset) and serving (which asks for the model card's side) must agree on the id.
    ...(options.inputSize === undefined || options.inputSize === graphModelInput(parsed.data, source).shape[1] ? [] : [`${options.inputSize}px`]),
    ...(options.outputs?.features ? [idPart(options.outputs.features)] : []),
    // The ImageNet output decides zero-shot answers and "neither": another node is another backbone to a model card.
    ...(options.outputs?.imagenet ? [idPart(options.outputs.imagenet)] : []),
  ].join('-');
  try {
    return await loadGraphBackbone(loaded, parsed.data, files.shards, { ...options, source, id });
  } catch (error) {
    throw unavailable(source, error, 'loading the TF.js graph model');
  }
}

/**
 * sha256 of a backbone's own bytes (its one file, or its model.json and weight shards): what a verdict about the
 * backbone is kept under. A URL is downloaded into the cache first, once, as `loadBackbone` would.
 */
export async function backboneContentHash(source: string, options: Pick<LoadBackboneOptions, 'cacheDir' | 'onDownload'>): Promise<string> {
  const format = singleFileFormat(source);
  try {
    const modelPath = /^https?:\/\//i.test(source) ? await downloadOnce(source, options, format) : await localModelPath(source);
    const hash = createHash('sha256');
    if (format) return hash.update(await fs.readFile(modelPath)).digest('hex');
    const { modelJsonBytes, shards } = await readModelFiles(modelPath);
    for (const bytes of [modelJsonBytes, ...shards]) hash.update(bytes);
    return hash.digest('hex');
  } catch (error) {
    throw unavailable(source, error);
  }
}

/**
 * Several backbones as one (an ensemble): their pooled features side by side in the given order, and one ImageNet
 * answer pooled from the classifiers of every part that has one (`poolImagenetProbabilities`). They see the same
 * pixels, so they must take the same input size. The parts stay owned by whoever loaded them.
 */
export function combineBackbones(parts: readonly Backbone[]): Backbone {
  const tf = tensorflow();
  const [first] = parts;
  if (!first) throw new Error('an ensemble needs at least one backbone');
  const odd = parts.find((part) => part.inputSize !== first.inputSize);
  if (odd) {
    throw new CatdogError(
      'backbone_mismatch',
      `ensemble backbones must take the same image size, but ${first.source} takes ${first.inputSize} px and ${odd.source} ${odd.inputSize} px`,
      400,
    );
  }
  const classifiers = parts.filter((part) => part.imagenet);
  const featureModel = ensembleTrunk(tf, parts, first.inputSize);
  const featureSize = parts.reduce((sum, part) => sum + part.featureSize, 0);
  const features = (rgb: Tensor4D): Tensor2D => tf.tidy(() => tf.concat(parts.map((part) => part.features(rgb)), 1));
  const pooledImagenet = (answers: Tensor2D[]): Tensor2D => {
    const pooled = poolImagenetProbabilities(answers);
    if (answers.length > 1) tf.dispose(answers);
    return pooled;
  };
  return {
    id: parts.map((part) => part.id).join('+'),
    source: parts.map((part) => part.source).join(' + '),
    inputSize: first.inputSize,
    featureShape: [featureSize],
    featureSize,
    parts: [...parts],
    features,
    ...(classifiers.length > 0 ? { imagenet: (rgb: Tensor4D) => pooledImagenet(classifiers.map((part) => part.imagenet!(rgb))) } : {}),
    featuresAndImagenet(rgb) {
      if (classifiers.length === 0) return { features: features(rgb) };
      const passes = parts.map((part) => (part.imagenet ? part.featuresAndImagenet(rgb) : { features: part.features(rgb) }));
      const joined = tf.concat(passes.map((pass) => pass.features), 1);
      tf.dispose(passes.map((pass) => pass.features));
      return { features: joined, imagenet: pooledImagenet(passes.flatMap((pass) => (pass.imagenet ? [pass.imagenet] : []))) };
    },
    ...(featureModel ? { layersModel: featureModel, featureModel } : {}),
    dispose: () => {},
  };
}

/** The parts' trunks side by side as one layers model; none when a part (a TF.js graph model) has no layers. */
function ensembleTrunk(tf: Tensorflow, parts: readonly Backbone[], inputSize: number): LayersModel | undefined {
  const trunks = parts.map((part) => part.featureModel);
  if (!trunks.every((trunk) => trunk !== undefined)) return undefined;
  const scaledPixels = tf.input({ shape: [inputSize, inputSize, 3], name: 'scaled_pixels' });
  const applied = trunks.map((trunk, index) => tf.model({ name: `backbone_${index + 1}`, inputs: trunk.inputs, outputs: trunk.outputs }).apply(scaledPixels) as SymbolicTensor);
  return tf.model({ name: 'ensemble', inputs: scaledPixels, outputs: tf.layers.concatenate({ name: 'ensemble_features' }).apply(applied) as SymbolicTensor });
}

/**
 * One ImageNet answer from several classifiers' probabilities (`[batch, classes]` each): their normalised geometric
 * mean, the softmax of their mean log-probability (log-linear pooling). A class is likely only where every
 * classifier finds it likely, so a photo that one classifier confidently sees as no cat or dog keeps a low cat-and-dog
 * mass even where another spreads its probability thinly. One classifier's answer is returned as it is.
 */
export function poolImagenetProbabilities(answers: readonly Tensor2D[]): Tensor2D {
  const [only, ...others] = answers;
  if (!only) throw new Error('pooling needs at least one ImageNet answer');
  if (others.length === 0) return only;
  const tf = tensorflow();
  // Float32 softmax rounds a probability far below the largest to 0; its log would be −∞ for every pool it enters.
  return tf.tidy(() => tf.softmax(tf.mean(tf.stack(answers.map((answer) => tf.log(tf.maximum(answer, SMALLEST_PROBABILITY)))), 0)) as Tensor2D);
}

const SMALLEST_PROBABILITY = 1e-30;

/** The backbone's pooled features as a network's input (a head on the frozen backbone). */
export function pooledFeatures(backbone: Backbone): NetworkInput {
  return {
    ...backbone,
    forward(rgb) {
      const { features, imagenet } = backbone.featuresAndImagenet(rgb);
      return { input: features, features, imagenet };
    },
    ...(backbone.featureModel ? { model: backbone.featureModel } : {}),
  };
}

/**
 * Runs an extractor over RGB HWC images (each `inputSize² × 3` bytes) in batches and returns one flat float
 * array per image, leaving no tensor behind.
 */
export async function extractFeatures(
  backbone: FeatureExtractor,
  images: Uint8Array[],
  batchSize = 32,
  onProgress?: (done: number, total: number) => void,
): Promise<Float32Array[]> {
  const features: Float32Array[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    const batch = images.slice(start, start + batchSize);
    const [batchFeatures] = await extractFeaturesOfBatch([backbone], batch, start);
    features.push(...batchFeatures!);
    onProgress?.(start + batch.length, images.length);
  }
  return features;
}

/**
 * Each extractor's features of one batch of images (all extractors take the same input size), from one input
 * tensor: an ensemble's parts or a photo's views need not copy the same pixels into TensorFlow once each.
 * `firstIndex` numbers the images in errors.
 */
export async function extractFeaturesOfBatch(extractors: readonly FeatureExtractor[], images: readonly Uint8Array[], firstIndex = 0): Promise<Float32Array[][]> {
  const { tf } = await initTensorflow();
  const [first] = extractors;
  if (!first) return [];
  const { inputSize } = first;
  const odd = extractors.find((extractor) => extractor.inputSize !== inputSize);
  if (odd) throw new Error(`extractors of one batch must take the same input size: ${first.id} takes ${inputSize} px, ${odd.id} ${odd.inputSize} px`);
  const pixelsPerImage = inputSize * inputSize * 3;
  const input = new Float32Array(images.length * pixelsPerImage);
  images.forEach((image, i) => {
    if (image.length !== pixelsPerImage) {
      throw new Error(`image ${firstIndex + i} has ${image.length} bytes; the backbone needs ${inputSize}×${inputSize} RGB (${pixelsPerImage})`);
    }
    input.set(image, i * pixelsPerImage);
  });
  const x = tf.tensor4d(input, [images.length, inputSize, inputSize, 3]);
  try {
    const result: Float32Array[][] = [];
    for (const extractor of extractors) {
      const output = tf.tidy(() => extractor.features(x));
      try {
        const values = await output.data<'float32'>();
        result.push(images.map((_, i) => values.slice(i * extractor.featureSize, (i + 1) * extractor.featureSize)));
      } finally {
        output.dispose();
      }
    }
    return result;
  } finally {
    x.dispose();
  }
}

/** What a backbone computes, found in the loaded model and in its BatchNorm-folded copy. */
interface BackboneOutputs {
  inputSize: number;
  featureSize: number;
  /** The loaded model's trunk, for export and ensembles. */
  featureModel: LayersModel;
  /** The folded copy's pooled features and, when the model has an ImageNet head, its probabilities. */
  inference: { features: SymbolicTensor; imagenet?: SymbolicTensor };
}

function backboneOutputs(tf: Tensorflow, { model, inference }: { model: LayersModel; inference: LayersModel }, source: string): BackboneOutputs {
  const inputShape = model.inputs[0]?.shape;
  const inputSize = inputShape?.[1];
  if (!inputShape || typeof inputSize !== 'number' || inputShape[2] !== inputSize || inputShape[3] !== 3) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} must take square RGB images, but its input shape is ${JSON.stringify(inputShape)}`,
      503,
    );
  }
  const { output: featureOutput, fromNestedTrunk } = findFeatureOutput(model, source);
  const featureSize = featureOutput.shape[featureOutput.shape.length - 1];
  if (typeof featureSize !== 'number') {
    throw new CatdogError('backbone_unavailable', `backbone ${source} has a feature layer of unknown size`, 503);
  }
  const imagenetOutput = model.outputs[0];
  // A model wrapping a trunk (Teachable Machine) carries its own unrelated head, whatever its size.
  const hasImagenetHead =
    !fromNestedTrunk && imagenetOutput?.shape.length === 2 && imagenetOutput.shape[1] === IMAGENET_CLASSES;
  return {
    inputSize,
    featureSize,
    featureModel: tf.model({ inputs: model.inputs, outputs: featureOutput }),
    inference: {
      features: findFeatureOutput(inference, source).output,
      ...(hasImagenetHead ? { imagenet: inference.outputs[0]! } : {}),
    },
  };
}

/**
 * The forward passes of `inference` (`model` with BatchNorm folded, or `model` itself) as one TensorFlow graph
 * when native TensorFlow runs it, else eagerly. The passes own `inference` when it is a copy.
 */
async function forwardPasses(
  { tf, backend }: LoadedTensorflow,
  { model, inference }: { model: LayersModel; inference: LayersModel },
  { inference: outputs }: BackboneOutputs,
  { cacheDir, id, logger }: { cacheDir: string; id: string; logger?: DebugLogger },
): Promise<ForwardPasses> {
  const disposeCopy = () => {
    if (inference !== model) inference.dispose();
  };
  const eager = (reason: string) => eagerPasses(tf, inference, outputs, reason, disposeCopy);
  if (backend !== 'tensorflow') return eager(`the ${backend} backend runs no TensorFlow graphs`);
  let graph: LayersGraph;
  try {
    graph = layersGraph(tf, inference, outputs, { inputScaling: { divisor: 127.5, subtrahend: 1 } });
  } catch (error) {
    return eager(error instanceof UnsupportedLayerError ? `its ${error.message}` : `building its TensorFlow graph failed: ${messageOf(error)}`);
  }
  let passes: ForwardPasses;
  try {
    passes = await loadGraphPasses(tf, graph, outputs.imagenet !== undefined, { cacheDir, id, logger });
  } catch (error) {
    return eager(`its TensorFlow graph could not be written or loaded: ${messageOf(error)}`);
  }
  // The session holds its own copy of the weights.
  disposeCopy();
  return passes;
}

/** Every pass through the tfjs layers of `inference`, op by op. */
function eagerPasses(tf: Tensorflow, inference: LayersModel, outputs: BackboneOutputs['inference'], reason: string, dispose: () => void): ForwardPasses {
  const scaled = (rgb: Tensor4D): Tensor4D => tf.sub(tf.div(rgb, 127.5), 1);
  const featurePass = tf.model({ inputs: inference.inputs, outputs: outputs.features });
  const features = (rgb: Tensor4D): Tensor2D => tf.tidy(() => featurePass.predict(scaled(rgb)) as Tensor2D);
  const bothPass = outputs.imagenet ? tf.model({ inputs: inference.inputs, outputs: [outputs.features, outputs.imagenet] }) : undefined;
  const imagenetPass = outputs.imagenet ? tf.model({ inputs: inference.inputs, outputs: outputs.imagenet }) : undefined;
  return {
    forwardPass: { kind: 'eager', reason },
    features,
    featuresAndImagenet: (rgb) => {
      if (!bothPass) return { features: features(rgb) };
      const [featureTensor, imagenetTensor] = tf.tidy(() => bothPass.predict(scaled(rgb)) as Tensor[]);
      return { features: featureTensor as Tensor2D, imagenet: imagenetTensor as Tensor2D };
    },
    ...(imagenetPass ? { imagenet: (rgb: Tensor4D) => tf.tidy(() => imagenetPass.predict(scaled(rgb)) as Tensor2D) } : {}),
    dispose,
  };
}

/** `model` as loaded (exported and fine-tuned as it is) with the passes every inference runs. */
function wrapBackbone(
  model: LayersModel,
  { inputSize, featureSize, featureModel }: BackboneOutputs,
  { forwardPass, features, featuresAndImagenet, imagenet, dispose }: ForwardPasses,
  source: string,
  id: string,
): Backbone {
  return {
    id,
    source,
    inputSize,
    featureShape: [featureSize],
    featureSize,
    features,
    featuresAndImagenet,
    ...(imagenet ? { imagenet } : {}),
    layersModel: model,
    featureModel,
    forwardPass,
    dispose: () => {
      dispose();
      model.dispose();
    },
  };
}

/**
 * The pooled feature vector: the last GlobalAveragePooling2D output (Keras MobileNets), else the output of a
 * nested trunk model at layer 0 (Teachable Machine exports, whose own head is discarded).
 */
function findFeatureOutput(model: LayersModel, source: string): { output: SymbolicTensor; fromNestedTrunk: boolean } {
  const pooling = model.layers.filter((layer) => layer.getClassName() === 'GlobalAveragePooling2D').at(-1);
  if (pooling && !Array.isArray(pooling.output)) return { output: pooling.output, fromNestedTrunk: false };
  const first = model.layers[0];
  if (first && 'layers' in first && !Array.isArray(first.output) && first.output.shape.length === 2) {
    return { output: first.output, fromNestedTrunk: true };
  }
  throw new CatdogError(
    'backbone_unavailable',
    `backbone ${source} has neither a GlobalAveragePooling2D layer nor a nested trunk model producing feature vectors`,
    503,
  );
}

/**
 * The model.json with its one image input (a `batch_input_shape` of rank 4, nested models included) set to
 * `size` × `size`; `changed` is false when that is already its size.
 */
function withInputSize(modelJson: ModelJson, size: number, source: string): { modelJson: ModelJson; changed: boolean } {
  const copy = structuredClone(modelJson);
  const inputs: unknown[][] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const shape = (node as { batch_input_shape?: unknown }).batch_input_shape;
    if (Array.isArray(shape) && shape.length === 4) inputs.push(shape);
    Object.values(node).forEach(visit);
  };
  visit(copy.modelTopology);
  const [input] = inputs;
  if (inputs.length !== 1 || !input) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} has ${inputs.length} image inputs in its model.json, so it cannot be fed ${size} px images; set training.backboneImageSize to null`,
      400,
      { source },
    );
  }
  if (input[1] === size && input[2] === size) return { modelJson, changed: false };
  input[1] = size;
  input[2] = size;
  return { modelJson: copy, changed: true };
}

interface ModelFiles {
  modelJsonBytes: Buffer;
  modelJson: ModelJson;
  shards: Buffer[];
}

/** A model kept in one file that the loader rebuilds as TF.js layers: TFLite, or a Keras 3 `.keras` or Keras `.h5` full model. */
type SingleFileFormat = 'tflite' | 'keras' | 'h5';

function singleFileFormat(source: string): SingleFileFormat | undefined {
  if (isTfliteSource(source)) return 'tflite';
  const pathname = source.split(/[?#]/)[0]!;
  if (/\.keras$/i.test(pathname)) return 'keras';
  return /\.(h5|hdf5)$/i.test(pathname) ? 'h5' : undefined;
}

/**
 * A single-file model as the files of the equivalent TF.js layers model, with the pixel scaling a TFLite file
 * states. The file's bytes stand for the model.json in the backbone's content id.
 */
async function rebuiltModelFiles(tf: Tensorflow, format: SingleFileFormat, bytes: Buffer, fileName: string): Promise<ModelFiles & { pixelMap?: PixelMap }> {
  const { model, pixelMap } = format === 'tflite' ? tfliteToLayers(tf, readTflite(bytes)) : { model: await importKerasModel(bytes, fileName), pixelMap: undefined };
  try {
    const serialized = await serializeModel(model);
    return {
      modelJsonBytes: bytes,
      modelJson: parseModelJson(serialized.modelJson),
      shards: [Buffer.from(serialized.weights)],
      ...(pixelMap ? { pixelMap } : {}),
    };
  } finally {
    model.dispose();
  }
}

async function readModelFiles(modelJsonPath: string): Promise<ModelFiles> {
  const modelJsonBytes = await fs.readFile(modelJsonPath);
  const modelJson = parseModelJson(modelJsonBytes);
  const folder = path.dirname(modelJsonPath);
  const shards = await Promise.all(shardPaths(modelJson).map((shard) => fs.readFile(path.join(folder, shard))));
  return { modelJsonBytes, modelJson, shards };
}

function memoryHandler({ modelJson, shards }: ModelFiles): io.IOHandler {
  return {
    load: async () => ({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
      // Shards concatenated in manifest order are the weight buffer, as tfjs's own http loader builds it.
      weightData: shards.map((shard) => toArrayBuffer(shard)),
      format: modelJson.format,
      generatedBy: modelJson.generatedBy,
      convertedBy: modelJson.convertedBy,
    }),
  };
}

function parseModelJson(bytes: Uint8Array): ModelJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new Error('model.json is not valid JSON');
  }
  const candidate = parsed as Partial<ModelJson> | null;
  if (
    typeof candidate?.modelTopology !== 'object' ||
    candidate.modelTopology === null ||
    !Array.isArray(candidate.weightsManifest)
  ) {
    throw new Error('model.json is not a TensorFlow.js layers or graph model (no modelTopology or weightsManifest)');
  }
  return candidate as ModelJson;
}

/** Shard paths from the manifest, refused when they would escape the model's folder. */
function shardPaths(modelJson: ModelJson): string[] {
  const paths = modelJson.weightsManifest.flatMap((group) => group.paths);
  for (const shard of paths) {
    if (path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..') || /^[a-z]+:/i.test(shard)) {
      throw new Error(`weight shard path ${JSON.stringify(shard)} is not relative to model.json`);
    }
  }
  return paths;
}

/**
 * The pixel map to fold: a TFLite file's own (checked against a declared scaling), else the declared scaling's.
 * `tag` names it in messages.
 */
function inputScaling(source: string, fromFile: PixelMap | undefined, declared: PixelScaling | undefined): { map: PixelMap; tag: string } {
  if (!fromFile) return { map: pixelMap(declared ?? NATIVE_SCALING), tag: declared ?? NATIVE_SCALING };
  if (declared && !samePixelMap(fromFile, pixelMap(declared))) {
    const [scale, offset] = [fromFile.scale[0]!, fromFile.offset[0]!].map((value) => Number(value.toPrecision(4)));
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} is declared to take pixels scaled ${declared} (training.backboneScaling or its catalogue entry), but its input quantization ` +
        `says ${scale}·x + ${offset}; remove the declaration, since a TFLite file states its own scaling`,
      400,
      { source },
    );
  }
  return { map: fromFile, tag: 'its input quantization' };
}

function cannotFold(source: string, scaling: string, reason: string): CatdogError {
  return new CatdogError(
    'backbone_unavailable',
    `backbone ${source} takes pixels scaled ${scaling} (training.backboneScaling, its catalogue entry or its TFLite input), but catdog cannot fold that ` +
      `scaling into it: ${reason}. Declare x/127.5-1 if the model takes that, or convert it with its scaling inside.`,
    400,
    { source },
  );
}

/** `x/255` → `x255`: a scaling as an id part, in the characters ids keep. */
const scalingTag = (scaling: PixelScaling): string => scaling.replace(/[^A-Za-z0-9.]/g, '');
/** A graph node's name as an id part: `model/pool/Mean:0` → `model_pool_Mean_0`. */
const idPart = (node: string): string => node.replace(/[^A-Za-z0-9.]/g, '_');

function backboneId(source: string, { modelJsonBytes, shards }: ModelFiles): string {
  const hash = createHash('sha256').update(modelJsonBytes);
  for (const shard of shards) hash.update(shard);
  const sourcePath = /^https?:\/\//i.test(source) ? new URL(source).pathname : source;
  const name = singleFileFormat(source)
    ? path.parse(sourcePath).name
    : path.basename(path.dirname(sourcePath.endsWith('.json') ? sourcePath : path.join(sourcePath, 'model.json')));
  return `${name.replace(/[^A-Za-z0-9._-]/g, '_') || 'backbone'}-${hash.digest('hex').slice(0, 12)}`;
}

/** A local model.json (or its folder), or a single-file model. */
async function localModelPath(source: string): Promise<string> {
  const file = source.startsWith('file://') ? fileURLToPath(source) : path.resolve(source);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat) throw new Error(`${file} does not exist`);
  return stat.isDirectory() ? path.join(file, 'model.json') : file;
}

/**
 * Downloads a single-file model (.tflite, .keras, .h5), or a model.json and its shards, into the cache unless already
 * there; returns the cached model.<format> or model.json.
 */
async function downloadOnce(url: string, { cacheDir, onDownload }: LoadBackboneOptions, singleFile: SingleFileFormat | undefined): Promise<string> {
  const backbonesDir = path.join(cacheDir, 'backbones');
  const finalDir = path.join(backbonesDir, createHash('sha256').update(url).digest('hex').slice(0, 16));
  const marker = singleFile ? `model.${singleFile}` : 'model.json';
  const cached = path.join(finalDir, marker);
  if (await exists(cached)) return cached;

  await fs.mkdir(backbonesDir, { recursive: true });
  const tempDir = path.join(backbonesDir, `.download-${randomUUID()}`);
  await fs.mkdir(tempDir);
  try {
    if (singleFile) {
      let received = 0;
      await fs.writeFile(path.join(tempDir, marker), await fetchBytes(url, (chunk) => onDownload?.((received += chunk), undefined)));
      return await publishDownload(tempDir, finalDir, cached);
    }
    const modelJsonBytes = await fetchBytes(url);
    const modelJson = parseModelJson(modelJsonBytes);
    const shards = shardPaths(modelJson);
    // The manifest's shapes give the download's size before any shard arrives.
    const totalBytes = weightBytes(modelJson.weightsManifest.flatMap((group) => group.weights));
    let received = modelJsonBytes.length;
    const total = totalBytes === undefined ? undefined : modelJsonBytes.length + totalBytes;
    onDownload?.(received, total);
    for (const shard of shards) {
      const bytes = await fetchBytes(new URL(shard, url).href, (chunk) => onDownload?.((received += chunk), total));
      const target = path.join(tempDir, shard);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, bytes);
    }
    // model.json last: its presence in the final folder is what marks a complete download.
    await fs.writeFile(path.join(tempDir, 'model.json'), modelJsonBytes);
    return await publishDownload(tempDir, finalDir, cached);
  } finally {
    await fs.rm(tempDir, { recursive: true, force: true });
  }
}

async function publishDownload(tempDir: string, finalDir: string, cached: string): Promise<string> {
  try {
    await fs.rename(tempDir, finalDir);
  } catch (error) {
    // Another process finished the same download first; its copy is as good as ours.
    if (!(await exists(cached))) throw error;
  }
  return cached;
}

async function fetchBytes(url: string, onChunk?: (bytes: number) => void): Promise<Uint8Array> {
  const response = await fetch(url).catch((error: unknown) => {
    // undici says only "fetch failed"; the cause (ECONNREFUSED, ENOTFOUND, …) is what a user can act on.
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new Error(`GET ${url} failed: ${cause}`);
  });
  if (!response.ok || !response.body) throw new Error(`GET ${url} answered HTTP ${response.status}`);
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) {
    chunks.push(chunk);
    onChunk?.(chunk.length);
  }
  return Buffer.concat(chunks);
}

function unavailable(source: string, error: unknown, step?: string): CatdogError {
  if (error instanceof CatdogError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  const kind = /^https?:\/\//i.test(source)
    ? 'tried to download it'
    : 'tried to read it as a local path or file:// URL to a TensorFlow.js layers or graph model.json, a TFLite .tflite file or a Keras .keras/.h5 file';
  return new CatdogError(
    'backbone_unavailable',
    `Cannot load the backbone ${source}: ${step ? `${step} failed` : kind}: ${reason}. ` +
      'Set training.backbone (CATDOG_BACKBONE_URL) to a catalogue name, or to a reachable model.json, .tflite, .keras or .h5 URL or path; offline, point training.backboneDir (CATDOG_BACKBONE_DIR) at local copies of catalogue backbones.',
    503,
    { source },
  );
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
