import type { ModelRow } from '../db/index.js';
import type { DatasetManifest } from '../datasets/versions.js';
import { imageBlobKey } from '../storage/index.js';
import type { Split } from '../datasets/split.js';
import { decodeToRgb } from '../images/index.js';
import { binaryMetrics, initTensorflow, predictPDog, type BinaryMetrics } from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import { featuresForRequests, mirroredVariant } from '../ml/feature-cache.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { combineViews, loadClassifier, type Classifier } from './classifier.js';

const DECODE_CHUNK = 64;
/** Images whose cached network inputs are held at once: activations below fine-tuned blocks take ~300 KB each. */
const CACHED_CHUNK = 512;

/**
 * P(dog) for stored images, as the classifier would answer (test-time augmentation and temperature included):
 * transfer models reuse cached backbone features (or activations), others decode the pixels.
 */
export async function predictStored(deps: { blobs: BlobStore }, classifier: Classifier, hashes: readonly string[]): Promise<number[]> {
  const { input, network, card } = classifier;
  const result: number[] = [];
  if (input && network) {
    const { tf } = await initTensorflow();
    const networkOn = async (inputs: Float32Array[]) => {
      const flat = new Float32Array(inputs.length * input.featureSize);
      inputs.forEach((values, i) => flat.set(values, i * input.featureSize));
      const x = tf.tensor(flat, [inputs.length, ...input.featureShape]);
      try {
        return await predictPDog(network, x, 256);
      } finally {
        x.dispose();
      }
    };
    for (let start = 0; start < hashes.length; start += CACHED_CHUNK) {
      const chunk = hashes.slice(start, start + CACHED_CHUNK);
      const inputs = await featuresForRequests(deps, input, [{ hashes: chunk }, ...(card?.tta ? [{ hashes: chunk, variant: mirroredVariant }] : [])]);
      const views: ArrayLike<number>[] = [];
      for (const viewInputs of inputs) views.push(await networkOn(viewInputs));
      result.push(...combineViews(card, views));
    }
    return result;
  }
  for (let start = 0; start < hashes.length; start += DECODE_CHUNK) {
    const chunk = hashes.slice(start, start + DECODE_CHUNK);
    const pixels = await Promise.all(
      chunk.map(async (hash) => (await decodeToRgb(await deps.blobs.get(imageBlobKey(hash)), classifier.inputSize)).data),
    );
    for (const prediction of await classifier.predictPixels(pixels)) result.push(prediction.pDog);
  }
  return result;
}

/** P(dog) for stored images from a registered model, its classifier loaded for this and released after. */
export async function predictStoredWith(
  deps: { blobs: BlobStore; backbones: BackboneProvider },
  model: Pick<ModelRow, 'id' | 'artifactPrefix' | 'version'>,
  hashes: readonly string[],
): Promise<number[]> {
  const classifier = await loadClassifier(deps, model);
  try {
    return await predictStored(deps, classifier, hashes);
  } finally {
    classifier.dispose();
  }
}

/** Labels (1 = dog) and the classifier's P(dog) for every image of one split. */
export async function scoreSplit(
  deps: { blobs: BlobStore },
  classifier: Classifier,
  manifest: DatasetManifest,
  split: Split,
): Promise<{ labels: number[]; pDog: number[] }> {
  const items = manifest.items.filter((item) => item.split === split);
  const pDog = await predictStored(deps, classifier, items.map((item) => item.hash));
  return { labels: items.map((item) => (item.label === 'dog' ? 1 : 0)), pDog };
}

export async function evaluateOnSplit(
  deps: { blobs: BlobStore },
  classifier: Classifier,
  manifest: DatasetManifest,
  split: Split = 'test',
): Promise<BinaryMetrics> {
  const { labels, pDog } = await scoreSplit(deps, classifier, manifest, split);
  return binaryMetrics(labels, pDog);
}
