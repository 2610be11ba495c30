import fs from 'node:fs/promises';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { AppContext } from '../app/context.js';
import { newId, type ImportedModelParams, type ModelRow } from '../db/index.js';
import { loadManifest } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import { initTensorflow, serializeModel, type BinaryMetrics, type LayersModel } from '../ml/index.js';
import { isTfliteSource, tfliteNetwork, UnsupportedTfliteError } from '../ml/tflite/index.js';
import { importKerasModel, importTfjsModel } from '../ml/keras/import.js';
import { writeModelFiles, type ModelCard } from './artifacts.js';
import { classifierFor } from './classifier.js';
import { evaluateOnSplit } from './evaluate.js';
import { outputLayer } from './export.js';
import { registerAndPromote, type PromotionDecision } from './promotion.js';

/**
 * A model to import: one file (a Keras `.keras`, a legacy Keras `.h5`, a TFLite `.tflite`, or a zip of a TF.js model folder), or a
 * TF.js model's files by name (`model.json` and the weight shards it lists).
 */
export type ModelUpload = { fileName: string; bytes: Uint8Array } | { files: Record<string, Uint8Array> };

export interface ImportOutcome {
  model: ModelRow;
  metrics: BinaryMetrics;
  promotion: PromotionDecision;
}

/** Larger inputs would make every prediction decode and run photos far beyond what a cat/dog needs. */
const MAX_IMAGE_SIZE = 1024;

type ImportDependencies = Pick<AppContext, 'db' | 'blobs' | 'backbones' | 'config' | 'codeVersion'>;

/**
 * Registers a model trained elsewhere. It must take raw RGB 0–255 pixels `[null, S, S, 3]` (its own scaling
 * inside, as catdog's exports have) and answer one sigmoid unit, P(dog). It is evaluated on the test split of the
 * latest dataset version and promoted only if it beats the serving model there, like a trained model.
 */
export async function importModel(app: ImportDependencies, upload: ModelUpload, options: { name?: string; actor?: string } = {}): Promise<ImportOutcome> {
  const dataset = await app.db.datasets.latest();
  if (!dataset) {
    throw new CatdogError(
      'no_dataset',
      'an imported model is evaluated on the test split of the latest dataset version, and there is none yet: ' +
        'import labelled photos and build a version first (catdog dataset import DIR)',
      409,
    );
  }
  const { fileName, format, network } = await readNetwork(upload);
  try {
    const imageSize = pixelInputSize(network, fileName);
    const { manifest } = await loadManifest(app, dataset.id);
    const modelId = newId('mdl');
    const params: ImportedModelParams = { importedFrom: fileName, format, imageSize };
    const card: ModelCard = {
      format: 'catdog-model/1',
      modelId,
      architecture: 'imported',
      labels: ['cat', 'dog'],
      output: 'sigmoid-p-dog',
      imageSize,
      datasetId: dataset.id,
      runId: null,
      params,
      metrics: {},
      codeVersion: app.codeVersion,
      createdAt: new Date().toISOString(),
    };
    const metrics = await evaluateOnSplit(app, classifierFor({ modelId, version: null, card, input: null, network }), manifest, 'test');
    card.metrics = { ...metrics };
    const artifactPrefix = await writeModelFiles(app.blobs, { ...(await serializeModel(network)), card });
    const { model, promotion } = await registerAndPromote(
      app,
      { id: modelId, name: options.name ?? `imported ${fileName}`, architecture: 'imported', datasetId: dataset.id, runId: null, params, metrics, artifactPrefix },
      metrics,
      manifest,
      app.config.training.promotion,
      options.actor ?? 'import',
    );
    return { model, metrics, promotion };
  } finally {
    network.dispose();
  }
}

/** What a user points `catdog models import` at: a `.keras`/`.h5`/`.tflite`/zip file, a TF.js `model.json`, or its folder. */
export async function readModelUpload(target: string): Promise<ModelUpload> {
  const stat = await fs.stat(target).catch(() => undefined);
  if (!stat) throw new CatdogError('file_not_found', `${target} does not exist: name a .keras, .h5, .tflite or TF.js model.json file`);
  const modelJsonPath = stat.isDirectory() ? path.join(target, 'model.json') : target;
  if (stat.isFile() && !target.toLowerCase().endsWith('.json')) {
    return { fileName: path.basename(target), bytes: new Uint8Array(await fs.readFile(target)) };
  }
  const modelJson = await fs.readFile(modelJsonPath).catch(() => {
    throw new CatdogError('file_not_found', `${modelJsonPath} does not exist: a TF.js model folder holds model.json and its weight files`);
  });
  const files: Record<string, Uint8Array> = { 'model.json': new Uint8Array(modelJson) };
  for (const shard of shardPaths(modelJson, modelJsonPath)) {
    files[shard] = new Uint8Array(
      await fs.readFile(path.join(path.dirname(modelJsonPath), shard)).catch(() => {
        throw new CatdogError('missing_weights', `${modelJsonPath} lists the weight file ${shard}, which is not beside it`);
      }),
    );
  }
  return { files };
}

function shardPaths(modelJson: Uint8Array, where: string): string[] {
  let manifest: unknown;
  try {
    manifest = (JSON.parse(new TextDecoder().decode(modelJson)) as { weightsManifest?: unknown }).weightsManifest;
  } catch {
    throw new CatdogError('invalid_model', `${where} is not valid JSON`, 422);
  }
  if (!Array.isArray(manifest)) throw new CatdogError('invalid_model', `${where} is not a TF.js layers model: it has no weightsManifest`, 422);
  const paths = manifest.flatMap((group: { paths?: unknown }) => (Array.isArray(group.paths) ? group.paths : []));
  for (const shard of paths) {
    if (typeof shard !== 'string' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
      throw new CatdogError('invalid_model', `${where} lists the weight path ${JSON.stringify(shard)}, which is not beside it`, 422);
    }
  }
  return paths as string[];
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

async function readNetwork(upload: ModelUpload): Promise<{ fileName: string; format: 'keras' | 'h5' | 'tfjs' | 'tflite'; network: LayersModel }> {
  if ('files' in upload) return tfjsNetwork(upload.files);
  const { fileName, bytes } = upload;
  if (isTfliteSource(fileName)) return { fileName, format: 'tflite', network: await readTfliteNetwork(bytes, fileName) };
  if (ZIP_MAGIC.every((byte, index) => bytes[index] === byte)) {
    // Names only: a .keras file is a zip too, told apart by holding no model.json.
    const names: string[] = [];
    unzipSync(bytes, {
      filter: (file) => {
        names.push(file.name);
        return false;
      },
    });
    const modelJson = names.find((name) => path.posix.basename(name) === 'model.json');
    if (modelJson) {
      const folder = path.posix.dirname(modelJson);
      const entries = Object.entries(unzipSync(bytes)).map(([name, data]) => [path.posix.relative(folder, name), data] as const);
      return { ...(await tfjsNetwork(Object.fromEntries(entries))), fileName };
    }
  }
  const format = fileName.toLowerCase().endsWith('.h5') ? 'h5' : 'keras';
  return { fileName, format, network: await importKerasModel(bytes, fileName) };
}

async function readTfliteNetwork(bytes: Uint8Array, fileName: string): Promise<LayersModel> {
  const { tf } = await initTensorflow();
  try {
    return tfliteNetwork(tf, bytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const hint = error instanceof UnsupportedTfliteError ? 'catdog reads conv, depthwise conv, add, mean, fully connected, pad, reshape and softmax/sigmoid ops' : 'is it a TensorFlow Lite file?';
    throw new CatdogError('invalid_model', `${fileName} cannot be read as a TFLite image model: ${reason} (${hint})`, 422);
  }
}

async function tfjsNetwork(files: Record<string, Uint8Array>): Promise<{ fileName: string; format: 'tfjs'; network: LayersModel }> {
  const modelJsonName = Object.keys(files).find((name) => path.posix.basename(name) === 'model.json');
  const modelJson = modelJsonName === undefined ? undefined : files[modelJsonName];
  if (!modelJson) {
    throw new CatdogError('tfjs_model_json_missing', `a TF.js model needs its model.json; got ${Object.keys(files).join(', ') || 'no files'}`);
  }
  const weights = Object.fromEntries(Object.entries(files).filter(([name]) => name !== modelJsonName));
  return { fileName: 'model.json', format: 'tfjs', network: await importTfjsModel({ modelJson, weights }) };
}

/** S of the `[null, S, S, 3]` input, after checking that the model answers P(dog) with one sigmoid unit. */
function pixelInputSize(network: LayersModel, fileName: string): number {
  const inputShapes = network.inputs.map((input) => input.shape);
  const outputShapes = network.outputs.map((output) => output.shape);
  const activation = String((outputLayer(network).getConfig() as { activation?: unknown }).activation ?? 'none');
  const [input] = inputShapes;
  const size = input?.[1];
  const takesSquareRgb =
    inputShapes.length === 1 && input?.length === 4 && typeof size === 'number' && input[2] === size && input[3] === 3;
  const answersPDog =
    outputShapes.length === 1 && JSON.stringify(outputShapes[0]) === JSON.stringify([null, 1]) && activation === 'sigmoid';
  if (!takesSquareRgb || !answersPDog || size > MAX_IMAGE_SIZE) {
    throw new CatdogError(
      'incompatible_model',
      `${fileName} must take one RGB image input of shape [null, S, S, 3] (S ≤ ${MAX_IMAGE_SIZE}) and output one sigmoid unit, P(dog); ` +
        `it takes ${JSON.stringify(inputShapes)} and outputs ${JSON.stringify(outputShapes)} through ${activation}`,
      422,
      { inputShapes, outputShapes, activation },
    );
  }
  return size;
}
