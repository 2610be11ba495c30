import type { AppContext } from '../app/context.js';
import { importFolder } from '../datasets/import-folder.js';
import { buildDatasetVersion, type DatasetParams } from '../datasets/versions.js';
import type { ModelRow, RunRow } from '../db/index.js';
import { loadManifest } from '../datasets/versions.js';
import { NotFoundError } from '../errors.js';
import { promoteIfBetter } from '../registry/promotion.js';
import { pipelineJobHandlers } from '../pipeline/jobs.js';
import { datasetParams, trainingParams, withOverrides } from '../training/params.js';
import { retrain } from '../training/retraining.js';
import { finalizeCandidate, trainCandidate, trainOnDataset, type TrainingEvent, type TrainingParams } from '../training/run-training.js';
import { modelIdForJob, openAttemptRun, settleEarlierAttempts } from './attempts.js';
import type { JobContext, JobHandler, JobQueue } from './job-queue.js';
import {
  JOB,
  type BuildDatasetJobData,
  type CandidateSummary,
  type FinalizeCandidateJobData,
  type FinalizeCandidateResult,
  type ImportJobData,
  type RetrainJobData,
  type TrainCandidateJobData,
  type TrainJobData,
} from './product-jobs.js';

/** Progress reports go to Redis; per-image feature progress would flood it, so reports are spaced out. */
const PROGRESS_INTERVAL_MS = 500;

function throttledProgress(ctx: JobContext): (fraction: number, message: string, force?: boolean) => void {
  let lastAt = 0;
  let lastMessage = '';
  return (fraction, message, force = false) => {
    const now = Date.now();
    if (!force && message === lastMessage && now - lastAt < PROGRESS_INTERVAL_MS) return;
    lastAt = now;
    lastMessage = message;
    ctx.reportProgress(fraction, message).catch(() => {});
  };
}

/** Feature extraction takes the first 40 %, epochs the next 50 %, evaluation and registration the rest. */
function trainingProgress(ctx: JobContext): (event: TrainingEvent) => void {
  const report = throttledProgress(ctx);
  return (event) => {
    switch (event.type) {
      case 'stage':
        if (event.stage === 'features' || event.stage === 'decoding') {
          const done = event.total ? (event.done ?? 0) / event.total : 0;
          report(0.4 * done, event.stage);
        } else if (event.stage !== 'training' && event.stage !== 'fine-tuning') {
          // Training and fine-tuning report their epochs below; the stages after them are the last 10 %.
          report(0.9, event.stage, true);
        }
        break;
      case 'epoch':
        report(0.4 + (0.5 * event.stats.epoch) / event.totalEpochs, `epoch ${event.stats.epoch} of ${event.totalEpochs}`, true);
        break;
      case 'finished':
        report(1, 'finished', true);
        break;
      default:
        break;
    }
  };
}

/** The parameters a dataset version trains with: its own image size, seed and augmentation, the config's training. */
async function paramsFor(app: AppContext, data: TrainJobData) {
  const dataset = await app.db.datasets.get(data.datasetId);
  if (!dataset) throw new NotFoundError('dataset version', data.datasetId);
  const { datasetId: _datasetId, ...overrides } = data;
  return trainingParams(withOverrides(app.config, overrides), dataset.params as unknown as DatasetParams);
}

/** What a `train` job answers. */
function trainResult(run: Pick<RunRow, 'id' | 'durationMs'>, model: ModelRow, promotion: { promoted: boolean; reason: string }, bestEpoch: number) {
  return {
    runId: run.id,
    modelId: model.id,
    modelVersion: model.version,
    metrics: model.metrics,
    promotion: { promoted: promotion.promoted, reason: promotion.reason },
    bestEpoch,
    durationMs: run.durationMs ?? 0,
  };
}

/** The candidate an earlier attempt of the same job stored, as its run recorded it. */
async function recordedCandidate(app: AppContext, run: RunRow): Promise<CandidateSummary> {
  const metrics = run.metrics as unknown as Pick<CandidateSummary, 'validation'> & { candidate: Pick<CandidateSummary, 'modelId' | 'artifactPrefix'> };
  return {
    runId: run.id,
    datasetId: run.datasetId,
    params: run.params as unknown as TrainingParams,
    modelId: metrics.candidate.modelId,
    artifactPrefix: metrics.candidate.artifactPrefix,
    validation: metrics.validation,
    durationMs: run.durationMs ?? 0,
    epochsRun: (await app.db.runs.epochs(run.id)).length,
  };
}

/** Every job the product runs, for `catdog worker` and for in-process (inline) queues. */
export function jobHandlers(app: AppContext, queue: JobQueue): Record<string, JobHandler> {
  const handlers: Record<string, JobHandler> = {
    [JOB.import]: async (data: ImportJobData, ctx) => {
      const report = throttledProgress(ctx);
      const result = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, data.folder, {
        onProgress: ({ done, total }) => {
          ctx.signal.throwIfAborted();
          report(done / total, `${done} of ${total} files`, done === total);
        },
      });
      return { ...result, skipped: result.skipped.length, skippedFiles: result.skipped.slice(0, 100) };
    },

    [JOB.buildDataset]: async (data: BuildDatasetJobData, ctx) => {
      const params = datasetParams(app.config);
      if (data.imageSize !== undefined) params.imageSize = data.imageSize;
      const { version, created } = await buildDatasetVersion(app, params);
      await ctx.reportProgress(1, created ? `built dataset v${version.id}` : `reused dataset v${version.id}`);
      return { datasetId: version.id, created, imageCount: version.imageCount, counts: version.counts };
    },

    [JOB.train]: async (data: TrainJobData, ctx) => {
      const modelId = modelIdForJob(ctx.id);
      const earlier = await settleEarlierAttempts(app, ctx.id, ctx.attempt);
      // An earlier attempt that registered the model (and perhaps died before recording its run's end) did the work.
      const registered = await app.db.models.get(modelId);
      if (registered !== undefined) {
        const promoted = (await app.db.models.current())?.id === registered.id;
        const reason = `registered by an earlier attempt of job ${ctx.id}${promoted ? ' and serving' : ''}`;
        return trainResult(earlier ?? { id: registered.runId ?? '', durationMs: null }, registered, { promoted, reason }, Number(earlier?.metrics?.bestEpoch ?? 0));
      }
      const params = await paramsFor(app, data);
      const run = await openAttemptRun(app, ctx.id, data.datasetId, params);
      const outcome = await trainOnDataset(app, { datasetId: data.datasetId, params, runId: run.id, modelId, signal: ctx.signal, onEvent: trainingProgress(ctx), actor: `job:${ctx.id}` });
      return trainResult({ id: outcome.runId, durationMs: outcome.durationMs }, outcome.model, outcome.promotion, outcome.bestEpoch);
    },

    [JOB.trainCandidate]: async (data: TrainCandidateJobData, ctx): Promise<CandidateSummary> => {
      const earlier = await settleEarlierAttempts(app, ctx.id, ctx.attempt);
      if (earlier !== undefined) return recordedCandidate(app, earlier);
      const run = await openAttemptRun(app, ctx.id, data.datasetId, data.params);
      const { epochs, ...candidate } = await trainCandidate(app, {
        datasetId: data.datasetId,
        params: data.params,
        runId: run.id,
        modelId: modelIdForJob(ctx.id),
        signal: ctx.signal,
        onEvent: trainingProgress(ctx),
      });
      await ctx.reportProgress(1, `validation accuracy ${candidate.validation.accuracy.toFixed(3)}`);
      return { ...candidate, epochsRun: epochs.length };
    },

    [JOB.finalizeCandidate]: async (data: FinalizeCandidateJobData, ctx): Promise<FinalizeCandidateResult> => {
      ctx.signal.throwIfAborted();
      const registered = await app.db.models.get(data.candidate.modelId);
      if (registered !== undefined) {
        // An earlier attempt registered the winner and may have died before deciding its promotion: decide it again.
        const { manifest } = await loadManifest(app, data.candidate.datasetId);
        const metrics = registered.metrics as unknown as Parameters<typeof promoteIfBetter>[2];
        const promotion = (await app.db.models.current())?.id === registered.id
          ? { promoted: true, reason: `promoted by an earlier attempt of job ${ctx.id}` }
          : await promoteIfBetter(app, registered, metrics, manifest, data.candidate.params.promotion, 'sweep');
        return { modelId: registered.id, modelVersion: registered.version, metrics: { ...registered.metrics }, promotion: { promoted: promotion.promoted, reason: promotion.reason } };
      }
      await ctx.reportProgress(0.1, 'evaluating on the test split');
      const { model, metrics, promotion } = await finalizeCandidate(app, data.candidate);
      await ctx.reportProgress(1, promotion.promoted ? 'promoted' : 'not promoted');
      return { modelId: model.id, modelVersion: model.version, metrics: { ...metrics }, promotion: { promoted: promotion.promoted, reason: promotion.reason } };
    },

    [JOB.retrain]: async (data: RetrainJobData, ctx) =>
      retrain(app, queue, { afterDatasetId: data.afterDatasetId, modelId: modelIdForJob(ctx.id), signal: ctx.signal, onEvent: trainingProgress(ctx) }),
  };
  return { ...pipelineJobHandlers(app), ...handlers };
}
