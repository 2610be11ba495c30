import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { CatdogError } from '../../errors.js';

/**
 * Kubeflow Pipelines v2 IR (`PipelineSpec`, schemaVersion 2.1.0) as the KFP SDK compiles it to YAML/JSON, i.e. the
 * protobuf JSON mapping (camelCase keys, int64 as strings) of kubeflow/pipelines `api/v2alpha1/pipeline_spec.proto`.
 * Objects are strict so a misspelt key fails here instead of being dropped silently by the KFP backend; proto
 * `oneof`s are enforced. Platform-specific executor configs are free-form Structs in the proto; the Kubernetes one
 * (kfp-kubernetes `KubernetesExecutorConfig`) is checked for its known fields, and strictly for `secretAsEnv`, which
 * catdog emits.
 */

const struct = z.record(z.string(), z.json());
/** proto3 JSON writes int64 as a string ("1") but readers also accept numbers. */
const int64 = z.union([z.int(), z.string().regex(/^-?\d+$/, 'must be an integer')]);
/** google.protobuf.Duration in JSON: seconds with an `s` suffix. */
const duration = z.string().regex(/^-?\d+(\.\d+)?s$/, 'must be a duration such as "30s"');

function exactlyOne<T extends z.ZodRawShape>(what: string, shape: T, kinds: readonly (keyof T & string)[]) {
  return z.strictObject(shape).superRefine((value, ctx) => {
    const present = kinds.filter((kind) => (value as Record<string, unknown>)[kind] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} needs exactly one of ${kinds.join(', ')}; found ${present.length === 0 ? 'none' : present.join(', ')}`,
      });
    }
  });
}

const parameterTypeSchema = z.enum([
  'PARAMETER_TYPE_ENUM_UNSPECIFIED',
  'NUMBER_DOUBLE',
  'NUMBER_INTEGER',
  'STRING',
  'BOOLEAN',
  'LIST',
  'STRUCT',
  'TASK_FINAL_STATUS',
]);
export type KfpParameterType = z.infer<typeof parameterTypeSchema>;

/** Deprecated by `parameterType`, still accepted by the backend. */
const primitiveTypeSchema = z.enum(['PRIMITIVE_TYPE_UNSPECIFIED', 'INT', 'DOUBLE', 'STRING']);

const artifactTypeSchema = exactlyOne(
  'artifactType',
  {
    schemaTitle: z.string().min(1).optional(),
    schemaUri: z.string().min(1).optional(),
    instanceSchema: z.string().min(1).optional(),
    schemaVersion: z.string().optional(),
  },
  ['schemaTitle', 'schemaUri', 'instanceSchema'],
);

const legacyValueSchema = exactlyOne(
  'value',
  { intValue: int64.optional(), doubleValue: z.number().optional(), stringValue: z.string().optional() },
  ['intValue', 'doubleValue', 'stringValue'],
);

const valueOrRuntimeParameterSchema = exactlyOne(
  'value or runtime parameter',
  { constantValue: legacyValueSchema.optional(), runtimeParameter: z.string().optional(), constant: z.json().optional() },
  ['constantValue', 'runtimeParameter', 'constant'],
);

const inputDefinitionsSchema = z.strictObject({
  artifacts: z
    .record(
      z.string(),
      z.strictObject({
        artifactType: artifactTypeSchema,
        isArtifactList: z.boolean().optional(),
        isOptional: z.boolean().optional(),
        description: z.string().optional(),
      }),
    )
    .optional(),
  parameters: z
    .record(
      z.string(),
      z.strictObject({
        type: primitiveTypeSchema.optional(),
        parameterType: parameterTypeSchema.optional(),
        defaultValue: z.json().optional(),
        isOptional: z.boolean().optional(),
        description: z.string().optional(),
      }),
    )
    .optional(),
});

const outputDefinitionsSchema = z.strictObject({
  artifacts: z
    .record(
      z.string(),
      z.strictObject({
        artifactType: artifactTypeSchema,
        properties: z.record(z.string(), valueOrRuntimeParameterSchema).optional(),
        customProperties: z.record(z.string(), valueOrRuntimeParameterSchema).optional(),
        metadata: struct.optional(),
        isArtifactList: z.boolean().optional(),
        description: z.string().optional(),
      }),
    )
    .optional(),
  parameters: z
    .record(
      z.string(),
      z.strictObject({
        type: primitiveTypeSchema.optional(),
        parameterType: parameterTypeSchema.optional(),
        description: z.string().optional(),
      }),
    )
    .optional(),
});

const taskInputParameterSchema = exactlyOne(
  'task input parameter',
  {
    taskOutputParameter: z.strictObject({ producerTask: z.string().min(1), outputParameterKey: z.string().min(1) }).optional(),
    runtimeValue: valueOrRuntimeParameterSchema.optional(),
    componentInputParameter: z.string().min(1).optional(),
    taskFinalStatus: z.strictObject({ producerTask: z.string().min(1) }).optional(),
    parameterExpressionSelector: z.string().optional(),
  },
  ['taskOutputParameter', 'runtimeValue', 'componentInputParameter', 'taskFinalStatus'],
);

const taskInputArtifactSchema = exactlyOne(
  'task input artifact',
  {
    taskOutputArtifact: z.strictObject({ producerTask: z.string().min(1), outputArtifactKey: z.string().min(1) }).optional(),
    componentInputArtifact: z.string().min(1).optional(),
  },
  ['taskOutputArtifact', 'componentInputArtifact'],
);

const taskSchema = z
  .strictObject({
    taskInfo: z.strictObject({ name: z.string() }),
    inputs: z
      .strictObject({
        parameters: z.record(z.string(), taskInputParameterSchema).optional(),
        artifacts: z.record(z.string(), taskInputArtifactSchema).optional(),
      })
      .optional(),
    dependentTasks: z.array(z.string().min(1)).optional(),
    cachingOptions: z.strictObject({ enableCache: z.boolean().optional(), cacheKey: z.string().optional() }).optional(),
    componentRef: z.strictObject({ name: z.string().min(1) }),
    triggerPolicy: z
      .strictObject({
        condition: z.string().optional(),
        strategy: z.enum(['TRIGGER_STRATEGY_UNSPECIFIED', 'ALL_UPSTREAM_TASKS_SUCCEEDED', 'ALL_UPSTREAM_TASKS_COMPLETED']).optional(),
      })
      .optional(),
    artifactIterator: z
      .strictObject({ items: z.strictObject({ inputArtifact: z.string().min(1) }), itemInput: z.string().min(1) })
      .optional(),
    parameterIterator: z
      .strictObject({
        items: exactlyOne('iterator items', { raw: z.string().optional(), inputParameter: z.string().min(1).optional() }, [
          'raw',
          'inputParameter',
        ]),
        itemInput: z.string().min(1),
      })
      .optional(),
    retryPolicy: z
      .strictObject({
        maxRetryCount: z.int().optional(),
        backoffDuration: duration.optional(),
        backoffFactor: z.number().optional(),
        backoffMaxDuration: duration.optional(),
      })
      .optional(),
    iteratorPolicy: z.strictObject({ parallelismLimit: z.int().min(0).optional() }).optional(),
  })
  .refine((task) => task.artifactIterator === undefined || task.parameterIterator === undefined, {
    message: 'a task has at most one of artifactIterator, parameterIterator',
  });

const parameterSelectorSchema = z.strictObject({ producerSubtask: z.string().min(1), outputParameterKey: z.string().min(1) });
const artifactSelectorSchema = z.strictObject({ producerSubtask: z.string().min(1), outputArtifactKey: z.string().min(1) });

const dagSchema = z.strictObject({
  tasks: z.record(z.string(), taskSchema),
  outputs: z
    .strictObject({
      artifacts: z.record(z.string(), z.strictObject({ artifactSelectors: z.array(artifactSelectorSchema) })).optional(),
      parameters: z
        .record(
          z.string(),
          exactlyOne(
            'DAG output parameter',
            {
              valueFromParameter: parameterSelectorSchema.optional(),
              valueFromOneof: z.strictObject({ parameterSelectors: z.array(parameterSelectorSchema) }).optional(),
            },
            ['valueFromParameter', 'valueFromOneof'],
          ),
        )
        .optional(),
    })
    .optional(),
});

/** kfp-kubernetes `SecretAsEnv`: Secret keys become environment variables of the step's container. */
const secretAsEnvSchema = z
  .strictObject({
    /** Deprecated by secretNameParameter, but the only one older KFP backends read. */
    secretName: z.string().optional(),
    secretNameParameter: taskInputParameterSchema.optional(),
    keyToEnv: z.array(z.strictObject({ secretKey: z.string().min(1), envVar: z.string().min(1) })).optional(),
    /** Lets the pod start when the Secret or one of its keys is missing. */
    optional: z.boolean().optional(),
  })
  .refine((secret) => (secret.secretName ?? '') !== '' || secret.secretNameParameter !== undefined, {
    message: 'secretAsEnv needs secretName or secretNameParameter (the KFP driver refuses it otherwise)',
  });

/** kfp-kubernetes `KubernetesExecutorConfig` (kubernetes_platform/proto/kubernetes_executor_config.proto). */
const kubernetesExecutorConfigSchema = z.strictObject({
  secretAsEnv: z.array(secretAsEnvSchema).optional(),
  ...Object.fromEntries(
    [
      'secretAsVolume',
      'pvcMount',
      'nodeSelector',
      'podMetadata',
      'imagePullSecret',
      'imagePullPolicy',
      'configMapAsVolume',
      'configMapAsEnv',
      'activeDeadlineSeconds',
      'fieldPathAsEnv',
      'tolerations',
      'genericEphemeralVolume',
      'nodeAffinity',
      'podAffinity',
      'enabledSharedMemory',
      'emptyDirMounts',
      'securityContext',
      'initContainers',
      'podResourceClaims',
    ].map((field) => [field, z.json().optional()]),
  ),
});

function singlePlatformSpec<T extends z.ZodType>(executorConfig: T) {
  return z.strictObject({
    deploymentSpec: z.strictObject({ executors: z.record(z.string(), executorConfig).optional() }).optional(),
    platform: z.string().optional(),
    config: struct.optional(),
    pipelineConfig: z.strictObject({ pipelineTtl: z.int().optional() }).optional(),
  });
}
const singlePlatformSpecSchema = singlePlatformSpec(struct);

const componentShape = {
  inputDefinitions: inputDefinitionsSchema.optional(),
  outputDefinitions: outputDefinitionsSchema.optional(),
  dag: dagSchema.optional(),
  executorLabel: z.string().min(1).optional(),
  singlePlatformSpecs: z.array(singlePlatformSpecSchema).optional(),
};
const componentSchema = exactlyOne('component', componentShape, ['dag', 'executorLabel']);
const rootComponentSchema = z.strictObject({ ...componentShape, dag: dagSchema });

const execSchema = z.strictObject({ command: z.array(z.string()).optional(), args: z.array(z.string()).optional() });

const containerSchema = z.strictObject({
  image: z.string().min(1),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  lifecycle: z.strictObject({ preCacheCheck: execSchema.optional() }).optional(),
  resources: z
    .strictObject({
      cpuLimit: z.number().optional(),
      memoryLimit: z.number().optional(),
      cpuRequest: z.number().optional(),
      memoryRequest: z.number().optional(),
      resourceCpuLimit: z.string().optional(),
      resourceMemoryLimit: z.string().optional(),
      resourceCpuRequest: z.string().optional(),
      resourceMemoryRequest: z.string().optional(),
      accelerator: z
        .strictObject({
          type: z.string().optional(),
          count: int64.optional(),
          resourceType: z.string().optional(),
          resourceCount: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
  env: z.array(z.strictObject({ name: z.string().min(1), value: z.string().optional() })).optional(),
});

const executorSchema = exactlyOne(
  'executor',
  {
    container: containerSchema.optional(),
    importer: z
      .strictObject({
        artifactUri: valueOrRuntimeParameterSchema,
        typeSchema: artifactTypeSchema,
        properties: z.record(z.string(), valueOrRuntimeParameterSchema).optional(),
        customProperties: z.record(z.string(), valueOrRuntimeParameterSchema).optional(),
        metadata: struct.optional(),
        reimport: z.boolean().optional(),
      })
      .optional(),
    resolver: z
      .strictObject({
        outputArtifactQueries: z.record(z.string(), z.strictObject({ filter: z.string().optional(), limit: z.int().optional() })),
      })
      .optional(),
    customJob: z.strictObject({ customJob: struct }).optional(),
  },
  ['container', 'importer', 'resolver', 'customJob'],
);

export const pipelineSpecSchema = z.strictObject({
  pipelineInfo: z.strictObject({
    name: z.string().min(1),
    displayName: z.string().optional(),
    description: z.string().optional(),
  }),
  deploymentSpec: z.strictObject({ executors: z.record(z.string(), executorSchema) }),
  sdkVersion: z.string().optional(),
  schemaVersion: z.literal('2.1.0'),
  components: z.record(z.string(), componentSchema).optional(),
  root: rootComponentSchema,
  defaultPipelineRoot: z.string().optional(),
});

/** The optional second YAML document of a compiled pipeline; other platforms than Kubernetes stay free-form. */
export const platformSpecSchema = z.strictObject({
  platforms: z.object({ kubernetes: singlePlatformSpec(kubernetesExecutorConfigSchema).optional() }).catchall(singlePlatformSpecSchema),
});

export type PipelineSpec = z.infer<typeof pipelineSpecSchema>;
export type PlatformSpec = z.infer<typeof platformSpecSchema>;
export type ComponentSpec = z.infer<typeof componentSchema>;
export type PipelineTaskSpec = z.infer<typeof taskSchema>;
export type ExecutorSpec = z.infer<typeof executorSchema>;
export type ContainerEnvVar = NonNullable<z.infer<typeof containerSchema>['env']>[number];
export type SecretAsEnv = z.infer<typeof secretAsEnvSchema>;

export interface PipelineDocuments {
  pipelineSpec: PipelineSpec;
  platformSpec?: PlatformSpec;
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new CatdogError('invalid_pipeline_spec', `${what} is not a valid Kubeflow Pipelines v2 spec:\n${z.prettifyError(result.error)}`, 400, {
    issues: result.error.issues,
  });
}

/** A PipelineSpec as a JSON object (e.g. the `pipeline_spec` of a KFP run). */
export function parsePipelineSpec(value: unknown): PipelineSpec {
  return parseWith(pipelineSpecSchema, value, 'the pipeline spec');
}

/** A compiled pipeline file: the PipelineSpec, optionally followed by a `---` and a PlatformSpec. */
export function parsePipelineYaml(text: string, source = 'the pipeline file'): PipelineDocuments {
  const documents = parseAllDocuments(text);
  const broken = documents.flatMap((document) => document.errors);
  if (broken.length > 0) {
    throw new CatdogError('invalid_pipeline_spec', `${source} is not valid YAML: ${broken.map((error) => error.message).join('; ')}`);
  }
  const [first, second, ...extra] = documents.map((document) => document.toJS() as unknown);
  if (extra.length > 0 || first === undefined) {
    throw new CatdogError('invalid_pipeline_spec', `${source} must hold a PipelineSpec and at most one PlatformSpec document, found ${documents.length} documents`);
  }
  const pipelineSpec = parseWith(pipelineSpecSchema, first, source);
  if (second === undefined || second === null) return { pipelineSpec };
  return { pipelineSpec, platformSpec: parseWith(platformSpecSchema, second, `the platform spec of ${source}`) };
}

const PLACEHOLDER = /\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']*)'\][^}]*\}\}/g;

/** The declared input/output names a component can refer to, by placeholder family. */
function declaredNames(component: ComponentSpec): Record<string, Set<string>> {
  const keys = (record: Record<string, unknown> | undefined) => new Set(Object.keys(record ?? {}));
  return {
    'inputs.parameters': keys(component.inputDefinitions?.parameters),
    'inputs.artifacts': keys(component.inputDefinitions?.artifacts),
    'outputs.parameters': keys(component.outputDefinitions?.parameters),
    'outputs.artifacts': keys(component.outputDefinitions?.artifacts),
  };
}

function dagProblems(spec: PipelineSpec, componentName: string, component: ComponentSpec): string[] {
  const problems: string[] = [];
  const tasks = component.dag?.tasks ?? {};
  const inputParameters = component.inputDefinitions?.parameters ?? {};
  const inputArtifacts = component.inputDefinitions?.artifacts ?? {};
  const components = spec.components ?? {};
  const outputsOf = (taskName: string) => {
    const ref = tasks[taskName]?.componentRef.name;
    return ref === undefined ? undefined : components[ref]?.outputDefinitions;
  };

  for (const [taskName, task] of Object.entries(tasks)) {
    const where = `${componentName}: task '${taskName}'`;
    const producerProblem = (producer: string, what: string): string | undefined =>
      Object.hasOwn(tasks, producer) ? undefined : `${where}: ${what} names unknown task '${producer}'`;
    const callee = components[task.componentRef.name];
    if (callee === undefined) problems.push(`${where}: componentRef '${task.componentRef.name}' is not a component`);
    for (const dependency of task.dependentTasks ?? []) {
      const problem = producerProblem(dependency, 'dependentTasks');
      if (problem !== undefined) problems.push(problem);
    }
    for (const [inputName, input] of Object.entries(task.inputs?.parameters ?? {})) {
      if (callee !== undefined && !Object.hasOwn(callee.inputDefinitions?.parameters ?? {}, inputName)) {
        problems.push(`${where}: parameter '${inputName}' is not an input of '${task.componentRef.name}'`);
      }
      if (input.componentInputParameter !== undefined && !Object.hasOwn(inputParameters, input.componentInputParameter)) {
        problems.push(`${where}: parameter '${inputName}' reads '${input.componentInputParameter}', which is not an input parameter of ${componentName}`);
      }
      const upstream = input.taskOutputParameter ?? input.taskFinalStatus;
      const problem = upstream && producerProblem(upstream.producerTask, `parameter '${inputName}'`);
      if (problem !== undefined) problems.push(problem);
      else if (input.taskOutputParameter !== undefined) {
        const { producerTask, outputParameterKey } = input.taskOutputParameter;
        const outputs = outputsOf(producerTask);
        if (outputs !== undefined && !Object.hasOwn(outputs.parameters ?? {}, outputParameterKey)) {
          problems.push(`${where}: parameter '${inputName}' reads output parameter '${outputParameterKey}' that task '${producerTask}' does not declare`);
        }
      }
    }
    for (const [inputName, input] of Object.entries(task.inputs?.artifacts ?? {})) {
      if (callee !== undefined && !Object.hasOwn(callee.inputDefinitions?.artifacts ?? {}, inputName)) {
        problems.push(`${where}: artifact '${inputName}' is not an input of '${task.componentRef.name}'`);
      }
      if (input.componentInputArtifact !== undefined && !Object.hasOwn(inputArtifacts, input.componentInputArtifact)) {
        problems.push(`${where}: artifact '${inputName}' reads '${input.componentInputArtifact}', which is not an input artifact of ${componentName}`);
      }
      if (input.taskOutputArtifact !== undefined) {
        const { producerTask, outputArtifactKey } = input.taskOutputArtifact;
        const problem = producerProblem(producerTask, `artifact '${inputName}'`);
        const outputs = outputsOf(producerTask);
        if (problem !== undefined) problems.push(problem);
        else if (outputs !== undefined && !Object.hasOwn(outputs.artifacts ?? {}, outputArtifactKey)) {
          problems.push(`${where}: artifact '${inputName}' reads output artifact '${outputArtifactKey}' that task '${producerTask}' does not declare`);
        }
      }
    }
  }

  const outputs = component.dag?.outputs;
  const selectors = [
    ...Object.values(outputs?.artifacts ?? {}).flatMap((output) => output.artifactSelectors),
    ...Object.values(outputs?.parameters ?? {}).flatMap((output) =>
      output.valueFromParameter ? [output.valueFromParameter] : (output.valueFromOneof?.parameterSelectors ?? []),
    ),
  ];
  for (const { producerSubtask } of selectors) {
    if (!Object.hasOwn(tasks, producerSubtask)) problems.push(`${componentName}: DAG output reads unknown task '${producerSubtask}'`);
  }
  return problems;
}

function executorProblems(spec: PipelineSpec, componentName: string, component: ComponentSpec): string[] {
  const label = component.executorLabel;
  if (label === undefined) return [];
  const executor = spec.deploymentSpec.executors[label];
  if (executor === undefined) return [`${componentName}: executorLabel '${label}' is not in deploymentSpec.executors`];
  const container = executor.container;
  if (container === undefined) return [];
  const declared = declaredNames(component);
  const problems: string[] = [];
  for (const text of [...(container.command ?? []), ...(container.args ?? [])]) {
    for (const [placeholder, direction, kind, name] of text.matchAll(PLACEHOLDER)) {
      if (!declared[`${direction}.${kind}`]?.has(name ?? '')) {
        problems.push(`${componentName}: executor '${label}' uses ${placeholder} but ${componentName} declares no ${direction === 'inputs' ? 'input' : 'output'} ${kind === 'parameters' ? 'parameter' : 'artifact'} '${name}'`);
      }
    }
  }
  return problems;
}

/**
 * Cross-references the schema cannot express: component refs, executor labels, task names inside a DAG,
 * component inputs read by tasks, and placeholders in container commands. Empty when consistent.
 */
export function checkPipelineSpecReferences(spec: PipelineSpec, platformSpec?: PlatformSpec): string[] {
  const problems = dagProblems(spec, 'root', spec.root);
  for (const [name, component] of Object.entries(spec.components ?? {})) {
    problems.push(...dagProblems(spec, name, component), ...executorProblems(spec, name, component));
  }
  for (const [platform, { deploymentSpec }] of Object.entries(platformSpec?.platforms ?? {})) {
    for (const label of Object.keys(deploymentSpec?.executors ?? {})) {
      if (!Object.hasOwn(spec.deploymentSpec.executors, label)) {
        problems.push(`platform '${platform}': executor '${label}' is not in deploymentSpec.executors`);
      }
    }
  }
  return problems;
}
