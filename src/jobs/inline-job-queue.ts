import { randomUUID } from 'node:crypto';
import { CatdogError, NotFoundError } from '../errors.js';
import {
  assertValidEnqueueOptions,
  CANCELLED_REASON,
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
  retryDelayMs,
  waitTimeoutError,
  type EnqueueOptions,
  type JobHandler,
  type JobInfo,
  type JobLock,
  type JobQueue,
  type JobState,
  type WorkerOptions,
} from './job-queue.js';

export interface InlineJobQueueOptions {
  keepFinished?: number;
  closeTimeoutMs?: number;
}

interface InlineJob {
  info: JobInfo;
  maxAttempts: number;
  backoffMs: number;
  controller?: AbortController;
  retryTimer?: NodeJS.Timeout;
  finished: Promise<JobInfo>;
  resolveFinished(info: JobInfo): void;
}

/** Runs jobs inside this process: for a single machine, the CLI and tests. Nothing survives a restart. */
export class InlineJobQueue implements JobQueue {
  readonly kind = 'inline';
  private readonly jobs = new Map<string, InlineJob>();
  /** Ids ready to run, oldest first; jobs waiting out a retry delay are not in it yet. */
  private readonly ready: string[] = [];
  private readonly listeners = new Set<(job: JobInfo) => void>();
  private readonly running = new Set<Promise<void>>();
  private handlers: Record<string, JobHandler> | undefined;
  private concurrency = 1;
  private workerId = '';
  private closed = false;
  private readonly locks = new Set<string>();
  private readonly keepFinished: number;
  private readonly closeTimeoutMs: number;

  constructor(options: InlineJobQueueOptions = {}) {
    this.keepFinished = options.keepFinished ?? DEFAULT_KEEP_FINISHED;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  }

  async enqueue<T>(name: string, data: T, options: EnqueueOptions = {}): Promise<JobInfo<T>> {
    assertValidEnqueueOptions(options);
    const existing = options.jobId === undefined ? undefined : this.jobs.get(options.jobId);
    if (existing !== undefined) return snapshot(existing) as JobInfo<T>;
    const id = options.jobId ?? randomUUID();
    let resolveFinished: (info: JobInfo) => void = () => {};
    const finished = new Promise<JobInfo>((resolve) => {
      resolveFinished = resolve;
    });
    const job: InlineJob = {
      info: { id, name, data, state: 'waiting', progress: 0, attempts: 0, createdAt: new Date().toISOString() },
      maxAttempts: options.attempts ?? DEFAULT_ATTEMPTS,
      backoffMs: options.backoffMs ?? DEFAULT_BACKOFF_MS,
      finished,
      resolveFinished,
    };
    this.jobs.set(id, job);
    this.ready.push(id);
    this.pump();
    return snapshot(job) as JobInfo<T>;
  }

  async get(id: string): Promise<JobInfo | undefined> {
    const job = this.jobs.get(id);
    return job === undefined ? undefined : snapshot(job);
  }

  async list(options: { states?: JobState[]; limit?: number } = {}): Promise<JobInfo[]> {
    const states = options.states;
    return [...this.jobs.values()]
      .filter((job) => states === undefined || states.includes(job.info.state))
      .reverse()
      .slice(0, options.limit ?? DEFAULT_LIST_LIMIT)
      .map(snapshot);
  }

  async cancel(id: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (job === undefined) return false;
    if (job.info.state === 'waiting') {
      clearTimeout(job.retryTimer);
      const readyIndex = this.ready.indexOf(id);
      if (readyIndex !== -1) this.ready.splice(readyIndex, 1);
      this.finish(job, 'cancelled', { error: CANCELLED_REASON });
      return true;
    }
    if (job.info.state === 'active' && job.controller !== undefined && !job.controller.signal.aborted) {
      job.controller.abort(CANCELLED_REASON);
      return true;
    }
    return false;
  }

  async waitFor(id: string, timeoutMs = 60_000): Promise<JobInfo> {
    const job = this.jobs.get(id);
    if (job === undefined) throw new NotFoundError('job', id);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(waitTimeoutError(id, timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([job.finished, timeout]);
    } finally {
      clearTimeout(timer);
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
    this.pump();
  }

  async counts(): Promise<Record<JobState, number>> {
    const counts = emptyCounts();
    for (const job of this.jobs.values()) counts[job.info.state] += 1;
    return counts;
  }

  onProgress(listener: (job: JobInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Nothing outlives this process, so the lock needs no expiry. */
  async tryLock(name: string, _ttlMs: number): Promise<JobLock | undefined> {
    if (this.locks.has(name)) return undefined;
    this.locks.add(name);
    let held = true;
    return {
      release: async () => {
        if (held) this.locks.delete(name);
        held = false;
      },
    };
  }

  async isLocked(name: string): Promise<boolean> {
    return this.locks.has(name);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs.values()) clearTimeout(job.retryTimer);
    const settled = Promise.allSettled([...this.running]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
    });
    if ((await Promise.race([settled, timedOut])) === 'timeout') {
      for (const job of this.jobs.values()) job.controller?.abort(new CatdogError('queue_closed', 'the job queue closed'));
    }
    clearTimeout(timer);
  }

  private pump(): void {
    while (!this.closed && this.handlers !== undefined && this.running.size < this.concurrency) {
      const id = this.ready.shift();
      if (id === undefined) return;
      const job = this.jobs.get(id);
      if (job === undefined) continue;
      const run = this.run(job, this.handlers).finally(() => {
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
  }

  private async run(job: InlineJob, handlers: Record<string, JobHandler>): Promise<void> {
    const controller = new AbortController();
    job.controller = controller;
    job.info.state = 'active';
    job.info.attempts += 1;
    job.info.workerId = this.workerId;
    const attempt = job.info.attempts;
    const handler = handlers[job.info.name];
    try {
      if (handler === undefined) throw new UnrunnableJobError(noHandlerMessage(job.info.name, handlers));
      const result = await handler(job.info.data, {
        id: job.info.id,
        attempt,
        signal: controller.signal,
        workerId: this.workerId,
        reportProgress: async (fraction, message) => {
          if (job.info.state !== 'active') return;
          job.info.progress = clampFraction(fraction);
          job.info.progressMessage = message;
          this.emit(job);
        },
      });
      this.finish(job, 'completed', { result });
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason === CANCELLED_REASON) {
        this.finish(job, 'cancelled', { error: CANCELLED_REASON });
      } else if (error instanceof UnrunnableJobError || attempt >= job.maxAttempts || this.closed) {
        this.finish(job, 'failed', { error: errorText(error) });
      } else {
        job.info.state = 'waiting';
        job.info.error = errorText(error);
        job.retryTimer = setTimeout(() => {
          job.retryTimer = undefined;
          this.ready.push(job.info.id);
          this.pump();
        }, retryDelayMs(job.backoffMs, attempt));
      }
    } finally {
      job.controller = undefined;
    }
  }

  private finish(job: InlineJob, state: JobState, outcome: { result?: unknown; error?: string }): void {
    job.info.state = state;
    if (state === 'completed') {
      job.info.result = outcome.result;
      delete job.info.error;
    } else {
      job.info.error = outcome.error;
    }
    job.info.finishedAt = new Date().toISOString();
    job.resolveFinished(snapshot(job));
    this.emit(job);
    this.forgetOldFinishedJobs();
  }

  private forgetOldFinishedJobs(): void {
    let finishedCount = 0;
    for (const job of this.jobs.values()) if (FINISHED_STATES.includes(job.info.state)) finishedCount += 1;
    // Map iteration follows insertion order, so the first finished jobs met are the oldest.
    for (const [id, job] of this.jobs) {
      if (finishedCount <= this.keepFinished) return;
      if (FINISHED_STATES.includes(job.info.state)) {
        this.jobs.delete(id);
        finishedCount -= 1;
      }
    }
  }

  private emit(job: InlineJob): void {
    const info = snapshot(job);
    for (const listener of this.listeners) listener(info);
  }
}

/** A job that no retry can help, such as one no handler exists for. */
class UnrunnableJobError extends Error {}

function snapshot(job: InlineJob): JobInfo {
  return structuredClone(job.info);
}
