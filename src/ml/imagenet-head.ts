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
  /** Row-major `[featureSize, cats + dogs]`; an ensemble's rows for the features of parts without a classifier are zero. */
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
 * the classifiers of its parts pooled as its `imagenet` answers). Keras's MobileNets end in GlobalAveragePooling →
 * Reshape → Dropout → 1×1 Conv2D → softmax: the convolution is a linear map of the features, read here.
 */
export function petLogits(backbone: Backbone): PetLogits {
  const { kernel: full, bias: fullBias, classes: imagenetClasses } = imagenetLayer(backbone);
  const classes = [...PET_CLASSES.cats, ...PET_CLASSES.dogs];
  const kernel = new Float32Array(backbone.featureSize * classes.length);
  for (let row = 0; row < backbone.featureSize; row++) {
    classes.forEach((imagenetClass, column) => {
      kernel[row * classes.length + column] = full[row * imagenetClasses + imagenetClass]!;
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
 * What `imagenetAnimalMass` says of each photo, computed from `backbone`'s pooled features (for an ensemble, of
 * the pooled classifiers its `imagenet` answers with) through the linear layer and softmax, without running the
 * backbone again. Undefined where there is no classifier, or one is not a linear layer on the features.
 */
export function animalMassesOfFeatures(backbone: Backbone, features: readonly Float32Array[]): number[] | undefined {
  if (features.length === 0) return undefined;
  let layer: ImagenetLayer;
  try {
    layer = imagenetLayer(backbone);
  } catch (error) {
    if (error instanceof CatdogError) return undefined;
    throw error;
  }
  const tf = tensorflow();
  const flat = new Float32Array(features.length * backbone.featureSize);
  features.forEach((row, i) => flat.set(row, i * backbone.featureSize));
  const probabilities = tf.tidy(() =>
    tf.softmax(tf.add(tf.matMul(tf.tensor2d(flat, [features.length, backbone.featureSize]), tf.tensor2d(layer.kernel, [backbone.featureSize, layer.classes])), tf.tensor1d(layer.bias))),
  );
  const values = probabilities.dataSync() as Float32Array;
  probabilities.dispose();
  return features.map((_, i) => imagenetAnimalMass(values.subarray(i * layer.classes, (i + 1) * layer.classes)));
}

/** An ImageNet classifier as one linear map of a backbone's whole pooled feature vector: `[featureSize, classes]`. */
interface ImagenetLayer {
  kernel: Float32Array;
  bias: Float32Array;
  classes: number;
}

/**
 * The linear ImageNet classifier of `backbone`. For an ensemble, that of every part that has one, pooled as
 * `poolImagenetProbabilities` pools their answers: the softmax of the mean of the parts' log-probabilities is the
 * softmax of the mean of their logits (each row's log-normaliser drops out), so the pool is again one linear layer,
 * each part's kernel divided by their number in that part's rows, zero in the rows of parts without a classifier.
 */
function imagenetLayer(backbone: Backbone): ImagenetLayer {
  const parts = backbone.parts ?? [backbone];
  const owners = parts.filter((part) => part.imagenet);
  if (owners.length === 0) throw noLinearHead(backbone, 'it has no ImageNet classifier');
  const layers = owners.map((owner) => ({ owner, ...linearImagenetLayer(owner) }));
  const classes = layers[0]!.bias.length;
  const odd = layers.find((layer) => layer.bias.length !== classes);
  if (odd) throw noLinearHead(backbone, `the classifier of ${odd.owner.source} has ${odd.bias.length} classes where ${layers[0]!.owner.source}'s has ${classes}`);
  const kernel = new Float32Array(backbone.featureSize * classes);
  const bias = new Float32Array(classes);
  for (const { owner, kernel: own, bias: ownBias } of layers) {
    const offset = parts.slice(0, parts.indexOf(owner)).reduce((sum, part) => sum + part.featureSize, 0);
    own.forEach((weight, i) => {
      kernel[offset * classes + i] = weight / layers.length;
    });
    ownBias.forEach((weight, i) => {
      bias[i]! += weight / layers.length;
    });
  }
  return { kernel, bias, classes };
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
