import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs';
import type { Tensorflow } from '../tf.js';
import { UnsupportedLayerError } from './from-layers.js';
import { adam as adamSteps, type AdamSettings, FLOAT, graphBuilder, INT } from './graph-builder.js';
import { DataType, type GraphNode, type Signature, type SignatureTensor } from './saved-model.js';

type Layer = LayersModel['layers'][number];
type LayerVariable = LayersModel['weights'][number];

export type { AdamSettings } from './graph-builder.js';

/** A Dropout layer's mask, an input of every step: `floor(uniform[0, 1) + 1 − rate) / (1 − rate)`, [batch, units]. */
export interface DropoutMask {
  /** The step signature's input key. */
  key: string;
  rate: number;
  /** The layer, whose seed each step's mask is drawn with (`takeDropoutSeed`). */
  layer: object;
  units: number;
}

export type TrainingSignature = 'assign' | 'step' | 'read' | 'load' | 'resident_step';

/**
 * A model's training step as one TensorFlow graph holding the weights and Adam's moments as resource variables,
 * run through three signatures of one session:
 * - `assign`: `weight_<i>` in (every weight, in `model.weights` order), sets the weights and resets Adam;
 * - `step`: `x`, `y` ([n, 1] labels) and the dropout masks in, `sums` out ([total loss × n, correct answers], the
 *   loss as tfjs-layers' `trainOnBatch` reports it: mean binary cross-entropy plus the L2 penalties) after one Adam
 *   update of every trainable weight;
 * - `read`: `weight_<i>` out;
 * - `load`: `examples_x` and `examples_y` in (every example of a split and its [n, 1] labels), kept in the session;
 * - `resident_step`: `rows` (int32 row indices of the loaded examples) and the dropout masks in, `sums` out: `step`
 *   on those rows, so a batch of resident examples crosses into the session as its indices only.
 */
export interface TrainingGraph {
  nodes: GraphNode[];
  signatures: Record<TrainingSignature, Signature>;
  dropouts: DropoutMask[];
  /** Per weight (`model.weights` order), the node holding d loss / d weight for the step's batch; undefined for a frozen weight. */
  gradients: (string | undefined)[];
}

const X = 'x';
const Y = 'y';
const ROWS = 'rows';

/** The graph nodes of one layer call, and how to carry a gradient back through it. */
interface LayerCall {
  inputs: string[];
  output: string;
  /** Whether a trainable weight lies on this call or before it, i.e. whether its output needs a gradient. */
  needsGradient: boolean;
  inputsNeedGradient: boolean[];
  /** Given d loss / d output: d loss / d each input that needs one, and adds its weights' gradients. */
  backward(dOutput: string): (string | undefined)[];
}

/**
 * Builds the training graph of a model ending in one sigmoid unit = P(dog), with tfjs-layers' training semantics:
 * binary cross-entropy on P(dog) clipped to [ε, 1 − ε], its gradient in closed form as `binaryCrossentropyLoss`
 * has it, dropout masks as tfjs draws them, L2 kernel penalties, BatchNormalization's moving statistics, and tfjs's
 * Adam. Layers: Dense, Conv2D and DepthwiseConv2D (linear, ReLU, ReLU6, sigmoid; softmax where no gradient passes),
 * BatchNormalization (trainable: training mode; frozen: inference mode, Keras's rule that fine-tuning applies),
 * MaxPooling2D, GlobalAveragePooling2D, ZeroPadding2D, Flatten, Rescaling, Dropout, Activation, ReLU (uncapped or
 * capped at 6), Concatenate (where no gradient passes), and a nested model called once (fine-tuning's head), inlined.
 * Throws UnsupportedLayerError for anything else; the model then trains eagerly.
 */
export function trainingGraph(tf: Tensorflow, model: LayersModel, adam: AdamSettings): TrainingGraph {
  const [modelInput, ...otherInputs] = model.inputs;
  const [modelOutput, ...otherOutputs] = model.outputs;
  if (!modelInput || otherInputs.length > 0 || !modelOutput || otherOutputs.length > 0) {
    throw new UnsupportedLayerError(model.name, model.getClassName(), 'has more than one input or output');
  }
  if (modelOutput.shape.length !== 2 || modelOutput.shape[1] !== 1) {
    throw new UnsupportedLayerError(model.name, model.getClassName(), `outputs ${JSON.stringify(modelOutput.shape)}, not one P(dog) per example`);
  }
  const graph = graphBuilder();
  const { nodes, add, scalar, ints, mul, sub, addV2, div, unary, sum, variable, assign } = graph;

  // Variables: every weight (trainable or not), and Adam's moments of the trainable ones.
  const weights = model.weights;
  const trainable = new Set<LayerVariable>(model.trainableWeights);
  const weightIndex = new Map<LayerVariable, number>(weights.map((weight, i) => [weight, i]));
  const weightVariables = weights.map((weight, i) => variable(`weights/${i}`, weight.shape.map((size) => size ?? -1)));
  const initial = weights.map((weight, i) => add(`initial/${i}`, 'Placeholder', [], { dtype: FLOAT, shape: { shape: weight.shape.map((size) => size ?? -1) } }));
  const weightAssignments = weightVariables.map((variable, i) => assign(`assign/weights/${i}`, variable.handle, initial[i]!));

  // Forward pass, recording each layer call for the backward pass.
  const inputShape = modelInput.shape.map((size) => size ?? -1);
  // A batch is fed (`step`: x and y), or gathered by row from the examples resident in the session (`resident_step`:
  // x and y left unfed take their defaults, and a fed x or y cuts off the gather).
  const residentX = variable('examples/x', inputShape);
  const residentY = variable('examples/y', [-1, 1]);
  const examplesX = add('examples_x', 'Placeholder', [], { dtype: FLOAT, shape: { shape: inputShape } });
  const examplesY = add('examples_y', 'Placeholder', [], { dtype: FLOAT, shape: { shape: [-1, 1] } });
  const examplesLoaded = add('examples_loaded', 'Identity', [scalar('examples/done', 1), `^${assign('examples/assign_x', residentX.handle, examplesX)}`, `^${assign('examples/assign_y', residentY.handle, examplesY)}`], { T: FLOAT });
  const rows = add(ROWS, 'Placeholder', [], { dtype: INT, shape: { shape: [-1] } });
  const gathered = (name: string, resident: { handle: string }) =>
    add(name, 'ResourceGather', [resident.handle, rows], { dtype: FLOAT, Tindices: INT, batch_dims: { int: 0 }, validate_indices: { bool: true } });
  const x = add(X, 'PlaceholderWithDefault', [gathered('examples/x_rows', residentX)], { dtype: FLOAT, shape: { shape: inputShape } });
  const y = add(Y, 'PlaceholderWithDefault', [gathered('examples/y_rows', residentY)], { dtype: FLOAT, shape: { shape: [-1, 1] } });
  const calls: LayerCall[] = [];
  const weightGradients = new Map<number, string[]>();
  const addWeightGradient = (weight: LayerVariable, gradient: string) => {
    const index = weightIndex.get(weight)!;
    weightGradients.set(index, [...(weightGradients.get(index) ?? []), gradient]);
  };
  const regularizationLosses: string[] = [];
  /** Assignments of BatchNormalization's moving statistics, which a training step makes beside Adam's. */
  const statisticsUpdates: string[] = [];
  const dropouts: DropoutMask[] = [];
  const emitted = new Map<SymbolicTensor, { node: string; needsGradient: boolean }>([[modelInput, { node: x, needsGradient: false }]]);

  /** Models nested as layers (fine-tuning's head), inlined: their layers' nodes are named under the model's name. */
  const inlined = new Set<LayersModel>();
  const emit = (symbolic: SymbolicTensor, scope = ''): { node: string; needsGradient: boolean } => {
    const known = emitted.get(symbolic);
    if (known) return known;
    const layer = symbolic.sourceLayer as Layer;
    const inbound = layer.inboundNodes[symbolic.nodeIndex];
    if (!inbound) throw new Error(`layer ${layer.name} has no call ${symbolic.nodeIndex}`);
    const inputs = inbound.inputTensors.map((input) => emit(input, scope));
    if (layer instanceof tf.LayersModel) {
      const [nestedInput, ...otherNestedInputs] = layer.inputs;
      const [nestedOutput, ...otherNestedOutputs] = layer.outputs;
      // A nested model's own tensors stand for every call of it: inlining a second call would reuse the first's nodes.
      if (inlined.has(layer) || !nestedInput || otherNestedInputs.length > 0 || !nestedOutput || otherNestedOutputs.length > 0) {
        throw new UnsupportedLayerError(layer.name, layer.getClassName(), 'is a nested model called more than once or with more than one input or output');
      }
      inlined.add(layer);
      emitted.set(nestedInput, inputs[0]!);
      const result = emit(nestedOutput, `${scope}${layer.name}/`);
      emitted.set(symbolic, result);
      return result;
    }
    const name = `${scope}${layer.name}${symbolic.nodeIndex > 0 ? `_${symbolic.nodeIndex}` : ''}`.replace(/[^A-Za-z0-9_./-]/g, '_');
    const inputsNeedGradient = inputs.map((input) => input.needsGradient);
    const ownTrainable = layer.weights.some((weight) => trainable.has(weight));
    const call = layerCall(layer, inputs.map((input) => input.node), inbound.inputTensors[0]!.shape, symbolic.shape, inputsNeedGradient, name);
    const result = { node: call.output, needsGradient: ownTrainable || inputsNeedGradient.some(Boolean) };
    calls.push({ ...call, needsGradient: result.needsGradient, inputsNeedGradient });
    emitted.set(symbolic, result);
    return result;
  };

  const layerCall = (layer: Layer, inputs: string[], inputShape: (number | null)[], outputShape: (number | null)[], inputsNeedGradient: boolean[], name: string): Omit<LayerCall, 'needsGradient' | 'inputsNeedGradient'> => {
    const className = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    const unsupported = (detail: string) => new UnsupportedLayerError(layer.name, className, detail);
    const [input] = inputs as [string];
    const inputRank = inputShape.length;
    const outputRank = outputShape.length;
    const activation = (from: string, kind: unknown): { output: string; gradient(dOutput: string): string } => {
      switch (kind) {
        case 'linear':
          return { output: from, gradient: (dOutput) => dOutput };
        case 'relu': {
          const output = unary(`${name}/relu`, 'Relu', from);
          return { output, gradient: (dOutput) => add(`${name}/relu_grad`, 'ReluGrad', [dOutput, output], { T: FLOAT }) };
        }
        case 'relu6': {
          // TensorFlow's Relu6Grad passes the gradient where 0 < x < 6, tfjs's where 0 < x ≤ 6: they differ only at exactly 6.
          const output = unary(`${name}/relu6`, 'Relu6', from);
          return { output, gradient: (dOutput) => add(`${name}/relu6_grad`, 'Relu6Grad', [dOutput, from], { T: FLOAT }) };
        }
        case 'sigmoid': {
          const output = unary(`${name}/sigmoid`, 'Sigmoid', from);
          return { output, gradient: (dOutput) => add(`${name}/sigmoid_grad`, 'SigmoidGrad', [output, dOutput], { T: FLOAT }) };
        }
        case 'softmax': {
          const output = unary(`${name}/softmax`, 'Softmax', from);
          return {
            output,
            gradient: () => {
              throw unsupported('passes a gradient through softmax, which the training graph does not differentiate');
            },
          };
        }
        default:
          throw unsupported(`has activation ${String(kind)}, which the training graph does not translate`);
      }
    };
    /**
     * Dense and Conv2D: the kernel applied by `apply`, then the bias and the activation, with an optional L2 penalty
     * on the kernel; `kernelGradient` and `inputGradient` take d loss / d the pre-activation.
     */
    const withKernel = (
      apply: (kernel: string) => string,
      kernelGradient: (dBiased: string) => string,
      inputGradient: (dBiased: string, kernel: string) => string,
    ): Omit<LayerCall, 'needsGradient' | 'inputsNeedGradient'> => {
      const { activation: kind, useBias, biasRegularizer, activityRegularizer, biasConstraint } = config;
      // DepthwiseConv2D names its kernel's regularizer and constraint after its depthwise kernel.
      const kernelRegularizer = config.kernelRegularizer ?? config.depthwiseRegularizer;
      const kernelConstraint = config.kernelConstraint ?? config.depthwiseConstraint;
      if (biasRegularizer || activityRegularizer || kernelConstraint || biasConstraint) throw unsupported('has a bias or activity regularizer or a constraint');
      const [kernel, bias] = layer.weights as [LayerVariable, LayerVariable | undefined];
      const kernelValue = weightVariables[weightIndex.get(kernel)!]!.read;
      const withBias = useBias === true && bias !== undefined;
      const applied = apply(kernelValue);
      const biased = withBias ? add(`${name}/bias_add`, 'BiasAdd', [applied, weightVariables[weightIndex.get(bias)!]!.read], { T: FLOAT, data_format: { string: 'NHWC' } }) : applied;
      const activated = activation(biased, kind);
      const l2 = kernelRegularizer ? l2Factor(kernelRegularizer, unsupported) : 0;
      if (l2 > 0 && trainable.has(kernel)) {
        const squared = mul(`${name}/l2_scaled`, scalar(`${name}/l2`, l2), unary(`${name}/kernel_squared`, 'Square', kernelValue));
        regularizationLosses.push(sum(`${name}/l2_penalty`, squared, kernel.shape.map((_, axis) => axis)));
      }
      return {
        inputs,
        output: activated.output,
        backward: (dOutput) => {
          const dBiased = activated.gradient(dOutput);
          if (trainable.has(kernel)) {
            addWeightGradient(kernel, kernelGradient(dBiased));
            if (l2 > 0) addWeightGradient(kernel, mul(`${name}/l2_grad`, kernelValue, scalar(`${name}/l2_twice`, 2 * l2)));
          }
          if (withBias && trainable.has(bias)) addWeightGradient(bias, add(`${name}/bias_grad`, 'BiasAddGrad', [dBiased], { T: FLOAT, data_format: { string: 'NHWC' } }));
          return [inputsNeedGradient[0] ? inputGradient(dBiased, kernelValue) : undefined];
        },
      };
    };
    switch (className) {
      case 'Dense':
        if (inputRank !== 2) throw unsupported('multiplies something else than a [batch, features] tensor');
        return withKernel(
          (kernel) => add(`${name}/matmul`, 'MatMul', [input, kernel], { T: FLOAT, transpose_a: { bool: false }, transpose_b: { bool: false } }),
          (dBiased) => add(`${name}/kernel_grad`, 'MatMul', [input, dBiased], { T: FLOAT, transpose_a: { bool: true }, transpose_b: { bool: false } }),
          (dBiased, kernel) => add(`${name}/input_grad`, 'MatMul', [dBiased, kernel], { T: FLOAT, transpose_a: { bool: false }, transpose_b: { bool: true } }),
        );
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const { strides, padding, dataFormat, dilationRate, depthMultiplier } = config as { strides: number[]; padding: string; dataFormat: string; dilationRate: number | number[]; depthMultiplier?: number };
        if (dataFormat !== 'channelsLast') throw unsupported(`has data format ${dataFormat}`);
        if (padding !== 'same' && padding !== 'valid') throw unsupported(`has padding ${padding}`);
        const dilation = typeof dilationRate === 'number' ? [dilationRate, dilationRate] : dilationRate;
        const convolution = { T: FLOAT, strides: { ints: [1, ...strides, 1] }, padding: { string: padding.toUpperCase() }, data_format: { string: 'NHWC' }, dilations: { ints: [1, ...dilation, 1] } };
        const op = className === 'Conv2D' ? 'Conv2D' : 'DepthwiseConv2dNative';
        if (op !== 'Conv2D' && typeof depthMultiplier !== 'number') throw unsupported('has no depth multiplier');
        const kernelShape = layer.weights[0]!.shape as number[];
        return withKernel(
          (kernel) => add(`${name}/conv`, op, [input, kernel], convolution),
          (dBiased) => add(`${name}/kernel_grad`, `${op}BackpropFilter`, [input, ints(`${name}/kernel_shape`, kernelShape), dBiased], convolution),
          (dBiased, kernel) => add(`${name}/input_grad`, `${op}BackpropInput`, [add(`${name}/input_shape`, 'Shape', [input], { T: FLOAT, out_type: INT }), kernel, dBiased], convolution),
        );
      }
      case 'BatchNormalization': {
        const { axis, momentum, epsilon, center, scale, betaRegularizer, gammaRegularizer, betaConstraint, gammaConstraint } = config as Record<string, unknown> & { axis: number; momentum: number; epsilon: number };
        if (outputRank !== 4 || (axis !== -1 && axis !== 3)) throw unsupported('normalizes something else than the channels of an NHWC tensor');
        if (center !== true || scale !== true) throw unsupported('has no offset or no scale');
        if (betaRegularizer || gammaRegularizer || betaConstraint || gammaConstraint) throw unsupported('has a regularizer or a constraint');
        const [gamma, beta, movingMean, movingVariance] = layer.weights as [LayerVariable, LayerVariable, LayerVariable, LayerVariable];
        const variableOf = (weight: LayerVariable) => weightVariables[weightIndex.get(weight)!]!;
        if (!trainable.has(gamma) && !trainable.has(beta)) {
          // Frozen, Keras's rule that fine-tuning applies (fine-tune.ts): inference mode, the moving statistics
          // normalize and stay as they are, so the layer is x × scale + shift per channel.
          const scaleOf = mul(`${name}/scale`, variableOf(gamma).read, unary(`${name}/inverse_deviation`, 'Rsqrt', addV2(`${name}/variance_epsilon`, variableOf(movingVariance).read, scalar(`${name}/epsilon`, epsilon))));
          const shift = sub(`${name}/shift`, variableOf(beta).read, mul(`${name}/scaled_mean`, variableOf(movingMean).read, scaleOf));
          const output = addV2(name, mul(`${name}/scaled`, input, scaleOf), shift);
          return { inputs, output, backward: (dOutput) => [mul(`${name}/grad`, dOutput, scaleOf)] };
        }
        if (!trainable.has(gamma) || !trainable.has(beta)) throw unsupported('trains only one of its scale and offset');
        const batchNorm = { T: FLOAT, U: FLOAT, epsilon: { float: epsilon }, data_format: { string: 'NHWC' }, is_training: { bool: true } };
        const empty = add(`${name}/no_statistics`, 'Const', [], { dtype: FLOAT, value: { tensor: { dtype: DataType.float32, shape: [0], values: new Float32Array(0) } } });
        // Training mode: normalized by the batch's own mean and variance; outputs 1 and 2 are those statistics
        // (the variance Bessel-corrected), 3 and 4 what the gradient needs.
        const normalized = add(name, 'FusedBatchNormV3', [input, variableOf(gamma).read, variableOf(beta).read, empty, empty], { ...batchNorm, exponential_avg_factor: { float: 1 } });
        // tfjs-layers moves the statistics toward the batch's mean and biased variance (tf.moments):
        // moving − (moving − batch) × (1 − momentum).
        const perChannel = add(`${name}/per_channel`, 'Cast', [add(`${name}/size`, 'Size', [input], { T: FLOAT, out_type: INT })], { SrcT: INT, DstT: FLOAT, Truncate: { bool: false } });
        const examples = div(`${name}/examples`, perChannel, scalar(`${name}/channels`, movingMean.shape[0] as number));
        const biasedVariance = mul(`${name}/biased_variance`, `${normalized}:2`, div(`${name}/bessel_inverse`, sub(`${name}/examples_minus_one`, examples, scalar(`${name}/one`, 1)), examples));
        const decay = scalar(`${name}/decay`, 1 - momentum);
        for (const [suffix, moving, batch] of [['mean', movingMean, `${normalized}:1`], ['variance', movingVariance, biasedVariance]] as const) {
          const current = variableOf(moving);
          const moved = sub(`${name}/moving_${suffix}`, current.read, mul(`${name}/moving_${suffix}_delta`, sub(`${name}/moving_${suffix}_gap`, current.read, batch), decay));
          statisticsUpdates.push(assign(`${name}/assign_moving_${suffix}`, current.handle, moved));
        }
        return {
          inputs,
          output: `${normalized}:0`,
          backward: (dOutput) => {
            const gradient = add(`${name}/grad`, 'FusedBatchNormGradV3', [dOutput, input, variableOf(gamma).read, `${normalized}:3`, `${normalized}:4`, `${normalized}:5`], batchNorm);
            if (trainable.has(gamma)) addWeightGradient(gamma, `${gradient}:1`);
            if (trainable.has(beta)) addWeightGradient(beta, `${gradient}:2`);
            return [`${gradient}:0`];
          },
        };
      }
      case 'MaxPooling2D': {
        const { poolSize, strides, padding, dataFormat } = config as { poolSize: number[]; strides: number[] | null; padding: string; dataFormat: string };
        if (dataFormat !== 'channelsLast') throw unsupported(`has data format ${dataFormat}`);
        const pooling = { T: FLOAT, ksize: { ints: [1, ...poolSize, 1] }, strides: { ints: [1, ...(strides ?? poolSize), 1] }, padding: { string: padding.toUpperCase() }, data_format: { string: 'NHWC' } };
        const output = add(name, 'MaxPool', [input], pooling);
        return { inputs, output, backward: (dOutput) => [add(`${name}/grad`, 'MaxPoolGrad', [input, output, dOutput], pooling)] };
      }
      case 'ZeroPadding2D': {
        const { padding, dataFormat } = config as { padding: [[number, number], [number, number]]; dataFormat: string };
        if (dataFormat !== 'channelsLast') throw unsupported(`has data format ${dataFormat}`);
        const [[top, bottom], [left, right]] = padding;
        const output = add(name, 'Pad', [input, ints(`${name}/paddings`, [0, 0, top, bottom, left, right, 0, 0], [4, 2])], { T: FLOAT, Tpaddings: INT });
        return {
          inputs,
          output,
          backward: (dOutput) => [
            add(`${name}/grad`, 'Slice', [dOutput, ints(`${name}/grad_begin`, [0, top, left, 0]), add(`${name}/input_shape`, 'Shape', [input], { T: FLOAT, out_type: INT })], { T: FLOAT, Index: INT }),
          ],
        };
      }
      case 'GlobalAveragePooling2D': {
        const { dataFormat } = config as { dataFormat: string };
        const [, height, width, channels] = inputShape;
        if (dataFormat !== 'channelsLast' || typeof height !== 'number' || typeof width !== 'number' || typeof channels !== 'number') {
          throw unsupported('pools something else than an NHWC tensor of known height, width and channels');
        }
        const output = add(name, 'Mean', [input, ints(`${name}/axes`, [1, 2])], { T: FLOAT, Tidx: INT, keep_dims: { bool: false } });
        return {
          inputs,
          output,
          backward: (dOutput) => {
            const perPixel = mul(`${name}/grad_share`, add(`${name}/grad_reshaped`, 'Reshape', [dOutput, ints(`${name}/grad_shape`, [-1, 1, 1, channels])], { T: FLOAT, Tshape: INT }), scalar(`${name}/grad_pixels`, 1 / (height * width)));
            return [add(`${name}/grad`, 'BroadcastTo', [perPixel, add(`${name}/input_shape`, 'Shape', [input], { T: FLOAT, out_type: INT })], { T: FLOAT, Tidx: INT })];
          },
        };
      }
      case 'ReLU': {
        const { maxValue } = config as { maxValue?: number | null };
        if (maxValue !== null && maxValue !== undefined && maxValue !== 6) throw unsupported(`caps at ${maxValue}, which the training graph does not translate (only 6)`);
        const activated = activation(input, maxValue === 6 ? 'relu6' : 'relu');
        return { inputs, output: activated.output, backward: (dOutput) => [activated.gradient(dOutput)] };
      }
      case 'Flatten': {
        const output = add(name, 'Reshape', [input, ints(`${name}/shape`, [-1, outputShape[1] as number])], { T: FLOAT, Tshape: INT });
        return {
          inputs,
          output,
          backward: (dOutput) => [add(`${name}/grad`, 'Reshape', [dOutput, add(`${name}/input_shape`, 'Shape', [input], { T: FLOAT, out_type: INT })], { T: FLOAT, Tshape: INT })],
        };
      }
      case 'Rescaling': {
        const { scale: factor, offset } = config as { scale: number; offset: number };
        const scaled = mul(`${name}/scale`, input, scalar(`${name}/factor`, factor));
        const output = offset === 0 ? scaled : addV2(`${name}/offset`, scaled, scalar(`${name}/offset_value`, offset));
        return { inputs, output, backward: (dOutput) => [mul(`${name}/grad`, dOutput, scalar(`${name}/grad_factor`, factor))] };
      }
      case 'Dropout': {
        const { rate, noiseShape } = config as { rate: number; noiseShape?: unknown };
        if (noiseShape) throw unsupported('has a noise shape');
        if (rate === 0) return { inputs, output: input, backward: (dOutput) => [dOutput] };
        const units = layer.outputShape.at(-1);
        if (layer.outputShape.length !== 2 || typeof units !== 'number') throw unsupported('drops out something else than a [batch, units] tensor');
        const key = `dropout_${dropouts.length}`;
        dropouts.push({ key, rate, layer, units });
        const mask = add(key, 'Placeholder', [], { dtype: FLOAT, shape: { shape: [-1, units] } });
        return { inputs, output: mul(name, input, mask), backward: (dOutput) => [mul(`${name}/grad`, dOutput, mask)] };
      }
      case 'Activation': {
        const activated = activation(input, config.activation);
        return { inputs, output: activated.output, backward: (dOutput) => [activated.gradient(dOutput)] };
      }
      case 'Concatenate': {
        const axis = config.axis as number;
        if (axis !== -1 && axis !== layer.outputShape.length - 1) throw unsupported('joins along another axis than the last');
        if (inputsNeedGradient.some(Boolean)) throw unsupported('passes a gradient back into its inputs, which the training graph does not split');
        const output = add(name, 'ConcatV2', [...inputs, ints(`${name}/axis`, [-1], [])], { T: FLOAT, N: { int: inputs.length }, Tidx: INT });
        return { inputs, output, backward: () => inputs.map(() => undefined) };
      }
      default:
        throw unsupported('has no training graph translation');
    }
  };

  const pDog = emit(modelOutput).node;

  // Binary cross-entropy as tfjs-layers computes it (clip, logit, sigmoid cross-entropy), summed over the batch.
  const epsilon = tf.backend().epsilon();
  const clipped = add('loss/clipped', 'ClipByValue', [pDog, scalar('loss/epsilon', epsilon), scalar('loss/one_minus_epsilon', 1 - epsilon)], { T: FLOAT });
  const one = scalar('loss/one', 1);
  const logit = unary('loss/logit', 'Log', div('loss/odds', clipped, sub('loss/complement', one, clipped)));
  const crossEntropy = addV2(
    'loss/cross_entropy',
    sub('loss/relu_minus_product', unary('loss/relu', 'Relu', logit), mul('loss/product', logit, y)),
    unary('loss/log1p', 'Log1p', unary('loss/exp', 'Exp', unary('loss/negative_abs', 'Neg', unary('loss/abs', 'Abs', logit)))),
  );
  const count = add('loss/count', 'Cast', [add('loss/size', 'Size', [y], { T: FLOAT, out_type: INT })], { SrcT: INT, DstT: FLOAT, Truncate: { bool: false } });
  const crossEntropySum = sum('loss/sum', crossEntropy, [0, 1]);
  const penalty = regularizationLosses.length === 0 ? undefined : add('loss/penalty', 'AddN', regularizationLosses, { T: FLOAT, N: { int: regularizationLosses.length } });
  const lossSum = penalty ? addV2('loss/total_sum', crossEntropySum, mul('loss/penalty_sum', penalty, count)) : crossEntropySum;
  const predictedDog = add('accuracy/predicted', 'Cast', [add('accuracy/greater', 'Greater', [pDog, scalar('accuracy/threshold', 0.5)], { T: FLOAT })], {
    SrcT: { type: DataType.bool },
    DstT: FLOAT,
    Truncate: { bool: false },
  });
  const correct = sum('accuracy/correct', add('accuracy/equal_float', 'Cast', [add('accuracy/equal', 'Equal', [y, predictedDog], { T: FLOAT })], { SrcT: { type: DataType.bool }, DstT: FLOAT, Truncate: { bool: false } }), [0, 1]);

  // d mean loss / d P(dog): (q − y) / (q (1 − q)) / n for q the clipped P(dog), 0 where clipping cut it.
  const inRange = add('loss_grad/in_range', 'Cast', [add('loss_grad/equal', 'Equal', [pDog, clipped], { T: FLOAT })], { SrcT: { type: DataType.bool }, DstT: FLOAT, Truncate: { bool: false } });
  const perOutput = div('loss_grad/per_output', sub('loss_grad/error', clipped, y), mul('loss_grad/variance', clipped, sub('loss_grad/complement', one, clipped)));
  const dPDog = mul('loss_grad/d_p_dog', mul('loss_grad/shared', perOutput, div('loss_grad/share', one, count)), inRange);

  // Backward pass in reverse call order.
  const outputGradients = new Map<string, string[]>([[pDog, [dPDog]]]);
  for (const call of [...calls].reverse()) {
    const contributions = outputGradients.get(call.output);
    if (!contributions || !call.needsGradient) continue;
    const dOutput = contributions.length === 1 ? contributions[0]! : add(`${call.output}/grad_sum`, 'AddN', contributions, { T: FLOAT, N: { int: contributions.length } });
    call.backward(dOutput).forEach((dInput, i) => {
      if (!dInput || !call.inputsNeedGradient[i]) return;
      const input = call.inputs[i]!;
      outputGradients.set(input, [...(outputGradients.get(input) ?? []), dInput]);
    });
  }

  const gradients = weights.map((_, i) => {
    const contributions = weightGradients.get(i);
    if (!contributions) return undefined;
    return contributions.length === 1 ? contributions[0]! : add(`gradients/${i}`, 'AddN', contributions, { T: FLOAT, N: { int: contributions.length } });
  });
  const optimizer = adamSteps(
    graph,
    adam,
    weights.map((weight, i) => ({
      key: String(i),
      variable: weightVariables[i]!,
      shape: weight.shape.map((size) => size ?? -1),
      gradient: trainable.has(weight) ? gradients[i] : undefined,
      initial: initial[i]!,
    })),
  );
  const assigned = graph.after('assigned', scalar('assign/done', 1), [...weightAssignments, ...optimizer.reset]);
  const updates = [...statisticsUpdates, ...optimizer.updates];
  const sums = add('sums', 'Pack', [lossSum, correct, ...updates.map((node) => `^${node}`)], { T: FLOAT, N: { int: 2 }, axis: { int: 0 } });

  const floatTensor = (tensor: string, shape: readonly number[]): SignatureTensor => ({ tensor: `${tensor}:0`, dtype: DataType.float32, shape });
  const weightKey = (i: number) => `weight_${i}`;
  const dropoutInputs = Object.fromEntries(dropouts.map(({ key, units }) => [key, floatTensor(key, [-1, units])]));
  return {
    nodes,
    dropouts,
    gradients,
    signatures: {
      assign: {
        inputs: Object.fromEntries(weights.map((weight, i) => [weightKey(i), floatTensor(initial[i]!, weight.shape.map((size) => size ?? -1))])),
        outputs: { assigned: floatTensor(assigned, []) },
      },
      step: {
        inputs: {
          [X]: floatTensor(x, inputShape),
          [Y]: floatTensor(y, [-1, 1]),
          ...dropoutInputs,
        },
        outputs: { sums: floatTensor(sums, [2]) },
      },
      load: {
        inputs: { examples_x: floatTensor(examplesX, inputShape), examples_y: floatTensor(examplesY, [-1, 1]) },
        outputs: { loaded: floatTensor(examplesLoaded, []) },
      },
      resident_step: {
        inputs: {
          [ROWS]: { tensor: `${rows}:0`, dtype: DataType.int32, shape: [-1] },
          ...dropoutInputs,
        },
        outputs: { sums: floatTensor(sums, [2]) },
      },
      read: {
        inputs: {},
        outputs: Object.fromEntries(weightVariables.map((variable, i) => [weightKey(i), floatTensor(variable.read, weights[i]!.shape.map((size) => size ?? -1))])),
      },
    },
  };
}

/** The L2 factor of a serialized `L1L2` regularizer without an L1 part. */
function l2Factor(regularizer: unknown, unsupported: (detail: string) => UnsupportedLayerError): number {
  const { className, config } = regularizer as { className?: string; config?: { l1?: number; l2?: number } };
  if (className !== 'L1L2' || (config?.l1 ?? 0) !== 0) throw unsupported(`has a ${className} kernel regularizer; only L2 is translated`);
  return config?.l2 ?? 0;
}
