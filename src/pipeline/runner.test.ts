import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { effectiveImageSize } from '../config/index.js';
import { BullMqJobQueue } from '../jobs/bullmq-job-queue.js';
import { InlineJobQueue } from '../jobs/inline-job-queue.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { catdogPipeline } from './catdog-pipeline.js';
import { pipelineJobHandlers } from './jobs.js';
import { getPipelineRun, listPipelineRuns, runPipeline, runsFolder, type PipelineEvent, type PipelineRunRecord } from './runner.js';

/** A labelled folder of `count` real Kaggle cats and dogs, linked rather than copied. */
function linkedPhotos(count: number): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-photos-'));
  for (const label of ['cat', 'dog'] as const) {
    fs.mkdirSync(path.join(root, label));
    for (const file of kaggleFiles(label, count)) fs.symlinkSync(file, path.join(root, label, path.basename(file)));
  }
  return root;
}

const readJson = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
const step = (run: PipelineRunRecord, task: string) => run.steps.find((candidate) => candidate.task === task)!;

describe.skipIf(skipWithoutShared)('runPipeline', () => {
  let app: TestApp;
  let photos: string;
  const small = { epochs: 3, batchSize: 8 };

  beforeAll(async () => {
    app = await createTestApp();
    photos = linkedPhotos(12);
  });
  afterAll(async () => {
    await app?.dispose();
    fs.rmSync(photos, { recursive: true, force: true });
  });

  it('runs every step locally, registers and promotes the model, and records it all in run.json', async () => {
    const events: PipelineEvent['type'][] = [];
    const run = await runPipeline(app, catdogPipeline(app.config), { source: photos, ...small }, { target: 'local', onEvent: (event) => events.push(event.type) });

    expect(run.steps.map((s) => [s.task, s.status, s.error])).toEqual([
      ['ingest', 'succeeded', undefined],
      ['build-dataset', 'succeeded', undefined],
      ['train', 'succeeded', undefined],
      ['evaluate', 'succeeded', undefined],
      ['promote', 'succeeded', undefined],
    ]);
    expect(run.status).toBe('succeeded');
    expect(events[0]).toBe('started');
    expect(events.at(-1)).toBe('finished');
    expect(events.filter((type) => type === 'step-log').length).toBeGreaterThan(3);

    const ingest = step(run, 'ingest');
    expect(ingest.outputs).toEqual({ count: 24 });
    expect((readJson(ingest.artifacts!.imported!).images as unknown[]).length).toBe(24);

    const dataset = readJson(step(run, 'build-dataset').artifacts!.dataset!);
    const version = await app.db.datasets.get(dataset.datasetId as number);
    expect(version?.manifestKey).toBe(dataset.manifestKey);
    expect(version?.imageCount).toBe(24);

    const train = step(run, 'train');
    expect(train.inputs).toMatchObject({ epochs: 3, batchSize: 8, architecture: 'mobilenet', imageSize: effectiveImageSize(app.config) });
    expect(train.logs.filter((line) => line.startsWith('epoch ')).length).toBeGreaterThanOrEqual(1);
    const model = readJson(train.artifacts!.model!);
    // Image size is a setting of the run: the train step's parameter, recorded with the model; the version has none.
    expect(step(run, 'build-dataset').inputs).not.toHaveProperty('imageSize');
    expect(model.params).toMatchObject({ imageSize: effectiveImageSize(app.config) });
    const trainMetrics = readJson(train.artifacts!.metrics!);
    expect(trainMetrics.epochsRun).toBeGreaterThanOrEqual(1);

    const testMetrics = readJson(step(run, 'evaluate').artifacts!.metrics!);
    expect(testMetrics.accuracy).toBeGreaterThanOrEqual(0);
    expect(testMetrics.accuracy).toBeLessThanOrEqual(1);
    expect((testMetrics.catsAsCat as number) + (testMetrics.catsAsDog as number) + (testMetrics.dogsAsCat as number) + (testMetrics.dogsAsDog as number)).toBe(testMetrics.count);

    // Nothing served before, so the first model is promoted; the registry holds the evaluate step's figures.
    expect(step(run, 'promote').outputs).toEqual({ promoted: 'true' });
    expect(fs.readFileSync(path.join(runsFolder(app.config), run.id, 'steps', 'promote', 'parameters', 'promoted'), 'utf8')).toBe('true');
    const current = await app.db.models.current();
    expect(current?.id).toBe(model.modelId);
    expect(current?.metrics).toMatchObject({ accuracy: testMetrics.accuracy, count: testMetrics.count });

    expect(await getPipelineRun(app.config, run.id)).toEqual(run);
    expect((await listPipelineRuns(app.config)).map((listed) => listed.id)).toContain(run.id);
  });

  it('fails the run at a step that fails, with its error, and skips what depends on it', async () => {
    const missing = path.join(photos, 'no-such-folder');
    const run = await runPipeline(app, catdogPipeline(app.config), { source: missing, ...small }, { target: 'local' });

    expect(run.status).toBe('failed');
    expect(step(run, 'ingest')).toMatchObject({ status: 'failed' });
    expect(step(run, 'ingest').error).toContain(`${missing} is not a folder`);
    expect(run.error).toContain("step 'ingest' failed");
    expect(run.steps.slice(1).map((s) => [s.task, s.status, s.startedAt])).toEqual([
      ['build-dataset', 'skipped', undefined],
      ['train', 'skipped', undefined],
      ['evaluate', 'skipped', undefined],
      ['promote', 'skipped', undefined],
    ]);
    expect(step(run, 'build-dataset').error).toBe("skipped: step 'ingest' failed");
    expect((await getPipelineRun(app.config, run.id)).status).toBe('failed');
  });

  it('runs each step as a pipeline-step job on the queue', async () => {
    const queue = new InlineJobQueue();
    await queue.startWorker(pipelineJobHandlers(app));
    const modelsBefore = (await app.db.models.list()).length;
    try {
      // No new source: the library the first run imported is trained on again.
      const run = await runPipeline(app, catdogPipeline(app.config), small, { target: 'queue', queue });
      expect(run.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
      expect(step(run, 'ingest').outputs).toEqual({ count: 0 });
      expect(step(run, 'train').logs.some((line) => line.startsWith('epoch '))).toBe(true);

      const jobs = await queue.list();
      expect(jobs.map((job) => [job.name, job.state]).sort()).toEqual(Array(5).fill(['pipeline-step', 'completed']));
      expect(jobs.map((job) => job.id).sort()).toEqual(run.steps.map((s) => s.jobId).sort());
      expect((await app.db.models.list()).length).toBe(modelsBefore + 1);
      expect(['true', 'false']).toContain(step(run, 'promote').outputs?.promoted);
    } finally {
      await queue.close();
    }
  });
});

const REDIS_URL = 'redis://127.0.0.1:6379';
const REDIS_PREFIX = 'catdog-test';

/** The runner's queue and the one a worker serves: the same queue, seen through two connections on BullMQ. */
interface QueuePair {
  runner: JobQueue;
  worker: JobQueue;
  close(): Promise<void>;
}

const queueAdapters: { kind: JobQueue['kind']; open(app: TestApp): Promise<QueuePair> }[] = [
  {
    kind: 'inline',
    async open(app) {
      const queue = new InlineJobQueue({ closeTimeoutMs: 5000 });
      await queue.startWorker(pipelineJobHandlers(app));
      return { runner: queue, worker: queue, close: () => queue.close() };
    },
  },
  {
    kind: 'bullmq',
    async open(app) {
      // Separate instances share nothing in memory: the cancel reaches the worker through Redis, as it would in another process.
      const queueName = `pipeline-cancel-${randomUUID()}`;
      const options = { redisUrl: REDIS_URL, queueName, prefix: REDIS_PREFIX, closeTimeoutMs: 5000 };
      const runner = new BullMqJobQueue(options);
      const worker = new BullMqJobQueue(options);
      await worker.startWorker(pipelineJobHandlers(app));
      return {
        runner,
        worker,
        async close() {
          await Promise.all([runner.close(), worker.close()]);
          const redis = new Redis(REDIS_URL);
          const keys = await redis.keys(`${REDIS_PREFIX}:${queueName}:*`);
          if (keys.length > 0) await redis.del(...keys);
          await redis.quit();
        },
      };
    },
  },
];

describe.skipIf(skipWithoutShared)('cancelling a pipeline-step job', () => {
  let app: TestApp;
  let photos: string;
  let pair: QueuePair | undefined;
  // Far more epochs than could ever finish, and no early stopping: only the cancel can end this training. A fixed
  // head weight: cross-validating one would first try every weight for that many epochs, before any epoch is logged.
  const endless = { epochs: 1_000_000, batchSize: 8 };

  beforeAll(async () => {
    app = await createTestApp({ CATDOG_TRAINING__EARLY_STOPPING_PATIENCE: '0', CATDOG_TRAINING__HEAD_L2: '0.0001' });
    photos = linkedPhotos(12);
  });
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
  });
  afterAll(async () => {
    await app?.dispose();
    fs.rmSync(photos, { recursive: true, force: true });
  });

  it.each(queueAdapters)('on the $kind queue stops the training, records the step and run cancelled and leaves no model', async ({ open }) => {
    pair = await open(app);
    const { runner } = pair;
    const modelsBefore = (await app.db.models.list()).length;
    let trainJobId: string | undefined;
    let cancelling: Promise<boolean> | undefined;

    const run = await runPipeline(app, catdogPipeline(app.config), { source: photos, ...endless }, {
      target: 'queue',
      queue: runner,
      onEvent: (event) => {
        if (event.type === 'step-started' && event.step.task === 'train') trainJobId = event.step.jobId;
        // Cancelled once the first epoch is done, so the training loop itself is running when the cancel arrives.
        if (event.type === 'step-log' && event.task === 'train' && event.line.startsWith('epoch ') && cancelling === undefined) {
          cancelling = runner.cancel(trainJobId!);
        }
      },
    });

    expect(await cancelling).toBe(true);
    expect(run.steps.map((s) => [s.task, s.status])).toEqual([
      ['ingest', 'succeeded'],
      ['build-dataset', 'succeeded'],
      ['train', 'cancelled'],
      ['evaluate', 'skipped'],
      ['promote', 'skipped'],
    ]);
    expect(run.status).toBe('cancelled');
    expect(run.error).toBe(`step 'train' cancelled: job ${trainJobId} was cancelled`);
    expect(step(run, 'evaluate').error).toBe("skipped: step 'train' was cancelled");
    expect(run.steps.slice(3).map((s) => s.startedAt)).toEqual([undefined, undefined]);
    expect(await getPipelineRun(app.config, run.id)).toEqual(run);
    expect((await runner.get(trainJobId!))?.state).toBe('cancelled');

    // The training itself stopped (its run says so and gains no epochs), far from its last epoch.
    const trainingRunId = /^training run (\S+) /.exec(step(run, 'train').logs.find((line) => line.startsWith('training run ')) ?? '')?.[1];
    expect(trainingRunId).toBeDefined();
    expect((await app.db.runs.get(trainingRunId!))?.status).toBe('cancelled');
    const epochsRun = (await app.db.runs.epochs(trainingRunId!)).length;
    expect(epochsRun).toBeGreaterThanOrEqual(1);
    expect(epochsRun).toBeLessThan(endless.epochs);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await app.db.runs.epochs(trainingRunId!)).length).toBe(epochsRun);

    // Nothing half-written: no step artifacts, no model files, no registered model.
    expect(fs.existsSync(path.join(runsFolder(app.config), run.id, 'steps', 'train', 'artifacts'))).toBe(false);
    expect(step(run, 'train').artifacts).toBeUndefined();
    expect(await app.blobs.list('models/')).toEqual([]);
    expect((await app.db.models.list()).length).toBe(modelsBefore);
  });
});
