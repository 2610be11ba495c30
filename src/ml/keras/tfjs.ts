import type * as TensorflowModule from '@tensorflow/tfjs';

// The one TensorFlow of the process (native, or the WebAssembly fallback): a second copy would keep its own
// engine, so models built by one could not be run or exported by the other.
export { initTensorflow, tensorflow } from '../tf.js';
export type LayersModel = TensorflowModule.LayersModel;
export type Layer = TensorflowModule.layers.Layer;
export type WeightsManifestEntry = TensorflowModule.io.WeightsManifestEntry;
export type ModelTopology = TensorflowModule.io.ModelJSON['modelTopology'];
export type ModelArtifacts = TensorflowModule.io.ModelArtifacts;
