import type { CatdogConfig } from '../config/index.js';
import type { Database, Label, PredictionProbabilities, PredictionRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import type { ModelCard } from '../registry/artifacts.js';
import type { Prediction } from '../registry/classifier.js';

/**
 * `imagenet_mass`: the backbone's ImageNet head puts too little probability on cat and dog classes;
 * `far_from_classes`: the photo's features are farther from both class centroids than the training photos are.
 */
export const NEITHER_REASONS = ['imagenet_mass', 'far_from_classes'] as const;
export type NeitherReason = (typeof NEITHER_REASONS)[number];

export type NeitherSettings = CatdogConfig['serving']['neither'];

/** Why a prediction is "neither" a cat nor a dog, or undefined when it is one of them. */
export function neitherReason(prediction: Prediction, card: Pick<ModelCard, 'neither'> | null, settings: NeitherSettings): NeitherReason | undefined {
  if (!settings.enabled) return undefined;
  const threshold = card?.neither?.animalMassThreshold ?? settings.threshold;
  if (prediction.animalMass !== undefined && prediction.animalMass < threshold) return 'imagenet_mass';
  const farDistance = card?.neither?.farDistance;
  if (settings.farFromClasses && farDistance !== undefined && prediction.centroidDistance !== undefined && prediction.centroidDistance > farDistance) {
    return 'far_from_classes';
  }
  return undefined;
}

/**
 * What a prediction row stores besides P(cat) and P(dog): the column holds numbers only, so the reason is kept
 * as its index in NEITHER_REASONS.
 */
export function neitherEvidence(prediction: Prediction, reason: NeitherReason | undefined): Omit<PredictionProbabilities, 'cat' | 'dog'> {
  const evidence: Omit<PredictionProbabilities, 'cat' | 'dog'> = {};
  if (prediction.animalMass !== undefined) evidence.animalMass = prediction.animalMass;
  if (prediction.centroidDistance !== undefined) evidence.centroidDistance = prediction.centroidDistance;
  if (reason) evidence.neitherReason = NEITHER_REASONS.indexOf(reason);
  return evidence;
}

export function storedNeitherReason(row: Pick<PredictionRow, 'label' | 'probabilities'>): NeitherReason | undefined {
  if (row.label !== 'neither') return undefined;
  return NEITHER_REASONS[row.probabilities.neitherReason ?? 0];
}

export interface ThresholdSample {
  animalMass: number;
  /** The user's verdict. */
  label: Label;
}

export interface ThresholdSuggestion {
  threshold: number;
  /** Validated cats and dogs the threshold would call "neither" (share), at most `maxAnimalLoss`. */
  animalLoss: number;
  /** Validated "neither" photos it catches (share); NaN without any. */
  neitherRecall: number;
  animals: number;
  neither: number;
}

/**
 * The highest ImageNet-mass threshold that turns at most `maxAnimalLoss` of the validated cats and dogs into
 * "neither": the threshold is the k-th smallest animal mass, so at most k of them fall strictly below it.
 * The validated "neither" photos are the negatives it is scored on.
 */
export function tuneNeitherThreshold(samples: readonly ThresholdSample[], maxAnimalLoss = 0.005): ThresholdSuggestion {
  const animals = samples.filter((sample) => sample.label !== 'neither').map((sample) => sample.animalMass).sort((a, b) => a - b);
  const negatives = samples.filter((sample) => sample.label === 'neither').map((sample) => sample.animalMass);
  if (animals.length === 0) {
    throw new CatdogError('not_enough_validations', 'No validated cat or dog prediction records an ImageNet mass: validate some predictions first', 409);
  }
  const allowed = Math.floor(maxAnimalLoss * animals.length);
  const threshold = animals[allowed]!;
  const below = (values: number[]) => values.filter((mass) => mass < threshold).length;
  return {
    threshold,
    animalLoss: below(animals) / animals.length,
    neitherRecall: negatives.length === 0 ? Number.NaN : below(negatives) / negatives.length,
    animals: animals.length,
    neither: negatives.length,
  };
}

const PAGE = 200;

/** The threshold suggested by every validated prediction that recorded its ImageNet mass. */
export async function suggestNeitherThreshold(db: Pick<Database, 'predictions'>, maxAnimalLoss = 0.005): Promise<ThresholdSuggestion> {
  const samples: ThresholdSample[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await db.predictions.list({ validated: true, limit: PAGE, offset });
    for (const row of page.items) {
      const mass = row.probabilities.animalMass;
      if (mass !== undefined && row.validatedLabel) samples.push({ animalMass: mass, label: row.validatedLabel });
    }
    if (offset + PAGE >= page.total) break;
  }
  return tuneNeitherThreshold(samples, maxAnimalLoss);
}
