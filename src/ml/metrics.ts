import { z } from 'zod';
export interface ConfusionMatrix {
  labels: ['cat', 'dog'];
  /** Rows are the true class, columns the predicted class, both in `labels` order. */
  matrix: number[][];
}

export interface BinaryMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** NaN when only one class is present: the ranking of dogs above cats is then undefined. */
  rocAuc: number;
  count: number;
  confusionMatrix: ConfusionMatrix;
}

/** A figure that may be undefined (NaN), as JSON holds it: JSON has no NaN, so NaN is written as null and read back as NaN. */
export const storedFigure = z.union([z.number(), z.nan()]).nullable().transform((value) => value ?? Number.NaN);

/** Metrics as a JSON column or file holds them, where an undefined ROC AUC is null. */
export const binaryMetricsSchema = z.object({
  accuracy: z.number(),
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  rocAuc: storedFigure,
  count: z.number(),
  confusionMatrix: z.object({ labels: z.tuple([z.literal('cat'), z.literal('dog')]), matrix: z.array(z.array(z.number())) }),
}) satisfies z.ZodType<BinaryMetrics, unknown>;

export interface RocPoint {
  falsePositiveRate: number;
  truePositiveRate: number;
  /** Predicting dog when p(dog) ≥ threshold gives this point. */
  threshold: number;
}

/** Classification quality with dog (label 1) as the positive class; an undefined ratio counts as 0. */
export function binaryMetrics(labels: number[], pDog: number[], threshold = 0.5): BinaryMetrics {
  checkInputs(labels, pDog);
  let truePositives = 0;
  let falsePositives = 0;
  let trueNegatives = 0;
  let falseNegatives = 0;
  labels.forEach((label, i) => {
    const predictedDog = pDog[i]! >= threshold;
    if (label === 1) predictedDog ? truePositives++ : falseNegatives++;
    else predictedDog ? falsePositives++ : trueNegatives++;
  });
  const precision = ratio(truePositives, truePositives + falsePositives);
  const recall = ratio(truePositives, truePositives + falseNegatives);
  return {
    accuracy: ratio(truePositives + trueNegatives, labels.length),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    rocAuc: rocAuc(labels, pDog),
    count: labels.length,
    confusionMatrix: {
      labels: ['cat', 'dog'],
      matrix: [
        [trueNegatives, falsePositives],
        [falseNegatives, truePositives],
      ],
    },
  };
}

/**
 * ROC AUC as the Mann–Whitney rank statistic: the probability that a random dog scores above a random cat,
 * tied scores sharing their average rank (so counting one half).
 */
export function rocAuc(labels: number[], pDog: number[]): number {
  checkInputs(labels, pDog);
  const order = labels.map((_, i) => i).sort((a, b) => pDog[a]! - pDog[b]!);
  let dogRankSum = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && pDog[order[end + 1]!] === pDog[order[start]!]) end++;
    const averageRank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) if (labels[order[k]!] === 1) dogRankSum += averageRank;
    start = end + 1;
  }
  const dogs = labels.filter((label) => label === 1).length;
  const cats = labels.length - dogs;
  if (dogs === 0 || cats === 0) return Number.NaN;
  return (dogRankSum - (dogs * (dogs + 1)) / 2) / (dogs * cats);
}

/** The ROC curve from (0, 0) to (1, 1), one point per distinct score used as threshold, for plotting. */
export function rocCurve(labels: number[], pDog: number[]): RocPoint[] {
  checkInputs(labels, pDog);
  const dogs = labels.filter((label) => label === 1).length;
  const cats = labels.length - dogs;
  const order = labels.map((_, i) => i).sort((a, b) => pDog[b]! - pDog[a]!);
  const points: RocPoint[] = [{ falsePositiveRate: 0, truePositiveRate: 0, threshold: Number.POSITIVE_INFINITY }];
  let truePositives = 0;
  let falsePositives = 0;
  order.forEach((index, k) => {
    if (labels[index] === 1) truePositives++;
    else falsePositives++;
    const next = order[k + 1];
    // Tied scores cross the threshold together: one point for all of them.
    if (next !== undefined && pDog[next] === pDog[index]) return;
    points.push({
      falsePositiveRate: ratio(falsePositives, cats),
      truePositiveRate: ratio(truePositives, dogs),
      threshold: pDog[index]!,
    });
  });
  return points;
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function checkInputs(labels: number[], pDog: number[]): void {
  if (labels.length !== pDog.length) {
    throw new Error(`${labels.length} labels but ${pDog.length} predictions`);
  }
  const bad = labels.findIndex((label) => label !== 0 && label !== 1);
  if (bad >= 0) throw new Error(`label ${bad} is ${labels[bad]}; labels are 0 (cat) or 1 (dog)`);
}
