import type { LayersModel, SymbolicTensor, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import type { Backbone, NetworkInput } from './backbone.js';
import { foldBatchNormalization } from './fold-batch-norm.js';
import { tensorflow } from './tf.js';

type Layer = LayersModel['layers'][number];

/**
 * A backbone cut where fine-tuning starts: the pretrained layers below the cut stay frozen and their activations
 * are the network's input (cached per image like features); the blocks above belong to the fine-tuned network.
 */
export interface BackboneSplit extends NetworkInput {
  backbone: Backbone;
  /** The backbone layer whose output the fine-tuned blocks take. */
  layerName: string;
  /** The layers above the cut, up to the pooled features, with the backbone's pretrained weights. */
  pretrainedTop(): Promise<LayersModel>;
}

interface LayerEntry {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, Record<string, unknown>][][];
}

const ACTIVATIONS_INPUT = 'activations';

const single = (tensor: SymbolicTensor | SymbolicTensor[]): SymbolicTensor => {
  if (Array.isArray(tensor)) throw new Error('expected a layer with one output');
  return tensor;
};

/** The one layer feeding `layer` in the backbone's graph, if it has exactly one. */
function inboundLayer(layer: Layer): Layer | undefined {
  const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
  return inbound.length === 1 ? inbound[0] : undefined;
}

const unsplittable = (backbone: Backbone, reason: string): CatdogError =>
  new CatdogError(
    'fine_tune_unavailable',
    `Cannot fine-tune backbone ${backbone.source}: ${reason}. Fine-tuning needs a MobileNet v1 style layers model ` +
      '(a chain of depthwise-separable blocks); set training.fineTune.enabled to false or use such a backbone.',
    400,
    { backbone: backbone.id },
  );

/** The backbone's layers, which a TF.js graph model has not. */
function backboneLayers(backbone: Backbone): { model: LayersModel; featureModel: LayersModel } {
  const { layersModel, featureModel } = backbone;
  if (!layersModel || !featureModel) throw unsplittable(backbone, 'it is a TF.js graph model (or an ensemble with one), which has no layers to unfreeze');
  return { model: layersModel, featureModel };
}

/**
 * The layer below the last `blocks` depthwise-separable blocks: the input of the block's DepthwiseConv2D, or of
 * the ZeroPadding2D that a strided block of Keras's MobileNet starts with.
 */
export function fineTuneSplitLayer(backbone: Backbone, blocks: number): string {
  const depthwise = backboneLayers(backbone).model.layers.filter((layer) => layer.getClassName() === 'DepthwiseConv2D');
  if (depthwise.length < blocks) {
    throw unsplittable(backbone, `it has ${depthwise.length} depthwise-separable blocks, fewer than training.fineTune.blocks = ${blocks}`);
  }
  let first = depthwise[depthwise.length - blocks]!;
  for (let below = inboundLayer(first); below?.getClassName() === 'ZeroPadding2D'; below = inboundLayer(first)) first = below;
  const split = inboundLayer(first);
  if (!split) throw unsplittable(backbone, `layer ${first.name} does not read exactly one layer`);
  return split.name;
}

/** Names of the layers between the cut (excluded) and the feature layer (included); every path must cross the cut. */
function layersAbove(backbone: Backbone, split: Layer, featureLayer: Layer): Set<string> {
  const above = new Set<string>();
  const pending = [featureLayer];
  for (let layer = pending.pop(); layer; layer = pending.pop()) {
    if (layer === split || above.has(layer.name)) continue;
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length === 0) throw unsplittable(backbone, `its features do not depend on the input through layer ${split.name} alone`);
    above.add(layer.name);
    pending.push(...inbound);
  }
  return above;
}

const splits = new WeakMap<Backbone, Map<string, Promise<BackboneSplit>>>();

/** The backbone cut at `layerName` (one per backbone and layer, so its models are built once). */
export function splitBackbone(backbone: Backbone, layerName: string): Promise<BackboneSplit> {
  const known = splits.get(backbone)?.get(layerName);
  if (known) return known;
  const split = buildSplit(backbone, layerName);
  // A failed cut (e.g. an unknown layer) is not remembered: it throws again, with its reason, next time.
  split.catch(() => splits.get(backbone)?.delete(layerName));
  splits.set(backbone, (splits.get(backbone) ?? new Map<string, Promise<BackboneSplit>>()).set(layerName, split));
  return split;
}

async function buildSplit(backbone: Backbone, layerName: string): Promise<BackboneSplit> {
  const tf = tensorflow();
  const { model, featureModel } = backboneLayers(backbone);
  const splitLayer = model.layers.find((layer) => layer.name === layerName);
  if (!splitLayer) throw unsplittable(backbone, `it has no layer ${layerName}`);
  const activations = single(splitLayer.output);
  const featureTensor = featureModel.outputs[0]!;
  const above = layersAbove(backbone, splitLayer, featureTensor.sourceLayer as Layer);
  const featureShape = activations.shape.slice(1);
  if (featureShape.length !== 3 || featureShape.some((dimension) => typeof dimension !== 'number')) {
    throw unsplittable(backbone, `layer ${layerName} outputs ${JSON.stringify(activations.shape)}, not [batch, height, width, channels]`);
  }
  const bottom = tf.model({ inputs: model.inputs, outputs: activations });
  // Every forward pass below the cut runs the BatchNorm-folded copy, as the backbone's own features do.
  const inference = await foldBatchNormalization(bottom);
  const scaled = (rgb: Tensor4D): Tensor4D => tf.sub(tf.div(rgb, 127.5), 1);
  const activationsOf = (rgb: Tensor4D): Tensor4D => tf.tidy(() => inference.predict(scaled(rgb)) as Tensor4D);

  return {
    backbone,
    layerName,
    id: `${backbone.id}@${layerName}`,
    inputSize: backbone.inputSize,
    featureShape: featureShape as number[],
    featureSize: (featureShape as number[]).reduce((product, dimension) => product * dimension, 1),
    features: activationsOf,
    // Two passes (below the cut, then the whole backbone), each through BatchNorm-folded layers: cheaper than one
    // pass through the loaded layers.
    forward: (rgb) => ({ input: activationsOf(rgb), ...backbone.featuresAndImagenet(rgb) }),
    model: bottom,
    async pretrainedTop() {
      // Built from the backbone's own topology, so the copy has its own variables: fine-tuning it leaves the
      // backbone (shared by every model and the zero-shot fallback of the process) as it was.
      const topology = model.toJSON(null, false) as unknown as { config: { layers: LayerEntry[] } };
      const entries = topology.config.layers
        .filter((entry) => above.has(entry.name))
        .map((entry) => ({
          ...entry,
          inbound_nodes: entry.inbound_nodes.map((node) =>
            node.map(([name, nodeIndex, tensorIndex, kwargs]) => (name === layerName ? [ACTIVATIONS_INPUT, 0, 0, kwargs] : [name, nodeIndex, tensorIndex, kwargs])),
          ),
        }));
      const input = {
        name: ACTIVATIONS_INPUT,
        class_name: 'InputLayer',
        config: { batch_input_shape: [null, ...featureShape], dtype: 'float32', sparse: false, name: ACTIVATIONS_INPUT },
        inbound_nodes: [],
      };
      const top = await tf.models.modelFromJSON({
        // The entries are the backbone's own JSON, rewired to the new input.
        modelTopology: ({
          class_name: 'Model',
          config: {
            name: 'fine_tuned_blocks',
            layers: [input, ...entries],
            input_layers: [[ACTIVATIONS_INPUT, 0, 0]],
            output_layers: [[featureTensor.sourceLayer.name, 0, 0]],
          },
        } as never),
      });
      for (const layer of top.layers) {
        if (above.has(layer.name)) layer.setWeights(model.getLayer(layer.name).getWeights());
      }
      return top;
    },
  };
}

/**
 * Keras's rule for a frozen BatchNormalization: fixed scale and offset, and inference mode (the moving statistics
 * normalise and are never updated). tfjs's layer normalises with batch statistics and moves its moving mean and
 * variance whenever it runs with `training: true`, as `trainOnBatch` runs it, whatever `trainable` says; on a few
 * hundred photos that would wash out statistics learnt on ImageNet. The override lives on this instance only: the
 * saved model records `trainable: false`, and a loaded model predicts in inference mode anyway.
 */
function freezeBatchNormalization(model: LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    layer.trainable = false;
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
  }
}

/**
 * The network fine-tuning trains and the model then serves: the pretrained top blocks followed by the trained
 * head, in one model fed the activations at the cut, its BatchNormalization layers frozen.
 */
export function fineTuningNetwork(top: LayersModel, head: LayersModel): LayersModel {
  const tf = tensorflow();
  const pDog = single(head.apply(top.outputs[0]!) as SymbolicTensor | SymbolicTensor[]);
  const network = tf.model({ name: 'fine_tuned', inputs: top.inputs, outputs: pDog });
  freezeBatchNormalization(network);
  return network;
}

/** The pooled features `top` computes from cached activations (one flat array each), in batches, leaving no tensor behind. */
export async function featuresFromActivations(top: LayersModel, activations: readonly Float32Array[], activationShape: readonly number[], batchSize = 64): Promise<Float32Array[]> {
  const tf = tensorflow();
  const features: Float32Array[] = [];
  for (let start = 0; start < activations.length; start += batchSize) {
    const batch = activations.slice(start, start + batchSize);
    const flat = new Float32Array(batch.reduce((total, values) => total + values.length, 0));
    batch.forEach((values, i) => flat.set(values, i * values.length));
    const output = tf.tidy(() => top.predict(tf.tensor(flat, [batch.length, ...activationShape])) as Tensor2D);
    try {
      const values = await output.data<'float32'>();
      const width = output.shape[1];
      for (let i = 0; i < batch.length; i++) features.push(values.slice(i * width, (i + 1) * width));
    } finally {
      output.dispose();
    }
  }
  return features;
}
