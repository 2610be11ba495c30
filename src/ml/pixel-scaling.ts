import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import type { PixelScaling } from './catalogue.js';
import { tensorflow } from './tf.js';

type Layer = LayersModel['layers'][number];

/** ImageNet channel means in BGR order, as Keras's `caffe` preprocessing subtracts them. */
const CAFFE_BGR_MEANS = [103.939, 116.779, 123.68];

/**
 * Per model input channel `c`: the model wants `scale[c] · x[from[c]] + offset[c]` of the RGB 0..255 pixels `x`
 * (`from` reorders channels: BGR models read channel 2 first).
 */
export interface PixelMap {
  from: number[];
  scale: number[];
  offset: number[];
}

/** ImageNet channel means and standard deviations of x/255, RGB, as Keras's `torch` preprocessing uses them. */
const TORCH_RGB_MEANS = [0.485, 0.456, 0.406];
const TORCH_RGB_DEVIATIONS = [0.229, 0.224, 0.225];

const PIXEL_MAPS: Record<PixelScaling, PixelMap> = {
  'x/127.5-1': { from: [0, 1, 2], scale: [1 / 127.5, 1 / 127.5, 1 / 127.5], offset: [-1, -1, -1] },
  'x/255': { from: [0, 1, 2], scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] },
  caffe: { from: [2, 1, 0], scale: [1, 1, 1], offset: CAFFE_BGR_MEANS.map((mean) => -mean) },
  torch: {
    from: [0, 1, 2],
    scale: TORCH_RGB_DEVIATIONS.map((deviation) => 1 / (255 * deviation)),
    offset: TORCH_RGB_MEANS.map((mean, c) => -mean / TORCH_RGB_DEVIATIONS[c]!),
  },
  none: { from: [0, 1, 2], scale: [1, 1, 1], offset: [0, 0, 0] },
};

export const pixelMap = (scaling: PixelScaling): PixelMap => PIXEL_MAPS[scaling];

/**
 * Whether two maps give the same input within 2% of its range at black and white (a file's quantization states
 * x/127.5 − 1 as (x − 127)/127.5, for instance).
 */
export function samePixelMap(a: PixelMap, b: PixelMap): boolean {
  return [0, 1, 2].every((c) => {
    if (a.from[c] !== b.from[c]) return false;
    const range = Math.abs(a.scale[c]! * 255);
    return [0, 255].every((x) => Math.abs(a.scale[c]! * x + a.offset[c]! - (b.scale[c]! * x + b.offset[c]!)) <= 0.02 * range);
  });
}

/**
 * How the fed values relate to RGB 0..255 pixels x: `scaled` is catdog's backbone input s = x/127.5 − 1
 * (x = 127.5·s + 127.5); `raw` is x itself (an imported model takes pixels).
 */
const FED = { scaled: { scale: 127.5, offset: 127.5 }, raw: { scale: 1, offset: 0 } } as const;

/**
 * Rewrites `model`'s first convolution in place so that, fed `fed` values, it computes what it computed on pixels
 * mapped by `map`. With x = a·v + b for the fed v, the model's channel c is `scale[c]·a·v[from[c]] + (scale[c]·b +
 * offset[c])`: the factor goes into the kernel, the constant into the bias (or, subtracted, into the moving mean of
 * a BatchNormalization right after a convolution without bias). Exact away from the image border; at the border,
 * the convolution's zero padding stands for the value v = 0 instead of the map's zero.
 */
export function foldPixelMap(model: LayersModel, map: PixelMap, fed: keyof typeof FED, cannotFold: (reason: string) => Error): void {
  const isIdentity = (candidate: PixelMap) =>
    candidate.from.every((from, c) => from === c) &&
    candidate.scale.every((scale, c) => Math.abs(scale * FED[fed].scale - 1) < 1e-6 && Math.abs(scale * FED[fed].offset + candidate.offset[c]!) < 1e-6);
  if (isIdentity(map)) return;
  const rescaling = leadingRescaling(model, cannotFold);
  // A leading Rescaling (r·y + o: Keras applications built with their preprocessing) joins the map and becomes the
  // identity, so that the convolution's zero padding stands for a fed value, as without it (exact when the joined
  // map is what the convolution is fed anyway: a MobileNetV3 taking raw pixels, fed x/127.5 − 1).
  const joined = rescaling
    ? { from: map.from, scale: map.scale.map((scale) => rescaling.scale * scale), offset: map.offset.map((offset) => rescaling.scale * offset + rescaling.offset) }
    : map;
  if (rescaling) Object.assign(rescaling.layer, { scale: 1, offset: 0 });
  if (isIdentity(joined)) return;
  const factor = joined.scale.map((scale) => scale * FED[fed].scale);
  const constant = joined.scale.map((scale, c) => scale * FED[fed].offset + joined.offset[c]!);
  const tf = tensorflow();
  const conv = firstConvolution(rescaling?.layer ?? (model.inputs[0]!.sourceLayer as Layer), cannotFold);
  const [kernel, bias] = conv.getWeights() as [Tensor, Tensor | undefined];
  const [height, width, inChannels, outChannels] = kernel.shape as [number, number, number, number];
  if (inChannels !== 3) throw cannotFold(`its first convolution ${conv.name} reads ${inChannels} channels, not RGB`);
  const weights = kernel.dataSync() as Float32Array;
  const folded = new Float32Array(weights.length);
  const shift = new Float32Array(outChannels);
  for (let position = 0; position < height * width; position++) {
    for (let c = 0; c < 3; c++) {
      for (let out = 0; out < outChannels; out++) {
        const w = weights[(position * 3 + c) * outChannels + out]!;
        // The model's channel c reads the fed channel from[c].
        folded[(position * 3 + joined.from[c]!) * outChannels + out] = w * factor[c]!;
        shift[out] = shift[out]! + w * constant[c]!;
      }
    }
  }
  const newKernel = tf.tensor(folded, kernel.shape);
  if (bias) {
    const newBias = tf.add(bias, tf.tensor1d(shift));
    conv.setWeights([newKernel, newBias]);
    newBias.dispose();
  } else {
    const batchNorm = onlyConsumer(conv);
    if (batchNorm?.getClassName() !== 'BatchNormalization') {
      newKernel.dispose();
      throw cannotFold(`its first convolution ${conv.name} has no bias and no BatchNormalization after it to take the offset`);
    }
    // The folded convolution answers `shift` less than the original: a moving mean smaller by as much makes up for it.
    const config = batchNorm.getConfig() as { center: boolean; scale: boolean };
    const normWeights = batchNorm.getWeights();
    const meanIndex = (config.scale ? 1 : 0) + (config.center ? 1 : 0);
    const mean = normWeights[meanIndex]!;
    const shiftedMean = tf.sub(mean, tf.tensor1d(shift));
    batchNorm.setWeights(normWeights.map((weight, index) => (index === meanIndex ? shiftedMean : weight)));
    shiftedMean.dispose();
    conv.setWeights([newKernel]);
  }
  newKernel.dispose();
}

/** The scalar Rescaling the image input feeds first, if any (Keras applications built with their preprocessing). */
function leadingRescaling(model: LayersModel, cannotFold: (reason: string) => Error): { layer: Layer; scale: number; offset: number } | undefined {
  const layer = onlyConsumer(model.inputs[0]!.sourceLayer as Layer);
  if (layer?.getClassName() !== 'Rescaling') return undefined;
  const { scale, offset = 0 } = layer.getConfig();
  if (typeof scale !== 'number' || typeof offset !== 'number' || scale === 0) throw cannotFold(`its Rescaling layer ${layer.name} scales per channel or by zero`);
  return { layer, scale, offset };
}

/** The first Conv2D after `start` (the image input, or the Rescaling it feeds), reached through zero padding only. */
function firstConvolution(start: Layer, cannotFold: (reason: string) => Error): Layer {
  let layer = onlyConsumer(start);
  while (layer?.getClassName() === 'ZeroPadding2D') layer = onlyConsumer(layer);
  if (layer?.getClassName() !== 'Conv2D') {
    throw cannotFold(`its image input feeds ${layer ? `layer ${layer.name} (${layer.getClassName()})` : 'several layers'}, not one Conv2D (a Rescaling and zero padding allowed before it)`);
  }
  return layer;
}

function onlyConsumer(layer: Layer): Layer | undefined {
  const consumers = layer.outboundNodes.map((node) => node.outboundLayer);
  return consumers.length === 1 ? consumers[0] : undefined;
}
