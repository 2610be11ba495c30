import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutShared } from '../../test/support/shared.js';
import { BullMqJobQueue, defineJob, handlerFor, type JobInfo, type JobState } from '../jobs/index.js';
import { startTestServer, type TestServer } from '../../test/support/server.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

interface JobList {
  items: JobInfo[];
  counts: Record<JobState, number>;
  queue: string;
}

/**
 * The API server enqueues nothing here and runs no worker (jobs.kind bullmq): the test adds jobs to the same Redis
 * queue, as another process would, and one of them is run by a worker in the test, as `catdog worker` would.
 */
describe.skipIf(skipWithoutShared)('/api/v1/jobs on a Redis queue', () => {
  const queueName = `jobs-api-${randomUUID()}`;
  let t: TestServer;
  let producer: BullMqJobQueue;
  let worker: BullMqJobQueue;

  const json = async <T>(pathname: string, init?: RequestInit, role: 'admin' | 'viewer' = 'admin') => {
    const response = await t.fetchAs(`/api/v1${pathname}`, init, role);
    return { status: response.status, body: (await response.json()) as T };
  };
  const cancel = (id: string, role: 'admin' | 'viewer' = 'admin') => json<{ cancelled: true; job: JobInfo } & { error: { code: string } }>(`/jobs/${id}/cancel`, { method: 'POST' }, role);

  beforeAll(async () => {
    t = await startTestServer({ CATDOG_JOBS__KIND: 'bullmq', CATDOG_REDIS_URL: REDIS_URL, CATDOG_JOBS__QUEUE_NAME: queueName });
    producer = new BullMqJobQueue({ redisUrl: REDIS_URL, queueName, cancelPollMs: 50 });
    worker = new BullMqJobQueue({ redisUrl: REDIS_URL, queueName, cancelPollMs: 50 });
  });

  afterAll(async () => {
    await worker?.close();
    await producer?.close();
    await t?.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`catdog:${queueName}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('lists jobs newest first with counts, filters by state, gets one, and refuses unknown states and ids', async () => {
    const first = await producer.enqueue('import', { folder: '/photos/a' }, { jobId: 'import-a' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await producer.enqueue('build-dataset', {}, { jobId: 'build-b' });

    const all = await json<JobList>('/jobs');
    expect(all.status).toBe(200);
    expect(all.body.queue).toBe('bullmq');
    expect(all.body.items.map((job) => job.id)).toEqual(['build-b', 'import-a']);
    expect(all.body.counts).toMatchObject({ waiting: 2, active: 0, completed: 0 });
    expect((await json<JobList>('/jobs?state=completed,failed')).body.items).toEqual([]);
    expect((await json<JobList>('/jobs?state=waiting&limit=1')).body.items.map((job) => job.id)).toEqual(['build-b']);

    const one = await json<JobInfo>(`/jobs/${first.id}`, undefined, 'viewer');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'import-a', name: 'import', state: 'waiting', data: { folder: '/photos/a' }, progress: 0, attempts: 0 });

    expect((await json<{ error: { code: string } }>('/jobs?state=sleeping')).status).toBe(400);
    expect((await json<{ error: { code: string } }>('/jobs/no-such-job')).status).toBe(404);
  });

  it('cancels a waiting job at once and an active one through its worker; refuses finished, unknown and non-admin', async () => {
    expect((await cancel('import-a', 'viewer')).status).toBe(403);
    const waiting = await cancel('import-a');
    expect(waiting.status).toBe(202);
    expect(waiting.body.job).toMatchObject({ id: 'import-a', state: 'cancelled' });
    expect((await json<JobList>('/jobs?state=cancelled')).body.items.map((job) => job.id)).toEqual(['import-a']);
    expect((await cancel('import-a')).body.error.code).toBe('job_finished');
    expect((await cancel('no-such-job')).status).toBe(404);

    let started!: () => void;
    const isRunning = new Promise<void>((resolve) => (started = resolve));
    await worker.startWorker({
      // Runs until aborted, the way a training job stops between batches.
      'build-dataset': (_data, ctx) =>
        new Promise((_resolve, reject) => {
          started();
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
        }),
      ...handlerFor(defineJob('echo', z.object({ text: z.string() })), async (data) => data.text),
    });
    await isRunning;
    expect((await json<JobInfo>('/jobs/build-b')).body.state).toBe('active');
    const active = await cancel('build-b');
    expect(active.status).toBe(202);
    expect(await producer.waitFor('build-b', 10_000)).toMatchObject({ state: 'cancelled', attempts: 1 });
    expect((await json<JobInfo>('/jobs/build-b')).body.state).toBe('cancelled');

    const done = await producer.enqueue('echo', { text: 'hello' });
    expect(await producer.waitFor(done.id, 10_000)).toMatchObject({ state: 'completed', result: 'hello' });
    const finished = await cancel(done.id);
    expect(finished.status).toBe(409);
    expect(finished.body.error.code).toBe('job_finished');
  });
});
