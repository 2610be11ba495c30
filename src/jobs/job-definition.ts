import { z } from 'zod';
import { CatdogError } from '../errors.js';
import type { EnqueueOptions, JobContext, JobHandler, JobInfo, JobQueue } from './job-queue.js';

/**
 * A kind of job: its name on the queue and the schema of its payload. Whoever enqueues and whoever runs it share the
 * definition, so the payload is typed on both sides and checked where it comes off the queue (another process, an
 * older version of catdog, a hand-edited row).
 */
export interface JobDefinition<Name extends string, Payload extends z.ZodType> {
  name: Name;
  payload: Payload;
}

export function defineJob<Name extends string, Payload extends z.ZodType>(name: Name, payload: Payload): JobDefinition<Name, Payload> {
  return { name, payload };
}

export type PayloadOf<Definition> = Definition extends JobDefinition<string, infer Payload> ? z.output<Payload> : never;

export function enqueueJob<Name extends string, Payload extends z.ZodType>(
  queue: JobQueue,
  definition: JobDefinition<Name, Payload>,
  data: z.input<Payload>,
  options?: EnqueueOptions,
): Promise<JobInfo<z.input<Payload>>> {
  return queue.enqueue(definition.name, data, options);
}

/** The handler of one job kind, given its payload parsed; a payload that does not fit fails the job at once. */
export function handlerFor<Name extends string, Payload extends z.ZodType>(
  definition: JobDefinition<Name, Payload>,
  run: (data: z.output<Payload>, ctx: JobContext) => Promise<unknown>,
): Record<Name, JobHandler> {
  const handler: JobHandler = async (data, ctx) => {
    const parsed = definition.payload.safeParse(data);
    if (!parsed.success) {
      throw new CatdogError('invalid_job_data', `job ${ctx.id} (${definition.name}) has a payload this version cannot run: ${z.prettifyError(parsed.error)}`);
    }
    return run(parsed.data, ctx);
  };
  return { [definition.name]: handler } as Record<Name, JobHandler>;
}
