import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppContext } from '../app/context.js';
import type { DecodeSlots } from '../images/index.js';
import type { JobQueue } from '../jobs/index.js';
import type { ModelServer } from '../serving/model-server.js';
import type { RetrainingTrigger } from '../training/retraining.js';
import type { AccessResolver } from './auth-middleware.js';
import { validationHook } from './errors.js';
import type { ServerMetrics } from './metrics.js';

/** What every route group needs: the app's adapters plus the long-lived server objects. */
export interface ServerDeps {
  app: AppContext;
  models: ModelServer;
  /** Background jobs (`jobs.kind`): listed and cancelled through /jobs. */
  jobs: JobQueue;
  /** Present when `retraining.enabled`: told about each validation. */
  retraining?: RetrainingTrigger;
  metrics: ServerMetrics;
  /** The server's decodes of uploads, shared in turn between clients (`images.decodeConcurrency`). */
  decodeSlots: DecodeSlots;
  /** The role each method and path needs (the table the middleware enforces), for pages to offer only what is allowed. */
  access: AccessResolver;
  /** Aborted when the server shuts down, so long-lived responses (event streams) end and let it close. */
  closing: AbortSignal;
}

/** A route group whose zod validation failures answer 400 `invalid_request` naming the field. */
export const routeGroup = (): OpenAPIHono => new OpenAPIHono({ defaultHook: validationHook });
