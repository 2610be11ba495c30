import type { AppContext } from '../app/context.js';
import { CatdogError } from '../errors.js';
import type { JobContext, JobHandler } from '../jobs/job-queue.js';
import { catdogPipeline } from './catdog-pipeline.js';
import { executeStep, type StepResult } from './components.js';
import type { ParameterValue } from './dag.js';

/** The job a `--target queue` pipeline run enqueues for each step; `catdog worker` runs it. */
export const PIPELINE_STEP_JOB = 'pipeline-step';

export interface PipelineStepJob {
  runId: string;
  /** Task name in the catdog pipeline; its component is what runs. */
  task: string;
  /** Resolved inputs: parameter values, and the file of each artifact input. */
  inputs: Record<string, ParameterValue>;
  /** Where the step writes its outputs; the runner reads them there, so it must be shared with the worker. */
  outputDir: string;
}

export interface PipelineStepJobResult extends StepResult {
  logs: string[];
}

function assertStepJob(data: unknown): asserts data is PipelineStepJob {
  const job = data as Partial<PipelineStepJob> | null;
  if (typeof job?.runId !== 'string' || typeof job.task !== 'string' || typeof job.outputDir !== 'string' || typeof job.inputs !== 'object' || job.inputs === null) {
    throw new CatdogError('invalid_job_data', `a ${PIPELINE_STEP_JOB} job needs { runId, task, inputs, outputDir }, got ${JSON.stringify(data)?.slice(0, 200)}`);
  }
}

/**
 * Handlers a worker registers so pipeline steps can run on it. Log lines go out as progress messages while the step
 * runs; cancelling the job aborts the step through the job's signal (training stops between batches).
 */
export function pipelineJobHandlers(app: AppContext): Record<string, JobHandler> {
  const tasks = new Map(catdogPipeline(app.config).tasks.map((task) => [task.name, task]));
  return {
    [PIPELINE_STEP_JOB]: async (data: unknown, ctx: JobContext): Promise<PipelineStepJobResult> => {
      assertStepJob(data);
      const task = tasks.get(data.task);
      if (task === undefined) {
        throw new CatdogError('unknown_task', `pipeline run ${data.runId}: no task '${data.task}' in the catdog pipeline (tasks: ${[...tasks.keys()].join(', ')})`);
      }
      const logs: string[] = [];
      const log = (line: string) => {
        logs.push(line);
        // Progress messages only stream the log; a lost one must not fail the step, whose result carries them all.
        ctx.reportProgress(0, line).catch(() => {});
      };
      const result = await executeStep(app, task.component, data.inputs, data.outputDir, log, ctx.signal);
      return { ...result, logs };
    },
  };
}
