import type { AppContext } from '../app/context.js';
import { BullMqJobQueue } from './bullmq-job-queue.js';
import { InlineJobQueue, type InlineJobQueueOptions } from './inline-job-queue.js';
import type { JobQueue } from './job-queue.js';

export * from './job-queue.js';
export { BullMqJobQueue, type BullMqJobQueueOptions } from './bullmq-job-queue.js';
export { InlineJobQueue, type InlineJobQueueOptions } from './inline-job-queue.js';
export { MemoryJobStore, type JobStore } from './job-store.js';

export interface JobQueueConfig {
  kind: 'inline' | 'bullmq';
  /** The rest is used by 'bullmq' only. */
  redisUrl: string;
  queueName: string;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

/** `inline` says where an inline queue keeps its jobs (default: memory, gone with the process). */
export function createJobQueue(config: JobQueueConfig, inline: InlineJobQueueOptions = {}): JobQueue {
  return config.kind === 'inline'
    ? new InlineJobQueue(inline)
    : new BullMqJobQueue({
        redisUrl: config.redisUrl,
        ...(inline.logger !== undefined && { logger: inline.logger }),
        queueName: config.queueName,
        ...(config.lockDurationMs !== undefined && { lockDurationMs: config.lockDurationMs }),
        ...(config.stalledIntervalMs !== undefined && { stalledIntervalMs: config.stalledIntervalMs }),
      });
}

/**
 * The queue the config names (`jobs.kind`): inline jobs run in the process that asks, and are kept in the app's
 * database so that the next process takes over those it leaves unfinished; bullmq ones run on `catdog worker`s.
 */
export function createAppJobQueue(app: Pick<AppContext, 'config' | 'db' | 'logger'>, inline: Pick<InlineJobQueueOptions, 'adoptIntervalMs' | 'holdsProcess'> = {}): JobQueue {
  return createJobQueue(app.config.jobs, { ...inline, store: app.db.jobs, logger: app.logger, adoptIntervalMs: inline.adoptIntervalMs ?? app.config.jobs.stalledIntervalMs });
}
export { defineJob, enqueueJob, handlerFor, type JobDefinition, type PayloadOf } from './job-definition.js';
