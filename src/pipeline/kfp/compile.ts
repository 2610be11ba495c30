import { stringify } from 'yaml';
import { CatdogError } from '../../errors.js';
import { inputFlag, outputFlag } from '../component-args.js';
import {
  type ArtifactType,
  type ComponentDefinition,
  type ComponentInput,
  type ComponentOutput,
  isParameterType,
  type ParameterType,
  type PipelineDefinition,
  type TaskDefinition,
  upstreamTasks,
  validatePipeline,
} from '../dag.js';
import type { ComponentSpec, ContainerEnvVar, ExecutorSpec, KfpParameterType, PipelineSpec, PipelineTaskSpec, PlatformSpec, SecretAsEnv } from './pipeline-spec.js';

export interface KfpCompileOptions {
  /** The catdog container image every step runs. */
  image: string;
  /** Default artifact root (gs://…, s3://…, minio://…); the KFP deployment's default when absent. */
  pipelineRoot?: string;
  /** Environment of every step's container, written into the spec as plain values: never a secret. */
  env?: ContainerEnvVar[];
}

const KFP_PARAMETER_TYPE: Record<ParameterType, KfpParameterType> = {
  string: 'STRING',
  integer: 'NUMBER_INTEGER',
  number: 'NUMBER_DOUBLE',
  boolean: 'BOOLEAN',
};

/** KFP's built-in artifact types (kfp.dsl.Dataset, Model, Metrics, Artifact). */
const kfpArtifactType = (type: ArtifactType = 'Artifact') => ({ schemaTitle: `system.${type}`, schemaVersion: '0.0.1' });

/** The KFP SDK's naming, so compiled catdog pipelines read like any other in the KFP UI. */
const componentKey = (component: ComponentDefinition) => `comp-${component.name}`;
const executorLabel = (component: ComponentDefinition) => `exec-${component.name}`;

const inputPlaceholder = (name: string, input: ComponentInput) =>
  isParameterType(input.type) ? `{{$.inputs.parameters['${name}']}}` : `{{$.inputs.artifacts['${name}'].path}}`;
const outputPlaceholder = (name: string, output: ComponentOutput) =>
  isParameterType(output.type) ? `{{$.outputs.parameters['${name}'].output_file}}` : `{{$.outputs.artifacts['${name}'].path}}`;

/** `undefined` instead of an empty map: the KFP SDK leaves empty sections out. */
const nonEmpty = <T>(record: Record<string, T>) => (Object.keys(record).length > 0 ? record : undefined);

function parametersAndArtifacts<P, A>(parameters: Record<string, P>, artifacts: Record<string, A>) {
  const section = { parameters: nonEmpty(parameters), artifacts: nonEmpty(artifacts) };
  return section.parameters === undefined && section.artifacts === undefined ? undefined : section;
}

/** A component's inputs or outputs as KFP's separate parameter and artifact definitions. */
function definitions<T extends ComponentInput | ComponentOutput, P, A>(
  slots: Record<string, T>,
  parameter: (slot: T & { type: ParameterType }) => P,
  artifact: (slot: T) => A,
) {
  const parameters: Record<string, P> = {};
  const artifacts: Record<string, A> = {};
  for (const [name, slot] of Object.entries(slots)) {
    if (isParameterType(slot.type)) parameters[name] = parameter(slot as T & { type: ParameterType });
    else artifacts[name] = artifact(slot);
  }
  return parametersAndArtifacts(parameters, artifacts);
}

function componentSpec(component: ComponentDefinition): ComponentSpec {
  return {
    executorLabel: executorLabel(component),
    inputDefinitions: definitions(
      component.inputs,
      (input) => ({
        parameterType: KFP_PARAMETER_TYPE[input.type],
        defaultValue: input.default,
        isOptional: input.optional || input.default !== undefined || undefined,
        description: input.description,
      }),
      (input) => ({ artifactType: kfpArtifactType(input.artifactType), isOptional: input.optional || undefined, description: input.description }),
    ),
    outputDefinitions: definitions(
      component.outputs,
      (output) => ({ parameterType: KFP_PARAMETER_TYPE[output.type], description: output.description }),
      (output) => ({ artifactType: kfpArtifactType(output.artifactType), description: output.description }),
    ),
  };
}

function executorSpec(component: ComponentDefinition, image: string, env: ContainerEnvVar[]): ExecutorSpec {
  const inputArgs = Object.entries(component.inputs).flatMap(([name, input]) => [inputFlag(name), inputPlaceholder(name, input)]);
  const outputArgs = Object.entries(component.outputs).flatMap(([name, output]) => [outputFlag(name), outputPlaceholder(name, output)]);
  return {
    container: {
      image,
      command: ['catdog', 'component', 'run', component.name],
      args: [...inputArgs, ...outputArgs],
      env: env.length > 0 ? env : undefined,
    },
  };
}

function taskSpec(task: TaskDefinition): PipelineTaskSpec {
  const parameters: NonNullable<PipelineTaskSpec['inputs']>['parameters'] = {};
  const artifacts: NonNullable<PipelineTaskSpec['inputs']>['artifacts'] = {};
  for (const [name, binding] of Object.entries(task.inputs)) {
    if ('parameter' in binding) parameters[name] = { componentInputParameter: binding.parameter };
    else if ('constant' in binding) parameters[name] = { runtimeValue: { constant: binding.constant } };
    else if (isParameterType(task.component.inputs[name]?.type ?? 'artifact')) {
      parameters[name] = { taskOutputParameter: { producerTask: binding.fromTask, outputParameterKey: binding.output } };
    } else {
      artifacts[name] = { taskOutputArtifact: { producerTask: binding.fromTask, outputArtifactKey: binding.output } };
    }
  }
  const dependentTasks = upstreamTasks(task).sort();
  return {
    taskInfo: { name: task.name },
    componentRef: { name: componentKey(task.component) },
    cachingOptions: { enableCache: task.component.cacheable === true },
    dependentTasks: dependentTasks.length > 0 ? dependentTasks : undefined,
    inputs: parametersAndArtifacts(parameters, artifacts),
  };
}

/** Every container argument is a placeholder the orchestrator must resolve, so an unbound input needs a default. */
function unresolvableInputs(def: PipelineDefinition): string[] {
  return def.tasks.flatMap((task) =>
    Object.entries(task.component.inputs)
      .filter(([name, input]) => task.inputs[name] === undefined && input.default === undefined)
      .map(([name]) => `task '${task.name}': optional input '${name}' is unbound and has no default, which Kubeflow cannot resolve`),
  );
}

/** Drops `undefined` members so the spec equals its own YAML/JSON round trip. */
function withoutUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The pipeline as a KFP v2 PipelineSpec, runnable on Kubeflow Pipelines and Vertex AI Pipelines. */
export function compileToKfp(def: PipelineDefinition, options: KfpCompileOptions): PipelineSpec {
  validatePipeline(def);
  const unresolvable = unresolvableInputs(def);
  if (unresolvable.length > 0) {
    throw new CatdogError('unsupported_pipeline', `pipeline '${def.name}' cannot be compiled for Kubeflow:\n- ${unresolvable.join('\n- ')}`, 400, {
      problems: unresolvable,
    });
  }
  const components = new Map(def.tasks.map(({ component }) => [component.name, component]));
  return withoutUndefined({
    pipelineInfo: { name: def.name, description: def.description },
    schemaVersion: '2.1.0',
    defaultPipelineRoot: options.pipelineRoot,
    components: Object.fromEntries([...components.values()].map((component) => [componentKey(component), componentSpec(component)])),
    deploymentSpec: {
      executors: Object.fromEntries([...components.values()].map((component) => [executorLabel(component), executorSpec(component, options.image, options.env ?? [])])),
    },
    root: {
      inputDefinitions: parametersAndArtifacts(
        Object.fromEntries(
          Object.entries(def.parameters).map(([name, parameter]) => [
            name,
            { parameterType: KFP_PARAMETER_TYPE[parameter.type], defaultValue: parameter.default, description: parameter.description },
          ]),
        ),
        {},
      ),
      dag: { tasks: Object.fromEntries(def.tasks.map((task) => [task.name, taskSpec(task)])) },
    },
  });
}

/** A Kubernetes Secret's keys as environment variables of a step's container. */
export interface SecretEnv {
  secretName: string;
  keyToEnv: { secretKey: string; envVar: string }[];
  /** The pod starts even when the Secret or one of these keys is missing. */
  optional?: boolean;
}

/** Kubernetes object names (a Secret's included): a DNS subdomain. */
const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The platform spec (second YAML document, as kfp-kubernetes `use_secret_as_env` writes it) that gives every executor
 * of the spec these Secret-backed variables: the spec names the Secret and its keys, never their values.
 */
export function kubernetesSecretSpec(spec: PipelineSpec, secrets: SecretEnv[]): PlatformSpec {
  for (const { secretName } of secrets) {
    if (secretName.length > 253 || !KUBERNETES_NAME.test(secretName)) {
      throw new CatdogError('invalid_secret_name', `'${secretName}' is not a Kubernetes Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`, 400);
    }
  }
  const secretAsEnv: SecretAsEnv[] = secrets.map(({ secretName, keyToEnv, optional }) => ({
    // Both forms of the name: older KFP backends read only secretName, newer ones prefer secretNameParameter.
    secretName,
    secretNameParameter: { runtimeValue: { constant: secretName } },
    keyToEnv,
    optional,
  }));
  const executors = Object.fromEntries(Object.keys(spec.deploymentSpec.executors).map((label) => [label, { secretAsEnv }]));
  return withoutUndefined({ platforms: { kubernetes: { deploymentSpec: { executors } } } });
}

const yamlOptions = { sortMapEntries: true, aliasDuplicateObjects: false, lineWidth: 0 } as const;

/** YAML as the KFP SDK writes it: a comment header, keys sorted at every level, no anchors, no folded lines; the platform spec as a second document. */
export function toYaml(spec: PipelineSpec, platformSpec?: PlatformSpec): string {
  const platform = platformSpec === undefined ? '' : `---\n${stringify(platformSpec, yamlOptions)}`;
  return `# PIPELINE DEFINITION\n# Name: ${spec.pipelineInfo.name}\n${stringify(spec, yamlOptions)}${platform}`;
}
