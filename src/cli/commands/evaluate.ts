import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { listFiles } from '../../datasets/import-folder.js';
import { labelFromPath } from '../../datasets/labels.js';
import { CatdogError } from '../../errors.js';
import { decodeToRgb, inspectImage } from '../../images/index.js';
import { binaryMetrics } from '../../ml/index.js';
import { openClassifier } from '../../registry/resolve.js';
import { percent, printJson, withApp, type GlobalOptions } from '../app-runner.js';
import { createProgress } from '../progress.js';

const CHUNK = 32;

export function registerEvaluateCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('evaluate')
    .description('measure a model on a labelled folder (nothing is imported)')
    .requiredOption('--data <dir>', 'labelled folder (cat/ dog/, PetImages, Kaggle names)')
    .option('--model <id>', 'model id, version number, "current" or "zero-shot"', 'current')
    .option('--json', 'print one JSON object on stdout')
    .action(async (options: { data: string; model: string; json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const root = path.resolve(options.data);
        const all = await listFiles(root).catch(() => {
          throw new CatdogError('evaluate_folder_missing', `${root} is not a readable folder`);
        });
        const files = all
          .map((file) => ({ file, label: labelFromPath(path.relative(root, file)) }))
          .filter((item): item is { file: string; label: 'cat' | 'dog' } => item.label !== undefined)
          .sort((a, b) => a.file.localeCompare(b.file));
        if (files.length === 0) throw new CatdogError('evaluate_no_images', `no labelled photos under ${root}: use cat/ and dog/ folders or cat.N.jpg names`);

        const classifier = await openClassifier(app, options.model);
        const progress = createProgress();
        progress.start('evaluating', files.length);
        const labels: number[] = [];
        const pDog: number[] = [];
        let skipped = 0;
        try {
          for (let start = 0; start < files.length; start += CHUNK) {
            const chunk = files.slice(start, start + CHUNK);
            const decoded = await Promise.all(
              chunk.map(async ({ file, label }) => {
                try {
                  const bytes = await fs.readFile(file);
                  // Decode once; only a file that fails is inspected, to report the precise reason.
                  const pixels = await decodeToRgb(bytes, classifier.inputSize).catch(async (error: unknown) => {
                    await inspectImage(bytes, app.config.images);
                    throw error;
                  });
                  return { label, pixels: pixels.data };
                } catch (error) {
                  if (!(error instanceof CatdogError)) throw error;
                  process.stderr.write(`skipped ${path.relative(root, file)}: ${error.message}\n`);
                  skipped += 1;
                  return undefined;
                }
              }),
            );
            const usable = decoded.filter((item) => item !== undefined);
            const answers = await classifier.predictPixels(usable.map((item) => item.pixels));
            usable.forEach((item, i) => {
              labels.push(item.label === 'dog' ? 1 : 0);
              pDog.push(answers[i]!.pDog);
            });
            progress.update(Math.min(start + CHUNK, files.length));
          }
        } finally {
          progress.stop();
          classifier.dispose();
        }
        const metrics = binaryMetrics(labels, pDog);
        const result = { ...metrics, modelId: classifier.modelId, skipped };
        if (options.json) printJson(result);
        else process.stdout.write(`${classifier.modelId}: accuracy ${percent(metrics.accuracy)}, precision ${metrics.precision.toFixed(3)}, recall ${metrics.recall.toFixed(3)}, F1 ${metrics.f1.toFixed(3)}, ROC AUC ${metrics.rocAuc.toFixed(3)} on ${metrics.count} photos\n`);
      });
    });
}
