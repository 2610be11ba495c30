#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CatdogError } from '../errors.js';
import { codeVersion } from '../app/version.js';
import type { GlobalOptions } from './app-runner.js';
import { registerComponentCommands } from './commands/component.js';
import { registerDatasetCommands } from './commands/dataset.js';
import { registerEvaluateCommand } from './commands/evaluate.js';
import { registerModelsCommands } from './commands/models.js';
import { registerPipelineCommands } from './commands/pipeline.js';
import { registerPredictCommand } from './commands/predict.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSweepCommand } from './commands/sweep.js';
import { registerSystemCommands } from './commands/system.js';
import { registerTokenCommands } from './commands/token.js';
import { registerTrainCommand } from './commands/train.js';
import { registerWorkerCommand } from './commands/worker.js';

const program = new Command('catdog')
  .description('cat-or-dog photo classifier with the whole MLOps loop')
  .version(codeVersion())
  .option('-c, --config <file>', 'config.json to use (default: $CATDOG_CONFIG, else ./config.json if present)')
  .option('-v, --verbose', "also print native TensorFlow's own log lines (its start-up notices, INFO and up)")
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
// Before any command loads TensorFlow, which reads the level once; a level the user set is theirs to keep.
program.hook('preAction', () => {
  if (globals().verbose) process.env.TF_CPP_MIN_LOG_LEVEL ??= '0';
});
registerSystemCommands(program, globals);
registerDatasetCommands(program, globals);
registerTrainCommand(program, globals);
registerEvaluateCommand(program, globals);
registerPredictCommand(program, globals);
registerModelsCommands(program, globals);
registerServeCommand(program, globals);
registerWorkerCommand(program, globals);
registerSweepCommand(program, globals);
registerPipelineCommands(program, globals);
registerComponentCommands(program, globals);
registerTokenCommands(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (error instanceof CatdogError) {
    process.stderr.write(`catdog: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`catdog: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 2;
  }
}
