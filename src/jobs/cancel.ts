import type { Role } from '../auth/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import type { JobInfo, JobQueue } from './job-queue.js';

/** Who may cancel a job, through the API or the Jobs page (which shows its Cancel buttons to them only). */
export const CANCEL_JOB_ROLE: Role = 'admin';

/** Cancels a waiting or active job; 404 for an unknown id, 409 `job_finished` for one that has already ended. */
export async function cancelQueuedJob(jobs: JobQueue, id: string): Promise<JobInfo> {
  const job = await jobs.get(id);
  if (!job) throw new NotFoundError('job', id);
  if (!(await jobs.cancel(id))) {
    throw new CatdogError('job_finished', `job ${id} is already ${job.state}; only waiting or active jobs can be cancelled`, 409, { id, state: job.state });
  }
  return (await jobs.get(id)) ?? job;
}
