import type { ModelRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { nearestCentroidDistance } from '../ml/centroids.js';
import {
  applyTemperature,
  deserializeModel,
  imagenetAnimalMass,
  initTensorflow,
  pooledFeatures,
  predictPDog,
  splitBackbone,
  zeroShotPDog,
  type Backbone,
  type LayersModel,
  type NetworkInput,
  type Tensor2D,
} from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import { readModelFiles, type BackboneReference, type ModelCard } from './artifacts.js';

export const ZERO_SHOT_MODEL_ID = 'zero-shot';

export interface Prediction {
  pDog: number;
  /** Share of the ImageNet head's mass on cat and dog classes, when the model has such a head. */
  animalMass?: number;
  /** Cosine distance of the photo's features to the nearer class centroid of the training photos. */
  centroidDistance?: number;
}

/**
 * The model's answer from the raw P(dog) of each view (the photo, and its mirror image with test-time
 * augmentation): their mean, then temperature scaling, so the confidence means what it says.
 */
export function combineViews(card: Pick<ModelCard, 'calibration'> | null, views: readonly ArrayLike<number>[]): number[] {
  const first = views[0];
  if (!first) return [];
  const temperature = card?.calibration?.temperature ?? 1;
  return Array.from({ length: first.length }, (_, i) => {
    const mean = views.reduce((sum, view) => sum + view[i]!, 0) / views.length;
    return applyTemperature(mean, temperature);
  });
}

/** A model ready to answer: the promoted one, any registered one, or the zero-shot fallback. */
export interface Classifier {
  readonly modelId: string;
  readonly version: number | null;
  readonly card: ModelCard | null;
  readonly inputSize: number;
  /** What the network is fed from pixels (backbone features, or activations below fine-tuned blocks); null when it takes pixels. */
  readonly input: NetworkInput | null;
  /** The trained part: the head of a transfer model (with its fine-tuned blocks, if any) or the whole CNN (fed pixels). */
  readonly network: LayersModel | null;
  predictPixels(images: readonly Uint8Array[]): Promise<Prediction[]>;
  /**
   * Says that `images` photos are being decoded for `predictPixels`, so that a model call about to start may wait
   * for them and answer them in the same call (a batching classifier does; others need not). The returned function
   * withdraws the announcement: call it once, just before `predictPixels` or when the photos will not come.
   */
  announce?(images: number): () => void;
  dispose(): void;
}

async function pixelsTensor(images: readonly Uint8Array[], size: number) {
  const { tf } = await initTensorflow();
  const flat = new Float32Array(images.length * size * size * 3);
  images.forEach((image, i) => flat.set(image, i * size * size * 3));
  return tf.tensor4d(flat, [images.length, size, size, 3]);
}

async function featureRows(features: Tensor2D): Promise<Float32Array[]> {
  const values = (await features.data()) as Float32Array;
  const width = features.shape[1];
  return Array.from({ length: features.shape[0] }, (_, i) => values.subarray(i * width, (i + 1) * width));
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
    input: null,
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
  try {
    const input = card.backbone ? await networkInput(deps.backbones, model.id, card, card.backbone) : null;
    return classifierFor({ modelId: model.id, version: model.version, card, input, network });
  } catch (error) {
    network.dispose();
    throw error;
  }
}

/** The backbones a transfer model was trained on, each checked by content id, as its network's input. */
async function networkInput(backbones: BackboneProvider, modelId: string, card: ModelCard, primary: BackboneReference): Promise<NetworkInput> {
  const references = [primary, ...(card.ensemble ?? [])];
  for (const reference of references) {
    const backbone = await backbones.get(reference, card.imageSize);
    if (backbone.id !== reference.id) {
      throw new CatdogError(
        'backbone_mismatch',
        `model ${modelId} was trained on backbone ${reference.id} but ${reference.source} now holds ${backbone.id}`,
        409,
      );
    }
  }
  const backbone = await backbones.combined(references, card.imageSize);
  return card.fineTuned ? await splitBackbone(backbone, card.fineTuned.layer) : pooledFeatures(backbone);
}

/** A classifier over a network in memory: a loaded model, or one just trained and not yet stored. */
export function classifierFor(parts: { modelId: string; version: number | null; card: ModelCard; input: NetworkInput | null; network: LayersModel }): Classifier {
  const { card, input, network } = parts;
  const inputSize = card.imageSize;
  return {
    ...parts,
    inputSize,
    async predictPixels(images) {
      const { tf } = await initTensorflow();
      const batch = await pixelsTensor(images, inputSize);
      const mirrored = card.tta ? tf.reverse(batch, 2) : undefined;
      try {
        if (!input) {
          const views = [await predictPDog(network, batch, 32)];
          if (mirrored) views.push(await predictPDog(network, mirrored, 32));
          return combineViews(card, views).map((pDog) => ({ pDog }));
        }
        const { input: networkInput, features, imagenet } = input.forward(batch);
        const views = [await predictPDog(network, networkInput, 256)];
        if (mirrored) {
          const mirroredInput = input.features(mirrored);
          views.push(await predictPDog(network, mirroredInput, 256));
          mirroredInput.dispose();
        }
        const reference = card.neither;
        const distances = reference ? await featureRows(features).then((rows) => rows.map((row) => nearestCentroidDistance(row, reference.centroids))) : undefined;
        // For a head on the backbone the network's input is the features tensor itself; dispose is idempotent.
        networkInput.dispose();
        features.dispose();
        const mass = imagenet ? ((await imagenet.array()) as number[][]).map(imagenetAnimalMass) : undefined;
        imagenet?.dispose();
        return combineViews(card, views).map((pDog, i) => ({ pDog, animalMass: mass?.[i], centroidDistance: distances?.[i] }));
      } finally {
        batch.dispose();
        mirrored?.dispose();
      }
    },
    dispose() {
      network.dispose();
    },
  };
}
