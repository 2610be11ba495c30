import type { LayersModel } from '@tensorflow/tfjs';
import { tensorflow } from './tf.js';

/** Classifier heads on backbone features; both end in one sigmoid unit = P(dog). */
export type HeadKind = 'logistic' | 'mlp';

/** Weight decay that keeps the logistic head from chasing a few hundred training photos. */
const LOGISTIC_L2 = 1e-4;

/**
 * Seeds for every random choice a network makes (initial weights, dropout masks): one run seed gives each
 * layer its own, so the same data set, parameters and seed train the same model.
 */
function layerSeeds(seed: number): () => number {
  let next = seed >>> 0;
  return () => (next = (next + 0x9e3779b9) >>> 0);
}

/**
 * An untrained head taking `featureSize` backbone features, initialised from `seed`. Needs `initTensorflow()` to
 * have been awaited.
 */
export function buildHead(kind: HeadKind, featureSize: number, seed: number): LayersModel {
  const tf = tensorflow();
  const nextSeed = layerSeeds(seed);
  const kernelInitializer = () => tf.initializers.glorotUniform({ seed: nextSeed() });
  if (kind === 'logistic') {
    return tf.sequential({
      name: 'logistic_head',
      layers: [
        tf.layers.dense({
          inputShape: [featureSize],
          units: 1,
          activation: 'sigmoid',
          kernelInitializer: kernelInitializer(),
          kernelRegularizer: tf.regularizers.l2({ l2: LOGISTIC_L2 }),
        }),
      ],
    });
  }
  return tf.sequential({
    name: 'mlp_head',
    layers: [
      tf.layers.dense({ inputShape: [featureSize], units: 128, activation: 'relu', kernelInitializer: kernelInitializer() }),
      tf.layers.dropout({ rate: 0.3, seed: nextSeed() }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: kernelInitializer() }),
    ],
  });
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
      tf.layers.dropout({ rate: 0.5, seed: nextSeed() }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: kernelInitializer() }),
      tf.layers.dropout({ rate: 0.5, seed: nextSeed() }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: kernelInitializer() }),
    ],
  });
}
