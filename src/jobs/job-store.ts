import type { JobCondition, JobRow, JobState } from '../db/index.js';
import { emptyCounts, FINISHED_STATES } from './job-queue.js';

/**
 * Where the in-process queue keeps its jobs. The app's database (`db.jobs`) makes them outlive the process;
 * `MemoryJobStore` forgets them with it.
 */
export interface JobStore {
  /** A job whose id exists already is not added: the stored one is answered instead. */
  insertIfAbsent(job: JobRow): Promise<{ inserted: boolean; job: JobRow }>;
  get(id: string): Promise<JobRow | undefined>;
  /** Newest first. */
  list(options: { states?: readonly JobState[]; limit: number }): Promise<JobRow[]>;
  counts(): Promise<Record<JobState, number>>;
  /** Applies `changes` only while the job is as `expected` says; false when it is not (or is gone). */
  update(id: string, changes: Partial<Omit<JobRow, 'id'>>, expected?: JobCondition): Promise<boolean>;
  /** Unfinished jobs, oldest first, whose owner `isAbandoned` says has let go of them or is gone, now held by `owner`. */
  claimAbandoned(owner: string, isAbandoned: (owner: string | null) => boolean): Promise<JobRow[]>;
  /** Lets go of `owner`'s waiting jobs, for the next process to take. */
  releaseWaiting(owner: string): Promise<void>;
  /** Forgets the jobs that finished longest ago beyond the newest `keep`. */
  pruneFinished(keep: number): Promise<void>;
  /** Takes the lock `name` for `holder` unless another holder has it and renewed it within its `ttlMs`. */
  tryLock(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** False when `holder` no longer holds it. */
  renewLock(name: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLock(name: string, holder: string): Promise<void>;
  isLocked(name: string): Promise<boolean>;
}

let lastCreatedMs = 0;

/**
 * Creation times strictly increasing within this process: jobs run and are handed over oldest first, and two jobs
 * enqueued in the same millisecond would otherwise be ordered by their random ids.
 */
function nextCreationTime(): string {
  lastCreatedMs = Math.max(Date.now(), lastCreatedMs + 1);
  return new Date(lastCreatedMs).toISOString();
}

/** A job as it is first stored: waiting, never attempted, held by `owner` (null: by whichever process takes it). */
export function newWaitingJob(job: Pick<JobRow, 'id' | 'name' | 'data' | 'maxAttempts' | 'backoffMs' | 'owner'>): JobRow {
  return {
    ...job,
    state: 'waiting',
    progress: 0,
    progressMessage: null,
    attempts: 0,
    stalls: 0,
    result: undefined,
    error: null,
    createdAt: nextCreationTime(),
    finishedAt: null,
    runAfter: null,
    workerId: null,
    cancelRequested: false,
  };
}

const isAsExpected = (job: JobRow, { states, owner }: JobCondition): boolean =>
  (states === undefined || states.includes(job.state)) && (owner === undefined || job.owner === owner);

/** Jobs in this process's memory: nothing survives a restart. Copies go in and out, as with a database. */
export class MemoryJobStore implements JobStore {
  // Map iteration follows insertion order, which is the order the jobs were created in.
  private readonly jobs = new Map<string, JobRow>();
  private readonly locks = new Map<string, { holder: string; expiresAtMs: number }>();

  async insertIfAbsent(job: JobRow): Promise<{ inserted: boolean; job: JobRow }> {
    const existing = this.jobs.get(job.id);
    if (existing !== undefined) return { inserted: false, job: structuredClone(existing) };
    this.jobs.set(job.id, structuredClone(job));
    return { inserted: true, job: structuredClone(job) };
  }

  async get(id: string): Promise<JobRow | undefined> {
    const job = this.jobs.get(id);
    return job === undefined ? undefined : structuredClone(job);
  }

  async list({ states, limit }: { states?: readonly JobState[]; limit: number }): Promise<JobRow[]> {
    return [...this.jobs.values()]
      .filter((job) => states === undefined || states.includes(job.state))
      .reverse()
      .slice(0, limit)
      .map((job) => structuredClone(job));
  }

  async counts(): Promise<Record<JobState, number>> {
    const counts = emptyCounts();
    for (const job of this.jobs.values()) counts[job.state] += 1;
    return counts;
  }

  async update(id: string, changes: Partial<Omit<JobRow, 'id'>>, expected: JobCondition = {}): Promise<boolean> {
    const job = this.jobs.get(id);
    if (job === undefined || !isAsExpected(job, expected)) return false;
    Object.assign(job, structuredClone(changes));
    return true;
  }

  async claimAbandoned(owner: string, isAbandoned: (owner: string | null) => boolean): Promise<JobRow[]> {
    const claimed: JobRow[] = [];
    for (const job of this.jobs.values()) {
      if (FINISHED_STATES.includes(job.state) || !isAbandoned(job.owner)) continue;
      job.owner = owner;
      claimed.push(structuredClone(job));
    }
    return claimed;
  }

  async releaseWaiting(owner: string): Promise<void> {
    for (const job of this.jobs.values()) if (job.state === 'waiting' && job.owner === owner) job.owner = null;
  }

  async pruneFinished(keep: number): Promise<void> {
    const finished = [...this.jobs.values()].filter((job) => FINISHED_STATES.includes(job.state));
    finished.sort((a, b) => (a.finishedAt ?? '').localeCompare(b.finishedAt ?? ''));
    for (const job of finished.slice(0, Math.max(0, finished.length - keep))) this.jobs.delete(job.id);
  }

  async tryLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
    if (await this.isLocked(name)) return false;
    this.locks.set(name, { holder, expiresAtMs: Date.now() + ttlMs });
    return true;
  }

  async renewLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const lock = this.locks.get(name);
    if (lock?.holder !== holder) return false;
    lock.expiresAtMs = Date.now() + ttlMs;
    return true;
  }

  async releaseLock(name: string, holder: string): Promise<void> {
    if (this.locks.get(name)?.holder === holder) this.locks.delete(name);
  }

  async isLocked(name: string): Promise<boolean> {
    const lock = this.locks.get(name);
    return lock !== undefined && lock.expiresAtMs > Date.now();
  }
}
