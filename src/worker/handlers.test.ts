import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { skipWithoutShared } from '../../test/support/shared.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { enqueueJob, InlineJobQueue, type JobContext, type PayloadOf } from '../jobs/index.js';
import { modelIdForJob, openAttemptRun } from '../training/attempts.js';
import { trainCandidateJob, trainJob, type CandidateSummary } from '../training/jobs.js';
import { datasetParams, resolveTrainingParams } from '../training/params.js';
import { trainingJobId } from '../training/service.js';
import { jobHandlers } from './handlers.js';

describe.skipIf(skipWithoutShared)('training jobs under retries', () => {
  let app: TestApp;
  let queue: InlineJobQueue;
  let data: PayloadOf<typeof trainCandidateJob>;

  const attempt = (id: string, number: number): JobContext => ({
    id,
    attempt: number,
    signal: new AbortController().signal,
    workerId: 'test',
    reportProgress: async () => {},
  });

  beforeAll(async () => {
    app = await createTestApp({ CATDOG_TRAINING__EPOCHS: '2' });
    queue = new InlineJobQueue();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 8);
    const { version } = await buildDatasetVersion(app, datasetParams(app.config));
    data = { datasetId: version.id, params: resolveTrainingParams(app.config) };
  });
  afterAll(async () => {
    await queue?.close();
    await app?.dispose();
  });

  it('a retried train-candidate marks the dead attempt interrupted, trains once more under the same model id, and a further retry reuses it', async () => {
    const trainCandidate = jobHandlers(app, queue)[trainCandidateJob.name]!;
    const jobId = 'train-candidate-retried';
    // What a worker killed mid-training leaves: its run still "running" (its process is on another machine).
    const dead = await openAttemptRun(app, jobId, data.datasetId, data.params);
    await app.db.runs.markRunning(dead.id, 'elsewhere:1');

    const retried = (await trainCandidate(data, attempt(jobId, 2))) as CandidateSummary;
    expect(await app.db.runs.get(dead.id)).toMatchObject({ status: 'failed', error: `interrupted: job ${jobId} was retried (attempt 2)` });
    expect(retried.modelId).toBe(modelIdForJob(jobId));
    expect(await app.db.runs.get(retried.runId)).toMatchObject({ status: 'succeeded' });

    // The job's completion was lost (say the worker died right after): the next attempt answers the same candidate.
    const again = (await trainCandidate(data, attempt(jobId, 3))) as CandidateSummary;
    expect(again).toEqual({ ...retried, durationMs: again.durationMs });
    expect((await app.db.runs.list({ limit: 10, offset: 0 })).total).toBe(2);
    expect(new Set((await app.blobs.list('models/')).map((key) => key.split('/')[1]))).toEqual(new Set([retried.modelId]));
    expect(await app.db.models.list()).toEqual([]);
  });

  it('a train job whose run was cancelled while a worker picked it up ends cancelled and trains nothing', async () => {
    const queued = await app.db.runs.create({ datasetId: data.datasetId, params: { ...data.params }, codeVersion: 'test' });
    const runsBefore = (await app.db.runs.list({ limit: 100, offset: 0 })).total;
    const modelsBefore = (await app.db.models.list()).length;
    const picker = new InlineJobQueue();
    try {
      const job = await enqueueJob(picker, trainJob, { runId: queued.id, ...data }, { jobId: trainingJobId(queued.id), attempts: 1 });
      // What `cancelTraining` does when the job is already active in another process: the run is recorded cancelled
      // and the job only gets a cancel request, which its worker may see after it has started the handler.
      await app.db.runs.finish(queued.id, { status: 'cancelled', error: 'cancelled before it started' });
      await picker.startWorker(jobHandlers(app, picker));
      expect(await picker.waitFor(job.id, 30_000)).toMatchObject({ state: 'cancelled' });
    } finally {
      await picker.close();
    }
    expect(await app.db.runs.get(queued.id)).toMatchObject({ status: 'cancelled' });
    expect((await app.db.runs.list({ limit: 100, offset: 0 })).total).toBe(runsBefore);
    expect((await app.db.models.list()).length).toBe(modelsBefore);
  });

  it('a retried train job that an earlier attempt registered answers that model instead of registering another', async () => {
    const train = jobHandlers(app, queue)[trainJob.name]!;
    const queued = await app.db.runs.create({ datasetId: data.datasetId, params: { ...data.params }, codeVersion: 'test' });
    const jobId = trainingJobId(queued.id);
    const payload: PayloadOf<typeof trainJob> = { runId: queued.id, ...data };
    const first = (await train(payload, attempt(jobId, 1))) as { modelId: string; runId: string; promotion: { promoted: boolean } };
    expect(first.runId).toBe(queued.id);
    expect(first).toMatchObject({ modelId: modelIdForJob(jobId), promotion: { promoted: true } });
    const second = (await train(payload, attempt(jobId, 2))) as typeof first;
    expect(second).toMatchObject({ modelId: first.modelId, runId: first.runId, promotion: { promoted: true } });
    expect((await app.db.models.list()).map((model) => model.id)).toEqual([first.modelId]);
  });
});
