import type { DatasetManifest } from '../datasets/versions.js';
import { imageBlobKey } from '../datasets/ingest.js';
import type { Split } from '../datasets/split.js';
import { decodeToRgb } from '../images/index.js';
import { binaryMetrics, initTensorflow, predictPDog, type BinaryMetrics } from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import { featuresFor } from '../training/features.js';
import type { Classifier } from './classifier.js';

const DECODE_CHUNK = 64;

/** P(dog) for stored images: transfer models reuse cached backbone features, others decode the pixels. */
export async function predictStored(deps: { blobs: BlobStore }, classifier: Classifier, hashes: readonly string[]): Promise<number[]> {
  if (classifier.backbone && classifier.network) {
    const { tf } = await initTensorflow();
    const features = await featuresFor(deps, classifier.backbone, hashes);
    const flat = new Float32Array(features.length * classifier.backbone.featureSize);
    features.forEach((vector, i) => flat.set(vector, i * classifier.backbone!.featureSize));
    const x = tf.tensor2d(flat, [features.length, classifier.backbone.featureSize]);
    const pDog = await predictPDog(classifier.network, x, 256);
    x.dispose();
    return Array.from(pDog);
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

export async function evaluateOnSplit(
  deps: { blobs: BlobStore },
  classifier: Classifier,
  manifest: DatasetManifest,
  split: Split = 'test',
): Promise<BinaryMetrics> {
  const items = manifest.items.filter((item) => item.split === split);
  const pDog = await predictStored(deps, classifier, items.map((item) => item.hash));
  return binaryMetrics(items.map((item) => (item.label === 'dog' ? 1 : 0)), pDog);
}
