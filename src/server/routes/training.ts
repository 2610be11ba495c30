import { createRoute, z } from '@hono/zod-openapi';
import { setTimeout as sleep } from 'node:timers/promises';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { RunRow } from '../../db/index.js';
import { NotFoundError } from '../../errors.js';
import type { TrainingEvent } from '../../training/run-training.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { EpochSchema, errorResponse, jsonContent, pagingQuery, RunSchema, StartRunSchema } from '../schemas.js';

const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'run_0123456789abcdef' }) });
const KEEPALIVE_MS = 15_000;
/** Runs this process does not hold in memory (an earlier process, the CLI) are followed through the database. */
const DATABASE_POLL_MS = 1_000;

const startRun = createRoute({
  method: 'post',
  path: '/training-runs',
  'x-catdog-role': 'admin',
  tags: ['training'],
  summary: 'Queue a training run (without datasetId a dataset version is built or reused first)',
  request: { body: { required: false, content: { 'application/json': { schema: StartRunSchema } } } },
  responses: {
    202: jsonContent(z.object({ id: z.string(), status: z.string(), datasetId: z.number().int() }), 'Queued; follow it at /training-runs/{id}/events'),
    400: errorResponse('Invalid parameters'),
    404: errorResponse('No such dataset version'),
    409: errorResponse('Too few labelled photos to build a dataset version'),
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
  summary: 'Server-sent events: what already happened, then live (started, stage, epoch, finished, failed)',
  request: { params: IdParam },
  responses: {
    200: { description: 'An event stream that ends after finished or failed', content: { 'text/event-stream': { schema: z.string() } } },
    404: errorResponse('No such run'),
  },
});

/** The wire format of each event: flat, the fields a chart needs, no internal objects. */
function eventData(event: TrainingEvent): Record<string, unknown> {
  switch (event.type) {
    case 'epoch': {
      const { stats } = event;
      return {
        runId: event.runId,
        epoch: stats.epoch,
        totalEpochs: event.totalEpochs,
        loss: stats.loss,
        accuracy: stats.accuracy,
        valLoss: stats.valLoss,
        valAccuracy: stats.valAccuracy,
        etaMs: Math.round(event.etaMs),
      };
    }
    case 'finished':
      return { runId: event.runId, modelId: event.modelId, metrics: event.metrics, promoted: event.promotion.promoted, promotion: event.promotion.reason };
    default: {
      const { type: _type, ...fields } = event;
      return fields;
    }
  }
}

const writeEvent = (stream: SSEStreamingApi, type: string, data: Record<string, unknown>) =>
  stream.writeSSE({ event: type, data: JSON.stringify(data) });

const isFinished = (run: RunRow): boolean => run.status !== 'queued' && run.status !== 'running';

/** Resolves after `ms`, or at once when `signal` aborts (the client left or the server is shutting down). */
const pause = (ms: number, signal: AbortSignal): Promise<void> => sleep(ms, undefined, { signal, ref: false }).catch(() => undefined);

export function trainingRoutes({ app, runs, closing }: ServerDeps) {
  const routes = routeGroup();

  const findRun = async (id: string) => {
    const run = await app.db.runs.get(id);
    if (!run) throw new NotFoundError('training run', id);
    return run;
  };

  routes.openapi(startRun, async (c) => {
    const run = await runs.submit(c.req.valid('json'));
    return c.json({ id: run.id, status: run.status, datasetId: run.datasetId }, 202);
  });

  routes.openapi(listRuns, async (c) => {
    const page = await app.db.runs.list(c.req.valid('query'));
    return c.json({ ...page, queueDepth: runs.queueDepth }, 200);
  });

  routes.openapi(getRun, async (c) => {
    const { id } = c.req.valid('param');
    const [run, epochs] = await Promise.all([findRun(id), app.db.runs.epochs(id)]);
    return c.json({ ...run, epochs }, 200);
  });

  const followLive = async (stream: SSEStreamingApi, runId: string, stop: AbortSignal): Promise<boolean> => {
    const pending: TrainingEvent[] = [];
    let wake: (() => void) | undefined;
    const subscription = runs.subscribe(runId, (event) => {
      pending.push(event);
      wake?.();
    });
    if (!subscription) return false;
    /** Resolves on the next event, after `ms` of silence, or when `stop` aborts; leaves no timer or listener behind. */
    const nextEventOrSilence = (ms: number) =>
      new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          stop.removeEventListener('abort', finish);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(finish, ms);
        stop.addEventListener('abort', finish);
        wake = finish;
      });
    try {
      for (const event of subscription.replay) await writeEvent(stream, event.type, eventData(event));
      let ended = subscription.ended;
      while (!ended && !stop.aborted) {
        if (pending.length === 0) {
          await nextEventOrSilence(KEEPALIVE_MS);
          if (stop.aborted) break;
          if (pending.length === 0) {
            // A comment line: keeps proxies from closing a quiet connection during a long stage.
            await stream.write(': keepalive\n\n');
            continue;
          }
        }
        const event = pending.shift()!;
        await writeEvent(stream, event.type, eventData(event));
        ended = event.type === 'finished' || event.type === 'failed';
      }
    } finally {
      subscription.unsubscribe();
    }
    return true;
  };

  const followDatabase = async (stream: SSEStreamingApi, runId: string, stop: AbortSignal): Promise<void> => {
    let sent = 0;
    while (!stop.aborted) {
      const [run, epochs] = await Promise.all([findRun(runId), app.db.runs.epochs(runId)]);
      for (const { totalEpochs, ...epoch } of epochs.slice(sent)) {
        // Epochs recorded before migration 0005 lack their total: the head phase's is the best guess.
        await writeEvent(stream, 'epoch', { runId, ...epoch, totalEpochs: totalEpochs ?? (Number(run.params.epochs) || undefined), etaMs: null });
      }
      sent = epochs.length;
      if (isFinished(run)) {
        if (run.status === 'succeeded') await writeEvent(stream, 'finished', { runId, modelId: run.modelId, metrics: run.metrics });
        else await writeEvent(stream, 'failed', { runId, error: run.error ?? run.status });
        return;
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
      if (!(await followLive(stream, id, stop))) await followDatabase(stream, id, stop);
    });
  });

  return routes;
}
