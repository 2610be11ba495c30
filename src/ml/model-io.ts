import type { io, LayersModel } from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import { initTensorflow } from './tf.js';

/** A layers model as its two files: model.json (topology + manifest) and the `weights.bin` it points to. */
export interface SerializedModel {
  modelJson: Uint8Array;
  weights: Uint8Array;
}

const WEIGHTS_FILE = 'weights.bin';

/** The TensorFlow.js layers format, loadable by `tf.loadLayersModel` from a folder holding both files. */
export async function serializeModel(model: LayersModel): Promise<SerializedModel> {
  const { tf } = await initTensorflow();
  let saved: io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!saved?.modelTopology || !saved.weightSpecs) throw new Error('model.save produced no topology or weights');
  const weightData = saved.weightData ?? new ArrayBuffer(0);
  const weights = new Uint8Array(
    Array.isArray(weightData) ? tf.io.concatenateArrayBuffers(weightData) : weightData,
  );
  const modelJson = {
    format: saved.format,
    generatedBy: saved.generatedBy,
    convertedBy: saved.convertedBy,
    modelTopology: saved.modelTopology,
    ...(saved.trainingConfig ? { trainingConfig: saved.trainingConfig } : {}),
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: saved.weightSpecs }],
  };
  return { modelJson: new TextEncoder().encode(JSON.stringify(modelJson)), weights };
}

/** The model from the two files `serializeModel` wrote (or any single-buffer layers model). */
export async function deserializeModel({ modelJson, weights }: SerializedModel): Promise<LayersModel> {
  const { tf } = await initTensorflow();
  let parsed: {
    modelTopology?: object;
    trainingConfig?: io.TrainingConfig;
    weightsManifest?: { weights: io.WeightsManifestEntry[] }[];
  };
  try {
    parsed = JSON.parse(new TextDecoder().decode(modelJson)) as typeof parsed;
  } catch {
    throw invalidModel('model.json is not valid JSON');
  }
  if (typeof parsed?.modelTopology !== 'object' || !Array.isArray(parsed.weightsManifest)) {
    throw invalidModel('model.json has no modelTopology or weightsManifest');
  }
  const weightSpecs = parsed.weightsManifest.flatMap((group) => group.weights);
  // Checked before loading: a short buffer fails only after the model's variables exist, leaking them.
  const expectedBytes = weightBytes(weightSpecs);
  if (expectedBytes !== undefined && expectedBytes !== weights.byteLength) {
    throw invalidModel(`weights.bin has ${weights.byteLength} bytes but model.json describes ${expectedBytes}`);
  }
  const weightBuffer = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: parsed.modelTopology,
        trainingConfig: parsed.trainingConfig,
        weightSpecs,
        weightData: weightBuffer,
      }),
    );
  } catch (error) {
    throw invalidModel(error instanceof Error ? error.message : String(error));
  }
}

const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** Bytes the weights described by a manifest occupy; undefined for a dtype this does not know. */
export function weightBytes(specs: io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const bytesPerValue = BYTES_PER_VALUE[spec.quantization?.dtype ?? spec.dtype];
    if (bytesPerValue === undefined) return undefined;
    total += spec.shape.reduce((count, dimension) => count * dimension, 1) * bytesPerValue;
  }
  return total;
}

function invalidModel(reason: string): CatdogError {
  return new CatdogError('invalid_model', `The model files cannot be loaded: ${reason}`, 422);
}
