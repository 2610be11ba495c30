import { createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../errors.js';
import { CANCEL_JOB_ROLE, cancelQueuedJob } from '../../jobs/cancel.js';
import { settleCancelledTrainingJob } from '../../training/service.js';
import { JOB_STATES, type JobState } from '../../jobs/index.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { errorResponse, jsonContent } from '../schemas.js';

const JobStateSchema = z.enum(JOB_STATES as [JobState, ...JobState[]]);

const JobSchema = z
  .object({
    id: z.string(),
    name: z.string().openapi({ example: 'train-candidate' }),
    state: JobStateSchema,
    progress: z.number().min(0).max(1),
    progressMessage: z.string().optional(),
    attempts: z.number().int().openapi({ description: 'Attempts made so far, the running one included.' }),
    data: z.unknown(),
    result: z.unknown().optional(),
    error: z.string().optional(),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    workerId: z.string().optional().openapi({ description: 'The worker that ran (or runs) it.' }),
  })
  .openapi('Job');

const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'train-candidate-swp_0123456789ab-0' }) });

const listJobs = createRoute({
  method: 'get',
  path: '/jobs',
  'x-catdog-role': 'viewer',
  tags: ['jobs'],
  summary: 'Background jobs (imports, training, sweep candidates, retraining), newest first',
  request: {
    query: z.object({
      state: z
        .string()
        .optional()
        .openapi({ description: `Comma-separated states to keep: ${JOB_STATES.join(', ')}.`, example: 'waiting,active' })
        .transform((text) => (text ? text.split(',').map((state) => state.trim()) : undefined))
        .pipe(z.array(JobStateSchema).optional()),
      limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ description: 'Most jobs returned (1..1000).' }),
    }),
  },
  responses: {
    200: jsonContent(z.object({ items: z.array(JobSchema), counts: z.record(JobStateSchema, z.number().int()), queue: z.enum(['inline', 'bullmq']) }), 'Jobs and counts per state'),
    400: errorResponse('Unknown state'),
    503: errorResponse('The queue is unreachable'),
  },
});

const getJob = createRoute({
  method: 'get',
  path: '/jobs/{id}',
  'x-catdog-role': 'viewer',
  tags: ['jobs'],
  summary: 'One job: state, progress, attempts, result or error',
  request: { params: IdParam },
  responses: { 200: jsonContent(JobSchema, 'The job'), 404: errorResponse('No such job'), 503: errorResponse('The queue is unreachable') },
});

const cancelJobRoute = createRoute({
  method: 'post',
  path: '/jobs/{id}/cancel',
  'x-catdog-role': CANCEL_JOB_ROLE,
  tags: ['jobs'],
  summary: 'Cancel a job: a waiting one at once, a running one through its abort signal',
  request: { params: IdParam },
  responses: {
    202: jsonContent(z.object({ cancelled: z.literal(true), job: JobSchema }), 'Cancelled, or cancellation requested from its worker'),
    404: errorResponse('No such job'),
    409: errorResponse('The job has already finished'),
    503: errorResponse('The queue is unreachable'),
  },
});

export function jobRoutes({ app, jobs }: ServerDeps) {
  const routes = routeGroup();

  routes.openapi(listJobs, async (c) => {
    const { state: states, limit } = c.req.valid('query');
    const [items, counts] = await Promise.all([jobs.list({ ...(states && { states }), limit }), jobs.counts()]);
    return c.json({ items, counts, queue: jobs.kind }, 200);
  });

  routes.openapi(getJob, async (c) => {
    const { id } = c.req.valid('param');
    const job = await jobs.get(id);
    if (!job) throw new NotFoundError('job', id);
    return c.json(job, 200);
  });

  routes.openapi(cancelJobRoute, async (c) => {
    const job = await cancelQueuedJob(jobs, c.req.valid('param').id);
    await settleCancelledTrainingJob(app, job);
    return c.json({ cancelled: true as const, job }, 202);
  });

  return routes;
}
