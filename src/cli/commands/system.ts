import path from 'node:path';
import type { Command } from 'commander';
import { formatConfigShow, initConfig, loadConfig } from '../../config/index.js';
import { openDatabase } from '../../db/index.js';
import { databaseUrl } from '../../config/index.js';
import { initTensorflow, trainingPath } from '../../ml/index.js';
import { printJson, withApp, type GlobalOptions } from '../app-runner.js';

export function registerSystemCommands(program: Command, globals: () => GlobalOptions): void {
  const config = program.command('config').description('the validated config.json (+ CATDOG_* environment overrides)');
  config
    .command('init')
    .option('--dir <dir>', 'where to write config.json and config.schema.json', '.')
    .option('--force', 'overwrite an existing config.json')
    .description('write a config.json with every default, documented by config.schema.json')
    .action((options: { dir: string; force?: boolean }) => {
      const written = initConfig(path.resolve(options.dir), { force: options.force });
      process.stdout.write(`wrote ${written.configPath} and ${written.schemaPath}\n`);
    });
  config
    .command('show')
    .option('--json', 'print the effective config as JSON')
    .description('print the effective config and where each value came from')
    .action((options: { json?: boolean }) => {
      const loaded = loadConfig({ file: globals().config });
      if (options.json) printJson(loaded.config);
      else process.stdout.write(formatConfigShow(loaded));
    });

  const db = program.command('db').description('the SQL database');
  db.command('migrate')
    .description('apply pending migrations (they also run at every start)')
    .action(async () => {
      const database = await openDatabase(databaseUrl(loadConfig({ file: globals().config }).config));
      try {
        const applied = await database.migrate();
        process.stdout.write(applied.length > 0 ? `applied ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await database.close();
      }
    });
  db.command('check')
    .description('check that the database answers')
    .action(async () => {
      const database = await openDatabase(databaseUrl(loadConfig({ file: globals().config }).config));
      try {
        const result = await database.check();
        process.stdout.write(`ok: ${result.dialect} ${result.version}, ${result.latencyMs.toFixed(1)} ms\n`);
      } finally {
        await database.close();
      }
    });

  program
    .command('doctor')
    .option('--json', 'print JSON')
    .description('show the ML backend, database, storage and config in use')
    .action(async (options: { json?: boolean }) => {
      const { backend, reason, tf } = await initTensorflow();
      const training = await trainingPath();
      await withApp(globals(), async (app) => {
        const dbCheck = await app.db.check();
        const report = {
          version: app.codeVersion,
          backend,
          backendNote: reason ?? (backend === 'tensorflow' ? 'native TensorFlow via @tensorflow/tfjs-node' : undefined),
          training: `${training.kind}: ${training.detail}`,
          tfjs: tf.version.tfjs,
          node: process.version,
          configFile: app.loaded.file ?? '(none: defaults and environment)',
          home: path.resolve(app.config.home),
          database: `${dbCheck.dialect} ${dbCheck.version}`,
          storage: app.blobs.describe(),
          jobs: app.config.jobs.kind,
          backbone: app.config.training.backbone,
        };
        if (options.json) return printJson(report);
        for (const [key, value] of Object.entries(report)) {
          if (value !== undefined) process.stdout.write(`${key.padEnd(12)} ${value}\n`);
        }
      });
    });
}
