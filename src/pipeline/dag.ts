import { CatdogError } from '../errors.js';

/**
 * The training pipeline as a typed DAG, independent of where it runs: the local runner executes it in-process,
 * `kfp/compile.ts` turns it into a Kubeflow Pipelines v2 spec. Names become KFP keys and CLI flags, hence the
 * restricted alphabet.
 */

/** `integer` is kept apart from `number` because KFP types it NUMBER_INTEGER and epochs must not become 20.5. */
export type ParameterType = 'string' | 'integer' | 'number' | 'boolean';
export type ValueType = ParameterType | 'artifact';
export type ArtifactType = 'Dataset' | 'Model' | 'Metrics' | 'Artifact';
export type ParameterValue = string | number | boolean;

export interface ComponentInput {
  type: ValueType;
  /** Only for `artifact` inputs; `Artifact` accepts any kind of artifact. */
  artifactType?: ArtifactType;
  description?: string;
  /** Used when the task leaves the input unbound. */
  default?: ParameterValue;
  optional?: boolean;
}

export interface ComponentOutput {
  type: ValueType;
  artifactType?: ArtifactType;
  description?: string;
}

export interface ComponentDefinition {
  name: string;
  description: string;
  /**
   * The outputs depend only on the inputs, so a runner may reuse earlier outputs for the same inputs. Left false
   * for steps that read or change state outside their inputs (the image library, the serving model).
   */
  cacheable?: boolean;
  inputs: Record<string, ComponentInput>;
  outputs: Record<string, ComponentOutput>;
}

export type InputBinding =
  | { parameter: string }
  | { constant: ParameterValue }
  | { fromTask: string; output: string };

export interface TaskDefinition {
  name: string;
  component: ComponentDefinition;
  inputs: Record<string, InputBinding>;
}

export interface PipelineParameter {
  type: ParameterType;
  default: ParameterValue;
  description?: string;
}

export interface PipelineDefinition {
  name: string;
  description: string;
  parameters: Record<string, PipelineParameter>;
  tasks: TaskDefinition[];
}

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isParameterType(type: ValueType): type is ParameterType {
  return type !== 'artifact';
}

export function valueMatchesType(value: ParameterValue, type: ParameterType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
  }
}

/** An integer flows into a number input (widening); everything else must match exactly. */
function parameterTypeAccepts(input: ParameterType, given: ParameterType): boolean {
  return input === given || (input === 'number' && given === 'integer');
}

function describeType(slot: { type: ValueType; artifactType?: ArtifactType }): string {
  return slot.type === 'artifact' ? `artifact ${slot.artifactType ?? 'Artifact'}` : slot.type;
}

function slotAccepts(input: ComponentInput, given: ComponentOutput): boolean {
  if (input.type === 'artifact' || given.type === 'artifact') {
    if (input.type !== given.type) return false;
    const wanted = input.artifactType ?? 'Artifact';
    return wanted === 'Artifact' || wanted === (given.artifactType ?? 'Artifact');
  }
  return parameterTypeAccepts(input.type, given.type);
}

function componentProblems(component: ComponentDefinition): string[] {
  const problems: string[] = [];
  const where = `component '${component.name}'`;
  if (!NAME_PATTERN.test(component.name)) problems.push(`${where}: name must be lowercase letters, digits and '-'`);
  const slots = [
    ...Object.entries(component.inputs).map(([name, slot]) => ({ kind: 'input', name, slot })),
    ...Object.entries(component.outputs).map(([name, slot]) => ({ kind: 'output', name, slot })),
  ];
  for (const { kind, name, slot } of slots) {
    if (!KEY_PATTERN.test(name)) problems.push(`${where}: ${kind} '${name}' must be an identifier (letters, digits, '_')`);
    if (slot.artifactType !== undefined && slot.type !== 'artifact') {
      problems.push(`${where}: ${kind} '${name}' has an artifactType but is a ${slot.type}`);
    }
  }
  for (const [name, input] of Object.entries(component.inputs)) {
    if (input.default === undefined) continue;
    if (!isParameterType(input.type)) problems.push(`${where}: artifact input '${name}' cannot have a default`);
    else if (!valueMatchesType(input.default, input.type)) {
      problems.push(`${where}: default of input '${name}' is ${JSON.stringify(input.default)}, not of type ${input.type}`);
    }
  }
  return problems;
}

/** Names of the tasks whose outputs `task` consumes, in binding order, without repeats. */
export function upstreamTasks(task: TaskDefinition): string[] {
  const names = Object.values(task.inputs).flatMap((binding) => ('fromTask' in binding ? [binding.fromTask] : []));
  return [...new Set(names)];
}

/** Every problem of the definition, in a stable order; empty when the pipeline can be run or compiled. */
export function pipelineProblems(def: PipelineDefinition): string[] {
  const problems: string[] = [];
  if (!NAME_PATTERN.test(def.name)) problems.push(`pipeline name '${def.name}' must be lowercase letters, digits and '-'`);

  for (const [name, parameter] of Object.entries(def.parameters)) {
    if (!KEY_PATTERN.test(name)) problems.push(`parameter '${name}' must be an identifier (letters, digits, '_')`);
    if (!valueMatchesType(parameter.default, parameter.type)) {
      problems.push(`parameter '${name}': default ${JSON.stringify(parameter.default)} is not of type ${parameter.type}`);
    }
  }

  const tasksByName = new Map<string, TaskDefinition>();
  for (const task of def.tasks) {
    if (tasksByName.has(task.name)) problems.push(`task name '${task.name}' is used more than once`);
    else tasksByName.set(task.name, task);
    if (!NAME_PATTERN.test(task.name)) problems.push(`task '${task.name}': name must be lowercase letters, digits and '-'`);
  }

  const componentsByName = new Map<string, ComponentDefinition>();
  for (const { component } of def.tasks) {
    const known = componentsByName.get(component.name);
    if (known === undefined) {
      componentsByName.set(component.name, component);
      problems.push(...componentProblems(component));
    } else if (known !== component) {
      problems.push(`two different components are named '${component.name}'`);
    }
  }

  for (const task of def.tasks) {
    const where = `task '${task.name}'`;
    const { component } = task;
    for (const [inputName, binding] of Object.entries(task.inputs)) {
      const input = component.inputs[inputName];
      if (input === undefined) {
        problems.push(`${where}: component '${component.name}' has no input '${inputName}'`);
        continue;
      }
      const bound = `${where}: input '${inputName}' (${describeType(input)})`;
      if ('parameter' in binding) {
        const parameter = def.parameters[binding.parameter];
        if (parameter === undefined) problems.push(`${bound} is bound to unknown pipeline parameter '${binding.parameter}'`);
        else if (!slotAccepts(input, parameter)) {
          problems.push(`${bound} is bound to pipeline parameter '${binding.parameter}' of type ${parameter.type}`);
        }
      } else if ('constant' in binding) {
        if (!isParameterType(input.type)) problems.push(`${bound} cannot be a constant`);
        else if (!valueMatchesType(binding.constant, input.type)) {
          problems.push(`${bound} is bound to constant ${JSON.stringify(binding.constant)}`);
        }
      } else {
        const producer = tasksByName.get(binding.fromTask);
        const output = producer?.component.outputs[binding.output];
        if (producer === undefined) problems.push(`${bound} reads from unknown task '${binding.fromTask}'`);
        else if (output === undefined) {
          problems.push(`${bound} reads unknown output '${binding.output}' of task '${binding.fromTask}'`);
        } else if (!slotAccepts(input, output)) {
          problems.push(`${bound} reads output '${binding.output}' of task '${binding.fromTask}' (${describeType(output)})`);
        }
      }
    }
    for (const [inputName, input] of Object.entries(component.inputs)) {
      if (task.inputs[inputName] === undefined && !input.optional && input.default === undefined) {
        problems.push(`${where}: required input '${inputName}' of component '${component.name}' is not bound`);
      }
    }
  }

  const cycle = findCycle(def.tasks, tasksByName);
  if (cycle !== undefined) problems.push(`tasks form a cycle: ${cycle.join(' → ')}`);
  return problems;
}

/** One cycle through known tasks (first task repeated at the end), or undefined. */
function findCycle(tasks: TaskDefinition[], tasksByName: Map<string, TaskDefinition>): string[] | undefined {
  const finished = new Set<string>();
  const path: string[] = [];
  const visit = (task: TaskDefinition): string[] | undefined => {
    const open = path.indexOf(task.name);
    if (open >= 0) return [...path.slice(open), task.name];
    if (finished.has(task.name)) return undefined;
    path.push(task.name);
    for (const upstream of upstreamTasks(task)) {
      const producer = tasksByName.get(upstream);
      const cycle = producer === undefined ? undefined : visit(producer);
      if (cycle !== undefined) return cycle;
    }
    path.pop();
    finished.add(task.name);
    return undefined;
  };
  for (const task of tasks) {
    const cycle = visit(task);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

export function validatePipeline(def: PipelineDefinition): void {
  const problems = pipelineProblems(def);
  if (problems.length > 0) {
    throw new CatdogError(
      'invalid_pipeline',
      `pipeline '${def.name}' is invalid:\n- ${problems.join('\n- ')}`,
      400,
      { pipeline: def.name, problems },
    );
  }
}

/**
 * Tasks in an order where every producer precedes its consumers; among tasks that are ready at the same time
 * the declaration order is kept, so the order is deterministic. Validates the pipeline first.
 */
export function topologicalOrder(def: PipelineDefinition): TaskDefinition[] {
  validatePipeline(def);
  const remaining = [...def.tasks];
  const done = new Set<string>();
  const order: TaskDefinition[] = [];
  while (remaining.length > 0) {
    const readyIndex = remaining.findIndex((task) => upstreamTasks(task).every((name) => done.has(name)));
    // validatePipeline rejected cycles and dangling references, so some task is always ready.
    const [ready] = remaining.splice(readyIndex, 1) as [TaskDefinition];
    order.push(ready);
    done.add(ready.name);
  }
  return order;
}
