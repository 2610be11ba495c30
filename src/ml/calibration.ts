/**
 * Temperature scaling (Guo et al. 2017) for the single-sigmoid P(dog) output, and the expected calibration error
 * that says whether a "90% dog" is right nine times in ten.
 */

/** Keeps log(p / (1 − p)) finite for the 0 and 1 a float32 sigmoid saturates to. */
const PROBABILITY_FLOOR = 1e-7;
/**
 * A validation split without a single error has no finite optimum (the loss keeps falling as T → 0): the floor
 * keeps such a model from being made absurdly sharp.
 */
const TEMPERATURE_RANGE = { min: 0.25, max: 20 };
const SEARCH_STEPS = 80;

export const RELIABILITY_BINS = 15;

export function logit(p: number): number {
  const clamped = Math.min(1 - PROBABILITY_FLOOR, Math.max(PROBABILITY_FLOOR, p));
  return Math.log(clamped / (1 - clamped));
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** P(dog) with its logit divided by `temperature`: > 1 softens an over-confident model, < 1 sharpens it. */
export function applyTemperature(pDog: number, temperature: number): number {
  return temperature === 1 ? pDog : sigmoid(logit(pDog) / temperature);
}

/** Mean binary cross-entropy of the tempered probabilities. */
export function temperedLogLoss(labels: readonly number[], pDog: readonly number[], temperature: number): number {
  let total = 0;
  labels.forEach((label, i) => {
    const p = Math.min(1 - PROBABILITY_FLOOR, Math.max(PROBABILITY_FLOOR, applyTemperature(pDog[i]!, temperature)));
    total -= label === 1 ? Math.log(p) : Math.log(1 - p);
  });
  return total / labels.length;
}

/**
 * The temperature minimising the log loss: golden-section search over log T, where the loss is unimodal
 * (it is convex in 1/T). Returns 1 for an empty input, where nothing can be learnt.
 */
export function fitTemperature(labels: readonly number[], pDog: readonly number[]): number {
  checkInputs(labels, pDog);
  if (labels.length === 0) return 1;
  const loss = (logT: number) => temperedLogLoss(labels, pDog, Math.exp(logT));
  const golden = (Math.sqrt(5) - 1) / 2;
  let low = Math.log(TEMPERATURE_RANGE.min);
  let high = Math.log(TEMPERATURE_RANGE.max);
  let left = high - golden * (high - low);
  let right = low + golden * (high - low);
  let leftLoss = loss(left);
  let rightLoss = loss(right);
  for (let step = 0; step < SEARCH_STEPS; step++) {
    if (leftLoss <= rightLoss) {
      high = right;
      right = left;
      rightLoss = leftLoss;
      left = high - golden * (high - low);
      leftLoss = loss(left);
    } else {
      low = left;
      left = right;
      leftLoss = rightLoss;
      right = low + golden * (high - low);
      rightLoss = loss(right);
    }
  }
  return Math.exp((low + high) / 2);
}

export interface ReliabilityBin {
  /** Confidence range [lower, upper) of the bin (the last bin includes 1). */
  lower: number;
  upper: number;
  /** Mean confidence max(p, 1 − p) of the predictions in the bin; NaN-free: 0 when empty. */
  confidence: number;
  /** Share of them whose predicted class (p ≥ 0.5 = dog) is right; 0 when empty. */
  accuracy: number;
  count: number;
}

export interface Reliability {
  /** Σ count/n · |accuracy − confidence| over the bins. */
  ece: number;
  bins: ReliabilityBin[];
}

/** Reliability diagram data and expected calibration error over equal-width confidence bins on [0, 1]. */
export function reliability(labels: readonly number[], pDog: readonly number[], binCount = RELIABILITY_BINS): Reliability {
  checkInputs(labels, pDog);
  const sums = Array.from({ length: binCount }, () => ({ confidence: 0, correct: 0, count: 0 }));
  labels.forEach((label, i) => {
    const p = pDog[i]!;
    const confidence = Math.max(p, 1 - p);
    const bin = sums[Math.min(binCount - 1, Math.floor(confidence * binCount))]!;
    bin.confidence += confidence;
    bin.correct += (p >= 0.5 ? 1 : 0) === label ? 1 : 0;
    bin.count += 1;
  });
  let ece = 0;
  const bins = sums.map(({ confidence, correct, count }, index) => {
    const meanConfidence = count === 0 ? 0 : confidence / count;
    const accuracy = count === 0 ? 0 : correct / count;
    if (count > 0) ece += (count / labels.length) * Math.abs(accuracy - meanConfidence);
    return { lower: index / binCount, upper: (index + 1) / binCount, confidence: meanConfidence, accuracy, count };
  });
  return { ece, bins };
}

export const expectedCalibrationError = (labels: readonly number[], pDog: readonly number[], binCount = RELIABILITY_BINS): number =>
  reliability(labels, pDog, binCount).ece;

function checkInputs(labels: readonly number[], pDog: readonly number[]): void {
  if (labels.length !== pDog.length) throw new Error(`${labels.length} labels but ${pDog.length} predictions`);
}
