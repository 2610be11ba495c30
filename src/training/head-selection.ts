import { adamSettings, columnRegressions, type Tf } from '../ml/index.js';
import { shuffledIndices } from './batches.js';

/**
 * The L2 weights cross-validation chooses from, half a decade apart. The penalty is added to the mean log loss per
 * training row, as the logistic head's regularizer adds it, so a weight w matches scikit-learn's C = 1 / (2 w n) for
 * n rows: on 1,800 photos and their mirrored copies, 1e-5 .. 1e-2 spans C ≈ 0.01 .. 10.
 */
export const HEAD_L2_GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2] as const;
export const HEAD_SELECTION_FOLDS = 5;

/** The photos the head may learn from (train and validation splits), each with its fold. */
export interface CrossValidationMaterial {
  /** One feature vector per photo. */
  features: readonly Float32Array[];
  /** The augmented copy of each photo, in the same order; empty without augmentation. */
  augmented: readonly Float32Array[];
  labels: readonly number[];
  /** 0 .. folds − 1 per photo; a photo and its augmented copy are always in the same fold. */
  folds: readonly number[];
}

export interface HeadCandidate {
  l2: number;
  /** The number of epochs after which the out-of-fold answers had the lowest log loss at this weight. */
  epochs: number;
  /** Log loss and accuracy of the out-of-fold P(dog) of every photo after that many epochs. */
  outOfFoldLoss: number;
  outOfFoldAccuracy: number;
}

export interface HeadSelection {
  chosen: HeadCandidate;
  candidates: HeadCandidate[];
  /** P(dog) of every photo from the fold's head that did not learn from it, at the chosen weight and epoch: the temperature fits on these. */
  outOfFold: { labels: number[]; pDog: number[] };
  durationMs: number;
}

export interface HeadSelectionOptions {
  grid: readonly number[];
  folds: number;
  /** The most epochs a candidate trains. */
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
  signal?: AbortSignal;
}

/** A photo's fold, from its content hash: the same photo lands in the same fold whatever else the data set holds. */
export function foldOf(hash: string, folds: number): number {
  return Number.parseInt(hash.slice(-8), 16) % folds;
}

/**
 * Chooses the logistic head's L2 weight and epoch count by k-fold cross-validation on the photos the run may learn
 * from. Every (weight, fold) pair is its own logistic regression, trained as the head is (Adam at the run's learning
 * rate and batch size, the L2 penalty on the weights, the same initialisation scale) on the other folds' photos and
 * their augmented copies; all of them are columns of one weight matrix so they train in the same steps, each on its
 * own rows only (a per-column mask), which is what makes a 7 × 5 grid affordable. After every epoch each column
 * answers its own fold; the (weight, epoch) whose out-of-fold answers have the lowest log loss wins, ties going to
 * the stronger penalty and then the fewer epochs.
 */
export async function selectHeadL2(tf: Tf, material: CrossValidationMaterial, options: HeadSelectionOptions): Promise<HeadSelection> {
  const started = Date.now();
  const { features, augmented, labels, folds } = material;
  const { grid, epochs, batchSize } = options;
  const featureSize = features[0]?.length ?? 0;
  const columns = grid.length * options.folds;
  const columnL2 = (column: number) => grid[Math.floor(column / options.folds)]!;
  const columnFold = (column: number) => column % options.folds;
  const rows = [...features, ...augmented];
  const rowPhoto = (row: number) => row % features.length;

  // Glorot-uniform as the head's one-unit Dense layer draws it (fan-out 1), for every column.
  const limit = Math.sqrt(6 / (featureSize + 1));
  const l2 = Array.from({ length: columns }, (_, column) => columnL2(column));
  const learnsOf = (row: number) => Array.from({ length: columns }, (_, column) => (folds[rowPhoto(row)] === columnFold(column) ? 0 : 1));
  const initial = { weights: tf.randomUniform([featureSize, columns], -limit, limit, 'float32', options.seed), bias: tf.zeros([columns]) };
  const adam = adamSettings(tf, options.learningRate);
  const regressions = await columnRegressions(tf, { ...initial, l2, adam }).finally(() => tf.dispose([initial.weights, initial.bias]));
  // answers[column][epoch][photo]: P(dog) of the photos of the column's fold.
  const answers: Float32Array[][] = Array.from({ length: columns }, () => []);
  const photoRows = Int32Array.from(features, (_, photo) => photo);
  try {
    const [x, y, learns] = [
      tf.tensor2d(concatenated(rows), [rows.length, featureSize]),
      tf.tensor2d(rows.map((_, row) => labels[rowPhoto(row)]!), [rows.length, 1]),
      tf.tensor2d(rows.flatMap((_, row) => learnsOf(row)), [rows.length, columns]),
    ];
    try {
      regressions.load(x, y, learns);
    } finally {
      tf.dispose([x, y, learns]);
    }
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const order = shuffledIndices(rows.length, options.seed + epoch);
      for (let start = 0; start < order.length; start += batchSize) {
        options.signal?.throwIfAborted();
        regressions.step(Int32Array.from(order.slice(start, start + batchSize)));
        // Other work (a cancel, the progress line) gets the event loop between a few steps, not after every one.
        if ((start / batchSize) % YIELD_EVERY_STEPS === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const values = await regressions.pDog(photoRows);
      for (let column = 0; column < columns; column++) {
        answers[column]!.push(Float32Array.from(features, (_, photo) => values[photo * columns + column]!));
      }
    }
  } finally {
    regressions.dispose();
  }

  const outOfFoldAt = (l2Index: number, epochIndex: number) =>
    features.map((_, photo) => answers[l2Index * options.folds + folds[photo]!]![epochIndex]![photo]!);
  const candidates = grid.map((weight, l2Index) => {
    let best: HeadCandidate | undefined;
    for (let epochIndex = 0; epochIndex < epochs; epochIndex++) {
      const pDog = outOfFoldAt(l2Index, epochIndex);
      const candidate = { l2: weight, epochs: epochIndex + 1, outOfFoldLoss: meanLogLoss(labels, pDog), outOfFoldAccuracy: accuracy(labels, pDog) };
      if (!best || candidate.outOfFoldLoss < best.outOfFoldLoss) best = candidate;
    }
    return best!;
  });
  const chosen = candidates.reduce((best, candidate) => (candidate.outOfFoldLoss < best.outOfFoldLoss || (candidate.outOfFoldLoss === best.outOfFoldLoss && candidate.l2 > best.l2) ? candidate : best));
  return {
    chosen,
    candidates,
    outOfFold: { labels: [...labels], pDog: outOfFoldAt(grid.indexOf(chosen.l2), chosen.epochs - 1) },
    durationMs: Date.now() - started,
  };
}

/** Steps between turns of the event loop: about a millisecond of graph steps, so a cancel is still seen at once. */
const YIELD_EVERY_STEPS = 8;

const EPSILON = 1e-7;

function meanLogLoss(labels: readonly number[], pDog: readonly number[]): number {
  let sum = 0;
  pDog.forEach((p, i) => {
    const clipped = Math.min(1 - EPSILON, Math.max(EPSILON, p));
    sum -= labels[i]! * Math.log(clipped) + (1 - labels[i]!) * Math.log(1 - clipped);
  });
  return sum / pDog.length;
}

function accuracy(labels: readonly number[], pDog: readonly number[]): number {
  return pDog.filter((p, i) => (p >= 0.5 ? 1 : 0) === labels[i]).length / pDog.length;
}

function concatenated(rows: readonly Float32Array[]): Float32Array {
  const width = rows[0]?.length ?? 0;
  const joined = new Float32Array(rows.length * width);
  rows.forEach((row, index) => joined.set(row, index * width));
  return joined;
}
