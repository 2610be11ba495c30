import { createRequire } from 'node:module';
import type * as TensorflowModule from '@tensorflow/tfjs';

// The tfjs packages are CommonJS: `require` shares one engine with every other module that loads tfjs-node.
const require = createRequire(import.meta.url);

export const tf = require('@tensorflow/tfjs-node') as typeof TensorflowModule;
export type LayersModel = TensorflowModule.LayersModel;
export type Layer = TensorflowModule.layers.Layer;
export type WeightsManifestEntry = TensorflowModule.io.WeightsManifestEntry;
export type ModelTopology = TensorflowModule.io.ModelJSON['modelTopology'];
export type ModelArtifacts = TensorflowModule.io.ModelArtifacts;
