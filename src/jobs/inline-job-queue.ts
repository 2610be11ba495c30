import { randomUUID } from 'node:crypto';
import type { Logger } from '../app/logger.js';
import type { JobCondition, JobRow } from '../db/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import { ownerIsGone, thisProcessOwner } from '../app/process-owner.js';
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
  errorText,
  FINISHED_STATES,
  noHandlerMessage,
  retryDelayMs,
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
import { MemoryJobStore, newWaitingJob, type JobStore } from './job-store.js';

export interface InlineJobQueueOptions {
  /** Where the jobs are kept: the app's database (`db.jobs`) makes them outlive the process; default memory. */
  store?: JobStore;
  keepFinished?: number;
  closeTimeoutMs?: number;
  /** How often a worker looks for jobs a stopped process left in the store; default 30 s. */
  adoptIntervalMs?: number;
  /**
   * A process that exists to run this queue's jobs (`catdog worker`): looking for jobs keeps it running. Elsewhere
   * (the CLI, tests) the queue never holds its process open.
   */
  holdsProcess?: boolean;
  /** Told about what no caller hears of, such as a job's outcome that could not be saved. */
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Runs cut short by the death of their process that are started again; one more fails the job (BullMQ's maxStalledCount). */
const MAX_STALLED_RUNS = 1;
const DEFAULT_ADOPT_INTERVAL_MS = 30_000;
/** A job whose start could not be recorded (the database did not answer) is tried again after this long. */
const START_RETRY_MS = 5000;

interface RunningJob {
  job: JobRow;
  controller: AbortController;
}

/**
 * Runs jobs inside this process: for a single machine, the CLI and tests. With a database store, the jobs it holds
 * outlive it: `close` puts a job it had to interrupt back to waiting and lets go of the waiting ones, and the next
 * process on the database that starts a worker takes them, as well as the jobs of a process that died (its running
 * job counts as interrupted: started once more, or failed the second time, as BullMQ does with a stalled job).
 */
export class InlineJobQueue implements JobQueue {
  readonly kind = 'inline';
  private readonly store: JobStore;
  /** This process, as the holder of the jobs it runs or will run. */
  private readonly owner = thisProcessOwner();
  /** Ids ready to run, oldest first; jobs waiting out a retry delay are not in it yet. */
  private readonly ready: string[] = [];
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, RunningJob>();
  private readonly runs = new Set<Promise<void>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listeners = new Set<(job: JobInfo) => void>();
  private handlers: Record<string, JobHandler> | undefined;
  private concurrency = 1;
  private workerId = '';
  private closed = false;
  private closing: Promise<void> | undefined;
  private adoptTimer: NodeJS.Timeout | undefined;
  private adopting: Promise<void> | undefined;
  private readonly locks: HeldLocks;
  private readonly keepFinished: number;
  private readonly closeTimeoutMs: number;
  private readonly adoptIntervalMs: number;
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly holdsProcess: boolean;

  constructor(options: InlineJobQueueOptions = {}) {
    this.store = options.store ?? new MemoryJobStore();
    this.keepFinished = options.keepFinished ?? DEFAULT_KEEP_FINISHED;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.adoptIntervalMs = options.adoptIntervalMs ?? DEFAULT_ADOPT_INTERVAL_MS;
    this.logger = options.logger;
    this.locks = new HeldLocks(options.logger);
    this.holdsProcess = options.holdsProcess ?? false;
  }

  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<JobInfo<T>> {
    assertValidEnqueueOptions(options);
    const { inserted, job } = await this.store.insertIfAbsent(
      newWaitingJob({
        id: options.jobId ?? randomUUID(),
        name,
        data,
        maxAttempts: options.attempts ?? DEFAULT_ATTEMPTS,
        backoffMs: options.backoffMs ?? DEFAULT_BACKOFF_MS,
        // A queue without a worker (the server's) or a closed one runs nothing: the job is left for a process that does.
        owner: this.closed || this.handlers === undefined ? null : this.owner,
      }),
    );
    if (inserted && !this.closed) this.schedule(job.id, job.runAfter);
    return toJobInfo(job) as JobInfo<T>;
  }

  async get(id: string): Promise<JobInfo | undefined> {
    const job = await this.store.get(id);
    return job === undefined ? undefined : toJobInfo(job);
  }

  async list(options: { states?: JobState[]; limit?: number } = {}): Promise<JobInfo[]> {
    const jobs = await this.store.list({ ...(options.states && { states: options.states }), limit: options.limit ?? DEFAULT_LIST_LIMIT });
    return jobs.map(toJobInfo);
  }

  async cancel(id: string): Promise<boolean> {
    const running = this.running.get(id);
    if (running !== undefined) {
      if (running.controller.signal.aborted) return false;
      running.controller.abort(CANCELLED_REASON);
      return true;
    }
    const job = await this.store.get(id);
    if (job === undefined || FINISHED_STATES.includes(job.state)) return false;
    if (job.state === 'active' && !ownerIsGone(job.owner)) {
      // Another process runs it (the server's worker process, a CLI run): it aborts the job when it sees the request.
      return this.store.update(id, { cancelRequested: true }, { states: ['active'], owner: job.owner });
    }
    clearTimeout(this.retryTimers.get(id));
    this.retryTimers.delete(id);
    const readyIndex = this.ready.indexOf(id);
    if (readyIndex !== -1) this.ready.splice(readyIndex, 1);
    // Only as it was just read: a job that started meanwhile is looked at again.
    if (!(await this.finish(job, 'cancelled', { error: CANCELLED_REASON }, { states: [job.state], owner: job.owner }))) return this.cancel(id);
    return true;
  }

  async waitFor(id: string, timeoutMs = 60_000): Promise<JobInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.store.get(id);
      if (job === undefined) throw new NotFoundError('job', id);
      if (FINISHED_STATES.includes(job.state)) return toJobInfo(job);
      const left = deadline - Date.now();
      if (left <= 0) throw waitTimeoutError(id, timeoutMs);
      // Woken when this process finishes it; the store is looked at again now and then for one another process runs.
      await this.nextChange(id, Math.min(left, WAIT_POLL_MS));
    }
  }

  async startWorker(handlers: Record<string, JobHandler>, options: WorkerOptions = {}): Promise<void> {
    if (this.handlers !== undefined) {
      throw new CatdogError('worker_already_started', 'this queue already has a worker; one queue runs one worker');
    }
    if (this.closed) throw new CatdogError('queue_closed', 'the job queue is closed');
    this.handlers = handlers;
    this.concurrency = options.concurrency ?? 1;
    this.workerId = options.workerId ?? `inline-${process.pid}`;
    await this.adoptAbandoned();
    this.adoptTimer = setInterval(() => {
      this.adoptAbandoned().catch((error: unknown) => this.logger?.warn({ err: error }, 'looking for jobs left by stopped processes failed'));
    }, this.adoptIntervalMs);
    if (!this.holdsProcess) this.adoptTimer.unref();
    this.pump();
  }

  async counts(): Promise<Record<JobState, number>> {
    return this.store.counts();
  }

  onProgress(listener: (job: JobInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Held in the store, so every process on it (the server and its worker process) sees the same lock. */
  async tryLock(name: string, ttlMs: number): Promise<JobLock | undefined> {
    const holder = `${this.owner}:${randomUUID()}`;
    if (!(await this.store.tryLock(name, holder, ttlMs))) return undefined;
    return this.locks.hold(name, ttlMs, {
      renew: () => this.store.renewLock(name, holder, ttlMs),
      release: () => this.store.releaseLock(name, holder),
    });
  }

  isLocked(name: string): Promise<boolean> {
    return this.store.isLocked(name);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    clearInterval(this.adoptTimer);
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.ready.length = 0;
    if (!(await settlesWithin(Promise.allSettled([...this.runs]), this.closeTimeoutMs))) {
      // `run` puts each job back to waiting; a handler that ignores its signal keeps its job, which the next process
      // takes as interrupted once this one has ended.
      for (const { controller } of this.running.values()) controller.abort(SHUTDOWN_REASON);
      await settlesWithin(Promise.allSettled([...this.runs]), this.closeTimeoutMs);
    }
    // A lock still guards the work of a handler that ignored its signal: it lapses with this process instead.
    if (this.running.size > 0) this.locks.stopRenewing();
    else await this.locks.releaseAll();
    await this.adopting?.catch(() => {});
    await this.store.releaseWaiting(this.owner).catch((error: unknown) => {
      // Still held by this process, they are taken as abandoned once it has ended.
      this.logger?.warn({ err: error }, 'could not hand the waiting jobs back at shutdown');
    });
  }

  /** Takes the unfinished jobs nobody holds (released at a shutdown, or left by a process that died). */
  private adoptAbandoned(): Promise<void> {
    this.adopting ??= (async () => {
      await this.abortCancelRequested();
      for (const job of await this.store.claimAbandoned(this.owner, ownerIsGone)) {
        if (job.state === 'active') await this.recoverInterrupted(job);
        else this.schedule(job.id, job.runAfter);
      }
    })().finally(() => {
      this.adopting = undefined;
    });
    return this.adopting;
  }

  /** Cancels asked for by other processes (which cannot reach this one's abort controllers) take effect here. */
  private async abortCancelRequested(): Promise<void> {
    for (const [id, running] of this.running) {
      if (running.controller.signal.aborted) continue;
      if ((await this.store.get(id))?.cancelRequested) running.controller.abort(CANCELLED_REASON);
    }
  }

  /** A job whose process died while running it: started again once, as BullMQ does with a stalled job, then failed. */
  private async recoverInterrupted(job: JobRow): Promise<void> {
    const stalls = job.stalls + 1;
    const held: JobCondition = { states: ['active'], owner: this.owner };
    if (!(await this.store.update(job.id, { stalls }, held))) return;
    const interrupted = `interrupted: the process running attempt ${job.attempts}${job.workerId === null ? '' : ` (${job.workerId})`} stopped`;
    if (stalls > MAX_STALLED_RUNS) {
      await this.finish(job, 'failed', { error: `${interrupted}; interrupted ${stalls} times, it is not started again` }, held);
    } else if (await this.store.update(job.id, { state: 'waiting', error: interrupted, runAfter: null }, held)) {
      this.schedule(job.id, null);
    }
  }

  /** Queues a waiting job this process holds to run here, at once or when its retry delay (`runAfter`) ends. */
  private schedule(id: string, runAfter: string | null): void {
    const delayMs = runAfter === null ? 0 : Date.parse(runAfter) - Date.now();
    if (delayMs <= 0) {
      this.ready.push(id);
      this.pump();
      return;
    }
    const timer = setTimeout(() => {
      this.retryTimers.delete(id);
      this.ready.push(id);
      this.pump();
    }, delayMs);
    this.retryTimers.set(id, timer);
  }

  private pump(): void {
    while (!this.closed && this.handlers !== undefined && this.runs.size < this.concurrency) {
      const id = this.ready.shift();
      if (id === undefined) return;
      const run = this.run(id, this.handlers).finally(() => {
        this.runs.delete(run);
        this.pump();
      });
      this.runs.add(run);
    }
  }

  private async run(id: string, handlers: Record<string, JobHandler>): Promise<void> {
    let running: RunningJob;
    try {
      const job = await this.store.get(id);
      // Cancelled, or taken by someone else, since it was queued here.
      if (job === undefined || job.state !== 'waiting' || job.owner !== this.owner) return;
      const started = { state: 'active', attempts: job.attempts + 1, workerId: this.workerId, runAfter: null } as const;
      if (!(await this.store.update(id, started, { states: ['waiting'], owner: this.owner }))) return;
      running = { job: { ...job, ...started }, controller: new AbortController() };
    } catch (error) {
      this.logger?.warn({ err: error, jobId: id }, `could not start job ${id}; trying again in ${START_RETRY_MS} ms`);
      if (!this.closed) this.schedule(id, new Date(Date.now() + START_RETRY_MS).toISOString());
      return;
    }
    this.running.set(id, running);
    try {
      await this.settle(running, await this.outcome(running, handlers));
    } catch (error) {
      // Its row still says active: the next process on this store takes the job as interrupted.
      this.logger?.error({ err: error, jobId: id }, `could not record the end of job ${id}`);
    } finally {
      this.running.delete(id);
    }
  }

  private async outcome(running: RunningJob, handlers: Record<string, JobHandler>): Promise<{ result: unknown } | { error: unknown }> {
    const { job, controller } = running;
    try {
      const handler = handlers[job.name];
      if (handler === undefined) throw new UnrunnableJobError(noHandlerMessage(job.name, handlers));
      const result = await handler(job.data, {
        id: job.id,
        attempt: job.attempts,
        signal: controller.signal,
        workerId: this.workerId,
        reportProgress: (fraction, message) => this.reportProgress(running, fraction, message),
      });
      return { result };
    } catch (error) {
      return { error };
    }
  }

  private async settle({ job, controller }: RunningJob, outcome: { result: unknown } | { error: unknown }): Promise<void> {
    const held: JobCondition = { states: ['active'], owner: this.owner };
    if ('result' in outcome) {
      await this.finish(job, 'completed', { result: outcome.result }, held);
    } else if ((controller.signal.aborted && controller.signal.reason === CANCELLED_REASON) || outcome.error instanceof JobCancelledError) {
      await this.finish(job, 'cancelled', { error: CANCELLED_REASON }, held);
    } else if (controller.signal.aborted && controller.signal.reason === SHUTDOWN_REASON) {
      // Back to waiting without counting a failed attempt, for the next process to take.
      await this.store.update(job.id, { state: 'waiting', owner: null }, held);
    } else if (outcome.error instanceof UnrunnableJobError || job.attempts >= job.maxAttempts) {
      await this.finish(job, 'failed', { error: errorText(outcome.error) }, held);
    } else {
      const runAfter = new Date(Date.now() + retryDelayMs(job.backoffMs, job.attempts)).toISOString();
      const retry = { state: 'waiting', error: errorText(outcome.error), runAfter } as const;
      // Once closed, the retry is left to the next process.
      if ((await this.store.update(job.id, retry, held)) && !this.closed) this.schedule(job.id, runAfter);
    }
  }

  private async reportProgress(running: RunningJob, fraction: number, message?: string): Promise<void> {
    if (running.controller.signal.aborted) return;
    const progress = { progress: clampFraction(fraction), progressMessage: message ?? null };
    Object.assign(running.job, progress);
    if (await this.store.update(running.job.id, progress, { states: ['active'], owner: this.owner })) this.emit(running.job);
  }

  /** Records the end of a job that is still as `expected` says; false (and nothing changes) when it is not. */
  private async finish(job: JobRow, state: JobState, outcome: { result?: unknown; error?: string }, expected: JobCondition): Promise<boolean> {
    const ended = {
      state,
      finishedAt: new Date().toISOString(),
      ...(state === 'completed' ? { result: outcome.result, error: null } : { error: outcome.error ?? null }),
    };
    if (!(await this.store.update(job.id, ended, expected))) return false;
    await this.store.pruneFinished(this.keepFinished).catch((error: unknown) => this.logger?.warn({ err: error }, 'could not forget old finished jobs'));
    for (const wake of this.waiters.get(job.id) ?? []) wake();
    this.emit({ ...job, ...ended });
    return true;
  }

  /** Resolves when this process changes job `id`, or after `ms`. */
  private nextChange(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.waiters.get(id) ?? new Set();
      const wake = (): void => {
        clearTimeout(timer);
        waiting.delete(wake);
        if (waiting.size === 0) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiting.add(wake);
      this.waiters.set(id, waiting);
    });
  }

  private emit(job: JobRow): void {
    const info = toJobInfo(job);
    for (const listener of this.listeners) listener(info);
  }
}

/** A job that no retry can help, such as one no handler exists for. */
class UnrunnableJobError extends Error {}

function toJobInfo(job: JobRow): JobInfo {
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    state: job.state,
    progress: job.progress,
    ...(job.progressMessage !== null && { progressMessage: job.progressMessage }),
    attempts: job.attempts,
    ...(job.state === 'completed' && { result: job.result }),
    ...(job.error !== null && { error: job.error }),
    createdAt: job.createdAt,
    ...(job.finishedAt !== null && { finishedAt: job.finishedAt }),
    ...(job.workerId !== null && { workerId: job.workerId }),
  };
}
