import { createRoute, z } from '@hono/zod-openapi';
import { CatdogError } from '../../errors.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics.js';
import { jsonContent } from '../schemas.js';

const HealthSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    database: z.object({ ok: z.boolean(), dialect: z.string().optional(), latencyMs: z.number().optional(), error: z.string().optional() }),
    servingModelId: z.string().nullable(),
    version: z.string(),
  })
  .openapi('Health');

const health = createRoute({
  method: 'get',
  path: '/health',
  'x-catdog-role': 'public',
  tags: ['system'],
  summary: 'Liveness and readiness: the database answers, and which model serves',
  responses: { 200: jsonContent(HealthSchema, 'Healthy'), 503: jsonContent(HealthSchema, 'The database does not answer') },
});

export const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  'x-catdog-role': 'viewer',
  tags: ['system'],
  summary: 'Prometheus metrics (text exposition format)',
  responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: z.string() } } } },
});

export function systemRoutes({ app, models, metrics }: ServerDeps) {
  const routes = routeGroup();

  routes.openapi(health, async (c) => {
    const servingModelId = await models.classifier().then(
      (classifier) => classifier.modelId,
      () => null,
    );
    try {
      const check = await app.db.check();
      return c.json(
        { status: 'ok' as const, database: { ok: true, dialect: check.dialect, latencyMs: check.latencyMs }, servingModelId, version: app.codeVersion },
        200,
      );
    } catch (error) {
      const message = error instanceof CatdogError ? error.message : 'the database check failed';
      return c.json({ status: 'unavailable' as const, database: { ok: false, error: message }, servingModelId, version: app.codeVersion }, 503);
    }
  });

  routes.openapi(metricsRoute, async (c) => c.text(await metrics.registry.render(), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }));

  return routes;
}
