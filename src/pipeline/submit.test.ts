import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sharedPath, skipWithoutShared } from '../../test/support/shared.js';
import { CatdogError } from '../errors.js';
import { catdogPipeline } from './catdog-pipeline.js';
import { compileToKfp } from './kfp/compile.js';
import { parsePipelineSpec, parsePipelineYaml, platformSpecSchema } from './kfp/pipeline-spec.js';
import { submitToKubeflow, submitToVertex } from './submit.js';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A loopback stand-in for the service: records each request and answers with the status and JSON it is given. */
class FakeService {
  received: Received[] = [];
  answer: { status: number; body: string } = { status: 200, body: '{}' };
  private readonly server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      this.received.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: text === '' ? undefined : JSON.parse(text) });
      response.writeHead(this.answer.status, { 'content-type': 'application/json' }).end(this.answer.body);
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  answerWith(status: number, body: unknown): void {
    this.answer = { status, body: typeof body === 'string' ? body : JSON.stringify(body) };
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.server.close((error) => (error ? reject(error) : resolve())));
  }
}

async function rejection(promise: Promise<unknown>): Promise<CatdogError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (error instanceof CatdogError) return error;
  throw new Error(`expected a CatdogError, got ${String(error)}`);
}

/** A port nothing listens on: bound, then closed. */
async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const spec = compileToKfp(catdogPipeline(), { image: 'ghcr.io/catdog/catdog:1.0' });
const service = new FakeService();
beforeAll(() => service.start());
afterAll(() => service.stop());
beforeEach(() => {
  service.received = [];
});

describe('submitToKubeflow', () => {
  it('creates a run from the spec itself and returns its id', async () => {
    service.answerWith(200, {
      run_id: '3e5b1c0a-7f41-4d2b-9a8e-0c1f2d3e4f5a',
      experiment_id: 'b1a2c3d4-0000-4000-8000-000000000001',
      display_name: 'catdog nightly',
      storage_state: 'AVAILABLE',
      state: 'PENDING',
      created_at: '2026-01-05T03:00:00Z',
    });
    const runId = await submitToKubeflow({
      baseUrl: `${service.url}/pipeline/`,
      spec,
      displayName: 'catdog nightly',
      parameters: { epochs: 5, learningRate: 0.01, source: 's3://photos/new' },
      pipelineRoot: 'minio://mlpipeline/catdog',
    });
    expect(runId).toBe('3e5b1c0a-7f41-4d2b-9a8e-0c1f2d3e4f5a');
    const [request] = service.received;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/pipeline/apis/v2beta1/runs');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers.authorization).toBeUndefined();
    expect(Object.keys(request?.body).sort()).toEqual(['display_name', 'pipeline_spec', 'runtime_config']);
    expect(request?.body.display_name).toBe('catdog nightly');
    expect(parsePipelineSpec(request?.body.pipeline_spec)).toEqual(spec);
    expect(request?.body.runtime_config).toEqual({
      parameters: { epochs: 5, learningRate: 0.01, source: 's3://photos/new' },
      pipeline_root: 'minio://mlpipeline/catdog',
    });
  });

  it.skipIf(skipWithoutShared)('nests the platform spec next to the pipeline spec, with a bearer token', async () => {
    const { pipelineSpec, platformSpec } = parsePipelineYaml(fs.readFileSync(sharedPath('kfp-examples', 'nvidia_gpu_scheduling_check.yaml'), 'utf8'));
    service.answerWith(200, { run_id: 'gpu-run' });
    await submitToKubeflow({ baseUrl: service.url, spec: pipelineSpec, platformSpec, displayName: 'gpu', parameters: {}, accessToken: 'kf-token' });
    const [request] = service.received;
    expect(request?.headers.authorization).toBe('Bearer kf-token');
    expect(Object.keys(request?.body.pipeline_spec).sort()).toEqual(['pipeline_spec', 'platform_spec']);
    expect(parsePipelineSpec(request?.body.pipeline_spec.pipeline_spec)).toEqual(pipelineSpec);
    expect(platformSpecSchema.parse(request?.body.pipeline_spec.platform_spec)).toEqual(platformSpec);
  });

  it('turns a refusal into kubeflow_rejected with the status and the server message', async () => {
    service.answerWith(400, {
      error_message: 'Failed to create a run due to invalid pipeline spec',
      code: 3,
      message: 'Failed to create a run: InvalidInputError: unknown template format: pipeline spec is invalid',
      details: [{ '@type': 'type.googleapis.com/google.rpc.Status' }],
    });
    const error = await rejection(submitToKubeflow({ baseUrl: service.url, spec, displayName: 'x', parameters: {} }));
    expect(error.code).toBe('kubeflow_rejected');
    expect(error.details).toMatchObject({ status: 400, body: 'Failed to create a run: InvalidInputError: unknown template format: pipeline spec is invalid' });
    expect(error.message).toContain('HTTP 400');
  });

  it('keeps a non-JSON error page as the excerpt, shortened', async () => {
    service.answerWith(503, `<html>${'upstream connect error '.repeat(50)}</html>`);
    const error = await rejection(submitToKubeflow({ baseUrl: service.url, spec, displayName: 'x', parameters: {} }));
    expect(error.details).toMatchObject({ status: 503 });
    expect(String(error.details?.body)).toHaveLength(500);
  });

  it('refuses an answer without run id, unknown or mistyped parameters (sending nothing) and an unreachable server', async () => {
    service.answerWith(200, { display_name: 'x' });
    expect((await rejection(submitToKubeflow({ baseUrl: service.url, spec, displayName: 'x', parameters: {} }))).code).toBe('kubeflow_bad_answer');
    service.received = [];
    const parameters = { epoch: 5, learningRate: '0.1' };
    const invalid = await rejection(submitToKubeflow({ baseUrl: service.url, spec, displayName: 'x', parameters }));
    expect(invalid.code).toBe('invalid_run_parameters');
    expect(invalid.details?.problems).toEqual(["'epoch' is not a parameter of the pipeline", `'learningRate' must be NUMBER_DOUBLE, got "0.1"`]);
    expect(service.received).toEqual([]);
    const unreachable = await rejection(submitToKubeflow({ baseUrl: await closedPortUrl(), spec, displayName: 'x', parameters: {} }));
    expect(unreachable.code).toBe('kubeflow_unreachable');
    expect(unreachable.message).toContain('ECONNREFUSED');
  });
});

describe('submitToVertex', () => {
  const vertexRun = {
    project: 'catdog-prod',
    region: 'europe-west4',
    spec,
    displayName: 'catdog weekly',
    pipelineRoot: 'gs://catdog-prod-pipelines/runs',
    parameters: { architecture: 'cnn', epochs: 30 },
    accessToken: 'ya29.test-token',
  };

  it('creates a PipelineJob with a bearer token and returns its resource name', async () => {
    const name = 'projects/123456789012/locations/europe-west4/pipelineJobs/catdog-training-20260105030000';
    service.answerWith(200, { name, displayName: 'catdog weekly', state: 'PIPELINE_STATE_PENDING', createTime: '2026-01-05T03:00:00.123Z' });
    expect(await submitToVertex({ ...vertexRun, endpoint: service.url })).toBe(name);
    const [request] = service.received;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/v1/projects/catdog-prod/locations/europe-west4/pipelineJobs');
    expect(request?.headers.authorization).toBe('Bearer ya29.test-token');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(Object.keys(request?.body).sort()).toEqual(['displayName', 'pipelineSpec', 'runtimeConfig']);
    expect(parsePipelineSpec(request?.body.pipelineSpec)).toEqual(spec);
    expect(request?.body.runtimeConfig).toEqual({
      gcsOutputDirectory: 'gs://catdog-prod-pipelines/runs',
      parameterValues: { architecture: 'cnn', epochs: 30 },
    });
  });

  it('turns a Google API error into vertex_rejected with its message', async () => {
    const message = "Permission 'aiplatform.pipelineJobs.create' denied on resource '//aiplatform.googleapis.com/projects/catdog-prod/locations/europe-west4' (or it may not exist).";
    service.answerWith(403, { error: { code: 403, message, status: 'PERMISSION_DENIED' } });
    const error = await rejection(submitToVertex({ ...vertexRun, endpoint: service.url }));
    expect(error.code).toBe('vertex_rejected');
    expect(error.details).toMatchObject({ status: 403, body: message });
  });

  it('checks region, project and pipeline root before sending anything', async () => {
    const messages = await Promise.all(
      [{ region: 'europe-west4.evil.example/x' }, { project: '' }, { pipelineRoot: 's3://bucket/runs' }].map(async (change) =>
        (await rejection(submitToVertex({ ...vertexRun, ...change, endpoint: service.url }))).message,
      ),
    );
    expect(messages).toEqual([
      "'europe-west4.evil.example/x' is not a Vertex AI region such as us-central1 or europe-west4",
      'a Google Cloud project is needed to submit to Vertex AI',
      "Vertex AI writes artifacts to Cloud Storage: the pipeline root must be a gs:// URI, got 's3://bucket/runs'",
    ]);
    expect(service.received).toEqual([]);
  });
});
