import type { LayersModel } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import type { Backbone } from './backbone.js';
import { tensorflow } from './tf.js';
import { imagenetAnimalMass, PET_CLASSES } from './zero-shot.js';

type Layer = LayersModel['layers'][number];

/**
 * The cat and dog rows of a backbone's ImageNet classifier as a linear map of its pooled features:
 * `logits = features · kernel + bias`, one column per class of `PET_CLASSES` (cats first, then dogs).
 */
export interface PetLogits {
  /** Row-major `[featureSize, cats + dogs]`; an ensemble's rows for the other backbones' features are zero. */
  kernel: Float32Array;
  bias: Float32Array;
  featureSize: number;
  cats: number;
  dogs: number;
}

/** Layers between the pooled features and the ImageNet logits that only reshape, or do nothing at inference. */
const PASS_THROUGH = new Set(['Reshape', 'Flatten', 'Dropout']);

const noLinearHead = (backbone: Backbone, reason: string): CatdogError =>
  new CatdogError(
    'imagenet_head_unavailable',
    `Cannot use the ImageNet head of backbone ${backbone.source}: ${reason}. training.zeroShotVote needs a backbone whose ` +
      '1000-class ImageNet classifier is one linear layer on its pooled features (Keras MobileNet v1/v2 with include_top); ' +
      'set training.zeroShotVote to false or use such a backbone.',
    400,
    { backbone: backbone.id },
  );

/**
 * The cat and dog logits of the ImageNet classifier on top of `backbone`'s pooled features (for an ensemble, of
 * the first part that has one, as its `imagenet` answers). Keras's MobileNets end in GlobalAveragePooling →
 * Reshape → Dropout → 1×1 Conv2D → softmax: the convolution is a linear map of the features, read here.
 */
export function petLogits(backbone: Backbone): PetLogits {
  const parts = backbone.parts ?? [backbone];
  const owner = parts.find((part) => part.imagenet);
  if (!owner) throw noLinearHead(backbone, 'it has no ImageNet classifier');
  const offset = parts.slice(0, parts.indexOf(owner)).reduce((sum, part) => sum + part.featureSize, 0);
  const { kernel: full, bias: fullBias } = linearImagenetLayer(owner);
  const classes = [...PET_CLASSES.cats, ...PET_CLASSES.dogs];
  const imagenetClasses = full.length / owner.featureSize;
  const kernel = new Float32Array(backbone.featureSize * classes.length);
  for (let row = 0; row < owner.featureSize; row++) {
    classes.forEach((imagenetClass, column) => {
      kernel[(offset + row) * classes.length + column] = full[row * imagenetClasses + imagenetClass]!;
    });
  }
  return {
    kernel,
    bias: Float32Array.from(classes, (imagenetClass) => fullBias[imagenetClass]!),
    featureSize: backbone.featureSize,
    cats: PET_CLASSES.cats.length,
    dogs: PET_CLASSES.dogs.length,
  };
}

/**
 * What `imagenetAnimalMass` says of each photo, computed from `backbone`'s pooled features (for an ensemble, the
 * part whose classifier its `imagenet` answers with) through that classifier's linear layer and softmax, without
 * running the backbone again. Undefined where there is no classifier, or it is not one linear layer on the features.
 */
export function animalMassesOfFeatures(backbone: Backbone, features: readonly Float32Array[]): number[] | undefined {
  const parts = backbone.parts ?? [backbone];
  const owner = parts.find((part) => part.imagenet);
  if (!owner || features.length === 0) return undefined;
  let layer: { kernel: Float32Array; bias: Float32Array };
  try {
    layer = linearImagenetLayer(owner);
  } catch (error) {
    if (error instanceof CatdogError) return undefined;
    throw error;
  }
  const offset = parts.slice(0, parts.indexOf(owner)).reduce((sum, part) => sum + part.featureSize, 0);
  const tf = tensorflow();
  const classes = layer.bias.length;
  const ownFeatures = new Float32Array(features.length * owner.featureSize);
  features.forEach((row, i) => ownFeatures.set(row.subarray(offset, offset + owner.featureSize), i * owner.featureSize));
  const probabilities = tf.tidy(() =>
    tf.softmax(tf.add(tf.matMul(tf.tensor2d(ownFeatures, [features.length, owner.featureSize]), tf.tensor2d(layer.kernel, [owner.featureSize, classes])), tf.tensor1d(layer.bias))),
  );
  const values = probabilities.dataSync() as Float32Array;
  probabilities.dispose();
  return features.map((_, i) => imagenetAnimalMass(values.subarray(i * classes, (i + 1) * classes)));
}

/** The one Dense or 1×1 Conv2D between the backbone's pooled features and its softmax output, as `[features, 1000]`. */
function linearImagenetLayer(backbone: Backbone): { kernel: Float32Array; bias: Float32Array } {
  const { layersModel: model, featureModel } = backbone;
  if (!model || !featureModel) throw noLinearHead(backbone, 'it is a TF.js graph model, whose classifier is a graph output rather than a layer whose weights catdog can read');
  const featureLayer = featureModel.outputs[0]!.sourceLayer as Layer;
  let linear: Layer | undefined;
  for (let layer = model.outputs[0]!.sourceLayer as Layer; layer !== featureLayer; layer = inbound(backbone, layer)) {
    const className = layer.getClassName();
    const activation = (layer.getConfig() as { activation?: unknown }).activation;
    if (PASS_THROUGH.has(className)) continue;
    if (className === 'Activation' && activation === 'softmax') continue;
    const isLinear = (className === 'Dense' || (className === 'Conv2D' && pointwise(layer))) && (activation === 'linear' || activation === 'softmax');
    if (!isLinear || linear) throw noLinearHead(backbone, `layer ${layer.name} (${className}) between its pooled features and its output is not the single linear layer expected`);
    linear = layer;
  }
  if (!linear) throw noLinearHead(backbone, 'no linear layer follows its pooled features');
  const [kernel, bias] = linear.getWeights();
  if (!kernel || !bias) throw noLinearHead(backbone, `layer ${linear.name} has no bias`);
  return { kernel: kernel.dataSync() as Float32Array, bias: bias.dataSync() as Float32Array };
}

function pointwise(layer: Layer): boolean {
  const kernelSize = (layer.getConfig() as { kernelSize?: number[] }).kernelSize;
  return Array.isArray(kernelSize) && kernelSize.every((side) => side === 1);
}

function inbound(backbone: Backbone, layer: Layer): Layer {
  const layers = layer.inboundNodes[0]?.inboundLayers ?? [];
  if (layers.length !== 1) throw noLinearHead(backbone, `layer ${layer.name} does not read exactly one layer`);
  return layers[0]!;
}
