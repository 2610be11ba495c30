import type { BinaryMetrics } from '../ml/index.js';

/**
 * Below this many test photos of either class, one answer for all of them says little: a working but biased
 * model answers "dog" to 2 cats and 3 dogs quite often. From 5 of each, a model that ever says "cat" to a cat
 * does so for one of them almost surely.
 */
export const MIN_PHOTOS_PER_CLASS = 5;

export interface DegenerateVerdict {
  /** The one class the model answers. */
  predictsOnly: 'cat' | 'dog';
  /** Short, for a status: "degenerate: predicts only cat". */
  summary: string;
  /** With the counts that prove it. */
  reason: string;
}

/**
 * Whether a model's test results show it answers one class whatever the photo; undefined when it tells both apart
 * at least once (or the split has too few photos of a class to tell). Such a model can score near 50% accuracy on a
 * balanced split while being useless (F1 0 when it only says cat), so no metric threshold catches it: the confusion
 * matrix's empty column does.
 */
export function degenerateVerdict({ confusionMatrix }: Pick<BinaryMetrics, 'confusionMatrix'>): DegenerateVerdict | undefined {
  const [[catsCalledCat = 0, catsCalledDog = 0] = [], [dogsCalledCat = 0, dogsCalledDog = 0] = []] = confusionMatrix.matrix;
  const trueCats = catsCalledCat + catsCalledDog;
  const trueDogs = dogsCalledCat + dogsCalledDog;
  if (trueCats < MIN_PHOTOS_PER_CLASS || trueDogs < MIN_PHOTOS_PER_CLASS) return undefined;
  const total = trueCats + trueDogs;
  const verdict = (predictsOnly: 'cat' | 'dog', wrong: string): DegenerateVerdict => ({
    predictsOnly,
    summary: `degenerate: predicts only ${predictsOnly}`,
    reason: `degenerate: it answers ${predictsOnly} for all ${total} test photos (${wrong})`,
  });
  if (catsCalledDog + dogsCalledDog === 0) return verdict('cat', `${trueDogs} of them dogs`);
  if (catsCalledCat + dogsCalledCat === 0) return verdict('dog', `${trueCats} of them cats`);
  return undefined;
}

/** Why a model is degenerate (`degenerateVerdict`'s reason), or undefined when it is not. */
export const degenerateReason = (metrics: Pick<BinaryMetrics, 'confusionMatrix'>): string | undefined => degenerateVerdict(metrics)?.reason;
