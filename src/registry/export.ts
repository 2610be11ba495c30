import type { AppContext } from '../app/context.js';
import { CatdogError } from '../errors.js';
import { initTensorflow, serializeModel, type LayersModel } from '../ml/index.js';
import { exportKeras } from '../ml/keras/export.js';
import type { Layer } from '../ml/keras/tfjs.js';
import { loadClassifier, ZERO_SHOT_MODEL_ID, type Classifier } from './classifier.js';
import { findModel } from './resolve.js';

export const EXPORT_FORMATS = ['keras', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** `catdog.json` beside an exported TF.js model: how to feed it and read its answer without catdog. */
export interface ExportedModelCard {
  format: 'catdog-export/1';
  sourceModelId: string;
  labels: ['cat', 'dog'];
  /** The single sigmoid output is P(dog). */
  output: 'sigmoid-p-dog';
  imageSize: number;
  /** Raw RGB 0–255 pixels of the photo squashed (not cropped) to imageSize × imageSize: scaling is inside. */
  preprocessing: 'rgb-0-255, squash resize';
  /** The model's temperature scaling, already folded into the output layer's weights. */
  temperature: number;
  /** When true, catdog averages each photo with its mirror image; the exported network answers for one view. */
  tta: boolean;
  /**
   * The image decode (catdog's `DECODE_ID`) whose pixels the model was trained and measured on: a decoder that
   * resizes otherwise shifts its answers slightly. null when unknown (imported, or registered before catdog kept it).
   */
  decodeId: string | null;
}

export type ExportedModel =
  | { format: 'keras'; fileName: string; bytes: Uint8Array }
  /** `fileName` names the folder (or zip) holding `files`. */
  | { format: 'tfjs'; fileName: string; files: Record<string, Uint8Array> };

type ExportDependencies = Pick<AppContext, 'db' | 'blobs' | 'backbones'>;

/**
 * A registered model as one network that runs without catdog: raw RGB 0–255 pixels in, P(dog) out, as catdog
 * itself answers (temperature scaling included). A transfer model becomes pixel scaling → backbone trunk → head;
 * a CNN or an imported model already takes pixels.
 */
export async function exportModel(app: ExportDependencies, reference: string, format: ExportFormat): Promise<ExportedModel> {
  const model = reference === ZERO_SHOT_MODEL_ID ? undefined : await findModel(app, reference);
  if (!model) {
    throw new CatdogError(
      'export_unavailable',
      'the zero-shot model (which serves until a model is promoted) is the ImageNet backbone with no trained weights of its own, ' +
        'so it cannot be exported: train a model (catdog train) or import one (catdog models import) and export that',
      409,
    );
  }
  const classifier = await loadClassifier(app, model);
  try {
    const network = await pixelNetwork(classifier);
    const baseName = `catdog-v${model.version}-${model.id}`;
    if (format === 'keras') return { format, fileName: `${baseName}.keras`, bytes: await exportKeras(network) };
    const { modelJson, weights } = await serializeModel(network);
    const card: ExportedModelCard = {
      format: 'catdog-export/1',
      sourceModelId: model.id,
      labels: ['cat', 'dog'],
      output: 'sigmoid-p-dog',
      imageSize: classifier.inputSize,
      preprocessing: 'rgb-0-255, squash resize',
      temperature: classifier.card?.calibration?.temperature ?? 1,
      tta: classifier.card?.tta ?? false,
      decodeId: classifier.card?.decodeId ?? null,
    };
    const files = { 'model.json': modelJson, 'weights.bin': weights, 'catdog.json': new TextEncoder().encode(`${JSON.stringify(card, null, 2)}\n`) };
    return { format, fileName: `${baseName}-tfjs`, files };
  } finally {
    // The composed model shares the backbone's layers, which stay loaded for the process: only the head goes.
    classifier.dispose();
  }
}

async function pixelNetwork(classifier: Classifier): Promise<LayersModel> {
  const { network, input, card } = classifier;
  if (!network) throw new Error(`model ${classifier.modelId} has no network to export`);
  foldTemperature(network, card?.calibration?.temperature ?? 1);
  if (!input) return network;
  if (!input.model) {
    throw new CatdogError(
      'export_unavailable',
      `model ${classifier.modelId} reads the features of backbone ${input.id}, a TF.js graph model (or an ensemble with one), which has no layers to compose ` +
        'with its head into one TF.js layers or Keras model; serve it with catdog (catdog serve, catdog predict), or train it on a layers, .keras/.h5 or .tflite backbone to export it',
      409,
    );
  }
  const { tf } = await initTensorflow();
  const size = input.inputSize;
  const pixels = tf.input({ shape: [size, size, 3], name: 'pixels' });
  // catdog scales in code before the backbone (ml/backbone.ts); outside catdog the model must do it itself.
  const scaled = tf.layers.rescaling({ scale: 1 / 127.5, offset: -1, name: 'mobilenet_scaling' }).apply(pixels);
  // The frozen pretrained layers: the whole trunk for a head, the layers below the cut for fine-tuned blocks.
  const trunk = tf.model({ name: 'backbone', inputs: input.model.inputs, outputs: input.model.outputs });
  const features = trunk.apply(scaled);
  const pDog = network.apply(features) as ReturnType<typeof tf.input>;
  return tf.model({ name: `catdog_${classifier.modelId}`, inputs: pixels, outputs: pDog });
}

/**
 * Temperature scaling divides the logit by T. The output layer is a sigmoid Dense, whose logit is linear in all
 * of its weights, so dividing them by T gives sigmoid(z / T) exactly.
 */
function foldTemperature(network: LayersModel, temperature: number): void {
  if (temperature === 1) return;
  const output = outputLayer(network);
  const activation = (output.getConfig() as { activation?: unknown }).activation;
  if (output.getClassName() !== 'Dense' || activation !== 'sigmoid') {
    throw new Error(`cannot fold temperature ${temperature} into output layer ${output.name} (${output.getClassName()}, ${String(activation)})`);
  }
  // getWeights hands out the variables themselves (not copies): only the quotients are ours to dispose.
  const scaled = output.getWeights().map((weight) => weight.div(temperature));
  output.setWeights(scaled);
  for (const tensor of scaled) tensor.dispose();
}

/** The layer computing the model's (single) output, inside nested models too. */
export function outputLayer(model: LayersModel): Layer {
  const layer = model.outputs[0]?.sourceLayer;
  if (!layer) throw new Error(`model ${model.name} has no output`);
  return 'outputs' in layer ? outputLayer(layer as LayersModel) : layer;
}
