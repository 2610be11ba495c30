import { type Command, InvalidArgumentError } from 'commander';
import { buildDatasetVersion } from '../../datasets/versions.js';
import { CatdogError } from '../../errors.js';
import { trainOnDataset, type TrainingEvent } from '../../training/run-training.js';
import { datasetParams, resolveTrainingParams, type TrainingOverrides } from '../../training/params.js';
import { modelWarnings } from '../../training/warnings.js';
import { percent, printJson, withApp, type GlobalOptions } from '../app-runner.js';
import { createProgress, formatDuration } from '../progress.js';
import { printImportReport, runImport } from './dataset.js';

export const positiveInt = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return parsed;
};

const architecture = (value: string): 'mobilenet' | 'cnn' => {
  if (value !== 'mobilenet' && value !== 'cnn') throw new InvalidArgumentError(`expected mobilenet or cnn, got "${value}"`);
  return value;
};

/** Renders training events as progress bars and one line per epoch on stderr. */
export function trainingEventPrinter(): (event: TrainingEvent) => void {
  const progress = createProgress();
  let stage = '';
  /** The stage whose epochs the bar counts: the head's training, then fine-tuning (epochs numbered on). */
  let epochBar = '';
  return (event) => {
    const out = process.stderr;
    switch (event.type) {
      case 'started':
        out.write(`training run ${event.runId} on dataset v${event.datasetId} (${event.params.architecture})\n`);
        break;
      case 'stage':
        if (event.stage !== stage) {
          progress.stop();
          stage = event.stage;
          if (event.total !== undefined) progress.start(event.stage, event.total);
          else out.write(`${event.stage}…\n`);
        }
        if (event.done !== undefined) progress.update(event.done);
        break;
      case 'epoch': {
        if (epochBar !== stage) {
          progress.start(stage, event.totalEpochs);
          epochBar = stage;
        }
        const s = event.stats;
        progress.update(s.epoch, {
          loss: s.loss.toFixed(4),
          acc: percent(s.accuracy),
          // A cross-validated head's refit validates nothing: its figures came from the folds, before it.
          val_loss: Number.isNaN(s.valLoss) ? '–' : s.valLoss.toFixed(4),
          val_acc: Number.isNaN(s.valAccuracy) ? '–' : percent(s.valAccuracy),
          'img/s': s.imagesPerSecond.toFixed(0),
        });
        break;
      }
      case 'finished':
        progress.stop();
        break;
      case 'failed':
        progress.stop();
        out.write(`training run ${event.runId} failed: ${event.error}\n`);
        break;
    }
  };
}

export function registerTrainCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('train')
    .description('one shot: import a labelled folder, build a dataset version, train, evaluate, register, promote if better')
    .option('--data <dir>', 'labelled folder to import first (cat/ dog/, PetImages, Kaggle names)')
    .option('--dataset <id>', 'train on an existing dataset version instead', positiveInt)
    .option('--architecture <name>', 'mobilenet (transfer learning, default) or cnn (small network from scratch)', architecture)
    .option('--epochs <n>', 'maximum epochs (early stopping may end sooner)', positiveInt)
    .option('--image-size <n>', 'image size in pixels (cnn; mobilenet uses its backbone input size)', positiveInt)
    .option('--learning-rate <x>', 'learning rate', Number)
    .option('--batch-size <n>', 'batch size', positiveInt)
    .option('--json', 'print the outcome as JSON on stdout')
    .action(async (options: TrainingOverrides & { data?: string; dataset?: number; json?: boolean }) => {
      if (!options.data && !options.dataset) {
        throw new CatdogError('missing_argument', 'train needs --data DIR (a labelled folder) or --dataset ID (an existing version)');
      }
      await withApp(
        globals(),
        async (app) => {
          let datasetId = options.dataset;
          if (options.data) {
            printImportReport(await runImport(app, options.data));
            const { version, created } = await buildDatasetVersion(app, datasetParams(app.config));
            process.stderr.write(`${created ? 'built' : 'reusing'} dataset version ${version.id} (${version.imageCount} images)\n`);
            datasetId = version.id;
          }
          const dataset = await app.db.datasets.get(datasetId!);
          if (!dataset) throw new CatdogError('not_found', `dataset version ${datasetId} does not exist (see catdog dataset list)`, 404);
          const { architecture, epochs, imageSize, learningRate, batchSize } = options;
          const params = resolveTrainingParams(app.config, { architecture, epochs, imageSize, learningRate, batchSize });
          const outcome = await trainOnDataset(app, { datasetId: dataset.id, params, onEvent: trainingEventPrinter(), actor: 'cli' });
          const m = outcome.metrics;
          const warnings = modelWarnings(m);
          if (options.json) {
            printJson({ runId: outcome.runId, modelId: outcome.model.id, modelVersion: outcome.model.version, metrics: m, promotion: outcome.promotion, bestEpoch: outcome.bestEpoch, durationMs: outcome.durationMs, warnings });
            return;
          }
          process.stdout.write(
            `model ${outcome.model.id} (v${outcome.model.version}) — test accuracy ${percent(m.accuracy)}, F1 ${m.f1.toFixed(3)}, ROC AUC ${m.rocAuc.toFixed(3)} on ${m.count} images; ` +
              `best epoch ${outcome.bestEpoch}; ${formatDuration(outcome.durationMs)}\n` +
              `${outcome.promotion.promoted ? 'promoted' : 'not promoted'}: ${outcome.promotion.reason}\n` +
              warnings.map((warning) => `warning: the run succeeded but its model is ${warning.summary} (${warning.reason})\n`).join(''),
          );
        },
      );
    });
}
