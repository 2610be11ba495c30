import type { BlobStore } from '../storage/index.js';

export type Architecture = 'mobilenet' | 'cnn';

/** `catdog.json`: everything needed to use a model's files without the database. */
export interface ModelCard {
  format: 'catdog-model/1';
  modelId: string;
  architecture: Architecture;
  labels: ['cat', 'dog'];
  /** The network's single sigmoid output is P(dog). */
  output: 'sigmoid-p-dog';
  /** Pixels the classifier takes: RGB 0–255, squashed to imageSize × imageSize. */
  imageSize: number;
  /** For transfer models the files hold the head only; the backbone is loaded from here and checked by id. */
  backbone?: { id: string; source: string };
  head?: 'logistic' | 'mlp';
  datasetId: number;
  runId: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  codeVersion: string;
  createdAt: string;
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

export async function readModelFiles(blobs: BlobStore, prefix: string): Promise<ModelFiles> {
  const [modelJson, weights, card] = await Promise.all([
    blobs.get(`${prefix}model.json`),
    blobs.get(`${prefix}weights.bin`),
    blobs.get(`${prefix}catdog.json`),
  ]);
  return { modelJson, weights, card: JSON.parse(new TextDecoder().decode(card)) as ModelCard };
}
