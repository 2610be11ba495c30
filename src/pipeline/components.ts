import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { AppContext } from '../app/context.js';
import { importFolder } from '../datasets/import-folder.js';
import { buildDatasetVersion, loadManifest } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import type { BinaryMetrics } from '../ml/index.js';
import { loadClassifier } from '../registry/classifier.js';
import { evaluateOnSplit } from '../registry/evaluate.js';
import { trainingParamsPayloadSchema } from '../db/index.js';
import { resolveTrainingParams } from '../training/params.js';
import { finalizeCandidate, trainCandidate } from '../training/run-training.js';
import { catdogComponents } from './catdog-pipeline.js';
import { inputFlag, outputFlag, parseComponentArgs, writeComponentOutputs, type ComponentArgs } from './component-args.js';
import { isParameterType, type ComponentDefinition, type ParameterValue } from './dag.js';

/**
 * What each catdog pipeline component does. Steps share state through the database and the blob store (both must
 * be reachable from wherever a step runs); what flows between steps are small JSON pointer artifacts: the images an
 * ingest added, a dataset version id and its manifest key, a model id and its blob prefix, and metrics in the shape
 * of KFP's `system.Metrics` (a flat object of named numbers, what `Metrics.log_metric` records).
 */

export type StepLog = (line: string) => void;
type Values = Record<string, ParameterValue>;
/** `signal` aborts a step that can stop midway (ingest between files, train between batches); it then throws the abort reason. */
type Implementation = (app: AppContext, inputs: Values, outputPaths: Record<string, string>, log: StepLog, signal?: AbortSignal) => Promise<Values>;

const importedArtifactSchema = z.object({
  source: z.string(),
  images: z.array(z.object({ hash: z.string(), label: z.enum(['cat', 'dog']) })),
});
const datasetArtifactSchema = z.object({ datasetId: z.int().positive(), manifestKey: z.string().min(1), imageCount: z.int() });
const modelArtifactSchema = z.object({
  modelId: z.string().min(1),
  artifactPrefix: z.string().min(1),
  runId: z.string().min(1),
  datasetId: z.int().positive(),
  params: trainingParamsPayloadSchema,
});
/** KFP metrics are numbers; a NaN (ROC AUC on one class) is written as JSON null. */
const metricsArtifactSchema = z.record(z.string(), z.number().nullable());

export type ImportedArtifact = z.infer<typeof importedArtifactSchema>;
export type DatasetArtifact = z.infer<typeof datasetArtifactSchema>;
export type ModelArtifact = z.infer<typeof modelArtifactSchema>;
export type MetricsArtifact = Record<string, number>;

async function writeArtifact(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function readArtifact<T>(file: string, schema: z.ZodType<T>, kind: string): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new CatdogError('artifact_missing', `cannot read the ${kind} artifact at ${file}: ${(error as Error).message}`, 400, { file });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CatdogError('artifact_invalid', `the ${kind} artifact at ${file} is not JSON: was it written by catdog?`, 400, { file });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new CatdogError('artifact_invalid', `the ${kind} artifact at ${file} is not a catdog ${kind}: ${problems.join('; ')}`, 400, { file, problems });
  }
  return result.data;
}

/** Test-split metrics as KFP scalar metrics; the confusion matrix becomes four counts. */
export function metricsArtifact(metrics: BinaryMetrics): MetricsArtifact {
  const [[catsAsCat = 0, catsAsDog = 0] = [], [dogsAsCat = 0, dogsAsDog = 0] = []] = metrics.confusionMatrix.matrix;
  const { accuracy, precision, recall, f1, rocAuc, count } = metrics;
  return { accuracy, precision, recall, f1, rocAuc, count, catsAsCat, catsAsDog, dogsAsCat, dogsAsDog };
}

function binaryMetricsFrom(artifact: Record<string, number | null>, file: string): BinaryMetrics {
  const keys = ['accuracy', 'precision', 'recall', 'f1', 'rocAuc', 'count', 'catsAsCat', 'catsAsDog', 'dogsAsCat', 'dogsAsDog'] as const;
  const missing = keys.filter((key) => !(key in artifact));
  if (missing.length > 0) {
    throw new CatdogError('artifact_invalid', `the metrics at ${file} are not test-split metrics of evaluate (missing ${missing.join(', ')})`, 400, { file });
  }
  const value = (key: (typeof keys)[number]) => artifact[key] ?? Number.NaN;
  return {
    accuracy: value('accuracy'),
    precision: value('precision'),
    recall: value('recall'),
    f1: value('f1'),
    rocAuc: value('rocAuc'),
    count: value('count'),
    confusionMatrix: { labels: ['cat', 'dog'], matrix: [[value('catsAsCat'), value('catsAsDog')], [value('dogsAsCat'), value('dogsAsDog')]] },
  };
}

// parseComponentArgs has checked every input against its declared type.
const stringInput = (inputs: Values, name: string): string => inputs[name] as string;
const numberInput = (inputs: Values, name: string): number => inputs[name] as number;

/** Vertex AI mounts Cloud Storage at /gcs (Cloud Storage FUSE), so a gs:// source is read there. */
function sourceFolder(source: string): string {
  if (source.startsWith('gs://')) return path.join('/gcs', source.slice('gs://'.length));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new CatdogError('unsupported_source', `cannot read photos from ${source}: mount the bucket and pass its folder (gs:// is read at /gcs/… as on Vertex AI)`);
  }
  return path.resolve(source);
}

const ingest: Implementation = async (app, inputs, outputPaths, log, signal) => {
  const source = stringInput(inputs, 'source');
  if (source === '') {
    log('no source: the dataset is built from the images already imported');
    await writeArtifact(outputPaths.imported!, { source, images: [] } satisfies ImportedArtifact);
    return { count: 0 };
  }
  const before = new Set((await app.db.images.listLabelled()).map((image) => image.hash));
  const report = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, sourceFolder(source), {
    onProgress: () => signal?.throwIfAborted(),
  });
  const images = (await app.db.images.listLabelled())
    .filter((image) => !before.has(image.hash) && (image.label === 'cat' || image.label === 'dog'))
    .map(({ hash, label }) => ({ hash, label: label as 'cat' | 'dog' }));
  log(`${report.folder}: ${report.scanned} files, ${report.imported} new (${report.byLabel.cat} cats, ${report.byLabel.dog} dogs), ${report.duplicates} already imported, ${report.skipped.length} skipped`);
  for (const skipped of report.skipped) log(`skipped ${skipped.path}: ${skipped.reason}`);
  await writeArtifact(outputPaths.imported!, { source, images } satisfies ImportedArtifact);
  return { count: images.length };
};

const buildDataset: Implementation = async (app, inputs, outputPaths, log) => {
  const imported = await readArtifact(stringInput(inputs, 'imported'), importedArtifactSchema, 'imported images');
  const split = { train: numberInput(inputs, 'trainSplit'), validation: numberInput(inputs, 'validationSplit'), test: numberInput(inputs, 'testSplit') };
  const sum = split.train + split.validation + split.test;
  if (split.train <= 0 || split.test <= 0 || split.validation < 0 || Math.abs(sum - 1) > 1e-6) {
    throw new CatdogError('invalid_split', `trainSplit ${split.train} + validationSplit ${split.validation} + testSplit ${split.test} must be fractions summing to 1, with train and test above 0`);
  }
  const { version, created } = await buildDatasetVersion(app, { split, seed: numberInput(inputs, 'seed') });
  log(`${created ? 'built' : 'reused'} dataset version ${version.id}: ${version.imageCount} images (${imported.images.length} new from ingest)`);
  await writeArtifact(outputPaths.dataset!, { datasetId: version.id, manifestKey: version.manifestKey, imageCount: version.imageCount } satisfies DatasetArtifact);
  return {};
};

function architectureOf(value: string): 'mobilenet' | 'cnn' {
  if (value === 'mobilenet' || value === 'cnn') return value;
  throw new CatdogError('invalid_architecture', `architecture must be mobilenet or cnn, got '${value}'`);
}

const train: Implementation = async (app, inputs, outputPaths, log, signal) => {
  const dataset = await readArtifact(stringInput(inputs, 'dataset'), datasetArtifactSchema, 'dataset');
  const version = await app.db.datasets.get(dataset.datasetId);
  if (!version) throw new CatdogError('not_found', `dataset version ${dataset.datasetId} of the dataset artifact does not exist in this database`, 404);
  const params = resolveTrainingParams(app.config, {
    architecture: architectureOf(stringInput(inputs, 'architecture')),
    epochs: numberInput(inputs, 'epochs'),
    learningRate: numberInput(inputs, 'learningRate'),
    batchSize: numberInput(inputs, 'batchSize'),
    imageSize: numberInput(inputs, 'imageSize'),
  });
  const candidate = await trainCandidate(app, {
    datasetId: version.id,
    params,
    actor: 'pipeline',
    // An aborted training records its run as cancelled and stores no model files.
    signal,
    onEvent: (event) => {
      if (event.type === 'started') log(`training run ${event.runId} (${params.architecture}) on dataset v${event.datasetId}`);
      else if (event.type === 'epoch') {
        const { epoch, loss, accuracy, valLoss, valAccuracy } = event.stats;
        log(`epoch ${epoch}/${event.totalEpochs}: loss ${loss.toFixed(4)} acc ${accuracy.toFixed(4)} val_loss ${valLoss.toFixed(4)} val_acc ${valAccuracy.toFixed(4)}`);
      }
    },
  });
  log(`model ${candidate.modelId} stored at ${candidate.artifactPrefix}; best epoch ${candidate.validation.bestEpoch}`);
  const model: ModelArtifact = { modelId: candidate.modelId, artifactPrefix: candidate.artifactPrefix, runId: candidate.runId, datasetId: version.id, params };
  await writeArtifact(outputPaths.model!, model);
  await writeArtifact(outputPaths.metrics!, {
    validationAccuracy: candidate.validation.accuracy,
    validationLoss: candidate.validation.loss,
    bestEpoch: candidate.validation.bestEpoch,
    epochsRun: candidate.epochs.length,
  } satisfies MetricsArtifact);
  return {};
};

const evaluate: Implementation = async (app, inputs, outputPaths, log) => {
  const model = await readArtifact(stringInput(inputs, 'model'), modelArtifactSchema, 'model');
  const dataset = await readArtifact(stringInput(inputs, 'dataset'), datasetArtifactSchema, 'dataset');
  const { manifest } = await loadManifest(app, dataset.datasetId);
  const classifier = await loadClassifier(app, { id: model.modelId, version: null, artifactPrefix: model.artifactPrefix });
  let metrics: BinaryMetrics;
  try {
    metrics = await evaluateOnSplit(app, classifier, manifest, 'test');
  } finally {
    classifier.dispose();
  }
  log(`model ${model.modelId} on the test split of dataset v${dataset.datasetId} (${metrics.count} images): accuracy ${metrics.accuracy.toFixed(4)}, F1 ${metrics.f1.toFixed(4)}, ROC AUC ${metrics.rocAuc.toFixed(4)}`);
  await writeArtifact(outputPaths.metrics!, metricsArtifact(metrics));
  return {};
};

const promote: Implementation = async (app, inputs, _outputPaths, log) => {
  const model = await readArtifact(stringInput(inputs, 'model'), modelArtifactSchema, 'model');
  const metricsFile = stringInput(inputs, 'metrics');
  const metrics = binaryMetricsFrom(await readArtifact(metricsFile, metricsArtifactSchema, 'metrics'), metricsFile);
  // The same end as every training: test metrics and reliability in the card, registered once, promoted if better.
  const { model: registered, metrics: testMetrics, promotion: decision } = await finalizeCandidate(app, model, { actor: 'pipeline' });
  log(`registered model ${registered.id} as version ${registered.version} (test accuracy ${testMetrics.accuracy.toFixed(4)}; the evaluate step measured ${metrics.accuracy.toFixed(4)})`);
  log(`${decision.promoted ? 'promoted' : 'not promoted'}: ${decision.reason}`);
  return { promoted: String(decision.promoted) };
};

const implementations: ReadonlyMap<string, Implementation> = new Map([
  ['ingest', ingest],
  ['build-dataset', buildDataset],
  ['train', train],
  ['evaluate', evaluate],
  ['promote', promote],
]);

/** The component `catdog component run NAME` runs, with a list of the known names when there is none. */
export function componentNamed(name: string): ComponentDefinition {
  const component = catdogComponents.get(name);
  if (component === undefined || !implementations.has(name)) {
    throw new CatdogError('unknown_component', `no component '${name}' (components: ${[...catdogComponents.keys()].join(', ')})`, 404);
  }
  return component;
}

/**
 * Runs one component from its command line, as a KFP container does (`catdog component run NAME --input-… --output-…`),
 * and writes its parameter outputs to their files. Returns the parameter outputs. An aborted `signal` keeps any step
 * from starting; the short steps that cannot stop midway (build-dataset, evaluate, promote) then run to their end.
 */
export async function runComponent(app: AppContext, component: ComponentDefinition, argv: string[], log: StepLog, signal?: AbortSignal): Promise<Values> {
  const args: ComponentArgs = parseComponentArgs(component, argv);
  const implementation = implementations.get(component.name);
  if (implementation === undefined) throw new CatdogError('unknown_component', `component '${component.name}' has no implementation`, 404);
  signal?.throwIfAborted();
  const outputs = await implementation(app, args.inputs, args.outputPaths, log, signal);
  await writeComponentOutputs(component, args.outputPaths, outputs);
  return outputs;
}

/** Where a step run by catdog itself (local runner, queue worker) puts each output: parameters as KFP output files, artifacts as JSON. */
function stepOutputPaths(component: ComponentDefinition, outputDir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(component.outputs).map(([name, output]) => [
      name,
      isParameterType(output.type) ? path.join(outputDir, 'parameters', name) : path.join(outputDir, 'artifacts', `${name}.json`),
    ]),
  );
}

/** The command line the compiled KFP executor would pass, for resolved inputs and catdog's own output paths. */
function componentArgv(component: ComponentDefinition, inputs: Values, outputPaths: Record<string, string>): string[] {
  const inputArgs = Object.entries(inputs).flatMap(([name, value]) => [inputFlag(name), String(value)]);
  const outputArgs = Object.keys(component.outputs).flatMap((name) => [outputFlag(name), outputPaths[name] ?? '']);
  return [...inputArgs, ...outputArgs];
}

export interface StepResult {
  /** Parameter outputs by name. */
  outputs: Values;
  /** Artifact outputs by name: the file each was written to. */
  artifacts: Record<string, string>;
}

/**
 * One step as catdog runs it (local runner, queue worker): the same command line as a KFP container, outputs under
 * outputDir. `signal` is the queue job's: cancelling the job aborts the step.
 */
export async function executeStep(app: AppContext, component: ComponentDefinition, inputs: Values, outputDir: string, log: StepLog, signal?: AbortSignal): Promise<StepResult> {
  const outputPaths = stepOutputPaths(component, outputDir);
  const outputs = await runComponent(app, component, componentArgv(component, inputs, outputPaths), log, signal);
  const artifacts = Object.fromEntries(Object.entries(outputPaths).filter(([name]) => !isParameterType(component.outputs[name]!.type)));
  return { outputs, artifacts };
}
