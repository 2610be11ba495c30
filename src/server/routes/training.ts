import { createRoute, z } from '@hono/zod-openapi';
import { setTimeout as sleep } from 'node:timers/promises';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import { evaluatedRunMetrics, type RunRow } from '../../db/index.js';
import { NotFoundError } from '../../errors.js';
import { cancelTraining, startTraining } from '../../training/service.js';
import { runWarnings } from '../../training/warnings.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { presentRun } from '../present.js';
import { EpochSchema, errorResponse, jsonContent, pagingQuery, RunSchema, StartRunSchema } from '../schemas.js';

const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'run_0123456789abcdef' }) });
const KEEPALIVE_MS = 15_000;
/** Runs are trained by worker processes: the server follows them through the database. */
const DATABASE_POLL_MS = 1_000;

const startRun = createRoute({
  method: 'post',
  path: '/training-runs',
  'x-catdog-role': 'admin',
  tags: ['training'],
  summary: 'Queue a training run as a job (without datasetId a dataset version is built or reused first); a worker process trains it',
  request: { body: { required: false, content: { 'application/json': { schema: StartRunSchema } } } },
  responses: {
    202: jsonContent(z.object({ id: z.string(), status: z.string(), datasetId: z.number().int(), jobId: z.string() }), 'Queued; follow it at /training-runs/{id}/events, cancel it at /training-runs/{id}/cancel'),
    400: errorResponse('Invalid parameters'),
    404: errorResponse('No such dataset version'),
    409: errorResponse('Too few labelled photos to build a dataset version'),
  },
});

const cancelRun = createRoute({
  method: 'post',
  path: '/training-runs/{id}/cancel',
  'x-catdog-role': 'admin',
  tags: ['training'],
  summary: 'Cancel a queued or running training: it ends cancelled and registers nothing',
  request: { params: IdParam },
  responses: {
    202: jsonContent(RunSchema, 'Cancelled, or being stopped by its worker (the run ends cancelled within seconds)'),
    404: errorResponse('No such run'),
    409: errorResponse('The run has ended, or runs outside the job queue (catdog train)'),
  },
});

const listRuns = createRoute({
  method: 'get',
  path: '/training-runs',
  'x-catdog-role': 'viewer',
  tags: ['training'],
  summary: 'Training runs, newest first',
  request: { query: z.object(pagingQuery) },
  responses: {
    200: jsonContent(z.object({ items: z.array(RunSchema), total: z.number().int(), queueDepth: z.number().int() }), 'A page of runs'),
  },
});

const getRun = createRoute({
  method: 'get',
  path: '/training-runs/{id}',
  'x-catdog-role': 'viewer',
  tags: ['training'],
  summary: 'One run: status, parameters, per-epoch curves, test metrics and the model it produced',
  request: { params: IdParam },
  responses: { 200: jsonContent(RunSchema.extend({ epochs: z.array(EpochSchema) }), 'The run'), 404: errorResponse('No such run') },
});

const runEvents = createRoute({
  method: 'get',
  path: '/training-runs/{id}/events',
  'x-catdog-role': 'viewer',
  tags: ['training'],
  summary: 'Server-sent events: what already happened, then live (started; stage: what the worker does, batch by batch within an epoch, with the whole run\'s fraction done; epoch; finished with its warnings; failed)',
  request: { params: IdParam },
  responses: {
    200: { description: 'An event stream that ends after finished or failed', content: { 'text/event-stream': { schema: z.string() } } },
    404: errorResponse('No such run'),
  },
});

const isFinished = (run: RunRow): boolean => run.status !== 'queued' && run.status !== 'running';

/** Resolves after `ms`, or at once when `signal` aborts (the client left or the server is shutting down). */
const pause = (ms: number, signal: AbortSignal): Promise<void> => sleep(ms, undefined, { signal, ref: false }).catch(() => undefined);

export function trainingRoutes({ app, jobs, closing }: ServerDeps) {
  const routes = routeGroup();

  const findRun = async (id: string) => {
    const run = await app.db.runs.get(id);
    if (!run) throw new NotFoundError('training run', id);
    return run;
  };

  routes.openapi(startRun, async (c) => {
    const run = await startTraining(app, jobs, c.req.valid('json') ?? {});
    return c.json({ id: run.id, status: run.status, datasetId: run.datasetId, jobId: run.jobId ?? '' }, 202);
  });

  routes.openapi(cancelRun, async (c) => c.json(presentRun(await cancelTraining(app, jobs, c.req.valid('param').id)), 202));

  routes.openapi(listRuns, async (c) => {
    const [page, counts] = await Promise.all([app.db.runs.list(c.req.valid('query')), app.db.runs.countByStatus()]);
    return c.json({ items: page.items.map(presentRun), total: page.total, queueDepth: counts.queued ?? 0 }, 200);
  });

  routes.openapi(getRun, async (c) => {
    const { id } = c.req.valid('param');
    const [run, epochs] = await Promise.all([findRun(id), app.db.runs.epochs(id)]);
    return c.json({ ...presentRun(run), epochs }, 200);
  });

  /**
   * The run as its worker records it (another process, often another machine): the epochs in the database, what it is
   * doing now from its job's progress, and how it ended.
   */
  const follow = async (stream: SSEStreamingApi, runId: string, stop: AbortSignal): Promise<void> => {
    let sent = 0;
    let startedSent = false;
    let lastProgress = '';
    let lastWriteAt = Date.now();
    const writeEvent = (type: string, data: Record<string, unknown>) => {
      lastWriteAt = Date.now();
      return stream.writeSSE({ event: type, data: JSON.stringify(data) });
    };
    while (!stop.aborted) {
      const [run, epochs] = await Promise.all([findRun(runId), app.db.runs.epochs(runId)]);
      if (!startedSent && run.startedAt !== null) {
        await writeEvent('started', { runId, datasetId: run.datasetId, params: run.params });
        startedSent = true;
      }
      const job = run.jobId !== null && !isFinished(run) ? await jobs.get(run.jobId).catch(() => undefined) : undefined;
      const progress = job?.progressMessage === undefined ? '' : `${job.progress}:${job.progressMessage}`;
      if (job?.progressMessage !== undefined && progress !== lastProgress) {
        await writeEvent('stage', { runId, stage: job.progressMessage, fraction: job.progress });
        lastProgress = progress;
      }
      for (const [index, { totalEpochs: recorded, ...epoch }] of epochs.entries()) {
        if (index < sent) continue;
        // Epochs recorded before migration 0005 lack their total: the head phase's is the best guess.
        const totalEpochs = recorded ?? run.params.epochs;
        const meanEpochMs = epochs.slice(0, index + 1).reduce((sum, each) => sum + each.durationMs, 0) / (index + 1);
        await writeEvent('epoch', { runId, ...epoch, totalEpochs, etaMs: Math.round(meanEpochMs * Math.max(0, totalEpochs - epoch.epoch)) });
      }
      sent = epochs.length;
      if (isFinished(run)) {
        if (run.status === 'succeeded') {
          const evaluated = evaluatedRunMetrics(run.metrics);
          await writeEvent('finished', { runId, modelId: run.modelId, metrics: run.metrics, promoted: evaluated?.promoted === true, promotion: evaluated?.promotion, warnings: runWarnings(run) });
        } else await writeEvent('failed', { runId, error: run.error ?? run.status, status: run.status });
        return;
      }
      if (Date.now() - lastWriteAt > KEEPALIVE_MS) {
        // A comment line: keeps proxies from closing a quiet connection during a long stage.
        await stream.write(': keepalive\n\n');
        lastWriteAt = Date.now();
      }
      await pause(DATABASE_POLL_MS, stop);
    }
  };

  routes.openapi(runEvents, async (c) => {
    const { id } = c.req.valid('param');
    await findRun(id);
    return streamSSE(c, async (stream) => {
      const clientLeft = new AbortController();
      stream.onAbort(() => clientLeft.abort());
      const stop = AbortSignal.any([clientLeft.signal, closing]);
      await follow(stream, id, stop);
    });
  });

  return routes;
}
