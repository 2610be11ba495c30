import fs from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { readModelCard } from '../../registry/artifacts.js';
import { EXPORT_FORMATS, exportModel, type ExportFormat } from '../../registry/export.js';
import { importModel, readModelUpload } from '../../registry/import.js';
import { findModel } from '../../registry/resolve.js';
import { CatdogError } from '../../errors.js';
import { suggestNeitherThreshold } from '../../serving/neither.js';
import { percent, printJson, printTable, withApp, type GlobalOptions } from '../app-runner.js';

export function registerModelsCommands(program: Command, globals: () => GlobalOptions): void {
  const models = program.command('models').description('the model registry: list, inspect, promote (rollback = promote an older one)');

  models
    .command('list')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const [all, current] = await Promise.all([app.db.models.list(), app.db.models.current()]);
        if (options.json) return printJson(all.map((model) => ({ ...model, serving: model.id === current?.id })));
        printTable(
          all.map((model) => ({
            serving: model.id === current?.id ? '*' : '',
            version: model.version,
            id: model.id,
            architecture: model.architecture,
            dataset: model.datasetId,
            accuracy: percent(model.metrics.accuracy),
            f1: model.metrics.f1.toFixed(3),
            rocAuc: Number.isNaN(model.metrics.rocAuc) ? '' : model.metrics.rocAuc.toFixed(3),
            created: model.createdAt,
          })),
        );
      });
    });

  models
    .command('show')
    .argument('<id>', 'model id, version number or "current"')
    .action(async (id: string) => {
      await withApp(globals(), async (app) => {
        const model = await findModel(app, id);
        if (!model) throw new CatdogError('no_model', 'no model is promoted yet: train one with catdog train --data DIR', 404);
        const [current, card] = await Promise.all([app.db.models.current(), readModelCard(app.blobs, model.artifactPrefix)]);
        printJson({ ...model, serving: model.id === current?.id, decodeId: card?.decodeId ?? null });
      });
    });

  models
    .command('promote')
    .argument('<id>', 'model id or version number to serve from now on (a running server switches within seconds)')
    .option('--reason <text>', 'why, kept in the promotion history', 'manual promotion')
    .action(async (id: string, options: { reason: string }) => {
      await withApp(globals(), async (app) => {
        const model = await findModel(app, id);
        if (!model) throw new CatdogError('no_model', 'name a model id or version to promote', 400);
        await app.db.models.promote(model.id, { reason: options.reason, actor: 'cli' });
        process.stdout.write(`promoted ${model.id} (v${model.version})\n`);
      });
    });

  models
    .command('export')
    .description('write a model that runs without catdog (raw RGB 0-255 pixels in, P(dog) out): Keras 3 .keras or a TF.js folder')
    .argument('<id>', 'model id, version number or "current"')
    .addOption(new Option('--format <format>', 'keras: one .keras file; tfjs: a folder with model.json, weights.bin, catdog.json').choices(EXPORT_FORMATS).default('keras'))
    .requiredOption('-o, --output <path>', 'the .keras file, or the folder for tfjs')
    .action(async (id: string, options: { format: ExportFormat; output: string }) => {
      await withApp(globals(), async (app) => {
        const exported = await exportModel(app, id, options.format);
        if (exported.format === 'keras') {
          await fs.writeFile(options.output, exported.bytes);
        } else {
          await fs.mkdir(options.output, { recursive: true });
          for (const [name, bytes] of Object.entries(exported.files)) await fs.writeFile(path.join(options.output, name), bytes);
        }
        process.stdout.write(`wrote ${exported.fileName} to ${options.output}\n`);
      });
    });

  models
    .command('import')
    .description('register a model trained elsewhere, evaluated on the latest dataset version and promoted only if better')
    .argument('<file>', '.keras, .h5, a TF.js model.json (weights beside it) or its folder, or a zip of that folder')
    .option('--name <name>', 'name shown in the registry (default: "imported <file>")')
    .action(async (file: string, options: { name?: string }) => {
      await withApp(globals(), async (app) => {
        const { model, metrics, promotion } = await importModel(app, await readModelUpload(file), { name: options.name, actor: 'cli' });
        process.stdout.write(`registered ${model.id} (v${model.version}): test accuracy ${percent(metrics.accuracy)}\n`);
        process.stdout.write(`${promotion.promoted ? 'promoted' : 'not promoted'}: ${promotion.reason}\n`);
      });
    });

  models
    .command('history')
    .description('promotion history, newest first')
    .action(async () => {
      await withApp(globals(), async (app) => printTable(await app.db.models.promotions()));
    });

  models
    .command('neither-threshold')
    .option('--max-animal-loss <fraction>', 'largest share of validated cats and dogs that may be called "neither"', Number.parseFloat, 0.005)
    .option('--json', 'print JSON')
    .description('suggest serving.neither.threshold from validated predictions (photos validated "neither" are the negatives)')
    .action(async (options: { maxAnimalLoss: number; json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const suggestion = await suggestNeitherThreshold(app.db, options.maxAnimalLoss);
        if (options.json) return printJson(suggestion);
        process.stdout.write(
          `serving.neither.threshold = ${suggestion.threshold.toPrecision(3)} (now ${app.config.serving.neither.threshold}): ` +
            `catches ${percent(suggestion.neitherRecall)} of ${suggestion.neither} validated "neither" photos, ` +
            `calls ${percent(suggestion.animalLoss)} of ${suggestion.animals} validated cats and dogs "neither"\n`,
        );
      });
    });
}
