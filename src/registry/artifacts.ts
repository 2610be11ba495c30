import { z } from 'zod';
import { CatdogError } from '../errors.js';
import type { DeclaredBackbone } from '../ml/backbone-provider.js';
import { backboneOutputNamesSchema, PIXEL_SCALINGS } from '../ml/catalogue.js';
import type { ClassCentroids } from '../ml/centroids.js';
import type { BlobStore } from '../storage/index.js';
import type { ModelCalibration } from './calibration.js';

export type Architecture = 'mobilenet' | 'cnn';

/** `catdog.json`: everything needed to use a model's files without the database. */
export interface ModelCard {
  format: 'catdog-model/1';
  modelId: string;
  /** `imported`: a pixel-fed network brought in from Keras or TF.js (catdog models import). */
  architecture: Architecture | 'imported';
  labels: ['cat', 'dog'];
  /** The network's single sigmoid output is P(dog). */
  output: 'sigmoid-p-dog';
  /** Pixels the classifier takes: RGB 0–255, squashed to imageSize × imageSize. */
  imageSize: number;
  /** For transfer models the files hold the head only; the backbone is loaded from here and checked by id. */
  backbone?: BackboneReference;
  /** Ensembles: further backbones whose features follow `backbone`'s in the head's input, in this order. */
  ensemble?: BackboneReference[];
  /**
   * Fine-tuned models: the files hold the backbone's last `blocks` blocks (fine-tuned) and the head, fed the
   * activations of the backbone's layer `layer`; the pretrained layers up to it still come from `backbone`.
   */
  fineTuned?: { blocks: number; layer: string };
  head?: 'logistic' | 'mlp';
  /** Test-time augmentation: P(dog) is the mean over the photo and its mirror image. */
  tta?: boolean;
  /**
   * The image decode (`DECODE_ID`) whose pixels the model was trained on. Absent for imported models, trained
   * outside catdog, and for models registered before catdog recorded it.
   */
  decodeId?: string;
  calibration?: ModelCalibration;
  /** Where the training photos sit in feature space, to tell a photo of neither a cat nor a dog. */
  neither?: NeitherReference;
  datasetId: number;
  runId: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  codeVersion: string;
  createdAt: string;
}

export interface BackboneReference extends DeclaredBackbone {
  id: string;
  source: string;
}

export interface NeitherReference {
  centroids: ClassCentroids;
  /** A photo farther than this (cosine distance) from both centroids is "neither". */
  farDistance: number;
  /**
   * Below this ImageNet cat-and-dog mass a photo is "neither", learned from the model's own training photos (each
   * backbone's classifier spreads its probability differently); absent: serving.neither.threshold.
   */
  animalMassThreshold?: number;
}

export interface ModelFiles {
  modelJson: Uint8Array;
  weights: Uint8Array;
  card: ModelCard;
}

export const modelPrefix = (modelId: string): string => `models/${modelId}/`;

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value, null, 2));

/** Card last: a model folder with a card is complete, since each put is atomic. */
export async function writeModelFiles(blobs: BlobStore, files: ModelFiles): Promise<string> {
  const prefix = modelPrefix(files.card.modelId);
  await blobs.put(`${prefix}model.json`, files.modelJson);
  await blobs.put(`${prefix}weights.bin`, files.weights);
  await blobs.put(`${prefix}catdog.json`, encode(files.card));
  return prefix;
}

/** Rewrites the card of stored model files (a finalized sweep candidate gains its test-split figures). */
export async function writeModelCard(blobs: BlobStore, prefix: string, card: ModelCard): Promise<void> {
  await blobs.put(`${prefix}catdog.json`, encode(card));
}

const backboneReferenceSchema = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  scaling: z.enum(PIXEL_SCALINGS).optional(),
  outputs: backboneOutputNamesSchema.optional(),
});
/** JSON has no NaN: a figure that was NaN when written comes back as null. */
const figure = z.number().nullable().transform((value) => value ?? Number.NaN);

/** The card as stored: checked on every read, as serving trusts its numbers (temperature, neither thresholds). */
const modelCardSchema: z.ZodType<ModelCard, unknown> = z.object({
  format: z.literal('catdog-model/1'),
  modelId: z.string().min(1),
  architecture: z.enum(['mobilenet', 'cnn', 'imported']),
  labels: z.tuple([z.literal('cat'), z.literal('dog')]),
  output: z.literal('sigmoid-p-dog'),
  imageSize: z.int().min(1),
  backbone: backboneReferenceSchema.optional(),
  ensemble: z.array(backboneReferenceSchema).optional(),
  fineTuned: z.object({ blocks: z.int().min(1), layer: z.string().min(1) }).optional(),
  head: z.enum(['logistic', 'mlp']).optional(),
  tta: z.boolean().optional(),
  decodeId: z.string().optional(),
  calibration: z
    .object({
      temperature: z.number().positive(),
      eceValidation: figure,
      eceTest: figure.optional(),
      reliability: z.array(z.object({ lower: z.number(), upper: z.number(), confidence: z.number(), accuracy: z.number(), count: z.int().min(0) })).optional(),
    })
    .optional(),
  neither: z
    .object({
      centroids: z.object({ cat: z.array(z.number()), dog: z.array(z.number()) }),
      farDistance: z.number(),
      animalMassThreshold: z.number().min(0).max(1).optional(),
    })
    .optional(),
  datasetId: z.int(),
  runId: z.string().nullable(),
  params: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()),
  codeVersion: z.string(),
  createdAt: z.string(),
});

function parseCard(bytes: Uint8Array, key: string): ModelCard {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new CatdogError('model_card_invalid', `${key} is not JSON (${(error as Error).message}): restore the model's files or import it again`, 500, { key });
  }
  const parsed = modelCardSchema.safeParse(json);
  if (!parsed.success) {
    throw new CatdogError('model_card_invalid', `${key} is not a catdog model card: ${z.prettifyError(parsed.error)}. Restore the model's files or import it again`, 500, { key });
  }
  return parsed.data;
}

export async function readModelFiles(blobs: BlobStore, prefix: string): Promise<ModelFiles> {
  const [modelJson, weights, card] = await Promise.all([
    blobs.get(`${prefix}model.json`),
    blobs.get(`${prefix}weights.bin`),
    blobs.get(`${prefix}catdog.json`),
  ]);
  return { modelJson, weights, card: parseCard(card, `${prefix}catdog.json`) };
}

/** The card without the weights, or undefined when the model's files are gone. */
export async function readModelCard(blobs: BlobStore, prefix: string): Promise<ModelCard | undefined> {
  const bytes = await blobs.getOrUndefined(`${prefix}catdog.json`);
  return bytes && parseCard(bytes, `${prefix}catdog.json`);
}
