import type { Database, PredictionRow } from '../db/index.js';
import { storeInspectedImage, type ImageLimits } from '../datasets/ingest.js';
import { ImageError, inspectAndDecodeToRgb, type DecodeTurn } from '../images/index.js';
import type { Classifier } from '../registry/classifier.js';
import type { BlobStore } from '../storage/index.js';
import type { ModelServer } from './model-server.js';
import { neitherEvidence, neitherReason, storedNeitherReason, type NeitherReason, type NeitherSettings } from './neither.js';

export interface PredictionResult {
  id: string;
  label: 'cat' | 'dog' | 'neither';
  /** Why the photo is neither a cat nor a dog (only with that label). */
  reason?: NeitherReason;
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
  /** The uploading client's turn for the server's decode slots; none for `catdog predict`. */
  turn?: DecodeTurn;
  models: Pick<ModelServer, 'classifier'>;
  /** `serving.neither` of the config; without it every photo is called a cat or a dog. */
  neither?: NeitherSettings;
}

export function toPredictionResult(row: PredictionRow, modelVersion: number | null = null, fileName?: string): PredictionResult {
  const { dog } = row.probabilities;
  return {
    id: row.id,
    label: row.label,
    reason: storedNeitherReason(row),
    confidence: row.confidence,
    probabilities: { cat: 1 - dog, dog },
    modelId: row.modelId,
    modelVersion,
    imageHash: row.imageHash,
    latencyMs: row.latencyMs,
    fileName,
  };
}

/** A photo as it was uploaded (or read from disk). */
export interface PhotoUpload {
  bytes: Uint8Array;
  fileName?: string;
}

/** A file of a multi-file request that was not classified, and why (nothing of it was written). */
export interface RefusedUpload {
  /** Its position in the request, from 0. */
  index: number;
  error: ImageError;
}

interface DecodedUpload {
  upload: PhotoUpload;
  decoded: Awaited<ReturnType<typeof inspectAndDecodeToRgb>>;
}

/**
 * Classifies uploaded photos with the serving model and records each prediction. The photo is stored (once, by
 * content) so a later confirmation or correction can turn it into a labelled training image. Every photo is
 * decoded before the first write: one that is not a usable photo fails the call and nothing is written.
 */
export async function predictUploads(deps: PredictDependencies, uploads: readonly PhotoUpload[], source = 'upload'): Promise<PredictionResult[]> {
  const started = performance.now();
  const classifier = await deps.models.classifier();
  const arrived = classifier.announce?.(uploads.length);
  let decoded: DecodedUpload[];
  try {
    // One decode per photo validates it for storage and gives the model its pixels.
    decoded = await Promise.all(
      uploads.map(async (upload) => ({ upload, decoded: await inspectAndDecodeToRgb(upload.bytes, deps.limits, classifier.inputSize, deps.turn) })),
    );
  } finally {
    arrived?.();
  }
  return classifyDecoded(deps, classifier, decoded, started, source);
}

/**
 * `predictUploads` answering per file: the photos that decode are classified and recorded, the others come back
 * in `refused` with their image error, and nothing of them is written. Other errors (model, database) fail the call.
 */
export async function predictEachUpload(
  deps: PredictDependencies,
  uploads: readonly PhotoUpload[],
  source = 'upload',
): Promise<{ predictions: PredictionResult[]; refused: RefusedUpload[] }> {
  const started = performance.now();
  const classifier = await deps.models.classifier();
  const arrived = classifier.announce?.(uploads.length);
  let settled: PromiseSettledResult<DecodedUpload['decoded']>[];
  try {
    settled = await Promise.allSettled(uploads.map((upload) => inspectAndDecodeToRgb(upload.bytes, deps.limits, classifier.inputSize, deps.turn)));
  } finally {
    // Withdrawn in the same turn as the model is asked, so a lingering call sees the photos arrive, not vanish.
    arrived?.();
  }
  const accepted: DecodedUpload[] = [];
  const refused: RefusedUpload[] = [];
  settled.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') accepted.push({ upload: uploads[index]!, decoded: outcome.value });
    else if (outcome.reason instanceof ImageError) refused.push({ index, error: outcome.reason });
    else throw outcome.reason;
  });
  const predictions = accepted.length > 0 ? await classifyDecoded(deps, classifier, accepted, started, source) : [];
  return { predictions, refused };
}

async function classifyDecoded(
  deps: PredictDependencies,
  classifier: Classifier,
  accepted: readonly DecodedUpload[],
  started: number,
  source: string,
): Promise<PredictionResult[]> {
  // The model does not wait for the blob writes (fsync), nor they for the model; the rows come after both.
  const [stored, answers] = await Promise.all([
    Promise.all(
      accepted.map(({ upload, decoded }) =>
        storeInspectedImage(deps, { bytes: upload.bytes, label: null, source, originalName: upload.fileName }, decoded.info),
      ),
    ),
    classifier.predictPixels(accepted.map(({ decoded }) => decoded.rgb.data)),
  ]);
  const latencyMs = (performance.now() - started) / accepted.length;
  // The serving model's P(dog) of each photo, where the gallery's confidence and disagreement filters read it: one
  // batched write beside the prediction rows, so the answer waits for no extra round trip.
  const scores = deps.db.images.setScores(
    classifier.modelId,
    answers.map((answer, i) => ({ hash: stored[i]!.image.hash, pDog: answer.pDog })),
  );
  const [results] = await Promise.all([
    Promise.all(
      answers.map(async (answer, i) => {
        const dog = answer.pDog;
        const reason = deps.neither ? neitherReason(answer, classifier.card, deps.neither) : undefined;
        const row = await deps.db.predictions.create({
          imageHash: stored[i]!.image.hash,
          modelId: classifier.modelId,
          label: reason ? 'neither' : dog >= 0.5 ? 'dog' : 'cat',
          // Cat against dog, also for "neither": what the model would answer if the photo were one of them.
          confidence: Math.max(dog, 1 - dog),
          probabilities: { cat: 1 - dog, dog, ...neitherEvidence(answer, reason) },
          latencyMs,
        });
        return toPredictionResult(row, classifier.version, accepted[i]!.upload.fileName);
      }),
    ),
    scores,
  ]);
  return results;
}
