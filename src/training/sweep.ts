import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../app/context.js';
import { ConfigError } from '../config/index.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { CatdogError, NotFoundError } from '../errors.js';
import { enqueueJob, type JobInfo, type JobQueue, type JobState } from '../jobs/index.js';
import { candidateSummarySchema, finalizeCandidateJob, finalizeCandidateResultSchema, trainCandidateJob } from './jobs.js';
import type { TrainingParams } from '../db/index.js';
import { datasetParams, resolveTrainingParams, type TrainingOverrides } from './params.js';

/** Training parameters a sweep may vary; the rest come from the config and the dataset version. */
const gridSchema = z
  .strictObject({
    learningRate: z.array(z.number().gt(0).max(1)).min(1),
    head: z.array(z.enum(['logistic', 'mlp'])).min(1),
    batchSize: z.array(z.int().min(1).max(1024)).min(1),
    epochs: z.array(z.int().min(1).max(1000)).min(1),
    earlyStoppingPatience: z.array(z.int().min(0).max(100)).min(1),
    architecture: z.array(z.enum(['mobilenet', 'cnn'])).min(1),
  })
  .partial();

export type SweepGrid = z.infer<typeof gridSchema>;
type SweptKey = keyof SweepGrid;

/** How long a sweep waits for its jobs by default: training candidates on a large data set takes hours, not days. */
export const DEFAULT_SWEEP_TIMEOUT_MS = 12 * 60 * 60 * 1000;
const MAX_CANDIDATES = 256;

export interface SweepCandidate {
  index: number;
  jobId: string;
  /** The values this candidate takes from the grid. */
  overrides: TrainingOverrides;
  state: JobState;
  workerId?: string;
  runId?: string;
  modelId?: string;
  validation?: { accuracy: number; loss: number; bestEpoch: number };
  error?: string;
}

export interface SweepRecord {
  format: 'catdog-sweep/1';
  id: string;
  createdAt: string;
  datasetId: number;
  grid: SweepGrid;
  status: 'training' | 'finalizing' | 'finished' | 'failed';
  candidates: SweepCandidate[];
  winner?: { index: number; runId: string; modelId: string };
  finalJobId?: string;
  /** The winner's test-split figures: the only test evaluation of the sweep. */
  test?: Record<string, unknown>;
  promotion?: { promoted: boolean; reason: string };
  error?: string;
  finishedAt?: string;
}

export type SweepDependencies = Pick<AppContext, 'db' | 'blobs' | 'config' | 'logger'>;

export const sweepBlobKey = (id: string): string => `sweeps/${id}.json`;

/** Parses `--grid` JSON; names the offending key and the keys allowed. */
export function parseSweepGrid(text: string): SweepGrid {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CatdogError('invalid_sweep_grid', `the sweep grid is not JSON (${(error as Error).message}); e.g. '{"learningRate":[0.001,0.01],"head":["logistic","mlp"]}'`);
  }
  const parsed = gridSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : 'grid';
    throw new CatdogError(
      'invalid_sweep_grid',
      `sweep grid ${where}: ${issue.message}; the grid maps some of ${Object.keys(gridSchema.shape).join(', ')} to non-empty lists of values`,
    );
  }
  const grid = parsed.data;
  if (Object.keys(grid).length === 0) throw new CatdogError('invalid_sweep_grid', `the sweep grid is empty: give lists for some of ${Object.keys(gridSchema.shape).join(', ')}`);
  return grid;
}

/** Every combination of the grid's values, in its keys' order (the last key varies fastest; parseSweepGrid orders keys as the schema does). */
export function expandGrid(grid: SweepGrid): TrainingOverrides[] {
  let combinations: TrainingOverrides[] = [{}];
  for (const key of Object.keys(grid) as SweptKey[]) {
    const values = grid[key] as unknown[];
    combinations = combinations.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  }
  if (combinations.length > MAX_CANDIDATES) {
    throw new CatdogError('invalid_sweep_grid', `the sweep grid makes ${combinations.length} candidates; at most ${MAX_CANDIDATES} are allowed`);
  }
  return combinations;
}

/** Highest validation accuracy; ties go to the lower validation loss, then to the earlier candidate. */
export function pickWinner(candidates: readonly SweepCandidate[]): SweepCandidate | undefined {
  let best: SweepCandidate | undefined;
  for (const candidate of candidates) {
    if (candidate.state !== 'completed' || candidate.validation === undefined) continue;
    const { accuracy, loss } = candidate.validation;
    if (best === undefined || accuracy > best.validation!.accuracy || (accuracy === best.validation!.accuracy && loss < best.validation!.loss)) best = candidate;
  }
  return best;
}

async function saveSweep(deps: SweepDependencies, record: SweepRecord): Promise<void> {
  await deps.blobs.put(sweepBlobKey(record.id), new TextEncoder().encode(JSON.stringify(record, null, 2)));
}

export async function loadSweep(deps: Pick<SweepDependencies, 'blobs'>, id: string): Promise<SweepRecord> {
  if (!(await deps.blobs.has(sweepBlobKey(id)))) throw new NotFoundError('sweep', id);
  return JSON.parse(new TextDecoder().decode(await deps.blobs.get(sweepBlobKey(id)))) as SweepRecord;
}

const candidateJobId = (sweepId: string, index: number): string => `train-candidate-${sweepId}-${index}`;

/**
 * Each candidate's parameters, resolved as any run's are: a grid value (architecture cnn) can contradict a setting the
 * grid leaves alone (fine-tuning, an ensemble, the zero-shot vote), and such a candidate is refused before anything runs.
 */
function candidateParams(deps: SweepDependencies, combinations: readonly TrainingOverrides[]): TrainingParams[] {
  return combinations.map((overrides, index) => {
    try {
      return resolveTrainingParams(deps.config, overrides);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new CatdogError('invalid_sweep_grid', `sweep candidate #${index} ${JSON.stringify(overrides)} conflicts with ${error.problems.join('; ')}`);
    }
  });
}

/** Enqueueing an existing id answers that job, so this is safe to repeat: only missing candidates are added. */
async function enqueueCandidates(deps: SweepDependencies, queue: JobQueue, record: SweepRecord): Promise<void> {
  const params = candidateParams(deps, record.candidates.map((candidate) => candidate.overrides));
  for (const candidate of record.candidates) {
    await enqueueJob(queue, trainCandidateJob, { datasetId: record.datasetId, params: params[candidate.index]! }, { jobId: candidate.jobId });
  }
}

/**
 * Records a sweep and enqueues one `train-candidate` job per combination of the grid. Candidates train on the
 * dataset version's train split and report validation figures only; `completeSweep` picks and finalizes.
 */
export async function startSweep(deps: SweepDependencies, queue: JobQueue, request: { grid: SweepGrid; datasetId?: number }): Promise<SweepRecord> {
  const combinations = expandGrid(request.grid);
  candidateParams(deps, combinations);
  const datasetId = request.datasetId ?? (await buildDatasetVersion(deps, datasetParams(deps.config))).version.id;
  if (!(await deps.db.datasets.get(datasetId))) throw new NotFoundError('dataset version', datasetId);
  const id = `swp_${randomBytes(6).toString('hex')}`;
  const record: SweepRecord = {
    format: 'catdog-sweep/1',
    id,
    createdAt: new Date().toISOString(),
    datasetId,
    grid: request.grid,
    status: 'training',
    candidates: combinations.map((overrides, index) => ({ index, jobId: candidateJobId(id, index), overrides, state: 'waiting' })),
  };
  await saveSweep(deps, record);
  await enqueueCandidates(deps, queue, record);
  deps.logger.info({ sweepId: id, candidates: record.candidates.length, datasetId }, 'sweep enqueued');
  return record;
}

function recordCandidate(candidate: SweepCandidate, job: JobInfo): void {
  candidate.state = job.state;
  if (job.workerId !== undefined) candidate.workerId = job.workerId;
  const parsed = candidateSummarySchema.safeParse(job.result);
  const summary = parsed.success ? parsed.data : undefined;
  if (job.state === 'completed' && summary === undefined) {
    candidate.state = 'failed';
    candidate.error = 'the job completed without a candidate summary';
  } else if (job.state === 'completed' && summary) {
    candidate.runId = summary.runId;
    candidate.modelId = summary.modelId;
    candidate.validation = summary.validation;
    delete candidate.error;
  } else if (job.error !== undefined) {
    candidate.error = job.error;
  }
}

/**
 * A sweep job's end, or a `sweep_timeout` at the sweep's deadline that says what to do. A job gone from the queue
 * (removed by hand, or pruned) answers as failed, so the sweep goes on with the other candidates.
 */
async function waitForSweepJob(queue: JobQueue, record: SweepRecord, jobId: string, what: string, deadline: number): Promise<JobInfo> {
  try {
    return await queue.waitFor(jobId, Math.max(0, deadline - Date.now()));
  } catch (error) {
    if (error instanceof NotFoundError) {
      return { id: jobId, name: '', data: null, state: 'failed', progress: 0, attempts: 0, error: 'the job is gone from the queue', createdAt: record.createdAt };
    }
    if (error instanceof CatdogError && error.code === 'job_wait_timeout') {
      throw new CatdogError(
        'sweep_timeout',
        `sweep ${record.id}: ${what} (job ${jobId}) did not finish in time; check that \`catdog worker\` processes serve this queue (GET /api/v1/jobs/${jobId}), then wait again with \`catdog sweep --resume ${record.id}\``,
        504,
        { sweepId: record.id, jobId },
      );
    }
    throw error;
  }
}

/**
 * Waits for every candidate, picks the best on validation, and finalizes the winner only: its test split is
 * evaluated once and it is promoted only if it beats the serving model there. Safe to call again on the same
 * sweep (after a crash, or from another shell): every job id is fixed, so nothing runs twice.
 */
export async function completeSweep(
  deps: SweepDependencies,
  queue: JobQueue,
  sweep: SweepRecord,
  options: { onCandidate?: (candidate: SweepCandidate) => void; timeoutMs?: number } = {},
): Promise<SweepRecord> {
  const record: SweepRecord = structuredClone(sweep);
  if (record.status === 'finished' || record.status === 'failed') return record;
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_SWEEP_TIMEOUT_MS);
  const waitFor = (jobId: string, what: string) => waitForSweepJob(queue, record, jobId, what, deadline);
  const winnerAlreadyChosen = record.status === 'finalizing';
  if (!winnerAlreadyChosen) {
    await enqueueCandidates(deps, queue, record);
    await Promise.all(
      record.candidates.map(async (candidate) => {
        recordCandidate(candidate, await waitFor(candidate.jobId, `candidate #${candidate.index}`));
        options.onCandidate?.(candidate);
      }),
    );
    const winner = pickWinner(record.candidates);
    if (winner === undefined) {
      record.status = 'failed';
      record.error = 'no candidate finished training';
      record.finishedAt = new Date().toISOString();
      await saveSweep(deps, record);
      throw new CatdogError('sweep_failed', `sweep ${record.id}: every candidate failed (first error: ${record.candidates.find((c) => c.error)?.error ?? 'unknown'})`, 500, { sweepId: record.id });
    }
    record.winner = { index: winner.index, runId: winner.runId!, modelId: winner.modelId! };
    record.finalJobId = `finalize-candidate-${record.id}`;
    record.status = 'finalizing';
    await saveSweep(deps, record);
  }

  const winningJob = await queue.get(record.candidates[record.winner!.index]!.jobId);
  const winning = candidateSummarySchema.safeParse(winningJob?.result);
  if (!winning.success) {
    throw new CatdogError('sweep_failed', `sweep ${record.id}: the winning candidate's job or its result is gone from the queue; its model files are under models/${record.winner!.modelId}/`, 500, { sweepId: record.id });
  }
  const { runId, datasetId, modelId, artifactPrefix, params } = winning.data;
  await enqueueJob(queue, finalizeCandidateJob, { candidate: { runId, datasetId, modelId, artifactPrefix, params } }, { jobId: record.finalJobId! });
  const final = await waitFor(record.finalJobId!, 'finalizing the winner');
  record.finishedAt = new Date().toISOString();
  if (final.state !== 'completed') {
    record.status = 'failed';
    record.error = `finalizing the winner ${final.state}: ${final.error ?? ''}`;
    await saveSweep(deps, record);
    throw new CatdogError('sweep_failed', `sweep ${record.id}: ${record.error}`, 500, { sweepId: record.id });
  }
  const result = finalizeCandidateResultSchema.parse(final.result);
  record.test = result.metrics;
  record.promotion = result.promotion;
  record.status = 'finished';
  await saveSweep(deps, record);
  deps.logger.info({ sweepId: record.id, winner: record.winner, promoted: result.promotion.promoted }, 'sweep finished');
  return record;
}
