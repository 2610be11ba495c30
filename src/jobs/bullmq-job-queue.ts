import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type JobType } from 'bullmq';
import type { Logger } from '../app/logger.js';
import { CatdogError, NotFoundError } from '../errors.js';
import { HeldLocks } from './held-locks.js';
import {
  assertValidEnqueueOptions,
  CANCELLED_REASON,
  JobCancelledError,
  clampFraction,
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_MS,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_KEEP_FINISHED,
  DEFAULT_LIST_LIMIT,
  emptyCounts,
  errorText,
  FINISHED_STATES,
  noHandlerMessage,
  settlesWithin,
  SHUTDOWN_REASON,
  WAIT_POLL_MS,
  waitTimeoutError,
  type EnqueueOptions,
  type JobHandler,
  type JobInfo,
  type JobLock,
  type JobQueue,
  type JobState,
  type WorkerOptions,
} from './job-queue.js';
import { Redis, type RedisOptions } from 'ioredis';

export interface BullMqJobQueueOptions {
  redisUrl: string;
  queueName: string;
  /** Redis key prefix; default 'catdog'. */
  prefix?: string;
  /** A worker that stops renewing its lock for this long (killed, frozen) loses its job to another; default 30 s. */
  lockDurationMs?: number;
  /** How often workers look for jobs whose lock expired; default 30 s. */
  stalledIntervalMs?: number;
  /** How long to wait for Redis before answering `queue_unavailable`; default 5 s. */
  connectTimeoutMs?: number;
  keepFinished?: number;
  closeTimeoutMs?: number;
  /** How often a worker checks whether one of its active jobs was cancelled; default 250 ms. */
  cancelPollMs?: number;
  logger?: Pick<Logger, 'warn'>;
}

interface Connection {
  queue: Queue;
  events: QueueEvents;
  /** For the adapter's own keys: cancellation requests, cancelled-job records and locks. */
  redis: Redis;
  /** The clients of `queue` and `redis`, which fail fast while Redis is down. */
  requestClients: Redis[];
  clients: Redis[];
}

interface JobProgressRecord {
  fraction: number;
  message?: string;
}

const BULL_TYPES_OF: Record<Exclude<JobState, 'cancelled'>, JobType[]> = {
  waiting: ['waiting', 'delayed', 'prioritized', 'waiting-children'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
};

/** Keeps the newest `ARGV[4]` cancelled jobs: a record per id in a hash, their order in a sorted set. */
const RECORD_CANCELLED_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('HDEL', KEYS[1], unpack(oldest))
end
return 1`;

/** Deletes or renews a lock only while it still holds this holder's token: a lapsed lock may be someone else's now. */
const RELEASE_LOCK_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const RENEW_LOCK_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

const CANCEL_REQUEST_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/** What ioredis throws when Redis does not answer (as opposed to refusing a command it received). */
const REDIS_UNREACHABLE_MESSAGES = [
  /enableOfflineQueue/,
  /max retries per request/i,
  /connection is closed/i,
  /command timed out/i,
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN/,
];

/** A URL fit for an error message: the password never leaves the process. */
function redactedUrl(redisUrl: string): string {
  try {
    const url = new URL(redisUrl);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}

/**
 * Jobs in Redis through BullMQ, so the API server enqueues and any number of worker processes run them.
 * BullMQ cannot cancel a job another process runs, so cancellation is a Redis key that workers poll;
 * cancelled jobs are removed from BullMQ and kept as records of their own, since BullMQ has no such state.
 */
export class BullMqJobQueue implements JobQueue {
  readonly kind = 'bullmq';
  private connection: Promise<Connection> | undefined;
  private worker: Worker | undefined;
  private workerClient: Redis | undefined;
  private cancelPoll: NodeJS.Timeout | undefined;
  private readonly activeHere = new Set<string>();
  private readonly locks: HeldLocks;
  private closing: Promise<void> | undefined;
  private readonly listeners = new Set<(job: JobInfo) => void>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly prefix: string;

  constructor(private readonly options: BullMqJobQueueOptions) {
    this.prefix = options.prefix ?? 'catdog';
    this.locks = new HeldLocks(options.logger);
  }

  private key(name: string): string {
    return `${this.prefix}:${this.options.queueName}:catdog:${name}`;
  }

  private connected(): Promise<Connection> {
    this.connection ??= this.connect().catch((error: unknown) => {
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  private async connect(): Promise<Connection> {
    await this.assertRedisReachable();
    const { queueName } = this.options;
    const queueClient = this.newRequestClient();
    const eventsClient = this.newClient();
    const redis = this.newRequestClient();
    const keep = { count: this.options.keepFinished ?? DEFAULT_KEEP_FINISHED };
    const queue = new Queue(queueName, {
      connection: queueClient,
      prefix: this.prefix,
      defaultJobOptions: { removeOnComplete: keep, removeOnFail: keep },
    });
    const events = new QueueEvents(queueName, { connection: eventsClient, prefix: this.prefix });
    // Failures reach callers through the awaited calls; an 'error' event nobody listens to would crash the process.
    queue.on('error', () => {});
    events.on('error', () => {});
    events.on('progress', ({ jobId, data }) => this.jobChanged(jobId, data as JobProgressRecord));
    for (const finished of ['completed', 'failed', 'removed'] as const) {
      events.on(finished, ({ jobId }: { jobId: string }) => this.jobChanged(jobId));
    }
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), redis.connect()]);
    return { queue, events, redis, requestClients: [queueClient, redis], clients: [queueClient, eventsClient, redis] };
  }

  /** BullMQ requires `maxRetriesPerRequest: null` for workers and event readers: their blocking commands wait out a Redis restart. */
  private newClient(options: RedisOptions = {}): Redis {
    const client = new Redis(this.options.redisUrl, { maxRetriesPerRequest: null, ...options });
    // Failures reach callers through the awaited calls; an 'error' event nobody listens to would crash the process.
    client.on('error', () => {});
    return client;
  }

  /**
   * For the commands a caller waits on (an API request, a sweep): while Redis is down they fail at once, and one sent
   * just before it went away fails when the connection drops or after the connect timeout, so that the caller answers
   * `queue_unavailable` instead of hanging. The client keeps reconnecting in the background and works again once
   * Redis is back.
   */
  private newRequestClient(): Redis {
    return this.newClient({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.connectTimeoutMs(),
    });
  }

  private connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  private async assertRedisReachable(): Promise<void> {
    const probe = this.newClient({
      lazyConnect: true,
      connectTimeout: this.connectTimeoutMs(),
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    try {
      await probe.connect();
      await probe.ping();
    } catch (error) {
      throw this.unavailable(error);
    } finally {
      probe.disconnect();
    }
  }

  private unavailable(cause: unknown): CatdogError {
    return new CatdogError(
      'queue_unavailable',
      `the job queue's Redis at ${redactedUrl(this.options.redisUrl)} is unreachable (${errorText(cause)}); start Redis or fix redisUrl, then retry`,
      503,
    );
  }

  /** Runs `operation` on the connection; Redis going away while it runs is a `queue_unavailable`, not an internal error. */
  private async onRedis<T>(operation: (connection: Connection) => Promise<T>): Promise<T> {
    const connection = await this.connected();
    try {
      return await operation(connection);
    } catch (error) {
      if (error instanceof CatdogError) throw error;
      const down = connection.requestClients.some((client) => client.status !== 'ready') || REDIS_UNREACHABLE_MESSAGES.some((pattern) => pattern.test(errorText(error)));
      throw down ? this.unavailable(error) : error;
    }
  }

  /** `progress` comes from the event: by the time the job is read, the handler may have reported more. */
  private jobChanged(jobId: string, progress?: JobProgressRecord): void {
    for (const wake of this.waiters.get(jobId) ?? []) wake();
    if (this.listeners.size === 0) return;
    void this.get(jobId)
      .then((info) => {
        if (info === undefined) return;
        if (progress !== undefined) {
          info.progress = progress.fraction;
          if (progress.message === undefined) delete info.progressMessage;
          else info.progressMessage = progress.message;
        } else if (!FINISHED_STATES.includes(info.state)) return;
        for (const listener of this.listeners) listener(info);
      })
      .catch(() => {});
  }

  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<JobInfo<T>> {
    assertValidEnqueueOptions(options);
    return this.onRedis(async ({ queue }) => {
      if (options.jobId !== undefined) {
        const cancelled = await this.cancelledRecord(options.jobId);
        if (cancelled !== undefined) return cancelled as JobInfo<T>;
      }
      const added = await queue.add(name, data, {
        ...(options.jobId !== undefined && { jobId: options.jobId }),
        attempts: options.attempts ?? DEFAULT_ATTEMPTS,
        backoff: { type: 'exponential', delay: options.backoffMs ?? DEFAULT_BACKOFF_MS },
      });
      // BullMQ answers a duplicate id with the new arguments, not the stored job: read the stored one.
      if (options.jobId === undefined) return toJobInfo(added, 'waiting') as JobInfo<T>;
      return (await this.get(options.jobId)) as JobInfo<T>;
    });
  }

  get(id: string): Promise<JobInfo | undefined> {
    return this.onRedis(async ({ queue }) => {
      const job = await queue.getJob(id);
      if (job === undefined) return this.cancelledRecord(id);
      const state = await job.getState();
      // The job may have finished between the two reads: its hash, read while it was active, has no result yet.
      if ((state === 'completed' || state === 'failed') && job.finishedOn === undefined) {
        const finished = await queue.getJob(id);
        return finished === undefined ? this.cancelledRecord(id) : toJobInfo(finished, state);
      }
      return toJobInfo(job, state);
    });
  }

  private cancelledRecord(id: string): Promise<JobInfo | undefined> {
    return this.onRedis(async ({ redis }) => {
      const record = await redis.hget(this.key('cancelled'), id);
      return record === null ? undefined : (JSON.parse(record) as JobInfo);
    });
  }

  list(options: { states?: JobState[]; limit?: number } = {}): Promise<JobInfo[]> {
    return this.onRedis(async ({ queue, redis }) => {
      const limit = options.limit ?? DEFAULT_LIST_LIMIT;
      const states = options.states ?? [...(Object.keys(BULL_TYPES_OF) as JobState[]), 'cancelled'];
      const found: JobInfo[] = [];
      for (const state of states) {
        if (state === 'cancelled') {
          const ids = await redis.zrevrange(this.key('cancelled-order'), 0, limit - 1);
          if (ids.length === 0) continue;
          const records = await redis.hmget(this.key('cancelled'), ...ids);
          for (const record of records) if (record !== null) found.push(JSON.parse(record) as JobInfo);
        } else {
          for (const type of BULL_TYPES_OF[state]) {
            const jobs = await queue.getJobs(type, 0, limit - 1, false);
            found.push(...jobs.map((job) => toJobInfo(job as Job, type)));
          }
        }
      }
      return found
        .filter((job) => states.includes(job.state))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
        .slice(0, limit);
    });
  }

  cancel(id: string): Promise<boolean> {
    return this.onRedis(async ({ queue, redis }) => {
      const job = await queue.getJob(id);
      if (job === undefined) return false;
      const state = toJobState(await job.getState(), job.failedReason);
      if (FINISHED_STATES.includes(state)) return false;
      // Set first: a waiting job a worker takes right now is still cancelled when it starts.
      await redis.set(this.key(`cancel-requested:${id}`), '1', 'PX', CANCEL_REQUEST_TTL_MS);
      if (state === 'active') return true;
      // Recorded before removal so that whoever hears 'removed' finds the job cancelled, not gone.
      await this.recordCancelled(job);
      try {
        await job.remove();
      } catch {
        // It became active meanwhile: its worker sees the request; the record is written again when it stops.
        await redis.hdel(this.key('cancelled'), id);
        await redis.zrem(this.key('cancelled-order'), id);
      }
      return true;
    });
  }

  private async recordCancelled(job: Job): Promise<void> {
    const { redis } = await this.connected();
    const info: JobInfo = {
      ...toJobInfo(job, 'failed'),
      state: 'cancelled',
      error: CANCELLED_REASON,
      finishedAt: new Date(job.finishedOn ?? Date.now()).toISOString(),
    };
    const keep = this.options.keepFinished ?? DEFAULT_KEEP_FINISHED;
    await redis.eval(RECORD_CANCELLED_SCRIPT, 2, this.key('cancelled'), this.key('cancelled-order'), info.id, JSON.stringify(info), Date.now(), keep);
  }

  async waitFor(id: string, timeoutMs = 60_000): Promise<JobInfo> {
    await this.connected();
    return new Promise<JobInfo>((resolve, reject) => {
      let settled = false;
      const wake = (): void => {
        this.get(id).then(
          (info) => {
            if (settled) return;
            if (info === undefined) finish(() => reject(new NotFoundError('job', id)));
            else if (FINISHED_STATES.includes(info.state)) finish(() => resolve(info));
          },
          (error: unknown) => {
            // Redis restarting: the next look, or the deadline, decides.
            if (!(error instanceof CatdogError && error.code === 'queue_unavailable')) finish(() => reject(error));
          },
        );
      };
      const timer = setTimeout(() => finish(() => reject(waitTimeoutError(id, timeoutMs))), timeoutMs);
      // Events are the fast path; a look now and then means a missed one (a dropped connection) delays, never hangs.
      const poll = setInterval(wake, WAIT_POLL_MS);
      // The Redis connections keep the process alive while it waits; a long timeout must not keep it alive after close.
      timer.unref();
      poll.unref();
      const finish = (settle: () => void): void => {
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.get(id)?.delete(wake);
        settle();
      };
      const waiting = this.waiters.get(id) ?? new Set();
      waiting.add(wake);
      this.waiters.set(id, waiting);
      // Checked after subscribing, so a job finishing in between is not missed.
      wake();
    });
  }

  async startWorker(handlers: Record<string, JobHandler>, options: WorkerOptions = {}): Promise<void> {
    if (this.worker !== undefined) {
      throw new CatdogError('worker_already_started', 'this queue already has a worker; one queue runs one worker');
    }
    const { redis } = await this.connected();
    const workerId = options.workerId ?? `worker-${process.pid}`;
    this.workerClient = this.newClient();
    const worker = new Worker(
      this.options.queueName,
      // Three parameters: BullMQ hands out the abort signal only to processors that declare it.
      async (job: Job, token: string | undefined, signal: AbortSignal | undefined) =>
        this.process(job, token, handlers, workerId, signal ?? new AbortController().signal),
      {
        connection: this.workerClient,
        prefix: this.prefix,
        name: workerId,
        concurrency: options.concurrency ?? 1,
        lockDuration: this.options.lockDurationMs ?? 30_000,
        stalledInterval: this.options.stalledIntervalMs ?? 30_000,
        removeOnComplete: { count: this.options.keepFinished ?? DEFAULT_KEEP_FINISHED },
        removeOnFail: { count: this.options.keepFinished ?? DEFAULT_KEEP_FINISHED },
      },
    );
    worker.on('error', () => {});
    worker.on('failed', (job, error) => {
      if (job !== undefined && error.message === CANCELLED_REASON) {
        void this.recordCancelled(job)
          .then(() => job.remove())
          .catch(() => {});
      }
    });
    this.worker = worker;
    await worker.waitUntilReady();
    this.cancelPoll = setInterval(() => {
      void this.abortCancelledJobs(redis, worker).catch(() => {});
    }, this.options.cancelPollMs ?? 250);
  }

  private async abortCancelledJobs(redis: Redis, worker: Worker): Promise<void> {
    const ids = [...this.activeHere];
    if (ids.length === 0) return;
    const requested = await redis.mget(...ids.map((id) => this.key(`cancel-requested:${id}`)));
    ids.forEach((id, index) => {
      if (requested[index] !== null) worker.cancelJob(id, CANCELLED_REASON);
    });
  }

  private async process(job: Job, token: string | undefined, handlers: Record<string, JobHandler>, workerId: string, signal: AbortSignal): Promise<unknown> {
    const id = job.id ?? '';
    const handler = handlers[job.name];
    if (handler === undefined) throw new UnrecoverableError(noHandlerMessage(job.name, handlers));
    const { redis } = await this.connected();
    if ((await redis.exists(this.key(`cancel-requested:${id}`))) === 1) {
      throw new UnrecoverableError(CANCELLED_REASON);
    }
    this.activeHere.add(id);
    try {
      return await handler(job.data, {
        id,
        attempt: Math.max(startedAttempts(job), job.attemptsMade + 1),
        signal,
        workerId,
        reportProgress: async (fraction, message) => {
          const progress: JobProgressRecord = { fraction: clampFraction(fraction), ...(message !== undefined && { message }) };
          await job.updateProgress(progress);
        },
      });
    } catch (error) {
      if ((signal.aborted && signal.reason === CANCELLED_REASON) || error instanceof JobCancelledError) throw new UnrecoverableError(CANCELLED_REASON);
      if (signal.aborted && signal.reason === SHUTDOWN_REASON) {
        // Back to the front of the waiting list without counting as a failed attempt; the next worker starts it again.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      throw error;
    } finally {
      this.activeHere.delete(id);
    }
  }

  counts(): Promise<Record<JobState, number>> {
    return this.onRedis(async ({ queue, redis }) => {
      const bull = await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'waiting-children', 'active', 'completed', 'failed');
      const counts = emptyCounts();
      for (const state of Object.keys(BULL_TYPES_OF) as (keyof typeof BULL_TYPES_OF)[]) {
        for (const type of BULL_TYPES_OF[state]) counts[state] += bull[type] ?? 0;
      }
      counts.cancelled = await redis.zcard(this.key('cancelled-order'));
      return counts;
    });
  }

  onProgress(listener: (job: JobInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  tryLock(name: string, ttlMs: number): Promise<JobLock | undefined> {
    return this.onRedis(async ({ redis }) => {
      const key = this.key(`lock:${name}`);
      const token = randomUUID();
      if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
      return this.locks.hold(name, ttlMs, {
        renew: async () => (await redis.eval(RENEW_LOCK_SCRIPT, 1, key, token, ttlMs)) === 1,
        release: async () => {
          await redis.eval(RELEASE_LOCK_SCRIPT, 1, key, token);
        },
      });
    });
  }

  isLocked(name: string): Promise<boolean> {
    return this.onRedis(async ({ redis }) => (await redis.exists(this.key(`lock:${name}`))) === 1);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    clearInterval(this.cancelPoll);
    const worker = this.worker;
    if (worker !== undefined) {
      const closeTimeoutMs = this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      // Takes no new job and waits for the active ones (a second close(), forced or not, only waits for this one).
      const workerClosed = worker.close();
      if (!(await settlesWithin(workerClosed, closeTimeoutMs))) {
        // Their handlers stop and `process` puts their jobs back at the front of the waiting list.
        worker.cancelAllJobs(SHUTDOWN_REASON);
        if (!(await settlesWithin(workerClosed, closeTimeoutMs))) {
          // A handler that ignores its signal: without this connection its lock is no longer renewed, so once the lock
          // lapses (lockDurationMs) another worker's stalled check puts the job back in the queue.
          this.workerClient?.disconnect();
          this.locks.stopRenewing();
          return this.closeConnection();
        }
      }
      await this.workerClient?.quit();
    }
    await this.locks.releaseAll();
    await this.closeConnection();
  }

  private async closeConnection(): Promise<void> {
    const connection = await this.connection?.catch(() => undefined);
    if (connection !== undefined) {
      // Without Redis these cannot say goodbye (closing the events reader waits for Redis): closing must still end,
      // so a failed or overlong farewell is cut short.
      await settlesWithin(Promise.allSettled([connection.events.close(), connection.queue.close()]), this.connectTimeoutMs());
      await settlesWithin(Promise.allSettled(connection.clients.map((client) => client.quit())), this.connectTimeoutMs());
      for (const client of connection.clients) client.disconnect();
    }
  }
}

function toJobState(bullState: string, failedReason: string | undefined): JobState {
  if (bullState === 'active' || bullState === 'completed') return bullState;
  if (bullState === 'failed') return failedReason === CANCELLED_REASON ? 'cancelled' : 'failed';
  return 'waiting';
}

/** A run a dead worker started counts: BullMQ restarts a stalled job without adding to `attemptsMade`. */
function startedAttempts(job: Job): number {
  return Math.max(job.attemptsStarted ?? 0, job.attemptsMade);
}

function toJobInfo(job: Job, bullState: string): JobInfo {
  const state = toJobState(bullState, job.failedReason);
  const progress = job.progress as JobProgressRecord | number | undefined;
  const info: JobInfo = {
    id: job.id ?? '',
    name: job.name,
    data: job.data,
    state,
    progress: typeof progress === 'number' ? progress : (progress?.fraction ?? 0),
    attempts: Math.max(startedAttempts(job), state === 'active' ? job.attemptsMade + 1 : job.attemptsMade),
    createdAt: new Date(job.timestamp).toISOString(),
  };
  if (typeof progress === 'object' && progress.message !== undefined) info.progressMessage = progress.message;
  if (state === 'completed') info.result = job.returnvalue;
  if (job.failedReason) info.error = job.failedReason;
  if (job.finishedOn !== undefined && FINISHED_STATES.includes(state)) info.finishedAt = new Date(job.finishedOn).toISOString();
  if (job.processedBy !== undefined) info.workerId = job.processedBy;
  return info;
}
