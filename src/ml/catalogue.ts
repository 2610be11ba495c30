import path from 'node:path';

/**
 * How a backbone wants its RGB 0..255 pixels `x` scaled: `x/127.5-1` (Keras MobileNets, EfficientNet-Lite),
 * `x/255`, `caffe` (BGR order minus the ImageNet channel means: Keras ResNet50, VGG) or `none` (raw 0..255, the
 * model scales inside).
 */
export const PIXEL_SCALINGS = ['x/127.5-1', 'x/255', 'caffe', 'none'] as const;
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
}

const TFJS_MODELS = 'https://storage.googleapis.com/tfjs-models/tfjs';
const CORAL_TEST_DATA = 'https://github.com/google-coral/test_data/raw/master';
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
];

export const BACKBONE_NAMES = BACKBONE_CATALOGUE.map((entry) => entry.name);

export function catalogueBackbone(name: string): CatalogueBackbone | undefined {
  return BACKBONE_CATALOGUE.find((entry) => entry.name === name);
}

/** A backbone source as the loader takes it: a URL or path, with the pixel scaling declared for it, if any. */
export interface ResolvedBackbone {
  source: string;
  scaling?: PixelScaling;
}

export interface BackboneResolution {
  /** Folder holding catalogue backbones at their `localPath` (offline copies); "" = download from their URL. */
  backboneDir: string;
  /** Declared scaling of backbones given by URL or path; absent: what a TFLite file states, else `x/127.5-1`. */
  scaling: Readonly<Record<string, PixelScaling>>;
}

/** A catalogue name → its local copy under `backboneDir` or its published URL; any other source as it is. */
export function resolveBackbone(nameOrSource: string, { backboneDir, scaling }: BackboneResolution): ResolvedBackbone {
  const entry = catalogueBackbone(nameOrSource);
  if (!entry) {
    const declared = scaling[nameOrSource];
    return { source: nameOrSource, ...(declared ? { scaling: declared } : {}) };
  }
  return { source: backboneDir === '' ? entry.url : path.join(backboneDir, entry.localPath), scaling: entry.scaling };
}
