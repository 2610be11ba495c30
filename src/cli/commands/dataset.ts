import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AppContext } from '../../app/context.js';
import { importFolder, type ImportReport } from '../../datasets/import-folder.js';
import { buildDatasetVersion, countBySplit, loadManifest } from '../../datasets/versions.js';
import { NotFoundError } from '../../errors.js';
import { datasetParams } from '../../training/params.js';
import { suspiciousLabels } from '../../training/suspicious.js';
import { printJson, printTable, withApp, type GlobalOptions } from '../app-runner.js';
import { createProgress } from '../progress.js';

export async function runImport(app: AppContext, folder: string): Promise<ImportReport> {
  const progress = createProgress();
  progress.start('importing', 0);
  let started = false;
  const report = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, folder, {
    onProgress: ({ done, total }) => {
      if (!started) {
        progress.start('importing', total);
        started = true;
      }
      progress.update(done);
    },
  });
  progress.stop();
  return report;
}

export function printImportReport(report: ImportReport): void {
  const out = process.stderr;
  out.write(
    `imported ${report.imported} new photos (${report.byLabel.cat} cats, ${report.byLabel.dog} dogs) from ${report.folder}; ` +
      `${report.duplicates} already stored, ${report.skipped.length} skipped\n`,
  );
  for (const skipped of report.skipped) out.write(`  skipped ${skipped.path}: ${skipped.reason}\n`);
}

export function registerDatasetCommands(program: Command, globals: () => GlobalOptions): void {
  const dataset = program.command('dataset').description('labelled photos and immutable dataset versions');

  dataset
    .command('import')
    .argument('<dir>', 'folder with cat/ and dog/ (any case, plural too), PetImages Cat/ Dog/, or Kaggle cat.N.jpg names')
    .option('--json', 'print the report as JSON')
    .description('import labelled photos (deduplicated by content; every skipped file is listed with its reason)')
    .action(async (dir: string, options: { json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const report = await runImport(app, dir);
        if (options.json) printJson(report);
        else printImportReport(report);
      });
    });

  dataset
    .command('build')
    // Scripts written when a version had an image size learn where it went instead of "unknown option".
    .addOption(
      new Option('--image-size <n>').hideHelp().argParser(() => {
        throw new InvalidArgumentError(
          'a dataset version is data only: image size is a setting of the training run. Use `catdog train --image-size N` (or dataset.imageSize in the config).',
        );
      }),
    )
    .option('--json', 'print the version as JSON')
    .description('snapshot all labelled photos into a new numbered dataset version (or reuse the latest one if it holds exactly these)')
    .action(async (options: { json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const { version, created } = await buildDatasetVersion(app, datasetParams(app.config));
        if (options.json) printJson({ ...version, created });
        else process.stdout.write(`${created ? 'built' : 'unchanged, reusing'} dataset version ${version.id}: ${version.imageCount} images ${JSON.stringify(version.counts)}\n`);
      });
    });

  dataset
    .command('list')
    .option('--json', 'print JSON')
    .description('list dataset versions')
    .action(async (options: { json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const versions = await app.db.datasets.list();
        if (options.json) return printJson(versions);
        printTable(
          versions.map((version) => {
            const counts = version.counts as ReturnType<typeof countBySplit>;
            return {
              id: version.id,
              created: version.createdAt,
              images: version.imageCount,
              train: counts.train.cat + counts.train.dog,
              validation: counts.validation.cat + counts.validation.dog,
              test: counts.test.cat + counts.test.dog,
              split: `${version.params.split.train}/${version.params.split.validation}/${version.params.split.test}`,
              seed: version.params.seed,
            };
          }),
        );
      });
    });

  dataset
    .command('show')
    .argument('<id>', 'dataset version number')
    .description('show one dataset version: parameters and counts per split and label')
    .action(async (id: string) => {
      await withApp(globals(), async (app) => {
        const versionId = Number.parseInt(id, 10);
        if (!Number.isInteger(versionId)) throw new NotFoundError('dataset version', id);
        const { version, manifest } = await loadManifest(app, versionId);
        printJson({ ...version, counts: countBySplit(manifest.items) });
      });
    });

  dataset
    .command('suspicious')
    .option('--dataset <n>', 'dataset version (default: the one the promoted model was trained on)', (value) => Number.parseInt(value, 10))
    .option('--limit <n>', 'how many images', (value) => Number.parseInt(value, 10), 20)
    .option('--json', 'print JSON')
    .description('training images whose label the promoted model disagrees with most (highest loss first), to check by hand')
    .action(async (options: { dataset?: number; limit: number; json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const datasetId = options.dataset ?? (await app.db.models.current())?.datasetId;
        if (datasetId === undefined) throw new NotFoundError('promoted model', 'current');
        const suspicious = await suspiciousLabels(app, datasetId, options.limit);
        if (options.json) return printJson(suspicious);
        printTable(suspicious.map(({ hash, label, pDog, loss }) => ({ hash, label, 'p(dog)': pDog.toFixed(4), loss: loss.toFixed(3) })));
      });
    });
}
