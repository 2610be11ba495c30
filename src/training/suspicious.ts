import type { Database } from '../db/index.js';
import { loadManifest } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { loadClassifier } from '../registry/classifier.js';
import { predictStored } from '../registry/evaluate.js';
import type { BlobStore } from '../storage/index.js';

export interface SuspiciousImage {
  hash: string;
  label: 'cat' | 'dog';
  pDog: number;
  /** Binary cross-entropy of the label under the model: the higher, the more the model disagrees. */
  loss: number;
}

const PROBABILITY_FLOOR = 1e-7;

/**
 * The training images of a dataset version whose label the promoted model disagrees with most (highest loss),
 * so a curator can look at them first: mislabelled photos and photos of neither end up here.
 */
export async function suspiciousLabels(
  deps: { db: Pick<Database, 'models' | 'datasets' | 'images'>; blobs: BlobStore; backbones: BackboneProvider },
  datasetId: number,
  limit = 20,
): Promise<SuspiciousImage[]> {
  const model = await deps.db.models.current();
  if (!model) throw new CatdogError('no_promoted_model', 'No model is promoted yet: train one (`catdog train`) before looking for suspicious labels', 409);
  const { manifest } = await loadManifest(deps, datasetId);
  const items = manifest.items.filter((item) => item.split === 'train');
  const classifier = await loadClassifier(deps, model);
  let pDog: number[];
  try {
    pDog = await predictStored(deps, classifier, items.map((item) => item.hash));
  } finally {
    classifier.dispose();
  }
  return items
    .map((item, i) => {
      const p = Math.min(1 - PROBABILITY_FLOOR, Math.max(PROBABILITY_FLOOR, pDog[i]!));
      return { hash: item.hash, label: item.label, pDog: pDog[i]!, loss: -Math.log(item.label === 'dog' ? p : 1 - p) };
    })
    .sort((a, b) => b.loss - a.loss)
    .slice(0, limit);
}
