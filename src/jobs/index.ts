import type { AppContext } from '../app/context.js';
import { BullMqJobQueue } from './bullmq-job-queue.js';
import { InlineJobQueue } from './inline-job-queue.js';
import type { JobQueue } from './job-queue.js';

export * from './job-queue.js';
export { BullMqJobQueue, type BullMqJobQueueOptions } from './bullmq-job-queue.js';
export { InlineJobQueue, type InlineJobQueueOptions } from './inline-job-queue.js';

export interface JobQueueConfig {
  kind: 'inline' | 'bullmq';
  /** The rest is used by 'bullmq' only. */
  redisUrl: string;
  queueName: string;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

export function createJobQueue(config: JobQueueConfig): JobQueue {
  return config.kind === 'inline'
    ? new InlineJobQueue()
    : new BullMqJobQueue({
        redisUrl: config.redisUrl,
        queueName: config.queueName,
        ...(config.lockDurationMs !== undefined && { lockDurationMs: config.lockDurationMs }),
        ...(config.stalledIntervalMs !== undefined && { stalledIntervalMs: config.stalledIntervalMs }),
      });
}

/** The queue the config names (`jobs.kind`): inline jobs run in the process that asks, bullmq ones on `catdog worker`s. */
export function createAppJobQueue(app: Pick<AppContext, 'config'>): JobQueue {
  return createJobQueue(app.config.jobs);
}
