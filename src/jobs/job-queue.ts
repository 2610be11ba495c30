import type { JobState } from '../db/index.js';
import { CatdogError } from '../errors.js';

export type { JobState };
export const JOB_STATES: readonly JobState[] = ['waiting', 'active', 'completed', 'failed', 'cancelled'];
export const FINISHED_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface JobInfo<T = unknown> {
  id: string;
  name: string;
  data: T;
  state: JobState;
  /** 0..1, as last reported by the handler. */
  progress: number;
  /** The message that came with the last progress report, if any. */
  progressMessage?: string;
  /** Attempts made so far, the running one included. */
  attempts: number;
  result?: unknown;
  error?: string;
  createdAt: string;
  finishedAt?: string;
  workerId?: string;
}

export interface JobContext {
  id: string;
  /** 1 on the first run, 2 on the first retry, and so on. */
  attempt: number;
  /** Aborted when the job is cancelled; a handler should stop and throw soon after. */
  signal: AbortSignal;
  workerId: string;
  reportProgress(fraction: number, message?: string): Promise<void>;
}

/** Receives the payload as stored; `handlerFor` (job-definition.ts) checks it against the job kind's schema. */
export type JobHandler = (data: unknown, ctx: JobContext) => Promise<unknown>;

export interface JobLock {
  release(): Promise<void>;
}

export interface EnqueueOptions {
  /** Idempotency: enqueueing an id that exists returns that job instead of adding a second one. */
  jobId?: string;
  /** Total runs before the job fails for good; default 3. */
  attempts?: number;
  /** Retry n waits backoffMs × 2^(n−1); default 1000. */
  backoffMs?: number;
}

export interface WorkerOptions {
  /** Jobs run at the same time by this worker; default 1 (training saturates the CPU on its own). */
  concurrency?: number;
  workerId?: string;
}

export interface JobQueue {
  readonly kind: 'inline' | 'bullmq';
  enqueue<T>(name: string, data: T, options?: EnqueueOptions): Promise<JobInfo<T>>;
  get(id: string): Promise<JobInfo | undefined>;
  /** Newest first; default limit 100. */
  list(options?: { states?: JobState[]; limit?: number }): Promise<JobInfo[]>;
  /** A waiting job is cancelled at once; an active one has its signal aborted. False when there was nothing to cancel. */
  cancel(id: string): Promise<boolean>;
  /** Resolves when the job is completed, failed or cancelled; `job_wait_timeout` after timeoutMs. */
  waitFor(id: string, timeoutMs?: number): Promise<JobInfo>;
  startWorker(handlers: Record<string, JobHandler>, options?: WorkerOptions): Promise<void>;
  counts(): Promise<Record<JobState, number>>;
  /** Called on every progress report and when a job finishes, so a progress view never stalls. */
  onProgress(listener: (job: JobInfo) => void): () => void;
  /**
   * A named lock shared by every process on this queue (inline: every process on its database), so that work which must never
   * overlap (two retrainings) does not. Renewed while held; lapses `ttlMs` after a holder dies without releasing it.
   * Undefined when someone else holds it.
   */
  tryLock(name: string, ttlMs: number): Promise<JobLock | undefined>;
  isLocked(name: string): Promise<boolean>;
  /**
   * Stops taking jobs and lets active ones finish for `closeTimeoutMs`; then aborts them with `SHUTDOWN_REASON` and
   * puts them back at the front of the queue, without counting a failed attempt. Unfinished work stays queued.
   */
  close(): Promise<void>;
}

export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_BACKOFF_MS = 1000;
export const DEFAULT_LIST_LIMIT = 100;
/** Finished jobs kept for `get`/`list`; older ones are forgotten. */
export const DEFAULT_KEEP_FINISHED = 1000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** The abort reason, error text and marker of a cancelled job, the same in both adapters. */
export const CANCELLED_REASON = 'cancelled';
/**
 * Thrown by a handler that finds its work was cancelled before its signal said so (a cancel that raced the job's
 * start): the job ends cancelled, as if its signal had been aborted, in both adapters.
 */
export class JobCancelledError extends Error {
  constructor(readonly why: string) {
    super(CANCELLED_REASON);
    this.name = 'JobCancelledError';
  }
}

/** The abort reason of a job still running when its queue's close timeout ends: it goes back to waiting, not to failed. */
export const SHUTDOWN_REASON = 'the queue is shutting down';
/** `waitFor` also looks every so often, so that a missed event (or a job another process finishes) delays it, never hangs it. */
export const WAIT_POLL_MS = 5000;

export function retryDelayMs(backoffMs: number, failedAttempt: number): number {
  return backoffMs * 2 ** (failedAttempt - 1);
}

export function emptyCounts(): Record<JobState, number> {
  return { waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0 };
}

export function clampFraction(fraction: number): number {
  return Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
}

/**
 * The same ids are valid on every adapter: BullMQ refuses integer-looking ids (they collide with its own)
 * and ids with ':' (its key separator).
 */
export function assertValidJobId(id: string): void {
  if (id === '' || /^-?\d+$/.test(id) || id.includes(':')) {
    throw new CatdogError('invalid_job_id', `job id ${JSON.stringify(id)} must be non-empty, not a plain integer, and without ':'`, 400, { id });
  }
}

export function assertValidEnqueueOptions(options: EnqueueOptions): void {
  if (options.jobId !== undefined) assertValidJobId(options.jobId);
  if (options.attempts !== undefined && (!Number.isInteger(options.attempts) || options.attempts < 1)) {
    throw new CatdogError('invalid_job_options', `attempts must be a whole number ≥ 1, got ${options.attempts}`);
  }
  if (options.backoffMs !== undefined && !(options.backoffMs >= 0)) {
    throw new CatdogError('invalid_job_options', `backoffMs must be ≥ 0, got ${options.backoffMs}`);
  }
}

export function waitTimeoutError(id: string, timeoutMs: number): CatdogError {
  return new CatdogError('job_wait_timeout', `job ${id} did not finish within ${timeoutMs} ms`, 504, { id, timeoutMs });
}

export function noHandlerMessage(name: string, handlers: Record<string, JobHandler>): string {
  return `no handler for job "${name}" (this worker handles: ${Object.keys(handlers).join(', ') || 'nothing'})`;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether `promise` settles within `ms`; it goes on either way. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
