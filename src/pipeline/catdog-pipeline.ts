import { type CatdogConfig, configSchema, effectiveImageSize } from '../config/schema.js';
import type { ComponentDefinition, PipelineDefinition } from './dag.js';

/**
 * The catdog training pipeline, defined once for every runner (local, Kubeflow, Vertex AI). The component
 * implementations live behind `catdog component run <name>`; this file only declares their contracts.
 */

export const ingestComponent: ComponentDefinition = {
  name: 'ingest',
  description: 'Imports the photos of a folder or bucket (label from the folder or Kaggle file name), deduplicated by content.',
  inputs: {
    source: { type: 'string', description: 'Folder path or bucket URI (s3://, gs://) of the photos; "" = only the images already imported.' },
  },
  outputs: {
    imported: { type: 'artifact', artifactType: 'Artifact', description: 'Hashes and labels of the images this run imported.' },
    count: { type: 'integer', description: 'Number of new images.' },
  },
};

export const buildDatasetComponent: ComponentDefinition = {
  name: 'build-dataset',
  description: 'Freezes the labelled image library into an immutable dataset version with a hash-based split.',
  inputs: {
    imported: { type: 'artifact', artifactType: 'Artifact', description: 'Output of ingest; orders this step after it.' },
    seed: { type: 'integer', description: 'Seed of the hash-based split.' },
    trainSplit: { type: 'number', description: 'Fraction of images used for training.' },
    validationSplit: { type: 'number', description: 'Fraction of images used for early stopping.' },
    testSplit: { type: 'number', description: 'Fraction of images held out to compare models.' },
  },
  outputs: {
    dataset: { type: 'artifact', artifactType: 'Dataset', description: 'The dataset version manifest.' },
  },
};

export const trainComponent: ComponentDefinition = {
  name: 'train',
  description: 'Trains a cat/dog classifier on the training split with early stopping on the validation split.',
  cacheable: true,
  inputs: {
    dataset: { type: 'artifact', artifactType: 'Dataset' },
    architecture: { type: 'string', description: "'mobilenet' (head on a pretrained backbone) or 'cnn' (from scratch)." },
    epochs: { type: 'integer' },
    learningRate: { type: 'number' },
    batchSize: { type: 'integer' },
    imageSize: { type: 'integer', description: 'Side in pixels the cnn trains at (a backbone takes its own input size).' },
  },
  outputs: {
    model: { type: 'artifact', artifactType: 'Model' },
    metrics: { type: 'artifact', artifactType: 'Metrics', description: 'Validation accuracy and loss of the best epoch, and the epochs run.' },
  },
};

export const evaluateComponent: ComponentDefinition = {
  name: 'evaluate',
  description: "Measures the model on the dataset's test split.",
  cacheable: true,
  inputs: {
    model: { type: 'artifact', artifactType: 'Model' },
    dataset: { type: 'artifact', artifactType: 'Dataset' },
  },
  outputs: {
    metrics: { type: 'artifact', artifactType: 'Metrics', description: 'Accuracy, precision, recall, F1, ROC AUC, confusion matrix.' },
  },
};

export const promoteComponent: ComponentDefinition = {
  name: 'promote',
  description: 'Registers the model and serves it if it beats the serving model on the same test split.',
  inputs: {
    model: { type: 'artifact', artifactType: 'Model' },
    metrics: { type: 'artifact', artifactType: 'Metrics' },
  },
  outputs: {
    promoted: { type: 'string', description: '"true" when the model now serves, else "false".' },
  },
};

/** The pipeline whose parameter defaults are the given configuration's values (the user's, or the built-in defaults). */
export function catdogPipeline(config: CatdogConfig = configSchema.parse({})): PipelineDefinition {
  const { training, dataset } = config;
  return {
    name: 'catdog-training',
    description: 'Ingest photos, build a dataset version, train, evaluate on the test split and promote if better.',
    parameters: {
      source: { type: 'string', default: '', description: 'Folder or bucket of new photos; "" = train on the library as it is.' },
      seed: { type: 'integer', default: dataset.seed },
      trainSplit: { type: 'number', default: dataset.split.train },
      validationSplit: { type: 'number', default: dataset.split.validation },
      testSplit: { type: 'number', default: dataset.split.test },
      architecture: { type: 'string', default: training.architecture },
      epochs: { type: 'integer', default: training.epochs },
      learningRate: { type: 'number', default: training.learningRate },
      batchSize: { type: 'integer', default: training.batchSize },
      imageSize: { type: 'integer', default: effectiveImageSize(config) },
    },
    tasks: [
      { name: 'ingest', component: ingestComponent, inputs: { source: { parameter: 'source' } } },
      {
        name: 'build-dataset',
        component: buildDatasetComponent,
        inputs: {
          imported: { fromTask: 'ingest', output: 'imported' },
          seed: { parameter: 'seed' },
          trainSplit: { parameter: 'trainSplit' },
          validationSplit: { parameter: 'validationSplit' },
          testSplit: { parameter: 'testSplit' },
        },
      },
      {
        name: 'train',
        component: trainComponent,
        inputs: {
          dataset: { fromTask: 'build-dataset', output: 'dataset' },
          architecture: { parameter: 'architecture' },
          epochs: { parameter: 'epochs' },
          learningRate: { parameter: 'learningRate' },
          batchSize: { parameter: 'batchSize' },
          imageSize: { parameter: 'imageSize' },
        },
      },
      {
        name: 'evaluate',
        component: evaluateComponent,
        inputs: {
          model: { fromTask: 'train', output: 'model' },
          dataset: { fromTask: 'build-dataset', output: 'dataset' },
        },
      },
      {
        name: 'promote',
        component: promoteComponent,
        inputs: {
          model: { fromTask: 'train', output: 'model' },
          metrics: { fromTask: 'evaluate', output: 'metrics' },
        },
      },
    ],
  };
}

/** What `catdog component run <name>` can run, by component name. */
export const catdogComponents: ReadonlyMap<string, ComponentDefinition> = new Map(
  [ingestComponent, buildDatasetComponent, trainComponent, evaluateComponent, promoteComponent].map((component) => [
    component.name,
    component,
  ]),
);
