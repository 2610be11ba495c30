import type { Kysely, Selectable } from 'kysely';
import { CatdogError, NotFoundError } from '../../errors.js';
import type { Schema, TrainingEpochsTable, TrainingRunsTable } from '../schema.js';
import { runMetricsDocument, trainingParamsDocument } from '../documents/index.js';
import { newId, nowIso, toNumber, withConflictRetry, type Dialect } from '../support.js';
import type { EpochRow, NewRun, Page, RunOutcome, RunRow, RunStatus } from '../types.js';

const column = (name: 'params' | 'metrics', rowId: string) => ({ table: 'training_runs', column: name, rowId });

function toRun(row: Selectable<TrainingRunsTable>): RunRow {
  return {
    id: row.id,
    datasetId: row.dataset_id,
    status: row.status as RunStatus,
    params: trainingParamsDocument.read(row.params, column('params', row.id)),
    codeVersion: row.code_version,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    error: row.error,
    metrics: row.metrics === null ? null : runMetricsDocument.read(row.metrics, column('metrics', row.id)),
    modelId: row.model_id,
    owner: row.owner,
    jobId: row.job_id,
  };
}

const figureOrNull = (value: number | null): number | null => (value === null || Number.isNaN(value) ? null : value);

function toEpoch(row: Selectable<TrainingEpochsTable>): EpochRow {
  return {
    epoch: row.epoch,
    loss: row.loss,
    accuracy: row.accuracy,
    valLoss: row.val_loss,
    valAccuracy: row.val_accuracy,
    durationMs: row.duration_ms,
    totalEpochs: row.total_epochs,
  };
}

export function runsRepository(db: Kysely<Schema>, dialect: Dialect) {
  async function get(id: string): Promise<RunRow | undefined> {
    const row = await db.selectFrom('training_runs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRun(row);
  }

  /** Moves a run on only from the states `from`, so a run cannot finish twice or restart after a crash. */
  async function transition(id: string, from: RunStatus[], change: (run: RunRow) => Partial<Selectable<TrainingRunsTable>>) {
    return withConflictRetry(db, async (trx) => {
      const row = await trx
        .selectFrom('training_runs')
        .selectAll()
        .where('id', '=', id)
        // SQLite has no row locks and needs none: its one connection runs one transaction at a time.
        .$if(dialect !== 'sqlite', (query) => query.forUpdate())
        .executeTakeFirst();
      if (!row) throw new NotFoundError('training run', id);
      const run = toRun(row);
      if (!from.includes(run.status)) {
        throw new CatdogError('run_state_conflict', `Training run ${id} is ${run.status}; expected ${from.join(' or ')}.`, 409, {
          id,
          status: run.status,
        });
      }
      const updates = change(run);
      await trx.updateTable('training_runs').set(updates).where('id', '=', id).execute();
      return toRun({ ...row, ...updates });
    });
  }

  return {
    get,

    async create({ id, datasetId, params, codeVersion, owner, jobId }: NewRun): Promise<RunRow> {
      const runId = id ?? newId('run');
      const row = {
        id: runId,
        dataset_id: datasetId,
        status: 'queued',
        params: trainingParamsDocument.write(params, column('params', runId)),
        code_version: codeVersion,
        created_at: nowIso(),
        started_at: null,
        finished_at: null,
        duration_ms: null,
        error: null,
        metrics: null,
        model_id: null,
        owner: owner ?? null,
        job_id: jobId ?? null,
      };
      await db.insertInto('training_runs').values(row).execute();
      return toRun(row);
    },

    markRunning(id: string, owner?: string): Promise<RunRow> {
      return transition(id, ['queued'], (run) => ({ status: 'running', started_at: nowIso(), owner: owner ?? run.owner }));
    },

    /** Also cancels a run that never started; its duration then counts from its creation. */
    finish(id: string, { status, error, metrics, modelId }: RunOutcome): Promise<RunRow> {
      return transition(id, ['queued', 'running'], (run) => {
        const finishedAt = nowIso();
        return {
          status,
          finished_at: finishedAt,
          duration_ms: Date.parse(finishedAt) - Date.parse(run.startedAt ?? run.createdAt),
          error: error ?? null,
          metrics: metrics === undefined ? null : runMetricsDocument.write(metrics, column('metrics', id)),
          model_id: modelId ?? null,
        };
      });
    },

    async addEpoch(runId: string, epoch: EpochRow): Promise<void> {
      await db
        .insertInto('training_epochs')
        .values({
          run_id: runId,
          epoch: epoch.epoch,
          loss: figureOrNull(epoch.loss),
          accuracy: figureOrNull(epoch.accuracy),
          // An epoch nothing validated (a cross-validated head's refit) or that diverged has NaN figures, which MySQL
          // cannot store: none recorded.
          val_loss: figureOrNull(epoch.valLoss),
          val_accuracy: figureOrNull(epoch.valAccuracy),
          // Integer milliseconds: PostgreSQL and MySQL refuse a fraction in an integer column, SQLite keeps it.
          duration_ms: Math.round(epoch.durationMs),
          total_epochs: epoch.totalEpochs ?? null,
        })
        .execute();
    },

    /** Newest first. */
    async list({ limit, offset }: { limit: number; offset: number }): Promise<Page<RunRow>> {
      const [rows, count] = await Promise.all([
        db.selectFrom('training_runs').selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute(),
        db.selectFrom('training_runs').select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toRun), total: toNumber(count.total) };
    },

    /** How many runs are in each status (statuses without runs are absent). */
    async countByStatus(): Promise<Partial<Record<RunStatus, number>>> {
      const rows = await db.selectFrom('training_runs').select((eb) => ['status', eb.fn.countAll().as('count')]).groupBy('status').execute();
      return Object.fromEntries(rows.map((row) => [row.status, toNumber(row.count as number | string | bigint)]));
    },

    async epochs(runId: string): Promise<EpochRow[]> {
      const rows = await db.selectFrom('training_epochs').selectAll().where('run_id', '=', runId).orderBy('epoch').execute();
      return rows.map(toEpoch);
    },

    /**
     * Marks unfinished runs failed ("interrupted") when `isAbandoned(owner)` says their process is gone; without a
     * predicate every unfinished run is taken as abandoned. Returns how many were marked.
     */
    async failInterrupted(isAbandoned: (owner: string | null) => boolean = () => true): Promise<number> {
      const unfinished = await db.selectFrom('training_runs').select(['id', 'owner', 'status', 'job_id']).where('status', 'in', ['queued', 'running']).execute();
      // A queued run with a job is the job's to start or close, whichever process enqueued it.
      const abandoned = unfinished.filter((run) => !(run.status === 'queued' && run.job_id !== null) && isAbandoned(run.owner)).map((run) => run.id);
      if (abandoned.length === 0) return 0;
      const result = await db
        .updateTable('training_runs')
        .set({ status: 'failed', error: 'interrupted', finished_at: nowIso() })
        .where('status', 'in', ['queued', 'running'])
        .where('id', 'in', abandoned)
        .executeTakeFirst();
      return toNumber(result.numUpdatedRows);
    },
  };
}

export type RunsRepository = ReturnType<typeof runsRepository>;
