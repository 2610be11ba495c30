import type { LayersModel, SymbolicTensor, Tensor } from '@tensorflow/tfjs';
import type { Tensorflow } from '../tf.js';
import { type AttrValue, type ConstTensor, DataType, type GraphNode, type SignatureTensor } from './saved-model.js';

type Layer = LayersModel['layers'][number];

/** A layer the graph builder has no TensorFlow ops for: the model keeps running eagerly. */
export class UnsupportedLayerError extends Error {
  constructor(
    readonly layerName: string,
    readonly className: string,
    detail: string,
  ) {
    super(`layer ${layerName} (${className}) ${detail}`);
    this.name = 'UnsupportedLayerError';
  }
}

export interface LayersGraph {
  nodes: GraphNode[];
  /** The float32 NHWC image input, before `inputScaling`. */
  input: SignatureTensor;
  outputs: Record<string, SignatureTensor>;
}

export interface LayersGraphOptions {
  /** Applied to the input before the model's first layer: `input / divisor − subtrahend`. */
  inputScaling: { divisor: number; subtrahend: number };
}

const FLOAT: AttrValue = { type: DataType.float32 };
const INPUT_NODE = 'pixels';

/** One inlining of a model's layers: the graph node each symbolic tensor became, and the prefix of new nodes. */
interface Scope {
  prefix: string;
  emitted: Map<SymbolicTensor, string>;
}

/**
 * The TensorFlow graph computing `outputs` of a layers model for inference, its weights as constants: one graph
 * that a TensorFlow session optimizes as a whole (Grappler fuses each convolution with its bias and activation),
 * where tfjs runs the layers op by op. Nested models are inlined. Throws UnsupportedLayerError for a layer type,
 * data format or activation it does not translate.
 */
export function layersGraph(
  tf: Tensorflow,
  model: LayersModel,
  outputs: Record<string, SymbolicTensor>,
  { inputScaling }: LayersGraphOptions,
): LayersGraph {
  const [modelInput, ...others] = model.inputs;
  if (!modelInput || others.length > 0) throw new Error(`the graph builder takes a model with one input, not ${model.inputs.length}`);
  const nodes: GraphNode[] = [];
  const add: NodeFactory['add'] = (name, op, inputs, attrs = {}) => {
    nodes.push({ name, op, inputs, attrs });
    return name;
  };
  const constant = (name: string, tensor: ConstTensor): string => add(name, 'Const', [], { dtype: { type: tensor.dtype }, value: { tensor } });
  const factory: NodeFactory = {
    add,
    floats: (name, values, shape) => constant(name, { dtype: DataType.float32, shape, values }),
    weight: (name, tensor) => constant(name, { dtype: DataType.float32, shape: tensor.shape, values: tensor.dataSync() as Float32Array }),
    ints: (name, values, shape = [values.length]) => constant(name, { dtype: DataType.int32, shape, values: Int32Array.from(values) }),
  };

  const imageShape = modelInput.shape.map((size) => size ?? -1);
  add(INPUT_NODE, 'Placeholder', [], { dtype: FLOAT, shape: { shape: imageShape } });
  const scalar = (name: string, value: number) => factory.floats(name, Float32Array.of(value), []);
  const divided = add('scaling/divide', 'RealDiv', [INPUT_NODE, scalar('scaling/divisor', inputScaling.divisor)], { T: FLOAT });
  const scaled = add('scaling/subtract', 'Sub', [divided, scalar('scaling/subtrahend', inputScaling.subtrahend)], { T: FLOAT });

  const emit = (symbolic: SymbolicTensor, scope: Scope): string => {
    const known = scope.emitted.get(symbolic);
    if (known) return known;
    const layer = symbolic.sourceLayer as Layer;
    const node = layer.inboundNodes[symbolic.nodeIndex];
    if (!node) throw new Error(`layer ${layer.name} has no call ${symbolic.nodeIndex}`);
    let output: string;
    if (layer instanceof tf.LayersModel) {
      // A nested model's first call is the one building it (its own inputs in, its own outputs out): its layers are
      // on the path already. A later call applies it to other tensors, which its inputs then stand for.
      const applied = node.inputTensors.some((input, i) => input !== layer.inputs[i]);
      const inner: Scope = applied
        ? { prefix: `${scope.prefix}${layer.name}_${symbolic.nodeIndex}/`, emitted: new Map(layer.inputs.map((input, i) => [input, emit(node.inputTensors[i]!, scope)])) }
        : scope;
      const innerOutput = layer.outputs[symbolic.tensorIndex];
      if (!innerOutput) throw new Error(`model ${layer.name} has no output ${symbolic.tensorIndex}`);
      output = emit(innerOutput, inner);
    } else if (layer.getClassName() === 'InputLayer') {
      throw new UnsupportedLayerError(layer.name, 'InputLayer', 'is a second input; the graph builder feeds only the model input');
    } else {
      const inputs = node.inputTensors.map((input) => emit(input, scope));
      const name = `${scope.prefix}${layer.name}${symbolic.nodeIndex > 0 ? `_${symbolic.nodeIndex}` : ''}`.replace(/[^A-Za-z0-9_./-]/g, '_');
      output = layerOps(layer, inputs, name, symbolic.shape, factory);
    }
    scope.emitted.set(symbolic, output);
    return output;
  };
  const topScope: Scope = { prefix: '', emitted: new Map([[modelInput, scaled]]) };
  const signatureOutputs = Object.fromEntries(
    Object.entries(outputs).map(([key, symbolic]) => [key, { tensor: `${emit(symbolic, topScope)}:0`, dtype: DataType.float32, shape: symbolic.shape.map((size) => size ?? -1) }]),
  );
  return { nodes, input: { tensor: `${INPUT_NODE}:0`, dtype: DataType.float32, shape: imageShape }, outputs: signatureOutputs };
}

/** Appends nodes to the graph; each returns the new node's name. */
interface NodeFactory {
  add(name: string, op: string, inputs: string[], attrs?: Record<string, AttrValue>): string;
  floats(name: string, values: Float32Array, shape: number[]): string;
  weight(name: string, tensor: Tensor): string;
  ints(name: string, values: number[], shape?: number[]): string;
}

interface ConvolutionConfig {
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number | number[];
  activation: string;
  useBias: boolean;
}

/** The ops of one layer call on `inputs`; returns the node holding its output. */
function layerOps(layer: Layer, inputs: string[], name: string, outputShape: (number | null)[], { add, floats, weight, ints }: NodeFactory): string {
  const className = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const unsupported = (detail: string) => new UnsupportedLayerError(layer.name, className, detail);
  const [input] = inputs as [string];
  const weights = layer.getWeights();
  const activation = (from: string, kind: unknown): string => {
    if (kind === 'linear') return from;
    const op = ({ relu: 'Relu', relu6: 'Relu6', softmax: 'Softmax' } as Record<string, string>)[String(kind)];
    if (!op) throw unsupported(`has activation ${String(kind)}, which the graph builder does not translate`);
    return add(`${name}/${kind}`, op, [from], { T: FLOAT });
  };
  const channelsLast = () => {
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') throw unsupported(`has data format ${String(config.dataFormat)}; only channelsLast is translated`);
  };

  switch (className) {
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const conv = config as unknown as ConvolutionConfig;
      channelsLast();
      if (conv.padding !== 'same' && conv.padding !== 'valid') throw unsupported(`has padding ${conv.padding}`);
      const dilation = typeof conv.dilationRate === 'number' ? [conv.dilationRate, conv.dilationRate] : conv.dilationRate;
      const [kernel, bias] = weights as [Tensor, Tensor | undefined];
      // Keras's depthwise kernel [h, w, in, multiplier] is TensorFlow's DepthwiseConv2dNative filter layout too.
      const convolved = add(name, className === 'Conv2D' ? 'Conv2D' : 'DepthwiseConv2dNative', [input, weight(`${name}/kernel`, kernel)], {
        T: FLOAT,
        strides: { ints: [1, ...conv.strides, 1] },
        padding: { string: conv.padding.toUpperCase() },
        data_format: { string: 'NHWC' },
        dilations: { ints: [1, ...dilation, 1] },
      });
      const biased = conv.useBias && bias ? add(`${name}/bias_add`, 'BiasAdd', [convolved, weight(`${name}/bias`, bias)], { T: FLOAT, data_format: { string: 'NHWC' } }) : convolved;
      return activation(biased, conv.activation);
    }
    case 'BatchNormalization': {
      const { axis, epsilon, center, scale } = config as { axis: number; epsilon: number; center: boolean; scale: boolean };
      if (outputShape.length !== 4 || (axis !== -1 && axis !== 3)) throw unsupported('normalizes something else than the channels of an NHWC tensor');
      const rest = [...weights];
      const gamma = scale ? rest.shift()! : undefined;
      const beta = center ? rest.shift()! : undefined;
      const [mean, variance] = rest as [Tensor, Tensor];
      const channels = mean.size;
      const perChannel = (suffix: string, tensor: Tensor | undefined, absent: number) =>
        tensor ? weight(`${name}/${suffix}`, tensor) : floats(`${name}/${suffix}`, new Float32Array(channels).fill(absent), [channels]);
      return add(name, 'FusedBatchNormV3', [input, perChannel('gamma', gamma, 1), perChannel('beta', beta, 0), weight(`${name}/moving_mean`, mean), weight(`${name}/moving_variance`, variance)], {
        T: FLOAT,
        U: FLOAT,
        epsilon: { float: epsilon },
        exponential_avg_factor: { float: 1 },
        data_format: { string: 'NHWC' },
        is_training: { bool: false },
      });
    }
    case 'Activation':
      return activation(input, config.activation);
    case 'ReLU': {
      const { maxValue } = config as { maxValue?: number | null };
      if (maxValue === undefined || maxValue === null) return add(name, 'Relu', [input], { T: FLOAT });
      if (maxValue === 6) return add(name, 'Relu6', [input], { T: FLOAT });
      throw unsupported(`has maxValue ${maxValue}; only none and 6 are translated`);
    }
    case 'ZeroPadding2D': {
      channelsLast();
      const [[top, bottom], [left, right]] = config.padding as [[number, number], [number, number]];
      return add(name, 'Pad', [input, ints(`${name}/paddings`, [0, 0, top, bottom, left, right, 0, 0], [4, 2])], { T: FLOAT, Tpaddings: { type: DataType.int32 } });
    }
    case 'GlobalAveragePooling2D':
      channelsLast();
      if (config.keepDims === true) throw unsupported('keeps the pooled dimensions');
      return add(name, 'Mean', [input, ints(`${name}/axes`, [1, 2])], { T: FLOAT, Tidx: { type: DataType.int32 }, keep_dims: { bool: false } });
    case 'Reshape': {
      const shape = outputShape.map((size) => size ?? -1);
      if (shape.filter((size) => size === -1).length > 1) throw unsupported(`has an output shape with more than one unknown size (${JSON.stringify(outputShape)})`);
      return add(name, 'Reshape', [input, ints(`${name}/shape`, shape)], { T: FLOAT, Tshape: { type: DataType.int32 } });
    }
    case 'Dropout':
      // Dropout is the identity at inference.
      return input;
    case 'Add':
      return add(name, 'AddN', inputs, { T: FLOAT, N: { int: inputs.length } });
    default:
      throw unsupported('has no TensorFlow graph translation');
  }
}
