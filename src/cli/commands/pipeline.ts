import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type CatdogConfig } from '../../config/index.js';
import { CatdogError } from '../../errors.js';
import { jobHandlers } from '../../worker/handlers.js';
import { createAppJobQueue } from '../../jobs/index.js';
import { catdogPipeline } from '../../pipeline/catdog-pipeline.js';
import { parseParameterValue } from '../../pipeline/component-args.js';
import type { ParameterValue, PipelineDefinition } from '../../pipeline/dag.js';
import { compileToKfp, kubernetesSecretSpec, toYaml } from '../../pipeline/kfp/compile.js';
import { STEP_SECRET_KEYS, stepEnvironment } from '../../pipeline/kfp/step-environment.js';
import { getPipelineRun, listPipelineRuns, runPipeline, type PipelineEvent, type PipelineRunRecord, type RunTarget, type StepRecord } from '../../pipeline/runner.js';
import { submitToKubeflow, submitToVertex } from '../../pipeline/submit.js';
import { printJson, printTable, withApp, type GlobalOptions } from '../app-runner.js';
import { formatDuration } from '../progress.js';

const collectParam = (value: string, previous: string[] = []): string[] => {
  if (!/^[A-Za-z_]\w*=/.test(value)) throw new InvalidArgumentError(`expected NAME=VALUE, got "${value}"`);
  return [...previous, value];
};

/** `--param k=v` texts typed by the pipeline's declared parameters, with `--source` as the source parameter. */
function runParameters(def: PipelineDefinition, params: string[], source: string | undefined): Record<string, ParameterValue> {
  const values: Record<string, ParameterValue> = {};
  const problems: string[] = [];
  for (const text of params) {
    const equals = text.indexOf('=');
    const [name, raw] = [text.slice(0, equals), text.slice(equals + 1)];
    const parameter = def.parameters[name];
    const value = parameter && parseParameterValue(raw, parameter.type);
    if (parameter === undefined) problems.push(`'${name}' is not a parameter`);
    else if (value === undefined) problems.push(`'${name}' must be ${parameter.type === 'integer' ? 'an' : 'a'} ${parameter.type}, got '${raw}'`);
    else values[name] = value;
  }
  if (problems.length > 0) {
    throw new CatdogError('invalid_run_parameters', `--param: ${problems.join('; ')} (parameters: ${Object.keys(def.parameters).join(', ')})`);
  }
  if (source !== undefined) values.source = source;
  return values;
}

const stepStatusLine = (step: StepRecord): string => {
  const took = step.durationMs === undefined ? '' : ` in ${formatDuration(step.durationMs)}`;
  if (step.status === 'succeeded') {
    const outputs = Object.keys(step.outputs ?? {}).length > 0 ? ` ${JSON.stringify(step.outputs)}` : '';
    return `[${step.task}] succeeded${took}${outputs}`;
  }
  return `[${step.task}] ${step.status === 'skipped' ? '' : `${step.status}${took}: `}${step.error ?? ''}`;
};

function printEvent(event: PipelineEvent): void {
  const out = process.stderr;
  switch (event.type) {
    case 'started':
      out.write(`pipeline run ${event.run.id} (${event.run.target}): ${event.run.steps.map((step) => step.task).join(' → ')}\n`);
      break;
    case 'step-started':
      out.write(`[${event.step.task}] started${event.step.jobId === undefined ? '' : ` as job ${event.step.jobId}`}\n`);
      break;
    case 'step-log':
      out.write(`[${event.task}] ${event.line}\n`);
      break;
    case 'step-finished':
      out.write(`${stepStatusLine(event.step)}\n`);
      break;
    case 'finished':
      break;
  }
}

function printRun(run: PipelineRunRecord): void {
  const took = run.durationMs === undefined ? '' : ` in ${formatDuration(run.durationMs)}`;
  process.stdout.write(`pipeline run ${run.id} (${run.pipeline}, ${run.target}) ${run.status}${took}, started ${run.createdAt}\n`);
  if (run.error) process.stdout.write(`error: ${run.error}\n`);
  process.stdout.write(`parameters: ${Object.entries(run.parameters).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(' ')}\n`);
  for (const step of run.steps) {
    process.stdout.write(`\n${stepStatusLine(step)}\n`);
    if (step.jobId) process.stdout.write(`  job: ${step.jobId}\n`);
    for (const [name, file] of Object.entries(step.artifacts ?? {})) process.stdout.write(`  artifact ${name}: ${file}\n`);
    for (const line of step.logs) process.stdout.write(`  | ${line}\n`);
  }
}

/**
 * The pipeline as KFP compiles it: parameter defaults, image and the steps' settings from the configuration; with a
 * Secret name, the platform spec that reads the secrets from it. Says on stderr which changed settings stay out.
 */
function compileFor(config: CatdogConfig, secretName?: string) {
  const def = catdogPipeline(config);
  const environment = stepEnvironment(config, secretName);
  const spec = compileToKfp(def, { image: config.pipeline.image, env: environment.env });
  const platformSpec = environment.secrets.length > 0 ? kubernetesSecretSpec(spec, environment.secrets) : undefined;
  for (const { key, reason } of environment.notPassed) process.stderr.write(`not passed to the steps: ${key} (${reason})\n`);
  return { def, spec, platformSpec };
}

const secretOption = () =>
  new Option(
    '--secret <name>',
    `Kubernetes Secret the steps read secrets from: key ${STEP_SECRET_KEYS.databaseUrl.secretKey} (required) as ${STEP_SECRET_KEYS.databaseUrl.envVar}, ` +
      `${STEP_SECRET_KEYS.s3.map((key) => `${key.secretKey} as ${key.envVar}`).join(', ')} (optional)`,
  );

const run = promisify(execFile);

/** GOOGLE_OAUTH_ACCESS_TOKEN, else what gcloud prints for the logged-in account. */
async function googleAccessToken(): Promise<string> {
  const fromEnv = process.env.GOOGLE_OAUTH_ACCESS_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  try {
    const { stdout } = await run('gcloud', ['auth', 'print-access-token'], { timeout: 30_000 });
    const token = stdout.trim();
    if (token !== '') return token;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'gcloud is not installed' : `gcloud auth print-access-token failed: ${((error as { stderr?: string }).stderr ?? (error as Error).message).trim()}`;
    throw new CatdogError('vertex_credentials_missing', `no Google access token: set GOOGLE_OAUTH_ACCESS_TOKEN, or run gcloud auth login (${reason})`, 401);
  }
  throw new CatdogError('vertex_credentials_missing', 'no Google access token: set GOOGLE_OAUTH_ACCESS_TOKEN, or run gcloud auth login', 401);
}

export function registerPipelineCommands(program: Command, globals: () => GlobalOptions): void {
  const pipeline = program.command('pipeline').description('the training pipeline: ingest → build-dataset → train → evaluate → promote');
  const paramOption = () => new Option('--param <name=value>', 'a pipeline parameter, repeatable (epochs=5, architecture=cnn …)').argParser(collectParam).default([]);

  pipeline
    .command('run')
    .description('runs the pipeline on this machine: in this process (local) or step by step on the job queue (queue)')
    .addOption(new Option('--target <where>', 'local or queue').choices(['local', 'queue']).default('local'))
    .addOption(paramOption())
    .option('--source <dir>', 'labelled folder of new photos to ingest first (default: train on the images already imported)')
    .option('--json', 'print the run record as JSON on stdout')
    .action(async (options: { target: RunTarget; param: string[]; source?: string; json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const def = catdogPipeline(app.config);
        // Steps may run in a worker with another working directory.
        const parameters = runParameters(def, options.param, options.source === undefined ? undefined : path.resolve(options.source));
        // Inline jobs are kept in the app's database like the server's, so a step this process leaves unfinished
        // (Ctrl-C, a crash) is taken over by the next catdog process instead of being lost.
        const queue = options.target === 'queue' ? createAppJobQueue(app) : undefined;
        try {
          if (queue?.kind === 'inline') {
            process.stderr.write('jobs.kind is inline: the steps run as jobs in this process (set jobs.kind to bullmq to use `catdog worker`s)\n');
            await queue.startWorker(jobHandlers(app, queue));
          } else if (queue !== undefined) {
            process.stderr.write(`steps go to the ${app.config.jobs.queueName} queue; a \`catdog worker\` sharing this database, storage and pipeline.root runs them\n`);
          }
          const record = await runPipeline(app, def, parameters, { target: options.target, queue, onEvent: printEvent });
          if (options.json) printJson(record);
          else if (record.status === 'succeeded') process.stdout.write(`pipeline run ${record.id} succeeded in ${formatDuration(record.durationMs ?? 0)}\n`);
          if (record.status !== 'succeeded') {
            throw new CatdogError(`pipeline_${record.status}`, `pipeline run ${record.id} ${record.status}: ${record.error} (details: catdog pipeline show ${record.id})`);
          }
        } finally {
          await queue?.close();
        }
      });
    });

  pipeline
    .command('runs')
    .description('pipeline runs of this machine, newest first')
    .option('--json', 'print the run records as JSON')
    .action(async (options: { json?: boolean }) => {
      const { config } = loadConfig({ file: globals().config });
      const runs = await listPipelineRuns(config);
      if (options.json) {
        printJson(runs);
        return;
      }
      printTable(
        runs.map((record) => ({
          id: record.id,
          status: record.status,
          target: record.target,
          started: record.createdAt,
          took: record.durationMs === undefined ? '' : formatDuration(record.durationMs),
          steps: record.steps.map((step) => `${step.task}:${step.status}`).join(' '),
        })),
      );
    });

  pipeline
    .command('show')
    .description('one pipeline run: parameters, and per step its status, outputs, artifacts and log')
    .argument('<run>', 'run id (see catdog pipeline runs)')
    .option('--json', 'print the run record as JSON')
    .action(async (runId: string, options: { json?: boolean }) => {
      const { config } = loadConfig({ file: globals().config });
      const record = await getPipelineRun(config, runId);
      if (options.json) printJson(record);
      else printRun(record);
    });

  pipeline
    .command('compile')
    .description('writes the pipeline as a Kubeflow Pipelines v2 spec (runs on Kubeflow and Vertex AI); image: pipeline.image')
    .addOption(new Option('--target <format>', 'kfp').choices(['kfp']).default('kfp'))
    .option('-o, --output <file>', 'where to write the YAML (default: stdout)')
    .addOption(secretOption())
    .action(async (options: { output?: string; secret?: string }) => {
      const { config } = loadConfig({ file: globals().config });
      const { spec, platformSpec } = compileFor(config, options.secret);
      const yaml = toYaml(spec, platformSpec);
      if (options.output === undefined) {
        process.stdout.write(yaml);
        return;
      }
      await fs.mkdir(path.dirname(path.resolve(options.output)), { recursive: true });
      await fs.writeFile(options.output, yaml);
      process.stderr.write(`wrote ${options.output} (image ${config.pipeline.image})\n`);
    });

  pipeline
    .command('submit')
    .description('compiles the pipeline and starts a run on Vertex AI Pipelines or Kubeflow Pipelines')
    .addOption(new Option('--target <where>', 'vertex or kubeflow').choices(['vertex', 'kubeflow']).makeOptionMandatory())
    .addOption(paramOption())
    .option('--source <uri>', 'photos to ingest, as the steps see them (gs://bucket/path on Vertex AI, a mounted folder on Kubeflow)')
    .option('--pipeline-root <uri>', 'where the run writes its artifacts: gs://… (required on Vertex AI); Kubeflow: its default root')
    .option('--display-name <name>', 'name of the run in the console', `catdog-training-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .addOption(secretOption())
    .action(async (options: { target: 'vertex' | 'kubeflow'; param: string[]; source?: string; pipelineRoot?: string; displayName: string; secret?: string }) => {
      if (options.secret !== undefined && options.target !== 'kubeflow') {
        throw new CatdogError('secret_unsupported', '--secret names a Kubernetes Secret, which only Kubeflow reads; on Vertex AI, build the settings into the image (see docs/running.md)');
      }
      const { config } = loadConfig({ file: globals().config });
      const { def, spec, platformSpec } = compileFor(config, options.secret);
      const parameters = runParameters(def, options.param, options.source);
      if (options.target === 'kubeflow') {
        if (config.pipeline.kubeflowUrl === '') {
          throw new CatdogError('kubeflow_url_missing', 'set pipeline.kubeflowUrl (or CATDOG_PIPELINE__KUBEFLOWURL) to the Kubeflow Pipelines API URL, e.g. http://localhost:8080');
        }
        const runId = await submitToKubeflow({ baseUrl: config.pipeline.kubeflowUrl, spec, platformSpec, displayName: options.displayName, parameters, pipelineRoot: options.pipelineRoot });
        process.stdout.write(`submitted to Kubeflow Pipelines: run ${runId} (${options.displayName})\n`);
        return;
      }
      if (options.pipelineRoot === undefined) {
        throw new CatdogError('invalid_vertex_settings', 'Vertex AI needs --pipeline-root gs://bucket/prefix, the Cloud Storage folder where the run writes its artifacts');
      }
      if (config.pipeline.project === '') {
        throw new CatdogError('invalid_vertex_settings', 'set pipeline.project (or CATDOG_PIPELINE__PROJECT) to the Google Cloud project that runs the pipeline');
      }
      const name = await submitToVertex({
        project: config.pipeline.project,
        region: config.pipeline.region,
        spec,
        displayName: options.displayName,
        pipelineRoot: options.pipelineRoot,
        parameters,
        accessToken: await googleAccessToken(),
      });
      process.stdout.write(`submitted to Vertex AI: ${name} (${options.displayName})\n`);
    });
}
