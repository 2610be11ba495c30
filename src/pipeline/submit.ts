import { CatdogError } from '../errors.js';
import type { ParameterValue } from './dag.js';
import type { KfpParameterType, PipelineSpec, PlatformSpec } from './kfp/pipeline-spec.js';

/**
 * Starts a compiled pipeline on Kubeflow Pipelines (REST API v2beta1) or Vertex AI Pipelines (REST API v1).
 * Vertex goes through REST rather than @google-cloud/aiplatform because that client library is not a dependency
 * of catdog; the body below is the PipelineJob its PipelineServiceClient.createPipelineJob sends.
 */

export type RunParameters = Record<string, ParameterValue>;

const EXCERPT_LENGTH = 500;

function parameterFits(value: ParameterValue, type: KfpParameterType | undefined): boolean {
  switch (type) {
    case 'STRING':
      return typeof value === 'string';
    case 'NUMBER_INTEGER':
      return Number.isSafeInteger(value);
    case 'NUMBER_DOUBLE':
      return typeof value === 'number' && Number.isFinite(value);
    case 'BOOLEAN':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

/** Refuses a run the service would refuse, before anything is sent, with the names it accepts. */
export function checkRunParameters(spec: PipelineSpec, parameters: RunParameters): void {
  const declared = spec.root.inputDefinitions?.parameters ?? {};
  const problems: string[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    const definition = declared[name];
    if (definition === undefined) problems.push(`'${name}' is not a parameter of the pipeline`);
    else if (!parameterFits(value, definition.parameterType)) {
      problems.push(`'${name}' must be ${definition.parameterType}, got ${JSON.stringify(value)}`);
    }
  }
  for (const [name, definition] of Object.entries(declared)) {
    if (parameters[name] === undefined && definition.defaultValue === undefined && !definition.isOptional) {
      problems.push(`'${name}' has no default and needs a value`);
    }
  }
  if (problems.length > 0) {
    const known = Object.keys(declared).join(', ') || 'none';
    throw new CatdogError('invalid_run_parameters', `run parameters of ${spec.pipelineInfo.name}: ${problems.join('; ')} (parameters: ${known})`, 400, {
      problems,
    });
  }
}

/** The readable part of an error answer: KFP's grpc-gateway puts it in `message`, Google APIs in `error.message`. */
function errorExcerpt(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown; error?: { message?: unknown } };
    const message = parsed.error?.message ?? parsed.message;
    if (typeof message === 'string' && message !== '') return message.slice(0, EXCERPT_LENGTH);
  } catch {
    // Not JSON (a proxy's HTML page, say): the raw text is the best excerpt.
  }
  return body.slice(0, EXCERPT_LENGTH);
}

interface JsonPost {
  service: 'kubeflow' | 'vertex';
  serviceName: string;
  url: string;
  body: unknown;
  accessToken?: string;
  fetch?: typeof globalThis.fetch;
}

async function postJson({ service, serviceName, url, body, accessToken, fetch = globalThis.fetch }: JsonPost): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (accessToken !== undefined) headers.authorization = `Bearer ${accessToken}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  } catch (error) {
    const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new CatdogError(`${service}_unreachable`, `cannot reach ${serviceName} at ${url}: ${reason}`, 502, { url });
  }
  const text = await response.text();
  if (!response.ok) {
    const excerpt = errorExcerpt(text);
    throw new CatdogError(`${service}_rejected`, `${serviceName} refused the run (HTTP ${response.status}): ${excerpt}`, 502, {
      url,
      status: response.status,
      body: excerpt,
    });
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CatdogError(`${service}_bad_answer`, `${serviceName} answered HTTP ${response.status} without JSON: ${text.slice(0, EXCERPT_LENGTH)}`, 502, { url });
  }
}

function requireString(answer: Record<string, unknown>, key: string, service: JsonPost['service'], serviceName: string): string {
  const value = answer[key];
  if (typeof value === 'string' && value !== '') return value;
  throw new CatdogError(`${service}_bad_answer`, `${serviceName} accepted the run but its answer has no ${key}: ${JSON.stringify(answer).slice(0, EXCERPT_LENGTH)}`, 502);
}

export interface KubeflowRun {
  /** The KFP API server, with any path prefix of its ingress: `http://localhost:8080`, `https://host/pipeline`. */
  baseUrl: string;
  spec: PipelineSpec;
  /** Kubernetes settings (tolerations, secrets…) of the second YAML document, when the pipeline has one. */
  platformSpec?: PlatformSpec;
  displayName: string;
  parameters: RunParameters;
  /** Overrides the spec's defaultPipelineRoot. */
  pipelineRoot?: string;
  /** Multi-user deployments: an OIDC/service-account token. */
  accessToken?: string;
  fetch?: typeof globalThis.fetch;
}

/** Creates a Kubeflow Pipelines run from the spec itself (no pipeline upload) and returns its run id. */
export async function submitToKubeflow(run: KubeflowRun): Promise<string> {
  checkRunParameters(run.spec, run.parameters);
  const answer = await postJson({
    service: 'kubeflow',
    serviceName: 'Kubeflow Pipelines',
    url: `${run.baseUrl.replace(/\/+$/, '')}/apis/v2beta1/runs`,
    accessToken: run.accessToken,
    fetch: run.fetch,
    body: {
      display_name: run.displayName,
      // The KFP SDK client nests both documents this way when a platform spec is present.
      pipeline_spec: run.platformSpec === undefined ? run.spec : { pipeline_spec: run.spec, platform_spec: run.platformSpec },
      runtime_config: { parameters: run.parameters, pipeline_root: run.pipelineRoot },
    },
  });
  return requireString(answer, 'run_id', 'kubeflow', 'Kubeflow Pipelines');
}

export interface VertexRun {
  project: string;
  /** A Vertex AI region such as `us-central1`; it is part of the API host name. */
  region: string;
  spec: PipelineSpec;
  displayName: string;
  /** `gs://bucket/prefix` where Vertex writes the artifacts of the run. */
  pipelineRoot: string;
  parameters: RunParameters;
  /** An OAuth access token with aiplatform.pipelineJobs.create (`gcloud auth print-access-token`). */
  accessToken: string;
  fetch?: typeof globalThis.fetch;
  /** Replaces `https://{region}-aiplatform.googleapis.com`, e.g. for a private endpoint. */
  endpoint?: string;
}

const REGION_PATTERN = /^[a-z]+(-[a-z]+)*\d+$/;

/** Creates a Vertex AI PipelineJob and returns its resource name (`projects/…/locations/…/pipelineJobs/…`). */
export async function submitToVertex(run: VertexRun): Promise<string> {
  if (!REGION_PATTERN.test(run.region)) {
    throw new CatdogError('invalid_vertex_settings', `'${run.region}' is not a Vertex AI region such as us-central1 or europe-west4`);
  }
  if (run.project === '') throw new CatdogError('invalid_vertex_settings', 'a Google Cloud project is needed to submit to Vertex AI');
  if (!run.pipelineRoot.startsWith('gs://')) {
    throw new CatdogError('invalid_vertex_settings', `Vertex AI writes artifacts to Cloud Storage: the pipeline root must be a gs:// URI, got '${run.pipelineRoot}'`);
  }
  checkRunParameters(run.spec, run.parameters);
  const endpoint = (run.endpoint ?? `https://${run.region}-aiplatform.googleapis.com`).replace(/\/+$/, '');
  const answer = await postJson({
    service: 'vertex',
    serviceName: 'Vertex AI',
    url: `${endpoint}/v1/projects/${encodeURIComponent(run.project)}/locations/${run.region}/pipelineJobs`,
    accessToken: run.accessToken,
    fetch: run.fetch,
    body: {
      displayName: run.displayName,
      pipelineSpec: run.spec,
      runtimeConfig: { gcsOutputDirectory: run.pipelineRoot, parameterValues: run.parameters },
    },
  });
  return requireString(answer, 'name', 'vertex', 'Vertex AI');
}
