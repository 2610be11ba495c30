import type { LayersModel, SymbolicTensor, Tensor } from '@tensorflow/tfjs';
import type { PixelMap } from '../pixel-scaling.js';
import type { Tensorflow } from '../tf.js';
import type { TfliteGraph, TfliteOperator, TfliteTensor } from './model.js';

/** An op or a tensor that the rebuilt network cannot express; says which and why. */
export class UnsupportedTfliteError extends Error {}

export interface TfliteNetwork {
  /** Float32 layers with the dequantized weights; its input takes what the file's first layer takes. */
  model: LayersModel;
  /**
   * How the file turns RGB 0..255 pixels into that input, read from its input quantization and the constant
   * MUL/ADD ops right after it; undefined for a float input, whose scaling the file does not state, and when the
   * network was asked to take pixels and scale them inside.
   */
  pixelMap?: PixelMap;
}

/** An ImageNet classifier with a background class at index 0 (TF-slim's 1,001 classes): catdog uses the 1,000 after it. */
const SLIM_IMAGENET_CLASSES = 1001;

const ACTIVATIONS: Record<number, string | undefined> = { 0: 'linear', 1: 'relu', 3: 'relu6' };

/**
 * The first subgraph of a TFLite image model as a tfjs layers model: CONV_2D, DEPTHWISE_CONV_2D, ADD,
 * MEAN / AVERAGE_POOL_2D, FULLY_CONNECTED, RESHAPE, PAD, CONCATENATION and the activations become Keras layers
 * with float32 weights; (DE)QUANTIZE ops are the identity on real values. A 1,001-class output loses its
 * background class, so that ImageNet classes keep their usual 0..999 indices.
 */
export function tfliteToLayers(tf: Tensorflow, graph: TfliteGraph, { scaleInside = false }: { scaleInside?: boolean } = {}): TfliteNetwork {
  const [inputIndex] = graph.inputs;
  const inputTensor = inputIndex === undefined ? undefined : graph.tensors[inputIndex];
  if (!inputTensor || inputTensor.shape.length !== 4) throw new UnsupportedTfliteError('the model has no 4-D image input');
  const pixels = tf.input({ shape: inputTensor.shape.slice(1), name: 'pixels' });
  const symbolic = new Map<number, SymbolicTensor>();
  let pixelMap = quantizedPixelMap(inputTensor);
  // Constant scalings applied to the input before any layer are part of how the file scales pixels.
  const untouchedInput = new Set([inputIndex!]);
  let scaledPixels: SymbolicTensor | undefined;
  // Built when the first layer reads the input, once the scalings before it are all known.
  const inputOfLayers = (): SymbolicTensor => (scaledPixels ??= scaleInside && pixelMap ? pixelScalingLayer(tf, pixels, pixelMap) : pixels);
  const constant = (index: number) => graph.tensors[index]?.values;
  const tensorOf = (index: number, op: TfliteOperator): SymbolicTensor => {
    if (untouchedInput.has(index)) return inputOfLayers();
    const known = symbolic.get(index);
    if (!known) throw new UnsupportedTfliteError(`${op.op} reads tensor ${graph.tensors[index]?.name ?? index}, which no supported op computes`);
    return known;
  };

  graph.operators.forEach((op, index) => {
    const [first = -1, second = -1] = op.inputs;
    const output = op.outputs[0]!;
    const name = `${op.op.toLowerCase()}_${index}`;
    if (op.op === 'QUANTIZE' || op.op === 'DEQUANTIZE') {
      if (untouchedInput.has(first)) untouchedInput.add(output);
      else symbolic.set(output, tensorOf(first, op));
      return;
    }
    const scalar = constant(second);
    if ((op.op === 'MUL' || op.op === 'ADD') && untouchedInput.has(first) && !scaledPixels && scalar?.length === 1 && pixelMap) {
      const value = scalar[0]!;
      pixelMap = op.op === 'MUL'
        ? { ...pixelMap, scale: pixelMap.scale.map((s) => s * value), offset: pixelMap.offset.map((o) => o * value) }
        : { ...pixelMap, offset: pixelMap.offset.map((o) => o + value) };
      untouchedInput.add(output);
      return;
    }
    symbolic.set(output, layerFor(tf, graph, op, name, (i) => tensorOf(i, op)));
  });
  const outputs = graph.outputs.map((index) => {
    const tensor = untouchedInput.has(index) ? inputOfLayers() : symbolic.get(index);
    if (!tensor) throw new UnsupportedTfliteError(`output ${graph.tensors[index]?.name ?? index} is computed by no supported op`);
    return tensor;
  });
  return { model: tf.model({ inputs: pixels, outputs }), ...(pixelMap && !scaleInside ? { pixelMap } : {}) };
}

/**
 * `scale · x + offset` per channel as a 1×1 depthwise convolution: exact at the border too, where a scaling folded
 * into a padded convolution is not, and a layer that Keras and TensorFlow graphs both know.
 */
function pixelScalingLayer(tf: Tensorflow, pixels: SymbolicTensor, map: PixelMap): SymbolicTensor {
  if (map.from.some((from, channel) => from !== channel)) throw new UnsupportedTfliteError('the input scaling reorders channels');
  const layer = tf.layers.depthwiseConv2d({ name: 'pixel_scaling', kernelSize: 1, depthMultiplier: 1, useBias: true, trainable: false });
  return withWeights(tf, layer, pixels, [tf.tensor4d(map.scale, [1, 1, 3, 1]), tf.tensor1d(map.offset)]);
}

/** `real = scale · (q − zeroPoint)`, where an 8-bit input's q is the pixel (uint8) or the pixel − 128 (int8). */
function quantizedPixelMap(input: TfliteTensor): PixelMap | undefined {
  const { quantization, type } = input;
  if (!quantization || (type !== 'uint8' && type !== 'int8')) return undefined;
  const scale = quantization.scale[0]!;
  const zeroPoint = (quantization.zeroPoint[0] ?? 0) + (type === 'int8' ? 128 : 0);
  return { from: [0, 1, 2], scale: [scale, scale, scale], offset: [0, 1, 2].map(() => -scale * zeroPoint) };
}

function layerFor(tf: Tensorflow, graph: TfliteGraph, op: TfliteOperator, name: string, tensorOf: (index: number) => SymbolicTensor): SymbolicTensor {
  const tensor = (index: number) => graph.tensors[index]!;
  const weights = (index: number): TfliteTensor & { values: Float32Array } => {
    const found = graph.tensors[index];
    if (!found?.values) throw new UnsupportedTfliteError(`${op.op} ${name} has a non-constant weight tensor ${found?.name ?? index}`);
    return found as TfliteTensor & { values: Float32Array };
  };
  const options = op.options;
  const activation = (code: number) => {
    const kind = ACTIVATIONS[code];
    if (!kind) throw new UnsupportedTfliteError(`${op.op} ${name} has fused activation ${code}; catdog reads none, RELU and RELU6`);
    return kind as 'linear' | 'relu' | 'relu6';
  };
  const padding = (code: number) => (code === 0 ? 'same' : 'valid');
  const [first = -1, second = -1, third = -1] = op.inputs;
  const input = () => tensorOf(first);
  const outputShape = tensor(op.outputs[0]!).shape;

  switch (op.op) {
    case 'CONV_2D': {
      // Filter [out, h, w, in] → Keras [h, w, in, out]. Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 activation, 4/5 dilation w/h.
      const filter = weights(second);
      const [outChannels, height, width, inChannels] = filter.shape as [number, number, number, number];
      const keep = keptChannels(outChannels);
      const kernel = tf.tidy(() => tf.tensor4d(filter.values, [outChannels, height, width, inChannels]).transpose([1, 2, 3, 0]).slice([0, 0, 0, outChannels - keep], [height, width, inChannels, keep]));
      const layer = tf.layers.conv2d({
        name,
        filters: keep,
        kernelSize: [height, width],
        strides: [options?.int32(2, 1) ?? 1, options?.int32(1, 1) ?? 1],
        dilationRate: [options?.int32(5, 1) ?? 1, options?.int32(4, 1) ?? 1],
        padding: padding(options?.int8(0) ?? 0),
        activation: activation(options?.int8(3) ?? 0),
        useBias: true,
      });
      return withWeights(tf, layer, input(), [kernel, biasOf(tf, graph, third, outChannels, keep)]);
    }
    case 'DEPTHWISE_CONV_2D': {
      // Filter [1, h, w, in · multiplier] is Keras's [h, w, in, multiplier] in the same memory order.
      // DepthwiseConv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 depth_multiplier, 4 activation, 5/6 dilation w/h.
      const filter = weights(second);
      const [, height, width, channels] = filter.shape as [number, number, number, number];
      const inChannels = tensor(first).shape[3]!;
      const multiplier = channels / inChannels;
      const layer = tf.layers.depthwiseConv2d({
        name,
        kernelSize: [height, width],
        depthMultiplier: multiplier,
        strides: [options?.int32(2, 1) ?? 1, options?.int32(1, 1) ?? 1],
        dilationRate: [options?.int32(6, 1) ?? 1, options?.int32(5, 1) ?? 1],
        padding: padding(options?.int8(0) ?? 0),
        activation: activation(options?.int8(4) ?? 0),
        useBias: true,
      });
      return withWeights(tf, layer, input(), [tf.tensor4d(filter.values, [height, width, inChannels, multiplier]), biasOf(tf, graph, third, channels, channels)]);
    }
    case 'FULLY_CONNECTED': {
      // Weights [out, in] → Keras [in, out]. FullyConnectedOptions: 0 activation.
      const matrix = weights(second);
      const [outUnits, inUnits] = matrix.shape as [number, number];
      const keep = keptChannels(outUnits);
      const kernel = tf.tidy(() => tf.tensor2d(matrix.values, [outUnits, inUnits]).transpose().slice([0, outUnits - keep], [inUnits, keep]));
      const flat = input().shape.length > 2 ? (tf.layers.flatten({ name: `${name}_flatten` }).apply(input()) as SymbolicTensor) : input();
      const layer = tf.layers.dense({ name, units: keep, activation: activation(options?.int8(0) ?? 0), useBias: true });
      return withWeights(tf, layer, flat, [kernel, biasOf(tf, graph, third, outUnits, keep)]);
    }
    case 'ADD': {
      const operands = [first, second].map((index) => {
        if (graph.tensors[index]?.values) throw new UnsupportedTfliteError(`ADD ${name} adds a constant inside the network; catdog reads ADD of two computed tensors`);
        return tensorOf(index);
      });
      const sum = tf.layers.add({ name }).apply(operands) as SymbolicTensor;
      const fused = activation(options?.int8(0) ?? 0);
      return fused === 'linear' ? sum : (tf.layers.activation({ name: `${name}_${fused}`, activation: fused }).apply(sum) as SymbolicTensor);
    }
    case 'MEAN':
    case 'AVERAGE_POOL_2D': {
      const [, height, width] = tensor(first).shape as [number, number, number, number];
      const globalPool = op.op === 'MEAN'
        ? JSON.stringify(Array.from(weights(second).values)) === '[1,2]'
        : options?.int32(3) === width && options?.int32(4) === height;
      if (!globalPool) throw new UnsupportedTfliteError(`${op.op} ${name} does not average over the whole image; catdog reads global average pooling`);
      const pooled = tf.layers.globalAveragePooling2d({ name }).apply(input()) as SymbolicTensor;
      return outputShape.length === 4 ? (tf.layers.reshape({ name: `${name}_keep_dims`, targetShape: [1, 1, outputShape[3]!] }).apply(pooled) as SymbolicTensor) : pooled;
    }
    case 'RESHAPE':
    case 'SQUEEZE': {
      const inputSize = (input().shape.slice(1) as number[]).reduce((product, side) => product * side, 1);
      const target = outputShape.slice(1).map((side) => (side === SLIM_IMAGENET_CLASSES && inputSize === SLIM_IMAGENET_CLASSES - 1 ? side - 1 : side));
      return tf.layers.reshape({ name, targetShape: target }).apply(input()) as SymbolicTensor;
    }
    case 'SOFTMAX':
      return tf.layers.activation({ name, activation: 'softmax' }).apply(input()) as SymbolicTensor;
    case 'LOGISTIC':
      return tf.layers.activation({ name, activation: 'sigmoid' }).apply(input()) as SymbolicTensor;
    case 'RELU':
      return tf.layers.reLU({ name }).apply(input()) as SymbolicTensor;
    case 'RELU6':
      return tf.layers.reLU({ name, maxValue: 6 }).apply(input()) as SymbolicTensor;
    case 'PAD': {
      const [, top, bottom, left, right] = [0, ...Array.from(weights(second).values).slice(2, 6)] as number[];
      return tf.layers.zeroPadding2d({ name, padding: [[top!, bottom!], [left!, right!]] }).apply(input()) as SymbolicTensor;
    }
    case 'CONCATENATION': {
      // ConcatenationOptions: 0 axis.
      const axis = options?.int32(0) ?? -1;
      return tf.layers.concatenate({ name, axis }).apply(op.inputs.map(tensorOf)) as SymbolicTensor;
    }
    default:
      throw new UnsupportedTfliteError(`op ${op.op} (${name}) has no layer in catdog's TFLite reader`);
  }
}

/** How many output channels a layer keeps: all, except the background class of a 1,001-class classifier. */
const keptChannels = (channels: number): number => (channels === SLIM_IMAGENET_CLASSES ? channels - 1 : channels);

function biasOf(tf: Tensorflow, graph: TfliteGraph, index: number, channels: number, keep: number): Tensor {
  const values = graph.tensors[index]?.values ?? new Float32Array(channels);
  return tf.tensor1d(values.subarray(channels - keep));
}

function withWeights(tf: Tensorflow, layer: LayersModel['layers'][number], input: SymbolicTensor, weights: Tensor[]): SymbolicTensor {
  const output = layer.apply(input) as SymbolicTensor;
  layer.setWeights(weights);
  tf.dispose(weights);
  return output;
}
