import type { AppContext } from '../app/context.js';
import { importFolder } from '../datasets/import-folder.js';
import { buildDatasetJob, importJob } from '../datasets/jobs.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import type { ModelRow, RunRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import { handlerFor, type JobContext, type JobHandler, type JobQueue } from '../jobs/index.js';
import { pipelineJobHandlers } from '../pipeline/jobs.js';
import { modelIdForJob, openAttemptRun, settleEarlierAttempts } from '../training/attempts.js';
import { finalizeCandidateJob, retrainJob, trainCandidateJob, trainJob, type CandidateSummary, type FinalizeCandidateResult } from '../training/jobs.js';
import { datasetParams } from '../training/params.js';
import { retrain } from '../training/retraining.js';
import { finalizeCandidate, storedCandidateOf, trainCandidate, trainOnDataset, type TrainingEvent } from '../training/run-training.js';

/**
 * Progress reports go to Redis or the database; per-image feature progress and per-batch training progress would
 * flood them, so reports are spaced out (at most two a second) unless `force` says a milestone must be seen.
 */
const PROGRESS_INTERVAL_MS = 500;

function throttledProgress(ctx: JobContext): (fraction: number, message: string, force?: boolean) => void {
  let lastAt = 0;
  return (fraction, message, force = false) => {
    const now = Date.now();
    if (!force && now - lastAt < PROGRESS_INTERVAL_MS) return;
    lastAt = now;
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
          report(0.4 * done, `${event.stage} ${event.done ?? 0} of ${event.total ?? '?'}`);
        } else if (event.stage !== 'training' && event.stage !== 'fine-tuning') {
          // Training and fine-tuning report their epochs below; the stages after them are the last 10 %.
          report(0.9, event.stage, true);
        }
        break;
      case 'batch':
        report(0.4 + (0.5 * (event.epoch - 1 + event.batch / event.batchCount)) / event.totalEpochs, `epoch ${event.epoch} of ${event.totalEpochs}: batch ${event.batch} of ${event.batchCount}`);
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

/** What a `train` job answers. */
function trainResult(runId: string, model: ModelRow, promotion: { promoted: boolean; reason: string }) {
  return { runId, modelId: model.id, modelVersion: model.version, metrics: model.metrics, promotion: { promoted: promotion.promoted, reason: promotion.reason } };
}

/** The candidate an earlier attempt of the same job stored, as its run recorded it. */
async function recordedCandidate(app: AppContext, run: RunRow): Promise<CandidateSummary> {
  const { metrics } = run;
  if (!metrics || !('candidate' in metrics)) {
    throw new CatdogError('no_recorded_candidate', `run ${run.id} succeeded without recording the candidate it stored; start the sweep again`, 409, { id: run.id });
  }
  return {
    runId: run.id,
    datasetId: run.datasetId,
    params: run.params,
    modelId: metrics.candidate.modelId,
    artifactPrefix: metrics.candidate.artifactPrefix,
    validation: metrics.validation,
    durationMs: run.durationMs ?? 0,
    epochsRun: (await app.db.runs.epochs(run.id)).length,
  };
}

/** Every job the product runs, for `catdog worker` (on Redis, or the server's own worker process) and for CLI runs. */
export function jobHandlers(app: AppContext, queue: JobQueue): Record<string, JobHandler> {
  return {
    ...pipelineJobHandlers(app),

    ...handlerFor(importJob, async (data, ctx) => {
      const report = throttledProgress(ctx);
      const result = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, data.folder, {
        onProgress: ({ done, total }) => {
          ctx.signal.throwIfAborted();
          report(done / total, `${done} of ${total} files`, done === total);
        },
      });
      return { ...result, skipped: result.skipped.length, skippedFiles: result.skipped.slice(0, 100) };
    }),

    ...handlerFor(buildDatasetJob, async (_data, ctx) => {
      const { version, created } = await buildDatasetVersion(app, datasetParams(app.config));
      await ctx.reportProgress(1, created ? `built dataset v${version.id}` : `reused dataset v${version.id}`);
      return { datasetId: version.id, created, imageCount: version.imageCount, counts: version.counts };
    }),

    ...handlerFor(trainJob, async (data, ctx) => {
      const modelId = modelIdForJob(ctx.id);
      const earlier = await settleEarlierAttempts(app, ctx.id, ctx.attempt);
      const registered = await app.db.models.get(modelId);
      if (registered !== undefined) {
        // An earlier attempt registered the model and died before it recorded the end of its run: decide the promotion again.
        const { promotion } = await finalizeCandidate(app, storedCandidateOf(registered, earlier?.id ?? registered.runId ?? data.runId), { actor: `job:${ctx.id}` });
        return trainResult(earlier?.id ?? registered.runId ?? data.runId, registered, promotion);
      }
      const run = await openAttemptRun(app, ctx.id, data.datasetId, data.params, data.runId);
      const outcome = await trainOnDataset(app, { datasetId: data.datasetId, params: data.params, runId: run.id, modelId, signal: ctx.signal, onEvent: trainingProgress(ctx), actor: 'training' });
      return trainResult(outcome.runId, outcome.model, outcome.promotion);
    }),

    ...handlerFor(trainCandidateJob, async (data, ctx): Promise<CandidateSummary> => {
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
    }),

    ...handlerFor(finalizeCandidateJob, async (data, ctx): Promise<FinalizeCandidateResult> => {
      ctx.signal.throwIfAborted();
      await ctx.reportProgress(0.1, 'evaluating on the test split');
      const { model, metrics, promotion } = await finalizeCandidate(app, data.candidate, { actor: 'sweep' });
      await ctx.reportProgress(1, promotion.promoted ? 'promoted' : 'not promoted');
      return { modelId: model.id, modelVersion: model.version, metrics: { ...metrics }, promotion: { promoted: promotion.promoted, reason: promotion.reason } };
    }),

    ...handlerFor(retrainJob, async (data, ctx) =>
      retrain(app, queue, { afterDatasetId: data.afterDatasetId, modelId: modelIdForJob(ctx.id), signal: ctx.signal, onEvent: trainingProgress(ctx) }),
    ),
  };
}
