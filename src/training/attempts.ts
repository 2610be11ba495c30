import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../app/context.js';
import type { RunRow, TrainingParams } from '../db/index.js';
import { CatdogError } from '../errors.js';
import { JobCancelledError } from '../jobs/index.js';
import { thisProcessOwner } from '../app/process-owner.js';

/**
 * Training jobs are retried when their worker dies (BullMQ hands the job to another worker) or fails. The runs each
 * attempt opened are listed under the job's id, so a retry can close what an earlier attempt left running and reuse
 * what one finished, instead of training or registering twice.
 */
interface AttemptLedger {
  jobId: string;
  runIds: string[];
}

type LedgerApp = Pick<AppContext, 'db' | 'blobs' | 'codeVersion'>;

const ledgerKey = (jobId: string): string => `jobs/${jobId}/runs.json`;

/** The model a training job registers or stores: one id per job, so every attempt writes the same model. */
export const modelIdForJob = (jobId: string): string => `mdl_${createHash('sha256').update(`job:${jobId}`).digest('hex').slice(0, 16)}`;

const ledgerSchema = z.object({ jobId: z.string(), runIds: z.array(z.string()) });

async function readLedger(app: LedgerApp, jobId: string): Promise<AttemptLedger> {
  const bytes = await app.blobs.getOrUndefined(ledgerKey(jobId));
  return bytes === undefined ? { jobId, runIds: [] } : ledgerSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
}

/**
 * Settles the runs of earlier attempts of `jobId`: answers the one that succeeded, if any; marks the ones still
 * queued or running failed (their process died, or lost the job to this one and must not finish it).
 */
export async function settleEarlierAttempts(app: LedgerApp, jobId: string, attempt: number): Promise<RunRow | undefined> {
  const ledger = await readLedger(app, jobId);
  for (const runId of ledger.runIds) {
    let run = await app.db.runs.get(runId);
    if (run?.status === 'queued' || run?.status === 'running') {
      try {
        run = await app.db.runs.finish(runId, { status: 'failed', error: `interrupted: job ${jobId} was retried (attempt ${attempt})` });
      } catch (error) {
        // It finished meanwhile: read how.
        if (!(error instanceof CatdogError && error.code === 'run_state_conflict')) throw error;
        run = await app.db.runs.get(runId);
      }
    }
    if (run?.status === 'succeeded') return run;
  }
  return undefined;
}

/** What ends the job of a run that was cancelled while its worker was picking it up: cancelled, not failed. */
export const cancelledBeforeItStarted = (runId: string): JobCancelledError => new JobCancelledError(`training run ${runId} was cancelled before it started`);

/**
 * This attempt's run, listed under the job before any training starts: the run recorded as queued when the training
 * was asked for (the API answered with its id), on the first attempt while it still waits; a new run otherwise.
 */
export async function openAttemptRun(app: LedgerApp, jobId: string, datasetId: number, params: TrainingParams, queuedRunId?: string): Promise<RunRow> {
  const queued = queuedRunId === undefined ? undefined : await app.db.runs.get(queuedRunId);
  // Cancelled while this worker was picking the job up: the run the caller follows has ended, train nothing.
  if (queued?.status === 'cancelled') throw cancelledBeforeItStarted(queued.id);
  const run = queued?.status === 'queued' ? queued : await app.db.runs.create({ datasetId, params, codeVersion: app.codeVersion, owner: thisProcessOwner(), jobId });
  const ledger = await readLedger(app, jobId);
  if (!ledger.runIds.includes(run.id)) ledger.runIds.push(run.id);
  await app.blobs.put(ledgerKey(jobId), new TextEncoder().encode(JSON.stringify(ledger)));
  return run;
}
