import { hostname } from 'node:os';
import type { Command } from 'commander';
import { openApp } from '../../app/context.js';
import type { Logger } from '../../app/logger.js';
import { loadConfig } from '../../config/index.js';
import { jobHandlers } from '../../worker/handlers.js';
import { createAppJobQueue, type JobHandler } from '../../jobs/index.js';
import { initTensorflow } from '../../ml/index.js';
import type { GlobalOptions } from '../app-runner.js';
import { positiveInt } from './train.js';

/** One log line when a job starts and one when it ends, with how long it took. */
function logged(handlers: Record<string, JobHandler>, logger: Logger): Record<string, JobHandler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]): [string, JobHandler] => [
      name,
      async (data, ctx) => {
        const started = Date.now();
        const job = { jobId: ctx.id, name, attempt: ctx.attempt, workerId: ctx.workerId };
        logger.info(job, 'job started');
        try {
          const result = await handler(data, ctx);
          logger.info({ ...job, durationMs: Date.now() - started }, 'job completed');
          return result;
        } catch (error) {
          logger.warn({ ...job, durationMs: Date.now() - started, error: (error as Error).message, cancelled: ctx.signal.aborted }, 'job failed');
          throw error;
        }
      },
    ]),
  );
}

/** How soon an in-process queue's worker notices a job another process (the server) added or asked to cancel. */
const INLINE_POLL_MS = 500;

export function registerWorkerCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('worker')
    .description('runs queued jobs (imports, datasets, training, sweep candidates, retraining, pipeline steps): from Redis with jobs.kind bullmq, else from the app database (what catdog serve starts for itself)')
    .option('--concurrency <n>', 'jobs run at the same time (default: jobs.concurrency, 1)', positiveInt)
    .action(async (options: { concurrency?: number }) => {
      const loaded = loadConfig({ file: globals().config });
      const app = await openApp(loaded, { checkBackbones: true });
      // In-process jobs live in the app database: a worker on it (the server's own worker process) looks for new ones
      // often, since no broker tells it about them.
      const queue = app.config.jobs.kind === 'inline' ? createAppJobQueue(app, { adoptIntervalMs: INLINE_POLL_MS, holdsProcess: true }) : createAppJobQueue(app);
      const workerId = `${hostname()}-${process.pid}`;
      const concurrency = options.concurrency ?? app.config.jobs.concurrency;
      try {
        // Loading native TensorFlow blocks the event loop for seconds: done before taking a job, not while its lock
        // needs renewing.
        await initTensorflow();
        await queue.startWorker(logged(jobHandlers(app, queue), app.logger), { concurrency, workerId });
      } catch (error) {
        await queue.close();
        await app.close();
        throw error;
      }
      app.logger.info({ workerId, queue: app.config.jobs.queueName, concurrency }, 'worker ready');

      let stopping: Promise<void> | undefined;
      const stop = (reason: string) => {
        stopping ??= (async () => {
          // Active jobs get the queue's close timeout to finish; any still running then go back to the queue for another worker.
          app.logger.info({ reason, workerId }, 'worker stopping: finishing active jobs');
          await queue.close();
          await app.close();
          app.logger.info({ workerId }, 'worker stopped');
        })().then(
          () => process.exit(0),
          (error: unknown) => {
            app.logger.error({ err: error }, 'worker shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      // Started by `catdog serve` (with an IPC channel): a server that died, even by SIGKILL, takes its worker with it
      // rather than leaving it running jobs nobody started the server for.
      if (process.channel !== undefined) process.once('disconnect', () => stop('the server that started this worker has gone'));
    });
}
