import type { Command } from 'commander';
import { CatdogError } from '../../errors.js';
import { jobHandlers } from '../../worker/handlers.js';
import { createAppJobQueue } from '../../jobs/index.js';
import { completeSweep, DEFAULT_SWEEP_TIMEOUT_MS, loadSweep, parseSweepGrid, startSweep, type SweepCandidate, type SweepRecord } from '../../training/sweep.js';
import { percent, printJson, printTable, withApp, type GlobalOptions } from '../app-runner.js';
import { positiveInt } from './train.js';

const describeOverrides = (candidate: SweepCandidate): string =>
  Object.entries(candidate.overrides)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');

export function printSweep(record: SweepRecord): void {
  printTable(
    record.candidates.map((candidate) => ({
      '#': candidate.index,
      params: describeOverrides(candidate),
      state: candidate.state,
      worker: candidate.workerId ?? '',
      'val acc': candidate.validation ? percent(candidate.validation.accuracy) : '',
      'val loss': candidate.validation ? candidate.validation.loss.toFixed(4) : '',
      winner: record.winner?.index === candidate.index ? '*' : '',
    })),
  );
  const accuracy = record.test?.accuracy;
  if (record.status === 'finished' && record.winner && record.promotion) {
    process.stdout.write(
      `winner #${record.winner.index}: model ${record.winner.modelId}, test accuracy ${typeof accuracy === 'number' ? percent(accuracy) : '?'}; ` +
        `${record.promotion.promoted ? 'promoted' : 'not promoted'}: ${record.promotion.reason}\n`,
    );
  } else {
    process.stdout.write(`sweep ${record.id}: ${record.status}${record.error ? ` (${record.error})` : ''}\n`);
  }
}

export function registerSweepCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('sweep')
    .description('trains one candidate per combination of a parameter grid on workers, finalizes the best on validation (test split seen once), promotes it if better')
    .option('--grid <json>', 'parameters to vary, e.g. \'{"learningRate":[0.001,0.01],"head":["logistic","mlp"]}\'')
    .option('--dataset <id>', 'dataset version to train on (default: build or reuse one from the labelled photos)', positiveInt)
    .option('--wait', 'wait for the candidates, finalize the winner and print the table (always so with inline jobs)')
    .option('--resume <sweepId>', 'wait for an earlier sweep, finalize its winner and print the table')
    .option('--json', 'print the sweep record as JSON')
    .option('--timeout <minutes>', `give up waiting after this long, with an error saying how to resume (default ${DEFAULT_SWEEP_TIMEOUT_MS / 60_000})`, positiveInt)
    .action(async (options: { grid?: string; dataset?: number; wait?: boolean; resume?: string; json?: boolean; timeout?: number }) => {
      if ((options.grid === undefined) === (options.resume === undefined)) {
        throw new CatdogError('missing_argument', 'sweep needs --grid JSON (a new sweep) or --resume ID (an earlier one)');
      }
      const grid = options.grid === undefined ? undefined : parseSweepGrid(options.grid);
      await withApp(globals(), async (app) => {
        const queue = createAppJobQueue(app);
        try {
          // Inline jobs run in this process, so this process must wait for them.
          if (queue.kind === 'inline') await queue.startWorker(jobHandlers(app, queue));
          const record = grid !== undefined ? await startSweep(app, queue, { grid, datasetId: options.dataset }) : await loadSweep(app, options.resume!);
          if (grid !== undefined) process.stderr.write(`sweep ${record.id}: ${record.candidates.length} candidates on dataset v${record.datasetId}\n`);
          const wait = options.wait === true || options.resume !== undefined || queue.kind === 'inline';
          const shown = wait
            ? await completeSweep(app, queue, record, {
                onCandidate: (candidate) =>
                  process.stderr.write(`candidate #${candidate.index} ${candidate.state}${candidate.workerId ? ` on ${candidate.workerId}` : ''}${candidate.error ? `: ${candidate.error}` : ''}\n`),
                ...(options.timeout !== undefined && { timeoutMs: options.timeout * 60_000 }),
              })
            : record;
          if (options.json) printJson(shown);
          else printSweep(shown);
          if (!wait) process.stdout.write(`queued on the workers; finish it with: catdog sweep --resume ${record.id}\n`);
        } finally {
          await queue.close();
        }
      });
    });
}
