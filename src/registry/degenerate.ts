import type { ConfusionMatrix } from '../ml/index.js';

/**
 * Why a model's test results show it answers one class whatever the photo, or undefined when it tells both
 * apart at least once. Such a model can score near 50% accuracy on a balanced split while being useless (F1 0
 * when it only says cat), so no metric threshold catches it: the confusion matrix's empty column does.
 */
export function degenerateReason(metrics: { confusionMatrix?: ConfusionMatrix | undefined }): string | undefined {
  const confusion = metrics.confusionMatrix;
  if (!confusion) return undefined;
  const [cats, dogs] = confusion.matrix;
  if (!cats || !dogs) return undefined;
  const trueCats = cats[0]! + cats[1]!;
  const trueDogs = dogs[0]! + dogs[1]!;
  // A split of one class cannot show whether the model tells the classes apart.
  if (trueCats === 0 || trueDogs === 0) return undefined;
  const calledCat = cats[0]! + dogs[0]!;
  const calledDog = cats[1]! + dogs[1]!;
  const total = trueCats + trueDogs;
  if (calledDog === 0) return `degenerate: it answers cat for all ${total} test photos (${trueDogs} of them dogs)`;
  if (calledCat === 0) return `degenerate: it answers dog for all ${total} test photos (${trueCats} of them cats)`;
  return undefined;
}
