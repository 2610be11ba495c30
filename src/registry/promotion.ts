import type { Database, ModelRow } from '../db/index.js';
import type { DatasetManifest } from '../datasets/versions.js';
import type { BinaryMetrics } from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { loadClassifier } from './classifier.js';
import { degenerateReason } from './degenerate.js';
import { evaluateOnSplit } from './evaluate.js';

export type PromotionMetric = 'accuracy' | 'f1' | 'rocAuc';

export interface PromotionDecision {
  promoted: boolean;
  reason: string;
  candidate: number;
  incumbent?: { modelId: string; value: number };
}

export interface PromotionDependencies {
  db: Pick<Database, 'models'>;
  blobs: BlobStore;
  backbones: BackboneProvider;
}

/**
 * A candidate replaces the serving model only if it does better on the same test split: the incumbent is
 * re-evaluated on the candidate's test split, since it may have been measured on another dataset version.
 */
export async function promoteIfBetter(
  deps: PromotionDependencies,
  candidate: ModelRow,
  candidateMetrics: BinaryMetrics,
  manifest: DatasetManifest,
  rule: { metric: PromotionMetric; minImprovement: number },
  actor = 'training',
): Promise<PromotionDecision> {
  const candidateValue = candidateMetrics[rule.metric];
  const degenerate = degenerateReason(candidateMetrics);
  if (degenerate) return { promoted: false, reason: `not promoted: ${degenerate}`, candidate: candidateValue };
  const current = await deps.db.models.current();
  if (!current) {
    await deps.db.models.promote(candidate.id, { reason: 'first model', actor });
    return { promoted: true, reason: 'first model', candidate: candidateValue };
  }
  const incumbentClassifier = await loadClassifier(deps, current);
  let incumbentValue: number;
  try {
    incumbentValue = (await evaluateOnSplit(deps, incumbentClassifier, manifest, 'test'))[rule.metric];
  } finally {
    incumbentClassifier.dispose();
  }
  const incumbent = { modelId: current.id, value: incumbentValue };
  const fmt = (value: number) => value.toFixed(4);
  if (candidateValue > incumbentValue + rule.minImprovement) {
    const reason = `${rule.metric} ${fmt(candidateValue)} beats ${current.id} (${fmt(incumbentValue)}) on the same test split`;
    await deps.db.models.promote(candidate.id, { reason, actor });
    return { promoted: true, reason, candidate: candidateValue, incumbent };
  }
  return {
    promoted: false,
    reason: `${rule.metric} ${fmt(candidateValue)} does not beat ${current.id} (${fmt(incumbentValue)}) by more than ${rule.minImprovement}`,
    candidate: candidateValue,
    incumbent,
  };
}
