import type { Database, ModelRow, NewModel } from '../db/index.js';
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

export interface Registration {
  model: ModelRow;
  promotion: PromotionDecision;
}

/**
 * The one way a model enters the registry, whoever made it (a training run, a sweep's winner, a pipeline step, an
 * import): its row is written after its files, once (an earlier attempt of the same job may have written it), then it
 * is promoted if it beats the serving model on `manifest`'s test split.
 */
export async function registerAndPromote(
  deps: PromotionDependencies & { db: Pick<Database, 'models'> },
  model: NewModel & { id: string },
  metrics: BinaryMetrics,
  manifest: DatasetManifest,
  rule: { metric: PromotionMetric; minImprovement: number },
  actor: string,
): Promise<Registration> {
  const registered = (await deps.db.models.get(model.id)) ?? (await deps.db.models.create(model));
  return { model: registered, promotion: await promoteIfBetter(deps, registered, metrics, manifest, rule, actor) };
}

/** Promotions that another writer beat to it are compared again, against the new serving model, this many times. */
const MAX_PROMOTION_ATTEMPTS = 5;

/**
 * A candidate replaces the serving model only if it does better on the same test split: the incumbent is
 * re-evaluated on the candidate's test split, since it may have been measured on another dataset version.
 * Evaluating takes a while, so the promotion is a compare-and-set: it applies only if the model compared against
 * still serves; when another candidate was promoted meanwhile, the comparison is made again against that one.
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
  if (degenerate) return { promoted: false, reason: degenerate, candidate: candidateValue };
  for (let attempt = 1; attempt <= MAX_PROMOTION_ATTEMPTS; attempt += 1) {
    const current = await deps.db.models.current();
    if (current?.id === candidate.id) return { promoted: true, reason: 'already the serving model', candidate: candidateValue };
    if (!current) {
      if (await deps.db.models.promoteIfCurrent(candidate.id, null, { reason: 'first model', actor })) {
        return { promoted: true, reason: 'first model', candidate: candidateValue };
      }
      continue;
    }
    const incumbent = { modelId: current.id, value: await incumbentValue(deps, current, manifest, rule.metric) };
    const fmt = (value: number) => value.toFixed(4);
    if (!(candidateValue > incumbent.value + rule.minImprovement)) {
      return {
        promoted: false,
        reason: `${rule.metric} ${fmt(candidateValue)} does not beat ${current.id} (${fmt(incumbent.value)}) by more than ${rule.minImprovement}`,
        candidate: candidateValue,
        incumbent,
      };
    }
    const reason = `${rule.metric} ${fmt(candidateValue)} beats ${current.id} (${fmt(incumbent.value)}) on the same test split`;
    if (await deps.db.models.promoteIfCurrent(candidate.id, current.id, { reason, actor })) {
      return { promoted: true, reason, candidate: candidateValue, incumbent };
    }
  }
  return {
    promoted: false,
    reason: `the serving model changed ${MAX_PROMOTION_ATTEMPTS} times while ${candidate.id} was being compared; promote it by hand if it is still wanted`,
    candidate: candidateValue,
  };
}

async function incumbentValue(deps: PromotionDependencies, current: ModelRow, manifest: DatasetManifest, metric: PromotionMetric): Promise<number> {
  const classifier = await loadClassifier(deps, current);
  try {
    return (await evaluateOnSplit(deps, classifier, manifest, 'test'))[metric];
  } finally {
    classifier.dispose();
  }
}
