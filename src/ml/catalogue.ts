import path from 'node:path';
import { z } from 'zod';
import { CatdogError } from '../errors.js';

/**
 * Nodes of a TF.js graph model (`node` or `node:index`): its pooled features, and its 1000 ImageNet class
 * probabilities if it has them (`training.backboneOutputs`, a model card's record of them). A layers model's are
 * found in its layers.
 */
export const backboneOutputNamesSchema = z.strictObject({ features: z.string().min(1).optional(), imagenet: z.string().min(1).optional() });
export type BackboneOutputNames = z.infer<typeof backboneOutputNamesSchema>;

/**
 * How a backbone wants its RGB 0..255 pixels `x` scaled: `x/127.5-1` (Keras MobileNets, EfficientNet-Lite),
 * `x/255`, `caffe` (BGR order minus the ImageNet channel means: Keras ResNet50, VGG), `torch` (x/255 minus the
 * ImageNet channel means, divided by their standard deviations: Keras EfficientNetV2 built without its
 * preprocessing layers, PyTorch models) or `none` (raw 0..255, the model scales inside).
 */
export const PIXEL_SCALINGS = ['x/127.5-1', 'x/255', 'caffe', 'torch', 'none'] as const;
export type PixelScaling = (typeof PIXEL_SCALINGS)[number];

/** The scaling every backbone catdog loads takes at its input: others are folded into its first convolution. */
export const NATIVE_SCALING: PixelScaling = 'x/127.5-1';

/** What a catalogue name stands for. */
export interface CatalogueBackbone {
  name: string;
  description: string;
  /** Where it is published; downloaded once into the backbone cache. */
  url: string;
  /**
   * Its local copy under `training.backboneDir` (the same network; a TF.js conversion may have dropped the ImageNet
   * classifier, which catdog then reports once).
   */
  localPath: string;
  inputSize: number;
  scaling: PixelScaling;
  /** Width of the pooled feature vector the head reads. */
  featureSize: number;
  /** Whether the published file keeps its ImageNet classifier (zero-shot answers and the "neither" check). */
  imagenetHead: boolean;
  /**
   * Set when `url` holds weights only (Keras applications publish their `no_top` weights as `.h5` files without
   * the architecture): the `keras.applications` constructor call (ImageNet weights by default) whose saved full
   * model catdog loads from `localPath`.
   */
  kerasApplication?: string;
  /** Set when `url` was taken from its publisher's code but never fetched from the machine that added the entry. */
  urlNotVerified?: true;
}

const TFJS_MODELS = 'https://storage.googleapis.com/tfjs-models/tfjs';
// The raw-file host other projects download Coral's test models from (github.com/…/raw/… redirects there).
const CORAL_TEST_DATA = 'https://raw.githubusercontent.com/google-coral/test_data/master';
const TFHUB_LITE = 'https://tfhub.dev/tensorflow/lite-model/efficientnet';

const efficientNetLite = (index: number, inputSize: number): CatalogueBackbone => ({
  name: `efficientnet_lite${index}`,
  description: `EfficientNet-Lite${index} (int8 TFLite with its ImageNet classifier, TF Hub), ${inputSize} px`,
  url: `${TFHUB_LITE}/lite${index}/int8/2?lite-format=tflite`,
  localPath: `efficientnet_lite${index}_${inputSize}/model.json`,
  inputSize,
  scaling: 'x/127.5-1',
  featureSize: 1280,
  imagenetHead: true,
});

const KERAS_APPLICATIONS = 'https://storage.googleapis.com/tensorflow/keras-applications';

/**
 * A Keras applications network without its classifier (`include_top=False, pooling='avg'`), pretrained on
 * ImageNet; `build` is its Keras constructor call with those arguments, `weights` its published `no_top` file.
 */
const kerasApplication = (
  name: string,
  description: string,
  { build, weights, scaling, featureSize }: { build: string; weights: string; scaling: PixelScaling; featureSize: number },
): CatalogueBackbone => ({
  name,
  description: `${description}, 224 px (Keras applications ImageNet weights; URL not verified from this machine)`,
  url: `${KERAS_APPLICATIONS}/${weights}`,
  localPath: `keras/${name}_224.keras`,
  inputSize: 224,
  scaling,
  featureSize,
  imagenetHead: false,
  kerasApplication: build,
  urlNotVerified: true,
});

/** Pretrained backbones known by name (`training.backbone`, `training.ensemble`). */
export const BACKBONE_CATALOGUE: readonly CatalogueBackbone[] = [
  {
    name: 'mobilenet_v1_0.75',
    description: 'MobileNet v1 α=0.75 (TF.js layers model with its ImageNet classifier), 224 px',
    url: `${TFJS_MODELS}/mobilenet_v1_0.75_224/model.json`,
    localPath: 'mobilenet_v1_0.75_224/model.json',
    inputSize: 224,
    scaling: 'x/127.5-1',
    featureSize: 768,
    imagenetHead: true,
  },
  {
    name: 'mobilenet_v1_1.0',
    description: 'MobileNet v1 α=1.0 (TF.js layers model with its ImageNet classifier), 224 px',
    url: `${TFJS_MODELS}/mobilenet_v1_1.0_224/model.json`,
    localPath: 'mobilenet_v1_1.0_224/model.json',
    inputSize: 224,
    scaling: 'x/127.5-1',
    featureSize: 1024,
    imagenetHead: true,
  },
  {
    name: 'mobilenet_v2_1.0',
    description: 'MobileNetV2 α=1.0, Keras applications weights quantized to int8 (Coral TFLite with its ImageNet classifier), 224 px',
    url: `${CORAL_TEST_DATA}/tf2_mobilenet_v2_1.0_224_ptq.tflite`,
    localPath: 'tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite',
    inputSize: 224,
    scaling: 'x/127.5-1',
    featureSize: 1280,
    imagenetHead: true,
  },
  efficientNetLite(0, 224),
  efficientNetLite(1, 240),
  efficientNetLite(2, 260),
  efficientNetLite(3, 280),
  efficientNetLite(4, 300),
  kerasApplication('mobilenet_v2_1.4', 'MobileNetV2 α=1.4', {
    build: 'MobileNetV2(alpha=1.4, include_top=False, pooling="avg", input_shape=(224, 224, 3))',
    weights: 'mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_224_no_top.h5',
    scaling: 'x/127.5-1',
    featureSize: 1792,
  }),
  kerasApplication('mobilenet_v3_large', 'MobileNetV3 Large α=1.0 (hard-swish, squeeze-excite)', {
    build: 'MobileNetV3Large(include_top=False, pooling="avg", include_preprocessing=False, input_shape=(224, 224, 3))',
    weights: 'mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5',
    scaling: 'x/127.5-1',
    featureSize: 960,
  }),
  kerasApplication('mobilenet_v3_large_minimalistic', 'MobileNetV3 Large minimalistic α=1.0 (ReLU, no squeeze-excite, 3×3 kernels)', {
    build: 'MobileNetV3Large(minimalistic=True, include_top=False, pooling="avg", include_preprocessing=False, input_shape=(224, 224, 3))',
    weights: 'mobilenet_v3/weights_mobilenet_v3_large_minimalistic_224_1.0_float_no_top_v2.h5',
    scaling: 'x/127.5-1',
    featureSize: 960,
  }),
  kerasApplication('efficientnetv2_b0', 'EfficientNetV2-B0', {
    build: 'EfficientNetV2B0(include_top=False, pooling="avg", include_preprocessing=False, input_shape=(224, 224, 3))',
    weights: 'efficientnet_v2/efficientnetv2-b0_notop.h5',
    scaling: 'torch',
    featureSize: 1280,
  }),
];

export const BACKBONE_NAMES = BACKBONE_CATALOGUE.map((entry) => entry.name);

export function catalogueBackbone(name: string): CatalogueBackbone | undefined {
  return BACKBONE_CATALOGUE.find((entry) => entry.name === name);
}

/** A backbone source as the loader takes it: a URL or path, with the pixel scaling declared for it, if any. */
export interface ResolvedBackbone {
  source: string;
  scaling?: PixelScaling;
  /** A TF.js graph model's declared output nodes. */
  outputs?: BackboneOutputNames;
}

export interface BackboneResolution {
  /** Folder holding catalogue backbones at their `localPath` (offline copies); "" = download from their URL. */
  backboneDir: string;
  /** Declared scaling of backbones given by URL or path; absent: what a TFLite file states, else `x/127.5-1`. */
  scaling: Readonly<Record<string, PixelScaling>>;
  /** Declared output nodes of TF.js graph models given by URL or path (absent: none declared). */
  outputs?: Readonly<Record<string, BackboneOutputNames>>;
}

/**
 * A catalogue name → its local copy under `backboneDir` or its published URL; any other source as it is. A name
 * published as weights only needs its local full model: without `backboneDir`, the error says how to make it.
 */
export function resolveBackbone(nameOrSource: string, { backboneDir, scaling, outputs }: BackboneResolution): ResolvedBackbone {
  const entry = catalogueBackbone(nameOrSource);
  if (!entry) {
    const declared = scaling[nameOrSource];
    const nodes = outputs?.[nameOrSource];
    return { source: nameOrSource, ...(declared ? { scaling: declared } : {}), ...(nodes ? { outputs: nodes } : {}) };
  }
  if (backboneDir === '' && entry.kerasApplication) {
    throw new CatdogError(
      'backbone_needs_full_model',
      `backbone ${entry.name} is published as Keras weights without its architecture (${entry.url}), which catdog cannot load alone. ` +
        `Write its full model once, where Keras can download the weights: ${kerasRecipe(entry.kerasApplication, path.basename(entry.localPath))}; then put the file at ${entry.localPath} ` +
        'under a folder and set training.backboneDir (CATDOG_BACKBONE_DIR) to that folder, or set training.backbone to the file\'s path.',
      400,
      { backbone: entry.name, localPath: entry.localPath },
    );
  }
  return { source: backboneDir === '' ? entry.url : path.join(backboneDir, entry.localPath), scaling: entry.scaling };
}

/** The shell command that saves a Keras application's full model (its weights downloaded by Keras) as `fileName`. */
export function kerasRecipe(kerasApplication: string, fileName: string): string {
  return `python -c 'import keras; keras.applications.${kerasApplication}.save("${fileName}")'`;
}
