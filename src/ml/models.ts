import type { layers, LayersModel, SymbolicTensor } from '@tensorflow/tfjs';
import { takeDropoutSeed } from './dropout-seed.js';
import type { PetLogits } from './imagenet-head.js';
import { tensorflow } from './tf.js';

/** Classifier heads on backbone features; both end in one sigmoid unit = P(dog). */
export type HeadKind = 'logistic' | 'mlp';

/** Weight decay that keeps the logistic head from chasing a few hundred training photos, where none is chosen for it. */
export const DEFAULT_LOGISTIC_L2 = 1e-4;

/**
 * Seeds for every random choice a network makes (initial weights, dropout masks): one run seed gives each
 * layer its own, so the same data set, parameters and seed train the same model.
 */
function layerSeeds(seed: number): () => number {
  let next = seed >>> 0;
  return () => (next = (next + 0x9e3779b9) >>> 0);
}

/**
 * A dropout layer whose mask changes every training step and still follows from `seed`: each training call draws with
 * the seed the layer holds, then moves it on (`takeDropoutSeed`, as the graph path does). Saved files keep `seed`, so
 * they do not depend on how many steps trained the model or on which path.
 */
function steppedDropout(rate: number, seed: number): ReturnType<typeof layers.dropout> {
  const layer = tensorflow().layers.dropout({ rate, seed });
  const call = layer.call.bind(layer);
  const getConfig = layer.getConfig.bind(layer);
  layer.call = (inputs, kwargs) => {
    // tfjs draws with the seed the layer holds when called; only then does it move on.
    const output = call(inputs, kwargs);
    if (kwargs['training'] === true) takeDropoutSeed(layer);
    return output;
  };
  layer.getConfig = () => ({ ...getConfig(), seed });
  return layer;
}

/**
 * An untrained head taking `featureSize` backbone features, initialised from `seed`. With `zeroShot` (the cat and
 * dog rows of the backbone's own ImageNet classifier) the head also takes the backbone's zero-shot vote, computed
 * inside the network by frozen layers, so serving, fine-tuning and exports see the same network. `logisticL2` weighs
 * the logistic head's L2 penalty (the mlp head has none). Needs
 * `initTensorflow()` to have been awaited.
 */
export function buildHead(kind: HeadKind, featureSize: number, seed: number, zeroShot?: PetLogits, logisticL2 = DEFAULT_LOGISTIC_L2): LayersModel {
  const tf = tensorflow();
  const nextSeed = layerSeeds(seed);
  const kernelInitializer = () => tf.initializers.glorotUniform({ seed: nextSeed() });
  /** The trained layers; `inputShape` only where they start a Sequential model. */
  const trained = (inputShape?: number[]) =>
    kind === 'logistic'
      ? [
          tf.layers.dense({
            inputShape,
            units: 1,
            activation: 'sigmoid',
            kernelInitializer: kernelInitializer(),
            kernelRegularizer: tf.regularizers.l2({ l2: logisticL2 }),
          }),
        ]
      : [
          tf.layers.dense({ inputShape, units: 128, activation: 'relu', kernelInitializer: kernelInitializer() }),
          steppedDropout(0.3, nextSeed()),
          tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: kernelInitializer() }),
        ];
  if (!zeroShot) return tf.sequential({ name: `${kind}_head`, layers: trained([featureSize]) });
  if (zeroShot.featureSize !== featureSize) {
    throw new Error(`the zero-shot vote reads ${zeroShot.featureSize} features, but the head takes ${featureSize}`);
  }
  const features = tf.input({ shape: [featureSize], name: 'features' });
  const joined = tf.layers.concatenate({ name: 'features_and_zero_shot_vote' }).apply([features, zeroShotVote(features, zeroShot)]);
  const pDog = trained().reduce<SymbolicTensor>((input, layer) => layer.apply(input) as SymbolicTensor, joined as SymbolicTensor);
  return tf.model({ name: `${kind}_head_with_zero_shot_vote`, inputs: features, outputs: pDog });
}

/**
 * P(dog) − P(cat) in [−1, 1] from the ImageNet classifier's cat and dog classes alone, each class's logit lowered
 * by log(classes of its kind) so that 118 dog breeds do not outvote 5 cats (as `zeroShotPDog` weighs them):
 * what 1.2 M ImageNet photos say, next to the features the head learns from a few thousand. Frozen standard
 * layers (Dense, softmax, Dense), so the Keras and TF.js exports carry it.
 */
function zeroShotVote(features: SymbolicTensor, logits: PetLogits): SymbolicTensor {
  const tf = tensorflow();
  const classes = logits.cats + logits.dogs;
  const petLogits = tf.layers.dense({ units: classes, trainable: false, name: 'imagenet_pet_logits' });
  const share = tf.layers.activation({ activation: 'softmax', name: 'imagenet_pet_share' });
  const vote = tf.layers.dense({ units: 1, trainable: false, name: 'zero_shot_vote' });
  const output = vote.apply(share.apply(petLogits.apply(features))) as SymbolicTensor;
  const perKind = (cat: number, dog: number) => Float32Array.from({ length: classes }, (_, i) => (i < logits.cats ? cat : dog));
  const lowered = perKind(Math.log(logits.cats), Math.log(logits.dogs)).map((amount, i) => logits.bias[i]! - amount);
  const weights = [
    tf.tensor2d(logits.kernel, [logits.featureSize, classes]),
    tf.tensor1d(lowered),
    tf.tensor2d(perKind(-1, 1), [classes, 1]),
    tf.zeros([1]),
  ];
  petLogits.setWeights(weights.slice(0, 2));
  vote.setWeights(weights.slice(2));
  tf.dispose(weights);
  return output;
}

/**
 * The original from-scratch network: three conv/batch-norm/pool blocks and a dense classifier, taking RGB
 * 0..255 at `imageSize`² (the 1/255 scaling is its first layer, so saved models carry it), initialised from `seed`.
 */
export function buildCnn(imageSize: number, seed: number): LayersModel {
  const tf = tensorflow();
  const nextSeed = layerSeeds(seed);
  const kernelInitializer = () => tf.initializers.glorotUniform({ seed: nextSeed() });
  const convBlock = (filters: number) => [
    tf.layers.conv2d({ filters, kernelSize: 3, activation: 'relu', kernelInitializer: kernelInitializer() }),
    tf.layers.batchNormalization(),
    tf.layers.maxPooling2d({ poolSize: 2 }),
  ];
  return tf.sequential({
    name: 'cnn',
    layers: [
      tf.layers.rescaling({ scale: 1 / 255, inputShape: [imageSize, imageSize, 3] }),
      ...convBlock(32),
      ...convBlock(64),
      ...convBlock(128),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: kernelInitializer() }),
      steppedDropout(0.5, nextSeed()),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: kernelInitializer() }),
      steppedDropout(0.5, nextSeed()),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: kernelInitializer() }),
    ],
  });
}
