import { BullMqJobQueue } from './bullmq-job-queue.js';
import { InlineJobQueue } from './inline-job-queue.js';
import type { JobQueue } from './job-queue.js';

export * from './job-queue.js';
export { BullMqJobQueue, type BullMqJobQueueOptions } from './bullmq-job-queue.js';
export { InlineJobQueue, type InlineJobQueueOptions } from './inline-job-queue.js';

export interface JobQueueConfig {
  kind: 'inline' | 'bullmq';
  /** Used by 'bullmq' only. */
  redisUrl: string;
  queueName: string;
}

export function createJobQueue(config: JobQueueConfig): JobQueue {
  return config.kind === 'inline'
    ? new InlineJobQueue()
    : new BullMqJobQueue({ redisUrl: config.redisUrl, queueName: config.queueName });
}
