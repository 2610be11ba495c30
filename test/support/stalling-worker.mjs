// A BullMQ worker that takes one job, says so on stdout and then hangs, for the test that SIGKILLs it mid-job.
// Plain JavaScript because the child runs without a TypeScript loader.
// Usage: node stalling-worker.mjs <redisUrl> <queueName> <prefix>
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [redisUrl, queueName, prefix] = process.argv.slice(2);
const worker = new Worker(
  queueName,
  async (job) => {
    process.stdout.write(`started ${job.id}\n`);
    await new Promise(() => {});
  },
  // The timings of the test's queue: the first worker's stalled check throttles everyone's for stalledInterval.
  {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    prefix,
    lockDuration: 2000,
    stalledInterval: 1000,
    name: 'doomed-worker',
  },
);
worker.on('error', () => {});
