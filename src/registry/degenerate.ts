import { z } from 'zod';

/** The part of stored metrics (a model's or a run's JSON column, or fresh `binaryMetrics`) this check reads. */
const ConfusionSchema = z.object({
  confusionMatrix: z.object({
    matrix: z.tuple([z.tuple([z.number(), z.number()]), z.tuple([z.number(), z.number()])]),
  }),
});

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
 * at least once (or no confusion matrix was recorded, or the split has too few photos of a class to tell). Such a
 * model can score near 50% accuracy on a balanced split while being useless (F1 0 when it only says cat), so no
 * metric threshold catches it: the confusion matrix's empty column does.
 */
export function degenerateVerdict(metrics: unknown): DegenerateVerdict | undefined {
  const parsed = ConfusionSchema.safeParse(metrics);
  if (!parsed.success) return undefined;
  const [[catsCalledCat, catsCalledDog], [dogsCalledCat, dogsCalledDog]] = parsed.data.confusionMatrix.matrix;
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
export const degenerateReason = (metrics: unknown): string | undefined => degenerateVerdict(metrics)?.reason;
