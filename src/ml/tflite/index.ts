import type { io, LayersModel } from '@tensorflow/tfjs';
import type { PixelMap } from '../pixel-scaling.js';
import type { Tensorflow } from '../tf.js';
import { readTflite } from './model.js';
import { tfliteToLayers } from './to-layers.js';

export { readTflite, type TfliteGraph, type TfliteTensor } from './model.js';
export { tfliteToLayers, UnsupportedTfliteError, type TfliteNetwork } from './to-layers.js';

/** A `.tflite` path or URL (TF Hub serves its files at `…?lite-format=tflite`). */
export function isTfliteSource(source: string): boolean {
  return /\.tflite$/i.test(source.split(/[?#]/)[0]!) || /[?&]lite-format=tflite\b/i.test(source);
}

/**
 * A TFLite file as the files of the equivalent TF.js layers model (what the backbone loader reads), with the
 * pixel scaling the file states. The bytes stand for the model.json in the backbone's content id.
 */
export async function tfliteModelFiles(
  tf: Tensorflow,
  bytes: Uint8Array,
): Promise<{ modelJsonBytes: Buffer; modelJson: { modelTopology: object; weightsManifest: { paths: string[]; weights: io.WeightsManifestEntry[] }[] }; shards: Buffer[]; pixelMap?: PixelMap }> {
  const { model, pixelMap } = tfliteToLayers(tf, readTflite(bytes));
  try {
    let artifacts: io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (saved) => {
        artifacts = saved;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const weightData = artifacts?.weightData;
    if (!artifacts?.modelTopology || !artifacts.weightSpecs || !(weightData instanceof ArrayBuffer)) throw new Error('the rebuilt layers model did not serialize');
    return {
      modelJsonBytes: Buffer.from(bytes),
      modelJson: { modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] },
      shards: [Buffer.from(weightData)],
      ...(pixelMap ? { pixelMap } : {}),
    };
  } finally {
    model.dispose();
  }
}

/**
 * A TFLite model as a network fed raw RGB 0..255 pixels (what catdog's model import takes), the scaling its input
 * quantization states as its first layer. A float input is taken as raw pixels as it is.
 */
export function tfliteNetwork(tf: Tensorflow, bytes: Uint8Array): LayersModel {
  return tfliteToLayers(tf, readTflite(bytes), { scaleInside: true }).model;
}
