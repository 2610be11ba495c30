import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AppContext } from '../app/context.js';
import { pipelineRoot, type CatdogConfig } from '../config/index.js';
import { CatdogError, NotFoundError } from '../errors.js';
import type { JobInfo, JobQueue } from '../jobs/job-queue.js';
import { executeStep, type StepResult } from './components.js';
import { isParameterType, topologicalOrder, upstreamTasks, valueMatchesType, type ParameterValue, type PipelineDefinition, type TaskDefinition } from './dag.js';
import { PIPELINE_STEP_JOB, type PipelineStepJob, type PipelineStepJobResult } from './jobs.js';

/**
 * Runs a pipeline definition on this machine: in this process (`local`) or step by step as `pipeline-step` jobs on
 * the job queue (`queue`, served by `catdog worker`s). Each run is a JSON record, rewritten atomically after every
 * change, in `<pipeline.root>/runs/<runId>/run.json`; step outputs live beside it in `steps/<task>/`.
 */

export type RunTarget = 'local' | 'queue';
/** A run with a failed step is failed; otherwise one with a cancelled step (its queue job was cancelled) is cancelled. */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

export interface StepRecord {
  task: string;
  component: string;
  dependsOn: string[];
  status: StepStatus;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  inputs?: Record<string, ParameterValue>;
  outputs?: Record<string, ParameterValue>;
  /** Artifact outputs: the file each was written to. */
  artifacts?: Record<string, string>;
  logs: string[];
  error?: string;
  /** The queue job that ran the step (`queue` target). */
  jobId?: string;
}

export interface PipelineRunRecord {
  id: string;
  pipeline: string;
  target: RunTarget;
  status: RunStatus;
  parameters: Record<string, ParameterValue>;
  /** Where the runner process lives, to tell a run in progress from one whose runner died. */
  host: string;
  pid: number;
  createdAt: string;
  finishedAt?: string;
  durationMs?: number;
  error?: string;
  /** In execution order. */
  steps: StepRecord[];
}

export type PipelineEvent =
  | { type: 'started'; run: PipelineRunRecord }
  | { type: 'step-started'; runId: string; step: StepRecord }
  | { type: 'step-log'; runId: string; task: string; line: string }
  | { type: 'step-finished'; runId: string; step: StepRecord }
  | { type: 'finished'; run: PipelineRunRecord };

export interface RunPipelineOptions {
  target: RunTarget;
  /** Required for the `queue` target: where steps are enqueued. Someone must serve it (a worker, or startWorker). */
  queue?: JobQueue;
  onEvent?: (event: PipelineEvent) => void;
}

/** A step on the queue may train for hours; a bound still turns a lost worker into an error some day. */
const STEP_TIMEOUT_MS = 24 * 60 * 60 * 1000;

export const runsFolder = (config: CatdogConfig): string => path.join(pipelineRoot(config), 'runs');
const runFile = (config: CatdogConfig, runId: string): string => path.join(runsFolder(config), runId, 'run.json');

/** Sortable by creation time, and valid as a folder name and as part of a job id. */
function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:TZ]/g, '').replace('.', '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temporary, text);
  await fs.rename(temporary, file);
}

/** Every pipeline parameter with its value: the given ones checked against their types, the others at their defaults. */
export function resolveParameters(def: PipelineDefinition, given: Record<string, ParameterValue>): Record<string, ParameterValue> {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(given)) {
    const parameter = def.parameters[name];
    if (parameter === undefined) problems.push(`'${name}' is not a parameter`);
    else if (!valueMatchesType(value, parameter.type)) {
      problems.push(`'${name}' must be ${parameter.type === 'integer' ? 'an' : 'a'} ${parameter.type}, got ${JSON.stringify(value)}`);
    }
  }
  if (problems.length > 0) {
    throw new CatdogError('invalid_run_parameters', `pipeline ${def.name}: ${problems.join('; ')} (parameters: ${Object.keys(def.parameters).join(', ')})`, 400, { problems });
  }
  return Object.fromEntries(Object.entries(def.parameters).map(([name, parameter]) => [name, given[name] ?? parameter.default]));
}

function stepInputs(task: TaskDefinition, parameters: Record<string, ParameterValue>, steps: Map<string, StepRecord>): Record<string, ParameterValue> {
  const inputs: Record<string, ParameterValue> = {};
  for (const [name, binding] of Object.entries(task.inputs)) {
    if ('parameter' in binding) inputs[name] = parameters[binding.parameter]!;
    else if ('constant' in binding) inputs[name] = binding.constant;
    else {
      const producer = steps.get(binding.fromTask)!;
      const isArtifact = !isParameterType(task.component.inputs[name]!.type);
      // validatePipeline checked that the producer declares the output; an implementation that did not produce it is a bug.
      const value = isArtifact ? producer.artifacts?.[binding.output] : producer.outputs?.[binding.output];
      if (value === undefined) throw new Error(`step '${binding.fromTask}' succeeded without its output '${binding.output}'`);
      inputs[name] = value;
    }
  }
  return inputs;
}

/** The step's queue job was cancelled (`POST /api/v1/jobs/{id}/cancel`, the Jobs page): the step stopped, and so does the run. */
class StepCancelledError extends CatdogError {
  constructor(jobId: string) {
    super('step_cancelled', `job ${jobId} was cancelled`, 409, { jobId });
  }
}

/**
 * Runs the step as a job and waits for it; the worker's log lines stream in as progress messages, the full log comes
 * with the result. A job that ends without one (failed, cancelled) leaves the streamed lines in the step's log.
 */
async function runOnQueue(queue: JobQueue, jobId: string, job: PipelineStepJob, step: StepRecord, log: (line: string) => void): Promise<StepResult> {
  const streamed: string[] = [];
  const stopListening = queue.onProgress((info) => {
    if (info.id === jobId && info.state === 'active' && info.progressMessage !== undefined) {
      streamed.push(info.progressMessage);
      log(info.progressMessage);
    }
  });
  let finished: JobInfo;
  try {
    // One attempt: a step that failed once fails the same way again (a missing folder, a too small dataset).
    await queue.enqueue(PIPELINE_STEP_JOB, job, { jobId, attempts: 1 });
    finished = await queue.waitFor(jobId, STEP_TIMEOUT_MS);
  } finally {
    stopListening();
  }
  if (finished.state !== 'completed') {
    step.logs.push(...streamed);
    throw finished.state === 'cancelled' ? new StepCancelledError(jobId) : new Error(finished.error ?? `job ${jobId} ended ${finished.state}`);
  }
  const { logs, ...result } = finished.result as PipelineStepJobResult;
  step.logs.push(...logs);
  return result;
}

/** Executes the pipeline and returns its final record; a failed step fails the run (its dependants are skipped) but is not thrown. */
export async function runPipeline(
  app: AppContext,
  def: PipelineDefinition,
  parameters: Record<string, ParameterValue>,
  options: RunPipelineOptions,
): Promise<PipelineRunRecord> {
  const order = topologicalOrder(def);
  const resolved = resolveParameters(def, parameters);
  const queue = options.target === 'queue' ? options.queue : undefined;
  if (options.target === 'queue' && queue === undefined) throw new CatdogError('queue_missing', 'the queue target needs a job queue');
  const emit = (event: PipelineEvent) => options.onEvent?.(event);

  const run: PipelineRunRecord = {
    id: newRunId(),
    pipeline: def.name,
    target: options.target,
    status: 'running',
    parameters: resolved,
    host: os.hostname(),
    pid: process.pid,
    createdAt: new Date().toISOString(),
    steps: order.map((task) => ({ task: task.name, component: task.component.name, dependsOn: upstreamTasks(task), status: 'pending', logs: [] })),
  };
  const steps = new Map(run.steps.map((step) => [step.task, step]));
  const file = runFile(app.config, run.id);
  // Saves are chained so that concurrent steps never interleave two writes of the record.
  let saving = Promise.resolve();
  const save = () => (saving = saving.then(() => writeAtomically(file, `${JSON.stringify(run, null, 2)}\n`)));
  await save();
  emit({ type: 'started', run });

  const execute = async (task: TaskDefinition, step: StepRecord): Promise<void> => {
    const started = Date.now();
    step.status = 'running';
    step.startedAt = new Date(started).toISOString();
    const log = (line: string) => emit({ type: 'step-log', runId: run.id, task: task.name, line });
    try {
      step.inputs = stepInputs(task, resolved, steps);
      if (queue !== undefined) step.jobId = `${run.id}-${task.name}`;
      await save();
      emit({ type: 'step-started', runId: run.id, step });
      const outputDir = path.join(path.dirname(file), 'steps', task.name);
      const result = queue !== undefined && step.jobId !== undefined
        ? await runOnQueue(queue, step.jobId, { runId: run.id, task: task.name, inputs: step.inputs, outputDir }, step, log)
        : await executeStep(app, task.component, step.inputs, outputDir, (line) => {
            step.logs.push(line);
            log(line);
          });
      step.outputs = result.outputs;
      step.artifacts = result.artifacts;
      step.status = 'succeeded';
    } catch (error) {
      step.status = error instanceof StepCancelledError ? 'cancelled' : 'failed';
      step.error = (error as Error).message;
    }
    step.finishedAt = new Date().toISOString();
    step.durationMs = Date.now() - started;
    await save();
    emit({ type: 'step-finished', runId: run.id, step });
  };

  // Local steps share this process's CPU and TensorFlow, so they run one at a time; workers bring their own.
  const parallelism = options.target === 'local' ? 1 : Number.POSITIVE_INFINITY;
  const running = new Map<string, Promise<void>>();
  for (;;) {
    for (const task of order) {
      const step = steps.get(task.name)!;
      if (step.status !== 'pending') continue;
      const upstream = step.dependsOn.map((name) => steps.get(name)!);
      const blocker = upstream.find((other) => other.status === 'failed' || other.status === 'cancelled' || other.status === 'skipped');
      if (blocker !== undefined) {
        step.status = 'skipped';
        step.error = `skipped: step '${blocker.task}' ${blocker.status === 'failed' ? 'failed' : `was ${blocker.status}`}`;
        await save();
        emit({ type: 'step-finished', runId: run.id, step });
      } else if (upstream.every((other) => other.status === 'succeeded') && running.size < parallelism) {
        running.set(task.name, execute(task, step).finally(() => running.delete(task.name)));
      }
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }

  const stopped = run.steps.find((step) => step.status === 'failed') ?? run.steps.find((step) => step.status === 'cancelled');
  run.status = stopped === undefined ? 'succeeded' : stopped.status === 'failed' ? 'failed' : 'cancelled';
  if (stopped !== undefined) run.error = `step '${stopped.task}' ${stopped.status}: ${stopped.error}`;
  run.finishedAt = new Date().toISOString();
  run.durationMs = Date.parse(run.finishedAt) - Date.parse(run.createdAt);
  await save();
  emit({ type: 'finished', run });
  return run;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A run still marked running whose runner process on this host is gone was interrupted: it is reported failed. */
function withLiveness(run: PipelineRunRecord): PipelineRunRecord {
  if (run.status !== 'running' || run.host !== os.hostname() || processAlive(run.pid)) return run;
  return { ...run, status: 'failed', error: `interrupted: the runner (pid ${run.pid}) stopped before the run finished` };
}

export async function getPipelineRun(config: CatdogConfig, runId: string): Promise<PipelineRunRecord> {
  if (!/^[\w.-]+$/.test(runId)) throw new NotFoundError('pipeline run', runId);
  let text: string;
  try {
    text = await fs.readFile(runFile(config, runId), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('pipeline run', runId);
    throw error;
  }
  return withLiveness(JSON.parse(text) as PipelineRunRecord);
}

/** Newest first. */
export async function listPipelineRuns(config: CatdogConfig): Promise<PipelineRunRecord[]> {
  const entries = await fs.readdir(runsFolder(config), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const runs = await Promise.all(
    entries
      .filter((entry) => entry.isDirectory())
      // A folder without run.json is not a run (yet); anything else unreadable is an error worth seeing.
      .map((entry) => getPipelineRun(config, entry.name).catch((error: unknown) => {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      })),
  );
  return runs.filter((run) => run !== undefined).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}
