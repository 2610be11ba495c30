import type { Database, PredictionRow } from '../db/index.js';
import { ingestImage, type ImageLimits } from '../datasets/ingest.js';
import { decodeToRgb } from '../images/index.js';
import type { BlobStore } from '../storage/index.js';
import type { ModelServer } from './model-server.js';

export interface PredictionResult {
  id: string;
  label: 'cat' | 'dog';
  confidence: number;
  probabilities: { cat: number; dog: number };
  modelId: string;
  modelVersion: number | null;
  imageHash: string;
  latencyMs: number;
  fileName?: string;
}

export interface PredictDependencies {
  db: Pick<Database, 'images' | 'predictions'>;
  blobs: BlobStore;
  limits: ImageLimits;
  models: Pick<ModelServer, 'classifier'>;
}

export function toPredictionResult(row: PredictionRow, modelVersion: number | null = null, fileName?: string): PredictionResult {
  const dog = row.probabilities.dog ?? 0;
  return {
    id: row.id,
    label: row.label as 'cat' | 'dog',
    confidence: row.confidence,
    probabilities: { cat: 1 - dog, dog },
    modelId: row.modelId,
    modelVersion,
    imageHash: row.imageHash,
    latencyMs: row.latencyMs,
    fileName,
  };
}

/**
 * Classifies uploaded photos with the serving model and records each prediction. The photo is stored (once, by
 * content) so a later confirmation or correction can turn it into a labelled training image.
 */
export async function predictUploads(
  deps: PredictDependencies,
  uploads: readonly { bytes: Uint8Array; fileName?: string }[],
  source = 'upload',
): Promise<PredictionResult[]> {
  const started = performance.now();
  const classifier = await deps.models.classifier();
  const stored = await Promise.all(
    uploads.map((upload) => ingestImage(deps, { bytes: upload.bytes, label: null, source, originalName: upload.fileName })),
  );
  const pixels = await Promise.all(uploads.map(async (upload) => (await decodeToRgb(upload.bytes, classifier.inputSize)).data));
  const answers = await classifier.predictPixels(pixels);
  const latencyMs = (performance.now() - started) / uploads.length;
  return Promise.all(
    answers.map(async (answer, i) => {
      const dog = answer.pDog;
      const label = dog >= 0.5 ? 'dog' : 'cat';
      const row = await deps.db.predictions.create({
        imageHash: stored[i]!.image.hash,
        modelId: classifier.modelId,
        label,
        confidence: Math.max(dog, 1 - dog),
        probabilities: { cat: 1 - dog, dog },
        latencyMs,
      });
      return toPredictionResult(row, classifier.version, uploads[i]!.fileName);
    }),
  );
}
