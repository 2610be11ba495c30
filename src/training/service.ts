import type { AppContext } from '../app/context.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { newId, type RunRow } from '../db/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import { enqueueJob, type JobQueue } from '../jobs/index.js';
import { trainJob } from './jobs.js';
import { datasetParams, resolveTrainingParams, type TrainingOverrides } from './params.js';
import { thisProcessOwner } from '../app/process-owner.js';

export interface TrainingSubmission extends TrainingOverrides {
  /** Without one, a dataset version is built from the labelled photos (or the identical latest one reused). */
  datasetId?: number;
}

type ServiceApp = Pick<AppContext, 'db' | 'blobs' | 'config' | 'codeVersion'>;

/** The job of a run started through the queue: one per run, so asking twice cannot train twice. */
export const trainingJobId = (runId: string): string => `train-${runId}`;

/**
 * Starts a training as a job on the configured queue (a `catdog worker`, or the server's own worker process), never
 * in the asking process. Parameters are resolved and checked here, so a bad request is refused before anything is
 * queued; the run is recorded as queued at once and its id answered, for the caller to follow.
 */
export async function startTraining(app: ServiceApp, jobs: JobQueue, submission: TrainingSubmission): Promise<RunRow> {
  const { datasetId: requested, ...overrides } = submission;
  const params = resolveTrainingParams(app.config, overrides);
  const datasetId = requested ?? (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
  if (!(await app.db.datasets.get(datasetId))) throw new NotFoundError('dataset version', datasetId);
  const runId = newId('run');
  const jobId = trainingJobId(runId);
  const pending = await app.db.runs.create({ id: runId, datasetId, params, codeVersion: app.codeVersion, owner: thisProcessOwner(), jobId });
  try {
    // One attempt: a deterministic failure must not train three times behind the run the caller follows. A worker
    // that dies mid-run still hands the job on (stalled-job recovery), which opens a new run.
    await enqueueJob(jobs, trainJob, { runId: pending.id, datasetId, params }, { jobId, attempts: 1 });
  } catch (error) {
    await app.db.runs.finish(pending.id, { status: 'failed', error: `could not be queued: ${(error as Error).message}` });
    throw error;
  }
  return pending;
}

/**
 * Cancels a queued or running training: a waiting job is dropped and its run recorded cancelled; a running one is
 * aborted wherever it runs and records itself cancelled, with nothing registered.
 */
export async function cancelTraining(app: Pick<AppContext, 'db'>, jobs: JobQueue, runId: string): Promise<RunRow> {
  const run = await app.db.runs.get(runId);
  if (!run) throw new NotFoundError('training run', runId);
  if (run.status !== 'queued' && run.status !== 'running') {
    throw new CatdogError('run_not_cancellable', `training run ${runId} is ${run.status}: only a queued or running run can be cancelled`, 409, { id: runId, status: run.status });
  }
  if (run.jobId === null) {
    throw new CatdogError('run_not_cancellable', `training run ${runId} runs in the process that started it (catdog train), not on the job queue: stop that process`, 409, { id: runId });
  }
  await jobs.cancel(run.jobId);
  const after = await app.db.runs.get(runId);
  if (after?.status === 'queued') return app.db.runs.finish(runId, { status: 'cancelled', error: 'cancelled before it started' });
  return after ?? run;
}

/**
 * After a training's job was cancelled by its id (the Jobs page, `POST /jobs/{id}/cancel`): a run that never started
 * is recorded cancelled, as `cancelTraining` does; one that started records its own end.
 */
export async function settleCancelledTrainingJob(app: Pick<AppContext, 'db'>, job: { name: string; data: unknown }): Promise<void> {
  if (job.name !== trainJob.name) return;
  const payload = trainJob.payload.safeParse(job.data);
  if (!payload.success) return;
  const run = await app.db.runs.get(payload.data.runId);
  if (run?.status === 'queued') await app.db.runs.finish(run.id, { status: 'cancelled', error: 'cancelled before it started' });
}
