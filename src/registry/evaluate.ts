import type { DatasetManifest } from '../datasets/versions.js';
import { imageBlobKey } from '../datasets/ingest.js';
import type { Split } from '../datasets/split.js';
import { decodeToRgb } from '../images/index.js';
import { binaryMetrics, initTensorflow, predictPDog, type BinaryMetrics } from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import { featuresFor, mirroredVariant } from '../training/features.js';
import { combineViews, type Classifier } from './classifier.js';

const DECODE_CHUNK = 64;

/**
 * P(dog) for stored images, as the classifier would answer (test-time augmentation and temperature included):
 * transfer models reuse cached backbone features, others decode the pixels.
 */
export async function predictStored(deps: { blobs: BlobStore }, classifier: Classifier, hashes: readonly string[]): Promise<number[]> {
  const { backbone, network, card } = classifier;
  if (backbone && network) {
    const { tf } = await initTensorflow();
    const headOn = async (features: Float32Array[]) => {
      const flat = new Float32Array(features.length * backbone.featureSize);
      features.forEach((vector, i) => flat.set(vector, i * backbone.featureSize));
      const x = tf.tensor2d(flat, [features.length, backbone.featureSize]);
      try {
        return await predictPDog(network, x, 256);
      } finally {
        x.dispose();
      }
    };
    const views = [await headOn(await featuresFor(deps, backbone, hashes))];
    if (card?.tta) views.push(await headOn(await featuresFor(deps, backbone, hashes, { variant: mirroredVariant })));
    return combineViews(card, views);
  }
  const result: number[] = [];
  for (let start = 0; start < hashes.length; start += DECODE_CHUNK) {
    const chunk = hashes.slice(start, start + DECODE_CHUNK);
    const pixels = await Promise.all(
      chunk.map(async (hash) => (await decodeToRgb(await deps.blobs.get(imageBlobKey(hash)), classifier.inputSize)).data),
    );
    for (const prediction of await classifier.predictPixels(pixels)) result.push(prediction.pDog);
  }
  return result;
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
