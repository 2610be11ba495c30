import type { LayersModel } from '@tensorflow/tfjs';
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
 * A TFLite model as a network fed raw RGB 0..255 pixels (what catdog's model import takes), the scaling its input
 * quantization states as its first layer. A float input is taken as raw pixels as it is.
 */
export function tfliteNetwork(tf: Tensorflow, bytes: Uint8Array): LayersModel {
  return tfliteToLayers(tf, readTflite(bytes), { scaleInside: true }).model;
}
