import type { Kysely, Selectable, Updateable } from 'kysely';
import type { JobsTable, Schema } from '../schema.js';
import { nowIso, toNumber, type Dialect } from '../support.js';
import type { JobRow, JobState } from '../types.js';

const UNFINISHED: JobState[] = ['waiting', 'active'];
const FINISHED: JobState[] = ['completed', 'failed', 'cancelled'];

/** What must still be true of a job for a change to apply: its state is one of `states`, its owner is `owner`. */
export interface JobCondition {
  states?: readonly JobState[];
  owner?: string | null;
}

function toJob(row: Selectable<JobsTable>): JobRow {
  return {
    id: row.id,
    name: row.name,
    data: JSON.parse(row.data) as unknown,
    state: row.state as JobState,
    progress: row.progress,
    progressMessage: row.progress_message,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    backoffMs: row.backoff_ms,
    stalls: row.stalls,
    result: row.result === null ? undefined : (JSON.parse(row.result) as unknown),
    error: row.error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    runAfter: row.run_after,
    workerId: row.worker_id,
    owner: row.owner,
    cancelRequested: row.cancel_requested !== 0,
  };
}

/** The columns of the fields `changes` has; a result that JSON cannot hold (undefined) is stored as none. */
function toColumns(changes: Partial<JobRow>): Updateable<JobsTable> {
  const columns: Updateable<JobsTable> = {};
  if ('name' in changes) columns.name = changes.name;
  if ('data' in changes) columns.data = JSON.stringify(changes.data ?? null);
  if ('state' in changes) columns.state = changes.state;
  if ('progress' in changes) columns.progress = changes.progress;
  if ('progressMessage' in changes) columns.progress_message = changes.progressMessage;
  if ('attempts' in changes) columns.attempts = changes.attempts;
  if ('maxAttempts' in changes) columns.max_attempts = changes.maxAttempts;
  if ('backoffMs' in changes) columns.backoff_ms = changes.backoffMs;
  if ('stalls' in changes) columns.stalls = changes.stalls;
  if ('result' in changes) columns.result = JSON.stringify(changes.result) ?? null;
  if ('error' in changes) columns.error = changes.error;
  if ('createdAt' in changes) columns.created_at = changes.createdAt;
  if ('finishedAt' in changes) columns.finished_at = changes.finishedAt;
  if ('runAfter' in changes) columns.run_after = changes.runAfter;
  if ('workerId' in changes) columns.worker_id = changes.workerId;
  if ('owner' in changes) columns.owner = changes.owner;
  if ('cancelRequested' in changes) columns.cancel_requested = changes.cancelRequested ? 1 : 0;
  return columns;
}

const expiresAfter = (ttlMs: number): string => new Date(Date.now() + ttlMs).toISOString();

/**
 * The jobs of in-process queues. Every process on the database sees them all; a job is run only by the process
 * that holds it (`owner`), and one a stopped process left behind is claimed by the next one that looks.
 */
export function jobsRepository(db: Kysely<Schema>, dialect: Dialect) {
  async function get(id: string): Promise<JobRow | undefined> {
    const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toJob(row);
  }

  async function update(id: string, changes: Partial<Omit<JobRow, 'id'>>, expected: JobCondition = {}): Promise<boolean> {
    const { states, owner } = expected;
    const result = await db
      .updateTable('jobs')
      .set(toColumns(changes))
      .where('id', '=', id)
      .$if(states !== undefined, (query) => query.where('state', 'in', [...states!]))
      .$if(owner === null, (query) => query.where('owner', 'is', null))
      .$if(typeof owner === 'string', (query) => query.where('owner', '=', owner!))
      .executeTakeFirst();
    return toNumber(result.numUpdatedRows) > 0;
  }

  return {
    get,
    update,

    /** A job whose id exists already is not added: the stored one is answered instead. */
    async insertIfAbsent(job: JobRow): Promise<{ inserted: boolean; job: JobRow }> {
      const insert = db.insertInto('jobs').values({ id: job.id, ...toColumns(job) } as JobsTable);
      const result = await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('id').doNothing())).executeTakeFirst();
      const stored = await get(job.id);
      if (!stored) throw new Error(`job ${job.id} vanished right after its insert`);
      return { inserted: toNumber(result.numInsertedOrUpdatedRows) > 0, job: stored };
    },

    /** Newest first. */
    async list({ states, limit }: { states?: readonly JobState[]; limit: number }): Promise<JobRow[]> {
      const rows = await db
        .selectFrom('jobs')
        .selectAll()
        .$if(states !== undefined, (query) => query.where('state', 'in', [...states!]))
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toJob);
    },

    async counts(): Promise<Record<JobState, number>> {
      const rows = await db.selectFrom('jobs').select((eb) => ['state', eb.fn.countAll().as('count')]).groupBy('state').execute();
      const counts: Record<JobState, number> = { waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0 };
      for (const row of rows) counts[row.state as JobState] = toNumber(row.count as number | string | bigint);
      return counts;
    },

    /**
     * Unfinished jobs, oldest first, whose owner `isAbandoned` says has let go of them or is gone, now held by
     * `owner`. Each is taken only if nobody took it first, so two processes looking at once share them out.
     */
    async claimAbandoned(owner: string, isAbandoned: (owner: string | null) => boolean): Promise<JobRow[]> {
      const unfinished = await db.selectFrom('jobs').selectAll().where('state', 'in', UNFINISHED).orderBy('created_at').orderBy('id').execute();
      const claimed: JobRow[] = [];
      for (const job of unfinished.map(toJob).filter((candidate) => isAbandoned(candidate.owner))) {
        if (await update(job.id, { owner }, { states: [job.state], owner: job.owner })) claimed.push({ ...job, owner });
      }
      return claimed;
    },

    /** Lets go of `owner`'s waiting jobs, for the next process to take. */
    async releaseWaiting(owner: string): Promise<void> {
      await db.updateTable('jobs').set({ owner: null }).where('state', '=', 'waiting').where('owner', '=', owner).execute();
    },

    /** Forgets the jobs that finished longest ago beyond the newest `keep`. */
    async pruneFinished(keep: number): Promise<void> {
      const { total } = await db.selectFrom('jobs').select((eb) => eb.fn.countAll().as('total')).where('state', 'in', FINISHED).executeTakeFirstOrThrow();
      const excess = toNumber(total as number | string | bigint) - keep;
      if (excess <= 0) return;
      // Jobs can finish within the same millisecond: the older-created one goes first, not a random id.
      const oldest = await db.selectFrom('jobs').select('id').where('state', 'in', FINISHED).orderBy('finished_at').orderBy('created_at').orderBy('id').limit(excess).execute();
      await db.deleteFrom('jobs').where('id', 'in', oldest.map((row) => row.id)).execute();
    },

    /** Takes the lock `name` for `holder` unless someone holds it and has renewed it within its time. */
    async tryLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
      await db.deleteFrom('job_locks').where('name', '=', name).where('expires_at', '<=', nowIso()).execute();
      const insert = db.insertInto('job_locks').values({ name, holder, expires_at: expiresAfter(ttlMs) });
      const result = await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('name').doNothing())).executeTakeFirst();
      return toNumber(result.numInsertedOrUpdatedRows) > 0;
    },

    /** False when `holder` no longer holds it (it lapsed and someone else took it). */
    async renewLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
      const result = await db.updateTable('job_locks').set({ expires_at: expiresAfter(ttlMs) }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
      return toNumber(result.numUpdatedRows) > 0;
    },

    async releaseLock(name: string, holder: string): Promise<void> {
      await db.deleteFrom('job_locks').where('name', '=', name).where('holder', '=', holder).execute();
    },

    async isLocked(name: string): Promise<boolean> {
      const row = await db.selectFrom('job_locks').select('name').where('name', '=', name).where('expires_at', '>', nowIso()).executeTakeFirst();
      return row !== undefined;
    },
  };
}

export type JobsRepository = ReturnType<typeof jobsRepository>;
