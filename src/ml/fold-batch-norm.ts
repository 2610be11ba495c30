import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { tensorflow } from './tf.js';

/** One layer of a functional model's JSON config, as `LayersModel.toJSON` writes it. */
interface LayerJson {
  class_name: string;
  name: string;
  config: Record<string, unknown> & { name: string };
  inbound_nodes: [string, number, number, Record<string, unknown>][][];
}

interface ModelJson {
  class_name: string;
  config: { layers: LayerJson[]; input_layers: unknown[]; output_layers: [string, number, number][] };
}

/** A convolution whose output feeds only a BatchNormalization (and, optionally, a ReLU6 after it). */
interface FoldablePair {
  conv: LayerJson;
  batchNorm: LayerJson;
  relu6?: LayerJson;
}

const FOLDABLE_CONVOLUTIONS = new Set(['Conv2D', 'DepthwiseConv2D']);

/**
 * An inference-only copy of `model` in which every convolution followed by BatchNormalization (the MobileNet
 * pattern) becomes one convolution with a bias, and a ReLU6 after it becomes the convolution's activation.
 * BatchNorm in inference mode is a per-channel affine map, so it folds exactly into the kernel and bias
 * (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)); what is saved is one to two kernels per block: on native TensorFlow
 * the forward pass of MobileNet v1 0.75 spent most of its time in FusedBatchNorm and the two kernels of tfjs's
 * ReLU6. Returns `model` itself when nothing folds (e.g. a nested Teachable Machine trunk). The copy owns its own
 * weights; the original is untouched, so it still serves export and fine-tuning.
 */
export async function foldBatchNormalization(model: LayersModel): Promise<LayersModel> {
  const tf = tensorflow();
  const json = model.toJSON(null, false) as unknown as ModelJson;
  if (json.class_name !== 'Model' && json.class_name !== 'Functional') return model;
  const layers = json.config.layers;
  const pairs = foldablePairs(layers, json.config.output_layers);
  if (pairs.length === 0) return model;

  const removed = new Map<string, string>();
  for (const { conv, batchNorm, relu6 } of pairs) {
    conv.config.use_bias = true;
    if (relu6) conv.config.activation = 'relu6';
    removed.set(batchNorm.name, conv.name);
    if (relu6) removed.set(relu6.name, conv.name);
  }
  const kept = layers.filter((layer) => !removed.has(layer.name));
  for (const layer of kept) {
    for (const node of layer.inbound_nodes) {
      for (const inbound of node) inbound[0] = removed.get(inbound[0]) ?? inbound[0];
    }
  }
  json.config.layers = kept;
  json.config.output_layers = json.config.output_layers.map(([name, ...rest]) => [removed.get(name) ?? name, ...rest]);

  const folded = await tf.models.modelFromJSON({ modelTopology: json as never });
  const pairByConv = new Map(pairs.map((pair) => [pair.conv.name, pair]));
  for (const layer of folded.layers) {
    const original = model.getLayer(layer.name);
    const pair = pairByConv.get(layer.name);
    const weights = pair ? foldedWeights(original.getWeights(), model.getLayer(pair.batchNorm.name), pair.conv.class_name) : original.getWeights();
    layer.setWeights(weights);
    if (pair) tf.dispose(weights);
  }
  return folded;
}

function foldablePairs(layers: LayerJson[], outputs: [string, number, number][]): FoldablePair[] {
  const consumers = new Map<string, LayerJson[]>();
  for (const layer of layers) {
    for (const node of layer.inbound_nodes) {
      for (const [name] of node) consumers.set(name, [...(consumers.get(name) ?? []), layer]);
    }
  }
  const isOutput = (layer: LayerJson) => outputs.some(([name]) => name === layer.name);
  const soleConsumer = (layer: LayerJson) => {
    const next = consumers.get(layer.name) ?? [];
    return next.length === 1 && next[0]!.inbound_nodes.length === 1 && !isOutput(layer) ? next[0] : undefined;
  };
  const pairs: FoldablePair[] = [];
  for (const conv of layers) {
    if (!FOLDABLE_CONVOLUTIONS.has(conv.class_name) || conv.config.activation !== 'linear' || conv.inbound_nodes.length !== 1) continue;
    const batchNorm = soleConsumer(conv);
    // An output layer keeps its name (callers look outputs up by name), so it is never folded away.
    if (batchNorm?.class_name !== 'BatchNormalization' || isOutput(batchNorm) || ![-1, 3].includes(batchNorm.config.axis as number)) continue;
    const after = soleConsumer(batchNorm);
    const relu6 = after?.class_name === 'Activation' && after.config.activation === 'relu6' && !isOutput(after) ? after : undefined;
    pairs.push({ conv, batchNorm, relu6 });
  }
  return pairs;
}

/** The convolution's kernel and bias with the BatchNorm's inference-mode affine map folded in. */
function foldedWeights(convWeights: Tensor[], batchNorm: { getWeights(): Tensor[]; getConfig(): Record<string, unknown> }, className: string): Tensor[] {
  const tf = tensorflow();
  return tf.tidy(() => {
    const config = batchNorm.getConfig() as { scale: boolean; center: boolean; epsilon: number };
    const bnWeights = [...batchNorm.getWeights()];
    const gamma = config.scale ? bnWeights.shift()! : undefined;
    const beta = config.center ? bnWeights.shift()! : undefined;
    const [movingMean, movingVariance] = bnWeights as [Tensor, Tensor];
    const perChannelScale = tf.div(gamma ?? tf.onesLike(movingMean), tf.sqrt(tf.add(movingVariance, config.epsilon)));
    const [kernel, bias] = convWeights as [Tensor, Tensor | undefined];
    // Conv2D kernels are [h, w, in, out]; depthwise ones [h, w, in, multiplier] with output channel in·multiplier + m.
    const kernelScale = className === 'DepthwiseConv2D' ? tf.reshape(perChannelScale, [kernel.shape[2]!, kernel.shape[3]!]) : perChannelScale;
    const foldedBias = tf.add(tf.mul(tf.sub(bias ?? tf.zerosLike(movingMean), movingMean), perChannelScale), beta ?? tf.zerosLike(movingMean));
    return [tf.mul(kernel, kernelScale), foldedBias];
  });
}
