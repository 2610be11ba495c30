import { CronExpressionParser } from 'cron-parser';
import type { AppContext } from '../app/context.js';
import type { CatdogConfig } from '../config/index.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import { enqueueJob, type JobInfo, type JobQueue } from '../jobs/index.js';
import { retrainJob } from './jobs.js';
import { datasetParams, resolveTrainingParams } from './params.js';
import { finalizeCandidate, storedCandidateOf, trainOnDataset, type TrainingEvent, type TrainingOutcome } from './run-training.js';

/** The lock every retraining holds while it runs, on whichever worker: two never overlap. */
export const RETRAIN_LOCK = 'retrain';
/** Renewed every third of it while held, so only a dead holder lets it lapse. */
const RETRAIN_LOCK_TTL_MS = 60_000;

export type RetrainingConfig = CatdogConfig['retraining'];
type RetrainingApp = Pick<AppContext, 'db' | 'blobs' | 'backbones' | 'codeVersion' | 'config' | 'logger'>;

export type RetrainCheck =
  | { enqueued: true; job: JobInfo; newValidated: number }
  | { enqueued: false; reason: string; newValidated?: number };

/** One job id per dataset version it retrains after: enqueueing again while it is pending returns the same job. */
export const retrainJobId = (afterDatasetId: number | null): string => `retrain-after-v${afterDatasetId ?? 0}`;

/**
 * Decides when to retrain: once `minNewValidated` predictions were validated by users since the latest dataset
 * version, it enqueues a `retrain` job. Checked after each validation when `cron` is "", else on that schedule.
 */
export class RetrainingTrigger {
  private timer: NodeJS.Timeout | undefined;
  /** Checks run one after another: two validations arriving together ask once, not twice. */
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly app: RetrainingApp,
    private readonly queue: JobQueue,
    private readonly config: RetrainingConfig = app.config.retraining,
  ) {
    if (config.cron !== '') nextCronDate(config.cron, new Date());
  }

  /** Starts the schedule, when there is one. */
  start(): void {
    if (!this.config.enabled || this.config.cron === '') return;
    this.scheduleNext();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Called after each validation; checks only when no schedule is set. */
  afterValidation(): void {
    if (!this.config.enabled || this.config.cron !== '') return;
    this.check('validations').catch((error: unknown) => this.app.logger.error({ err: error }, 'retraining check failed'));
  }

  check(reason: string): Promise<RetrainCheck> {
    const next = this.pending.then(() => this.checkNow(reason));
    this.pending = next.catch(() => undefined);
    return next;
  }

  private async checkNow(reason: string): Promise<RetrainCheck> {
    if (await this.queue.isLocked(RETRAIN_LOCK)) return { enqueued: false, reason: 'a retraining is running' };
    const latest = await this.app.db.datasets.latest();
    const newValidated = await this.app.db.predictions.countValidatedSince(latest?.createdAt ?? new Date(0).toISOString());
    if (newValidated < this.config.minNewValidated) {
      return { enqueued: false, reason: `${newValidated} of ${this.config.minNewValidated} validations since the latest dataset version`, newValidated };
    }
    const jobId = retrainJobId(latest?.id ?? null);
    const existing = await this.queue.get(jobId);
    if (existing !== undefined) {
      // A failed one is left for a person to look at: retrying it on every validation would loop on the same fault.
      return { enqueued: false, reason: `retraining after dataset v${latest?.id ?? 0} is already ${existing.state}`, newValidated };
    }
    const job = await enqueueJob(this.queue, retrainJob, { reason: `${newValidated} new validations (${reason})`, afterDatasetId: latest?.id ?? null }, { jobId });
    this.app.logger.info({ jobId: job.id, newValidated }, 'retraining enqueued');
    return { enqueued: true, job, newValidated };
  }

  private scheduleNext(): void {
    const delayMs = Math.max(0, nextCronDate(this.config.cron, new Date()).getTime() - Date.now());
    // setTimeout holds at most ~24.8 days; a longer wait re-plans when the shorter one ends.
    this.timer = setTimeout(() => {
      if (Date.now() + 1000 < nextCronDate(this.config.cron, new Date(Date.now() - 1000)).getTime()) {
        this.scheduleNext();
        return;
      }
      this.check('schedule')
        .catch((error: unknown) => this.app.logger.error({ err: error }, 'scheduled retraining check failed'))
        .finally(() => {
          if (this.timer !== undefined) this.scheduleNext();
        });
    }, Math.min(delayMs, 2 ** 31 - 1));
    this.timer.unref();
  }
}

/** The next time a 5-field (or 6-field, with seconds) cron expression fires after `after`, in local time. */
export function nextCronDate(expression: string, after: Date): Date {
  try {
    return CronExpressionParser.parse(expression, { currentDate: after }).next().toDate();
  } catch (error) {
    throw new CatdogError('invalid_config', `retraining.cron ${JSON.stringify(expression)} is not a valid cron expression: ${(error as Error).message}`);
  }
}

export type RetrainOutcome =
  | { retrained: false; reason: string; datasetId: number }
  | { retrained: true; datasetId: number; training: Pick<TrainingOutcome, 'runId' | 'metrics' | 'promotion'> & { modelId: string } };

/**
 * The work of a `retrain` job: under the retraining lock, snapshot the labelled photos into a new dataset version,
 * then train, evaluate and promote if better. No new version (nothing changed) means nothing to train.
 */
export async function retrain(
  app: RetrainingApp,
  queue: JobQueue,
  options: {
    /** The version it was asked to retrain after (a retried job finds the version its first attempt built). */
    afterDatasetId?: number | null;
    /** Fixed by a job, so a retry finds the model an earlier attempt registered instead of training another. */
    modelId?: string;
    signal?: AbortSignal;
    onEvent?: (event: TrainingEvent) => void;
  } = {},
): Promise<RetrainOutcome> {
  const { afterDatasetId, modelId, ...training } = options;
  const lock = await queue.tryLock(RETRAIN_LOCK, RETRAIN_LOCK_TTL_MS);
  if (lock === undefined) throw new CatdogError('retraining_in_progress', 'another retraining holds the retraining lock; this one retries later', 409);
  try {
    const { version, created } = await buildDatasetVersion(app, datasetParams(app.config));
    const isNew = afterDatasetId === undefined ? created : version.id !== afterDatasetId;
    if (!isNew) return { retrained: false, reason: `the labelled photos are those of dataset v${version.id} already`, datasetId: version.id };
    const registered = modelId === undefined ? undefined : await app.db.models.get(modelId);
    if (registered?.runId) {
      // An earlier attempt of this job trained and registered the model: decide its promotion again, train nothing.
      const { metrics, promotion } = await finalizeCandidate(app, storedCandidateOf(registered, registered.runId), { actor: 'retraining' });
      return { retrained: true, datasetId: version.id, training: { runId: registered.runId, modelId: registered.id, metrics, promotion } };
    }
    training.signal?.throwIfAborted();
    const params = resolveTrainingParams(app.config);
    const outcome = await trainOnDataset(app, { datasetId: version.id, params, actor: 'retraining', ...(modelId !== undefined && { modelId }), ...training });
    return {
      retrained: true,
      datasetId: version.id,
      training: { runId: outcome.runId, modelId: outcome.model.id, metrics: outcome.metrics, promotion: outcome.promotion },
    };
  } finally {
    await lock.release();
  }
}
