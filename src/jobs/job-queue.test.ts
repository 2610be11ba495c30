import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database, type JobRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import { z } from 'zod';
import { BullMqJobQueue, createJobQueue, defineJob, handlerFor, InlineJobQueue, JobCancelledError, type JobContext, type JobInfo, type JobQueue } from './index.js';
import { newWaitingJob } from './job-store.js';

const numbered = z.object({ n: z.number() });

const REDIS_URL = 'redis://127.0.0.1:6379';
const TEST_PREFIX = 'catdog-test';

/** Deletes every key of one test queue: Redis is shared with other test runs. */
async function deleteQueueKeys(queueName: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${TEST_PREFIX}:${queueName}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

const openQueues: JobQueue[] = [];
/** Run once every queue of the test is closed. */
const cleanUps: (() => Promise<void>)[] = [];
/** Opens another queue on the same store (Redis queue or database), as the process after a restart would. */
const reopeners = new Map<JobQueue, () => JobQueue>();
const reopen = (queue: JobQueue): JobQueue => reopeners.get(queue)!();

afterEach(async () => {
  for (const queue of openQueues.splice(0)) await queue.close();
  for (const cleanUp of cleanUps.splice(0)) await cleanUp();
  reopeners.clear();
});

function openBullMq(queueName = `test-${randomUUID()}`): BullMqJobQueue {
  const queue = new BullMqJobQueue({
    redisUrl: REDIS_URL,
    queueName,
    prefix: TEST_PREFIX,
    lockDurationMs: 2000,
    stalledIntervalMs: 1000,
    cancelPollMs: 50,
    closeTimeoutMs: 2000,
  });
  openQueues.push(queue);
  cleanUps.push(() => deleteQueueKeys(queueName));
  reopeners.set(queue, () => openBullMq(queueName));
  return queue;
}

function openInline(options: ConstructorParameters<typeof InlineJobQueue>[0] = {}): InlineJobQueue {
  const queue = new InlineJobQueue({ closeTimeoutMs: 2000, ...options });
  openQueues.push(queue);
  reopeners.set(queue, () => openInline(options));
  return queue;
}

/** A fresh SQLite database of the test's own, as `catdog serve` keeps its inline jobs. */
async function scratchDatabase(): Promise<Database> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'catdog-jobs-'));
  const db = await openDatabase(`sqlite:${path.join(dir, 'catdog.db')}`);
  await db.migrate();
  cleanUps.push(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

const adapters: { label: string; kind: JobQueue['kind']; durable: boolean; open(): Promise<JobQueue> }[] = [
  { label: 'inline (memory)', kind: 'inline', durable: false, open: async () => openInline() },
  { label: 'inline (database)', kind: 'inline', durable: true, open: async () => openInline({ store: (await scratchDatabase()).jobs }) },
  { label: 'bullmq', kind: 'bullmq', durable: true, open: async () => openBullMq() },
];

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe.each(adapters)('$label JobQueue', ({ kind, durable, open }) => {
  it('runs an enqueued job on the worker and records its result', async () => {
    const queue = await open();
    expect(queue.kind).toBe(kind);
    const enqueued = await queue.enqueue('double', { value: 21 });
    expect(enqueued).toMatchObject({ name: 'double', data: { value: 21 }, state: 'waiting', attempts: 0 });
    await queue.startWorker(handlerFor(defineJob('double', z.object({ value: z.number() })), async (data) => ({ doubled: data.value * 2 })), { workerId: 'w1' });

    const finished = await queue.waitFor(enqueued.id, 8000);
    expect(finished).toMatchObject({ id: enqueued.id, state: 'completed', result: { doubled: 42 }, attempts: 1, workerId: 'w1' });
    expect(Date.parse(finished.finishedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(finished.createdAt));
    expect(await queue.get(enqueued.id)).toEqual(finished);
    expect(await queue.get('no-such-job')).toBeUndefined();
  });

  it('reports progress to listeners, and the end of the job too', async () => {
    const queue = await open();
    const seen: JobInfo[] = [];
    const unsubscribe = queue.onProgress((job) => seen.push(job));
    await queue.startWorker({
      train: async (_data: unknown, ctx: JobContext) => {
        await ctx.reportProgress(0.25, 'epoch 1 of 4');
        await ctx.reportProgress(1.7, 'done');
        return 'trained';
      },
    });
    const job = await queue.enqueue('train', {});
    await queue.waitFor(job.id, 8000);
    await vi.waitFor(() => expect(seen.some((info) => info.state === 'completed')).toBe(true), { timeout: 3000 });
    expect(seen.map((info) => info.progress)).toContain(0.25);
    expect(seen.find((info) => info.progress === 0.25)?.progressMessage).toBe('epoch 1 of 4');
    // Out-of-range fractions are clamped rather than shown as 170 %.
    expect((await queue.get(job.id))?.progress).toBe(1);
    unsubscribe();
    const countBefore = seen.length;
    await queue.waitFor((await queue.enqueue('train', {})).id, 8000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.length).toBe(countBefore);
  });

  it('retries a failed attempt after a backoff and succeeds on attempt 2', async () => {
    const queue = await open();
    const attempts: number[] = [];
    await queue.startWorker({
      flaky: async (_data: unknown, ctx: JobContext) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error('transient');
        return 'ok';
      },
    });
    const started = Date.now();
    const job = await queue.enqueue('flaky', {}, { attempts: 3, backoffMs: 300 });
    const finished = await queue.waitFor(job.id, 8000);
    expect(finished).toMatchObject({ state: 'completed', result: 'ok', attempts: 2 });
    expect(attempts).toEqual([1, 2]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('fails a job with the error text once its attempts are used up', async () => {
    const queue = await open();
    let runs = 0;
    await queue.startWorker({
      broken: async () => {
        runs += 1;
        throw new Error(`disk full (run ${runs})`);
      },
    });
    const job = await queue.enqueue('broken', {}, { attempts: 2, backoffMs: 20 });
    const finished = await queue.waitFor(job.id, 8000);
    expect(finished).toMatchObject({ state: 'failed', error: 'disk full (run 2)', attempts: 2 });
    expect(runs).toBe(2);
  });

  it('fails a job nobody handles without retrying it', async () => {
    const queue = await open();
    await queue.startWorker({ known: async () => 'ok' });
    const job = await queue.enqueue('unknown', {}, { attempts: 3, backoffMs: 20 });
    const finished = await queue.waitFor(job.id, 8000);
    expect(finished).toMatchObject({ state: 'failed', attempts: 1 });
    expect(finished.error).toContain('no handler for job "unknown"');
  });

  it('treats the same jobId as the same job', async () => {
    const queue = await open();
    const first = await queue.enqueue('import', { folder: 'a' }, { jobId: 'import-a' });
    const second = await queue.enqueue('import', { folder: 'b' }, { jobId: 'import-a' });
    expect(second.id).toBe('import-a');
    expect(second.data).toEqual({ folder: 'a' });
    expect(first.id).toBe(second.id);
    expect((await queue.counts()).waiting).toBe(1);
    await expect(queue.enqueue('import', {}, { jobId: '42' })).rejects.toMatchObject({ code: 'invalid_job_id' });
  });

  it('cancels a waiting job at once', async () => {
    const queue = await open();
    const job = await queue.enqueue('never-run', {}, { jobId: 'to-cancel' });
    expect(await queue.cancel('to-cancel')).toBe(true);
    expect(await queue.waitFor('to-cancel', 3000)).toMatchObject({ id: 'to-cancel', state: 'cancelled', attempts: 0 });
    expect(await queue.get(job.id)).toMatchObject({ state: 'cancelled' });
    expect(await queue.cancel('to-cancel')).toBe(false);
    expect(await queue.cancel('never-existed')).toBe(false);
    // The id stays taken: enqueueing it again answers the cancelled job.
    expect(await queue.enqueue('never-run', {}, { jobId: 'to-cancel' })).toMatchObject({ state: 'cancelled' });
    expect(await queue.counts()).toMatchObject({ waiting: 0, cancelled: 1 });

    let ran = false;
    await queue.startWorker({ 'never-run': async () => { ran = true; } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ran).toBe(false);
  });

  it('cancels an active job through its abort signal, without a retry', async () => {
    const queue = await open();
    const started = deferred();
    let runs = 0;
    await queue.startWorker({
      long: async (_data: unknown, ctx: JobContext) => {
        runs += 1;
        started.resolve();
        await new Promise<void>((_, reject) => {
          ctx.signal.addEventListener('abort', () => reject(new Error('stopped')));
        });
      },
    });
    const job = await queue.enqueue('long', {}, { attempts: 3, backoffMs: 20 });
    await started.promise;
    expect((await queue.get(job.id))?.state).toBe('active');
    expect(await queue.cancel(job.id)).toBe(true);
    const finished = await queue.waitFor(job.id, 5000);
    expect(finished).toMatchObject({ state: 'cancelled', attempts: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toBe(1);
    expect((await queue.counts()).cancelled).toBe(1);
  });

  it('lists jobs newest first by state and counts them', async () => {
    const queue = await open();
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push((await queue.enqueue('count', { n })).id);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await queue.counts()).toEqual({ waiting: 3, active: 0, completed: 0, failed: 0, cancelled: 0 });
    expect((await queue.list({ states: ['waiting'] })).map((job) => job.id)).toEqual([...ids].reverse());
    expect((await queue.list({ limit: 2 })).map((job) => job.id)).toEqual([ids[2], ids[1]]);
    expect(await queue.list({ states: ['completed'] })).toEqual([]);

    await queue.startWorker(handlerFor(defineJob('count', numbered), async (data) => data.n));
    for (const id of ids) await queue.waitFor(id, 8000);
    expect(await queue.counts()).toEqual({ waiting: 0, active: 0, completed: 3, failed: 0, cancelled: 0 });
    expect((await queue.list({ states: ['completed'] })).map((job) => job.result)).toEqual([3, 2, 1]);
  });

  it('runs no more jobs at once than the concurrency allows', async () => {
    const queue = await open();
    let running = 0;
    let mostAtOnce = 0;
    await queue.startWorker(
      {
        slow: async () => {
          running += 1;
          mostAtOnce = Math.max(mostAtOnce, running);
          await new Promise((resolve) => setTimeout(resolve, 150));
          running -= 1;
        },
      },
      { concurrency: 2 },
    );
    const jobs = await Promise.all([1, 2, 3, 4, 5].map((n) => queue.enqueue('slow', { n })));
    await Promise.all(jobs.map((job) => queue.waitFor(job.id, 8000)));
    expect(mostAtOnce).toBe(2);
  });

  it('ends cancelled, not failed, a job whose handler finds its work was cancelled before it started', async () => {
    const queue = await open();
    await queue.startWorker({ train: async () => { throw new JobCancelledError('its run was cancelled'); } });
    const job = await queue.enqueue('train', {}, { attempts: 3 });
    expect(await queue.waitFor(job.id, 8000)).toMatchObject({ state: 'cancelled', attempts: 1 });
  });

  it('lets one holder at a time take a named lock, and another once it is released', async () => {
    const queue = await open();
    expect(await queue.isLocked('retrain')).toBe(false);
    const first = await queue.tryLock('retrain', 5000);
    expect(first).toBeDefined();
    expect(await queue.tryLock('retrain', 5000)).toBeUndefined();
    expect(await queue.isLocked('retrain')).toBe(true);
    const other = await queue.tryLock('another-name', 5000);
    expect(other).toBeDefined();
    await first!.release();
    expect(await queue.isLocked('retrain')).toBe(false);
    const second = await queue.tryLock('retrain', 5000);
    expect(second).toBeDefined();
    // A second release of a lock someone else now holds must not free it.
    await first!.release();
    expect(await queue.isLocked('retrain')).toBe(true);
    await second!.release();
    await other!.release();
  });

  it('times out waiting for a job that does not finish', async () => {
    const queue = await open();
    const job = await queue.enqueue('nobody-runs-this', {});
    const error = await queue.waitFor(job.id, 100).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CatdogError);
    expect((error as CatdogError).code).toBe('job_wait_timeout');
    await expect(queue.waitFor('missing-job', 100)).rejects.toMatchObject({ code: 'not_found' });
  });

  it.skipIf(!durable)('shares a named lock with the other processes on its store: renewed past its ttl, released when its holder closes', async () => {
    const holder = await open();
    const otherProcess = reopen(holder);
    expect(await holder.tryLock('retrain', 300)).toBeDefined();
    expect(await otherProcess.isLocked('retrain')).toBe(true);
    expect(await otherProcess.tryLock('retrain', 300)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await otherProcess.isLocked('retrain')).toBe(true);
    // A clean shutdown hands the lock over at once rather than after its ttl.
    await holder.close();
    expect(await otherProcess.isLocked('retrain')).toBe(false);
    expect(await otherProcess.tryLock('retrain', 300)).toBeDefined();
  });

  it.skipIf(!durable)('a job queued before a restart runs after it', async () => {
    const before = await open();
    const job = await before.enqueue('greet', { name: 'Rex' }, { jobId: 'queued-before-restart' });
    await before.close();

    const after = reopen(before);
    expect(await after.get(job.id)).toMatchObject({ state: 'waiting', attempts: 0, data: { name: 'Rex' } });
    await after.startWorker(handlerFor(defineJob('greet', z.object({ name: z.string() })), async (data) => `hello ${data.name}`), { workerId: 'after-restart' });
    expect(await after.waitFor(job.id, 8000)).toMatchObject({ state: 'completed', result: 'hello Rex', attempts: 1, workerId: 'after-restart' });
  });

  it.skipIf(!durable)('closing puts a running job back in the queue without spending an attempt; the next worker runs it, then the waiting one', async () => {
    const stopping = await open();
    const started = deferred();
    await stopping.startWorker({
      work: async (_data: unknown, ctx: JobContext) => {
        started.resolve();
        // Runs until told to stop, as a training does.
        await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
      },
    });
    // attempts 1: had the shutdown counted as a failure, the job would fail instead of running again.
    const interrupted = await stopping.enqueue('work', { n: 1 }, { attempts: 1 });
    const queued = await stopping.enqueue('work', { n: 2 }, { attempts: 1 });
    await started.promise;
    await stopping.close();

    const next = reopen(stopping);
    expect(await next.get(interrupted.id)).toMatchObject({ state: 'waiting', attempts: 1 });
    expect(await next.get(queued.id)).toMatchObject({ state: 'waiting', attempts: 0 });
    const order: number[] = [];
    await next.startWorker(
      {
        work: async (payload: unknown, ctx: JobContext) => {
          const data = numbered.parse(payload);
          order.push(data.n);
          return `attempt ${ctx.attempt}`;
        },
      },
      { workerId: 'next' },
    );
    expect(await next.waitFor(interrupted.id, 8000)).toMatchObject({ state: 'completed', result: 'attempt 2', attempts: 2, workerId: 'next' });
    expect(await next.waitFor(queued.id, 8000)).toMatchObject({ state: 'completed', result: 'attempt 1', attempts: 1, workerId: 'next' });
    expect(order).toEqual([1, 2]);
  });
});

/** `host:pid` of a process that has ended, as a crashed process leaves on the jobs it held. */
async function deadOwner(): Promise<string> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return `${hostname()}:${child.pid}`;
}

function storedJob(overrides: Partial<JobRow> & Pick<JobRow, 'id'>): JobRow {
  return { ...newWaitingJob({ id: overrides.id, name: 'work', data: {}, maxAttempts: 3, backoffMs: 10, owner: null }), ...overrides };
}

describe('InlineJobQueue on a database only', () => {
  it('takes over the jobs of a process that died: waiting ones run, a running one runs once more, a second interruption fails it', async () => {
    const db = await scratchDatabase();
    const dead = await deadOwner();
    // The test runner's main process: alive, and not this one.
    const alive = `${hostname()}:${process.ppid}`;
    for (const job of [
      storedJob({ id: 'left-waiting', owner: dead, createdAt: '2020-01-01T00:00:00.000Z' }),
      storedJob({ id: 'left-running', state: 'active', attempts: 1, workerId: 'dead-worker', owner: dead, createdAt: '2020-01-01T00:00:01.000Z' }),
      storedJob({ id: 'left-running-again', state: 'active', attempts: 2, stalls: 1, workerId: 'dead-worker', owner: dead }),
      storedJob({ id: 'held-by-a-live-process', owner: alive }),
      storedJob({ id: 'running-in-a-live-process', state: 'active', attempts: 1, owner: alive }),
    ]) {
      await db.jobs.insertIfAbsent(job);
    }

    const heir = openInline({ store: db.jobs });
    await heir.startWorker({ work: async (_data: unknown, ctx: JobContext) => `attempt ${ctx.attempt}` }, { workerId: 'heir' });
    expect(await heir.waitFor('left-waiting', 8000)).toMatchObject({ state: 'completed', result: 'attempt 1', workerId: 'heir' });
    expect(await heir.waitFor('left-running', 8000)).toMatchObject({ state: 'completed', result: 'attempt 2', attempts: 2, workerId: 'heir' });
    const failed = await heir.waitFor('left-running-again', 8000);
    expect(failed).toMatchObject({ state: 'failed', attempts: 2 });
    expect(failed.error).toBe('interrupted: the process running attempt 2 (dead-worker) stopped; interrupted 2 times, it is not started again');

    // What a live process holds stays with it; cancelling its running job asks that process, which alone can stop it.
    expect(await db.jobs.get('held-by-a-live-process')).toMatchObject({ state: 'waiting', owner: alive });
    expect(await heir.cancel('running-in-a-live-process')).toBe(true);
    expect(await db.jobs.get('running-in-a-live-process')).toMatchObject({ state: 'active', owner: alive, cancelRequested: true });
    // A waiting one may be cancelled from anywhere: its holder finds it cancelled and never starts it.
    expect(await heir.cancel('held-by-a-live-process')).toBe(true);
    expect(await db.jobs.get('held-by-a-live-process')).toMatchObject({ state: 'cancelled' });
  });

  it('cancels a job that another process runs: the request is stored and that process aborts the job at its next look', async () => {
    const db = await scratchDatabase();
    // The server's own worker process, as `catdog serve` starts it on embedded defaults.
    const worker = openInline({ store: db.jobs, adoptIntervalMs: 100 });
    const started = deferred();
    await worker.startWorker({
      train: (_data, ctx) =>
        new Promise((_resolve, reject) => {
          started.resolve();
          ctx.signal.addEventListener('abort', () => reject(new Error(String(ctx.signal.reason))));
        }),
    });
    // The server: it enqueues and cancels, and runs nothing itself.
    const server = openInline({ store: db.jobs });
    const job = await server.enqueue('train', {});
    expect((await db.jobs.get(job.id))?.owner).toBeNull();
    await started.promise;
    expect(await server.cancel(job.id)).toBe(true);
    expect(await server.waitFor(job.id, 8000)).toMatchObject({ state: 'cancelled', error: 'cancelled', attempts: 1 });
  });

  it('a running worker takes the jobs another process hands back, at its next look', async () => {
    const db = await scratchDatabase();
    const server = openInline({ store: db.jobs, adoptIntervalMs: 200 });
    await server.startWorker({ work: async () => 'done' }, { workerId: 'server' });
    // A process that queues a job and stops before running it, as a command interrupted early would.
    const command = openInline({ store: db.jobs });
    const job = await command.enqueue('work', {});
    await command.close();
    expect(await server.waitFor(job.id, 8000)).toMatchObject({ state: 'completed', result: 'done', workerId: 'server' });
  });

  it('keeps the newest finished jobs only', async () => {
    const db = await scratchDatabase();
    const queue = openInline({ store: db.jobs, keepFinished: 2 });
    await queue.startWorker(handlerFor(defineJob('work', numbered), async (data) => data.n));
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const job = await queue.enqueue('work', { n });
      await queue.waitFor(job.id, 8000);
      ids.push(job.id);
    }
    expect(await queue.get(ids[0]!)).toBeUndefined();
    expect((await queue.list()).map((job) => job.result)).toEqual([3, 2]);
  });
});

describe('BullMqJobQueue only', () => {
  it('answers queue_unavailable naming the URL when Redis cannot be reached', async () => {
    const queue = createJobQueue({ kind: 'bullmq', redisUrl: 'redis://:secret@127.0.0.1:1', queueName: 'unreachable' });
    const error = await queue.enqueue('x', {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CatdogError);
    expect(error).toMatchObject({ code: 'queue_unavailable', httpStatus: 503 });
    expect((error as Error).message).toContain('redis://:***@127.0.0.1:1');
    expect((error as Error).message).not.toContain('secret');
    await queue.close();
  });

  it('gives the job of a worker killed mid-job to another worker', async () => {
    const queueName = `test-${randomUUID()}`;
    const queue = openBullMq(queueName);
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../test/support/stalling-worker.mjs', import.meta.url)), REDIS_URL, queueName, TEST_PREFIX],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    try {
      const job = await queue.enqueue('train', { epochs: 1 }, { attempts: 1 });
      const [line] = (await new Promise<[string]>((resolve) => createInterface({ input: child.stdout }).once('line', (text) => resolve([text]))));
      expect(line).toBe(`started ${job.id}`);
      expect((await queue.get(job.id))?.state).toBe('active');
      child.kill('SIGKILL');

      await queue.startWorker({ train: async () => 'trained by the survivor' }, { workerId: 'survivor' });
      const finished = await queue.waitFor(job.id, 9000);
      expect(finished).toMatchObject({ state: 'completed', result: 'trained by the survivor', workerId: 'survivor' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 15_000);

  it('closes even when a handler ignores the shutdown; its job goes to another worker once the lock lapses', async () => {
    const stubborn = openBullMq();
    const started = deferred();
    await stubborn.startWorker({
      work: async () => {
        started.resolve();
        await new Promise(() => {});
      },
    });
    const job = await stubborn.enqueue('work', {}, { attempts: 1 });
    await started.promise;
    // closeTimeoutMs 2000 to finish, 2000 more after the abort: then it lets go instead of waiting for ever.
    await stubborn.close();

    const survivor = reopen(stubborn);
    await survivor.startWorker({ work: async () => 'taken over' }, { workerId: 'survivor' });
    expect(await survivor.waitFor(job.id, 15_000)).toMatchObject({ state: 'completed', result: 'taken over', workerId: 'survivor' });
  }, 30_000);
});

describe('newWaitingJob', () => {
  it('gives jobs created in the same millisecond increasing creation times, so oldest-first never depends on ids', () => {
    const times = Array.from({ length: 50 }, (_, i) => newWaitingJob({ id: `job-${i}`, name: 'work', data: {}, maxAttempts: 1, backoffMs: 0, owner: null }).createdAt);
    for (let i = 1; i < times.length; i++) expect(Date.parse(times[i]!)).toBeGreaterThan(Date.parse(times[i - 1]!));
  });
});
