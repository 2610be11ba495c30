import { z } from 'zod';
import { storedDocument } from './stored-document.js';

const probability = z.number().min(0).max(1);

/** A prediction's `probabilities`: P(cat), P(dog), and the evidence the neither check weighed (numbers only). */
const predictionProbabilitiesSchema = z.object({
  cat: probability,
  dog: probability,
  /** The ImageNet probability mass of cats and dogs, when the backbone has an ImageNet head. */
  animalMass: z.number().min(0).optional(),
  /** Distance of the photo's features to the nearest class centroid of the model's training photos. */
  centroidDistance: z.number().optional(),
  /** Why the photo is neither cat nor dog, as its index in serving's NEITHER_REASONS. */
  neitherReason: z.int().min(0).optional(),
});

export type PredictionProbabilities = z.infer<typeof predictionProbabilitiesSchema>;

export const predictionProbabilitiesDocument = storedDocument('prediction probabilities', predictionProbabilitiesSchema);
