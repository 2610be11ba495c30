export {
  initTensorflow,
  tensorflow,
  type LoadedTensorflow,
  type MlBackend,
  type Tensorflow,
  type Tensorflow as Tf,
} from './tf.js';
// The tfjs types callers pass in and get back, so no module outside ml/ needs the tfjs packages.
export type { LayersModel, Scalar, Tensor, Tensor1D, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
export {
  combineBackbones,
  extractFeatures,
  loadBackbone,
  pooledFeatures,
  type Backbone,
  type FeatureExtractor,
  type LoadBackboneOptions,
  type NetworkInput,
} from './backbone.js';
export { featuresFromActivations, fineTuneSplitLayer, fineTuningNetwork, splitBackbone, type BackboneSplit } from './fine-tune.js';
export { imagenetAnimalMass, zeroShotPDog } from './zero-shot.js';
export { animalMassesOfFeatures, petLogits, type PetLogits } from './imagenet-head.js';
export { buildCnn, buildHead, DEFAULT_LOGISTIC_L2, type HeadKind } from './models.js';
export {
  predictPDog,
  trainBinaryClassifier,
  type Batch,
  type Batches,
  type BatchProgress,
  type EpochStats,
  type TrainOptions,
  type TrainResult,
} from './train.js';
export { adamSettings, trainingPath, type TrainingPath } from './training-path.js';
export { columnRegressions, type ColumnRegressions, type ColumnRegressionSettings } from './column-regressions.js';
export { binaryMetrics, rocAuc, rocCurve, type BinaryMetrics, type ConfusionMatrix, type RocPoint } from './metrics.js';
export { deserializeModel, serializeModel, weightBytes, type SerializedModel } from './model-io.js';
export {
  applyTemperature,
  expectedCalibrationError,
  fitTemperature,
  reliability,
  RELIABILITY_BINS,
  type Reliability,
  type ReliabilityBin,
} from './calibration.js';
