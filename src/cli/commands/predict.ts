import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { CatdogError } from '../../errors.js';
import { openClassifier } from '../../registry/resolve.js';
import { predictUploads } from '../../serving/predict.js';
import { percent, printJson, withApp, type GlobalOptions } from '../app-runner.js';

export function registerPredictCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('predict')
    .description('classify photos with the promoted model (or zero-shot before any training); each prediction is recorded for review')
    .argument('<files...>', 'photo files (JPEG, PNG, WebP, GIF, AVIF; detected by content)')
    .option('--model <id>', 'model id, version number, "current" or "zero-shot"', 'current')
    .option('--json', 'print a JSON array on stdout')
    .action(async (files: string[], options: { model: string; json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const uploads = await Promise.all(
          files.map(async (file) => {
            try {
              return { bytes: await fs.readFile(file), fileName: path.basename(file), file };
            } catch (error) {
              throw new CatdogError('file_unreadable', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
            }
          }),
        );
        const classifier = await openClassifier(app, options.model);
        try {
          const results = await predictUploads(
            { db: app.db, blobs: app.blobs, limits: app.config.images, models: { classifier: async () => classifier }, neither: app.config.serving.neither },
            uploads,
            'cli',
          );
          const withFiles = results.map((result, i) => ({ file: uploads[i]!.file, ...result }));
          if (options.json) return printJson(withFiles);
          for (const result of withFiles) {
            process.stdout.write(`${result.file}: ${percent(result.confidence)} ${result.label}  (model ${result.modelId})\n`);
          }
        } finally {
          classifier.dispose();
        }
      });
    });
}
