import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { AppContext } from '../app/context.js';
import { ModelServer } from '../serving/model-server.js';
import { createAppJobQueue } from '../jobs/index.js';
import { RetrainingTrigger } from '../training/retraining.js';
import { WorkerProcess, type WorkerCommand } from '../worker/worker-process.js';
import { createServer, type WebUi } from './app.js';

/**
 * How long an idle keep-alive connection stays open. A model call is synchronous native work that blocks the event
 * loop, for seconds with a full batch on a busy machine; when the loop resumes Node runs expired timers before it
 * reads sockets, so with Node's default of 5 s the server closed connections on which clients had already sent
 * their next request (ECONNRESET under 50 concurrent clients). Clients told `Keep-Alive: timeout=30` reuse a
 * connection for less than that.
 */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;

export interface RunningServer {
  url: string;
  port: number;
  /** The model answering predictions at start-up (`zero-shot` before any promotion). */
  servingModel: { id: string; version: number | null } | undefined;
  /** Stops accepting, ends event streams, lets in-flight requests finish, stops the worker process, closes the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  web: WebUi;
  port: number;
  /**
   * With in-process jobs (`jobs.kind` inline), how to start the server's own `catdog worker` process, which runs them
   * (training, imports, sweeps, retraining) off this event loop. Without it, queued jobs wait for a worker.
   */
  worker?: WorkerCommand;
  /** Close on SIGTERM / SIGINT (the CLI); tests that start several servers in one process turn it off. */
  handleSignals?: boolean;
}

function listen(server: ServerType): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => resolve(server.address() as AddressInfo));
  });
}

function closeHttp(server: ServerType): Promise<void> {
  return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

export async function startServer(app: AppContext, options: StartOptions): Promise<RunningServer> {
  const models = new ModelServer({
    db: app.db,
    blobs: app.blobs,
    backbones: app.backbones,
    logger: app.logger,
    defaultBackbone: app.config.training.backbone,
  });
  // Loaded before the first request, so it is fast and the start-up line can name the model.
  const serving = await models.refresh().then(
    (classifier) => ({ id: classifier.modelId, version: classifier.version }),
    (error: unknown) => {
      app.logger.error({ err: error }, 'no model could be loaded; predictions will fail until one can');
      return undefined;
    },
  );
  const jobs = createAppJobQueue(app);
  // Jobs never run on this event loop: bullmq ones on `catdog worker`s, inline ones in a worker process of our own.
  const worker = jobs.kind === 'inline' && options.worker ? new WorkerProcess(options.worker, app.logger) : undefined;
  if (jobs.kind === 'inline' && !worker) app.logger.warn('no job worker process: queued trainings and imports wait for a `catdog worker` on this database');

  const retraining = app.config.retraining.enabled ? new RetrainingTrigger(app, jobs) : undefined;
  retraining?.start();
  const closing = new AbortController();
  const hono = createServer(app, { web: options.web, models, jobs, ...(retraining && { retraining }), closing: closing.signal });
  const server = serve({ fetch: hono.fetch, port: options.port, hostname: app.config.server.host, serverOptions: { keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS } });
  const address = await listen(server);
  // Started once the port is ours: a server that cannot listen leaves no worker behind.
  worker?.start();
  models.startWatching();

  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      const stopped = closeHttp(server);
      closing.abort();
      models.stop();
      retraining?.stop();
      await jobs.close();
      await worker?.stop();
      await stopped;
      await app.close();
    })();
    return closed;
  };

  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      app.logger.info({ signal }, 'shutting down: finishing in-flight requests');
      close().then(
        () => process.exit(0),
        (error: unknown) => {
          app.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return { url, port: address.port, servingModel: serving, close };
}
