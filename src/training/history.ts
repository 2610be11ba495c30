import type { Database, RunRow } from '../db/index.js';

/** The newest training runs, newest first. */
export async function recentRuns(deps: { db: Pick<Database, 'runs'> }, limit: number): Promise<RunRow[]> {
  return (await deps.db.runs.list({ limit, offset: 0 })).items;
}

/** Trainings waiting for a worker. */
export async function queuedRunCount(deps: { db: Pick<Database, 'runs'> }): Promise<number> {
  return (await deps.db.runs.countByStatus()).queued ?? 0;
}
