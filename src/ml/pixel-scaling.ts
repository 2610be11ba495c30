import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import type { PixelScaling } from './catalogue.js';
import { tensorflow } from './tf.js';

type Layer = LayersModel['layers'][number];

/** ImageNet channel means in BGR order, as Keras's `caffe` preprocessing subtracts them. */
const CAFFE_BGR_MEANS = [103.939, 116.779, 123.68];

/**
 * Per model input channel `c`: the model wants `scale[c] · x[from[c]] + offset[c]` of the RGB 0..255 pixels `x`
 * (`from` reorders channels: BGR models read channel 2 first).
 */
interface ChannelMap {
  from: number[];
  scale: number[];
  offset: number[];
}

const CHANNEL_MAPS: Record<PixelScaling, ChannelMap> = {
  'x/127.5-1': { from: [0, 1, 2], scale: [1 / 127.5, 1 / 127.5, 1 / 127.5], offset: [-1, -1, -1] },
  'x/255': { from: [0, 1, 2], scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] },
  caffe: { from: [2, 1, 0], scale: [1, 1, 1], offset: CAFFE_BGR_MEANS.map((mean) => -mean) },
  none: { from: [0, 1, 2], scale: [1, 1, 1], offset: [0, 0, 0] },
};

/**
 * Rewrites `model`'s first convolution in place so that the model takes `x/127.5 − 1` (what every catdog backbone is
 * fed) while computing what it computed on pixels scaled by `scaling`. With `s = x/127.5 − 1`, the model's channel c
 * is `scale[c]·127.5·s[from[c]] + (scale[c]·127.5 + offset[c])`: the factor goes into the kernel, the constant into
 * the bias (or, subtracted, into the moving mean of a BatchNormalization right after a convolution without bias). Exact away from
 * the image border; at the border, the convolution's zero padding stands for mid-grey instead of the declared zero.
 */
export function foldPixelScaling(model: LayersModel, scaling: PixelScaling, source: string): void {
  const map = CHANNEL_MAPS[scaling];
  const factor = map.scale.map((scale) => scale * 127.5);
  const constant = map.scale.map((scale, c) => scale * 127.5 + map.offset[c]!);
  if (factor.every((value) => value === 1) && constant.every((value) => value === 0) && map.from.every((from, c) => from === c)) return;
  const tf = tensorflow();
  const conv = firstConvolution(model, scaling, source);
  const [kernel, bias] = conv.getWeights() as [Tensor, Tensor | undefined];
  const [height, width, inChannels, outChannels] = kernel.shape as [number, number, number, number];
  if (inChannels !== 3) throw cannotFold(source, scaling, `its first convolution ${conv.name} reads ${inChannels} channels, not RGB`);
  const weights = kernel.dataSync() as Float32Array;
  const folded = new Float32Array(weights.length);
  const shift = new Float32Array(outChannels);
  for (let position = 0; position < height * width; position++) {
    for (let c = 0; c < 3; c++) {
      for (let out = 0; out < outChannels; out++) {
        const w = weights[(position * 3 + c) * outChannels + out]!;
        // The model's channel c reads the fed channel from[c].
        folded[(position * 3 + map.from[c]!) * outChannels + out] = w * factor[c]!;
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
      throw cannotFold(source, scaling, `its first convolution ${conv.name} has no bias and no BatchNormalization after it to take the offset`);
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

/** The first Conv2D, reached from the image input through zero padding only. */
function firstConvolution(model: LayersModel, scaling: PixelScaling, source: string): Layer {
  let layer = onlyConsumer(model.inputs[0]!.sourceLayer as Layer);
  while (layer?.getClassName() === 'ZeroPadding2D') layer = onlyConsumer(layer);
  if (layer?.getClassName() !== 'Conv2D') {
    throw cannotFold(source, scaling, `its image input feeds ${layer ? `layer ${layer.name} (${layer.getClassName()})` : 'several layers'}, not one Conv2D (zero padding allowed before it)`);
  }
  return layer;
}

function onlyConsumer(layer: Layer): Layer | undefined {
  const consumers = layer.outboundNodes.map((node) => node.outboundLayer);
  return consumers.length === 1 ? consumers[0] : undefined;
}

function cannotFold(source: string, scaling: PixelScaling, reason: string): CatdogError {
  return new CatdogError(
    'backbone_unavailable',
    `backbone ${source} is declared to take pixels scaled ${scaling} (training.backboneScaling), but catdog cannot fold that scaling into it: ${reason}. ` +
      'Declare x/127.5-1 if the model takes that, or convert it with its scaling inside.',
    400,
    { source },
  );
}
