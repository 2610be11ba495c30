import { OpenAPIHono } from '@hono/zod-openapi';
import type { Hono, NotFoundHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppContext } from '../app/context.js';
import { createAppJobQueue, type JobQueue } from '../jobs/index.js';
import { DecodeSlots } from '../images/index.js';
import { initTensorflow } from '../ml/index.js';
import type { ModelServer } from '../serving/model-server.js';
import type { RetrainingTrigger } from '../training/retraining.js';
import type { ServerDeps } from './context.js';
import { errorHandler, errorJson, notFoundHandler, validationHook } from './errors.js';
import { createServerMetrics, PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import { datasetRoutes } from './routes/datasets.js';
import { imageRoutes } from './routes/images.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { predictionRoutes } from './routes/predictions.js';
import { systemRoutes } from './routes/system.js';
import { trainingRoutes } from './routes/training.js';
import { allowedHostNames, hostGuard, rateLimiter, securityHeaders } from './security.js';
import { accessResolver, authorize, identify, isLoopbackHost, registerSessionRoutes, type SessionRouteOptions } from './auth-middleware.js';
import { tokenRoutes } from './routes/tokens.js';

export const API_PREFIX = '/api/v1';
/** Room for the multipart framing around a photo of exactly `images.maxBytes`. */
const MULTIPART_OVERHEAD_BYTES = 16 * 1024;
/** Up to the batcher's default cap of 32 photos per call. */
const MODEL_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32];

/** The web UI served beside the API. Its pages are built on the server's deps, so the server takes it as given. */
export interface WebUi {
  routes(deps: ServerDeps): Hono;
  signInPage: SessionRouteOptions['renderSignIn'];
  /** What a mistyped address outside /api/ answers: a page with the navigation rather than a JSON error. */
  notFound(deps: ServerDeps): NotFoundHandler;
}

export interface ServerOptions {
  web: WebUi;
  models: ModelServer;
  /** Default: the queue the config names, never closed (startServer passes its own and closes it). */
  jobs?: JobQueue;
  retraining?: RetrainingTrigger;
  /** Aborted at shutdown: event streams end so the server can close. */
  closing?: AbortSignal;
}

/** The HTTP face of catdog: the JSON API under /api/v1 (documented at /api/openapi.json) and the web UI. */
export function createServer(app: AppContext, options: ServerOptions): OpenAPIHono {
  const metrics = createServerMetrics();
  const server = new OpenAPIHono({ defaultHook: validationHook });
  const accessFor = accessResolver(server);
  const deps: ServerDeps = {
    app,
    models: options.models,
    jobs: options.jobs ?? createAppJobQueue(app),
    ...(options.retraining && { retraining: options.retraining }),
    metrics,
    decodeSlots: new DecodeSlots(app.config.images.decodeConcurrency),
    access: accessFor,
    closing: options.closing ?? new AbortController().signal,
  };

  metrics.registry.gauge('catdog_serving_model_version', 'Registry version of the model answering predictions (0 = zero-shot).', async () => {
    const classifier = await options.models.classifier().catch(() => undefined);
    return classifier ? [{ labels: { model_id: classifier.modelId }, value: classifier.version ?? 0 }] : [];
  });
  metrics.registry.gauge('catdog_jobs', 'Jobs on the queue by state (trainings, imports, sweep candidates, retraining, pipeline steps).', async () =>
    Object.entries(await deps.jobs.counts()).map(([state, value]) => ({ labels: { state }, value })),
  );
  const batchSizes = metrics.registry.histogram(
    'catdog_model_batch_size',
    'Photos per model call; concurrent predictions are merged into one call, so _sum / _count is the mean batch.',
    MODEL_BATCH_BUCKETS,
  );
  options.models.observeModelCalls((images) => batchSizes.observe({}, images));
  // Both flat under steady load once warm: growth means a leak (a tensor not disposed, a cache without bound).
  metrics.registry.gauge('catdog_tf_tensors', 'TensorFlow tensors alive in this process.', () =>
    initTensorflow().then(
      ({ tf }) => [{ labels: {}, value: tf.memory().numTensors }],
      () => [],
    ),
  );
  metrics.registry.gauge('process_resident_memory_bytes', 'Resident set size of this process in bytes.', () => [
    { labels: {}, value: process.memoryUsage.rss() },
  ]);

  server.use('*', securityHeaders, metrics.middleware, hostGuard(allowedHostNames(app.config.server.host, app.config.server.allowedHosts)));
  // At shutdown every answer closes its connection: a kept-alive one would hold the closing server open until its
  // keep-alive timeout (30 s, see startServer) ran out.
  server.use('*', async (c, next) => {
    await next();
    if (deps.closing.aborted) c.res.headers.set('Connection', 'close');
  });
  const access = {
    db: app.db,
    anonymousViewer: app.config.server.anonymousViewer,
    localViewer: app.config.server.localViewer && isLoopbackHost(app.config.server.host),
  };
  // Identify first so the limiter keys on the token, then refuse: floods of refused requests are limited too.
  server.use('*', identify(accessFor, access));
  server.use(`${API_PREFIX}/*`, rateLimiter(app.config.server.rateLimit));
  server.use('*', authorize(accessFor, access));
  server.use(
    `${API_PREFIX}/*`,
    bodyLimit({
      maxSize: app.config.images.maxBytes + MULTIPART_OVERHEAD_BYTES,
      onError: (c) => errorJson(c, 413, 'payload_too_large', `the request is larger than the ${app.config.images.maxBytes} bytes accepted (images.maxBytes)`),
    }),
  );

  for (const routes of [predictionRoutes, imageRoutes, datasetRoutes, trainingRoutes, modelRoutes, systemRoutes, tokenRoutes, jobRoutes]) {
    server.route(API_PREFIX, routes(deps));
  }
  server.get('/metrics', async (c) => c.text(await metrics.registry.render(), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }));
  server.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'catdog token create --role R' });
  server.doc31('/api/openapi.json', {
    openapi: '3.1.0',
    security: [{ bearerAuth: [] }],
    info: {
      title: 'catdog API',
      version: app.codeVersion,
      description: 'Classify photos as cat or dog, review predictions, build dataset versions, train, register and promote models.',
    },
  });
  registerSessionRoutes(server, {
    ...access,
    sessionHours: app.config.server.sessionHours,
    signInRateLimit: app.config.server.signInRateLimit,
    renderSignIn: options.web.signInPage,
  });
  server.route('/', options.web.routes(deps));

  server.onError(errorHandler(app.logger));
  const webNotFound = options.web.notFound(deps);
  server.notFound((c) => (c.req.path.startsWith('/api/') ? notFoundHandler(c) : webNotFound(c)));
  return server;
}
