import type { ModelRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import {
  deserializeModel,
  imagenetAnimalMass,
  initTensorflow,
  loadBackbone,
  predictPDog,
  zeroShotPDog,
  type Backbone,
  type LayersModel,
} from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import { readModelFiles, type ModelCard } from './artifacts.js';

export const ZERO_SHOT_MODEL_ID = 'zero-shot';

export interface Prediction {
  pDog: number;
  /** Share of the ImageNet head's mass on cat and dog classes, when the model has such a head. */
  animalMass?: number;
}

/** A model ready to answer: the promoted one, any registered one, or the zero-shot fallback. */
export interface Classifier {
  readonly modelId: string;
  readonly version: number | null;
  readonly card: ModelCard | null;
  readonly inputSize: number;
  readonly backbone: Backbone | null;
  /** The trainable part: the head of a transfer model (fed features) or the whole CNN (fed pixels). */
  readonly network: LayersModel | null;
  predictPixels(images: readonly Uint8Array[]): Promise<Prediction[]>;
  dispose(): void;
}

/** Loads each backbone once per process: several models and the zero-shot fallback share it. */
export class BackboneProvider {
  private readonly loaded = new Map<string, Promise<Backbone>>();

  constructor(private readonly cacheDir: string, private readonly onDownload?: (received: number, total: number | undefined) => void) {}

  get(source: string): Promise<Backbone> {
    const known = this.loaded.get(source);
    if (known) return known;
    const loading = loadBackbone(source, { cacheDir: this.cacheDir, onDownload: this.onDownload });
    // A failed load (e.g. offline) must not be remembered: the next request tries again.
    loading.catch(() => this.loaded.delete(source));
    this.loaded.set(source, loading);
    return loading;
  }
}

async function pixelsTensor(images: readonly Uint8Array[], size: number) {
  const { tf } = await initTensorflow();
  const flat = new Float32Array(images.length * size * size * 3);
  images.forEach((image, i) => flat.set(image, i * size * size * 3));
  return tf.tensor4d(flat, [images.length, size, size, 3]);
}

export async function zeroShotClassifier(backbone: Backbone): Promise<Classifier> {
  if (!backbone.imagenet) {
    throw new CatdogError('zero_shot_unavailable', `backbone ${backbone.id} has no ImageNet head, so it cannot predict before training`, 503);
  }
  const { tf } = await initTensorflow();
  return {
    modelId: ZERO_SHOT_MODEL_ID,
    version: null,
    card: null,
    inputSize: backbone.inputSize,
    backbone,
    network: null,
    async predictPixels(images) {
      const batch = await pixelsTensor(images, backbone.inputSize);
      const probabilities = tf.tidy(() => backbone.imagenet!(batch));
      batch.dispose();
      const rows = (await probabilities.array()) as number[][];
      probabilities.dispose();
      return rows.map((row) => ({ pDog: zeroShotPDog(row), animalMass: imagenetAnimalMass(row) }));
    },
    dispose() {},
  };
}

export async function loadClassifier(
  deps: { blobs: BlobStore; backbones: BackboneProvider },
  model: Pick<ModelRow, 'id' | 'artifactPrefix'> & { version: number | null },
): Promise<Classifier> {
  const files = await readModelFiles(deps.blobs, model.artifactPrefix);
  const network = await deserializeModel({ modelJson: files.modelJson, weights: files.weights });
  const { card } = files;
  let backbone: Backbone | null = null;
  if (card.backbone) {
    backbone = await deps.backbones.get(card.backbone.source);
    if (backbone.id !== card.backbone.id) {
      network.dispose();
      throw new CatdogError(
        'backbone_mismatch',
        `model ${model.id} was trained on backbone ${card.backbone.id} but ${card.backbone.source} now holds ${backbone.id}`,
        409,
      );
    }
  }
  const inputSize = card.imageSize;
  return {
    modelId: model.id,
    version: model.version,
    card,
    inputSize,
    backbone,
    network,
    async predictPixels(images) {
      const batch = await pixelsTensor(images, inputSize);
      try {
        if (!backbone) return Array.from(await predictPDog(network, batch, 32), (pDog) => ({ pDog }));
        const { features, imagenet } = backbone.featuresAndImagenet(batch);
        const pDog = await predictPDog(network, features, 256);
        features.dispose();
        const mass = imagenet ? ((await imagenet.array()) as number[][]).map(imagenetAnimalMass) : undefined;
        imagenet?.dispose();
        return Array.from(pDog, (p, i) => ({ pDog: p, animalMass: mass?.[i] }));
      } finally {
        batch.dispose();
      }
    },
    dispose() {
      network.dispose();
    },
  };
}
