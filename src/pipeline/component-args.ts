import fs from 'node:fs/promises';
import path from 'node:path';
import { CatdogError } from '../errors.js';
import { type ComponentDefinition, isParameterType, type ParameterType, type ParameterValue, valueMatchesType } from './dag.js';

/**
 * The command line of `catdog component run <name> …`, the one code path of a pipeline step whether the local
 * runner or a Kubeflow/Vertex container starts it. The KFP compiler writes these flags with placeholders that
 * the orchestrator replaces by values (parameters) and local paths (artifacts, output files).
 */
export const inputFlag = (name: string): string => `--input-${name}`;
export const outputFlag = (name: string): string => `--output-${name}`;

export interface ComponentArgs {
  /** Parameters coerced to their declared type; artifact inputs are the local path of the artifact. */
  inputs: Record<string, ParameterValue>;
  /** Where each output goes: the file a parameter's value is written to, or the artifact's path. */
  outputPaths: Record<string, string>;
}

/** A parameter's text (a flag, a placeholder's substitution, `--param k=v`) as its declared type; undefined when it is not one. */
export function parseParameterValue(raw: string, type: ParameterType): ParameterValue | undefined {
  switch (type) {
    case 'string':
      return raw;
    case 'integer':
      return /^-?\d+$/.test(raw.trim()) && Number.isSafeInteger(Number(raw)) ? Number(raw) : undefined;
    case 'number': {
      const value = Number(raw);
      return raw.trim() !== '' && Number.isFinite(value) ? value : undefined;
    }
    case 'boolean': {
      // Python-based launchers render booleans as True/False, JSON-based ones as true/false.
      const lower = raw.toLowerCase();
      return lower === 'true' ? true : lower === 'false' ? false : undefined;
    }
  }
}

function invalidArgs(component: ComponentDefinition, problems: string[]): CatdogError {
  return new CatdogError(
    'invalid_component_args',
    `catdog component run ${component.name}:\n- ${problems.join('\n- ')}`,
    400,
    { component: component.name, problems },
  );
}

/** Splits `--flag value` and `--flag=value` pairs; the value is taken verbatim, even when it starts with `--`. */
function flagValues(argv: string[], problems: string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const token = argv[index] ?? '';
    if (!token.startsWith('--')) {
      problems.push(`unexpected argument '${token}'`);
      continue;
    }
    const equals = token.indexOf('=');
    const [flag, value] = equals > 0 ? [token.slice(0, equals), token.slice(equals + 1)] : [token, argv[++index]];
    if (value === undefined) problems.push(`${flag} needs a value`);
    else if (values.has(flag)) problems.push(`${flag} is given more than once`);
    else values.set(flag, value);
  }
  return values;
}

export function parseComponentArgs(component: ComponentDefinition, argv: string[]): ComponentArgs {
  const problems: string[] = [];
  const values = flagValues(argv, problems);
  const inputs: Record<string, ParameterValue> = {};
  const outputPaths: Record<string, string> = {};

  for (const [name, input] of Object.entries(component.inputs)) {
    const flag = inputFlag(name);
    const raw = values.get(flag);
    values.delete(flag);
    if (raw === undefined) {
      if (input.default !== undefined) inputs[name] = input.default;
      else if (!input.optional) problems.push(`${flag} is required (${input.type})`);
    } else if (!isParameterType(input.type)) {
      if (raw === '') problems.push(`${flag} needs the path of the ${input.artifactType ?? 'Artifact'} artifact`);
      else inputs[name] = raw;
    } else {
      const value = parseParameterValue(raw, input.type);
      if (value === undefined) problems.push(`${flag} must be ${input.type === 'integer' ? 'an' : 'a'} ${input.type}, got '${raw}'`);
      else inputs[name] = value;
    }
  }
  for (const name of Object.keys(component.outputs)) {
    const flag = outputFlag(name);
    const outputPath = values.get(flag);
    values.delete(flag);
    if (outputPath === undefined || outputPath === '') problems.push(`${flag} is required (where to write output '${name}')`);
    else outputPaths[name] = outputPath;
  }
  for (const flag of values.keys()) problems.push(`unknown option ${flag}`);

  if (problems.length > 0) throw invalidArgs(component, problems);
  return { inputs, outputPaths };
}

/**
 * Writes the value of every parameter output to its output file (the orchestrator reads it back: strings raw,
 * numbers and booleans as JSON). Artifact outputs are files the component itself writes at their paths, so a
 * value for one is a mistake. Checks everything before writing anything.
 */
export async function writeComponentOutputs(
  component: ComponentDefinition,
  outputPaths: Record<string, string>,
  values: Record<string, ParameterValue>,
): Promise<void> {
  const problems: string[] = [];
  const writes: { file: string; text: string }[] = [];
  for (const name of Object.keys(values)) {
    const output = component.outputs[name];
    if (output === undefined) problems.push(`'${name}' is not an output of ${component.name}`);
    else if (!isParameterType(output.type)) problems.push(`'${name}' is an artifact: write it at its path instead of returning a value`);
  }
  for (const [name, output] of Object.entries(component.outputs)) {
    if (!isParameterType(output.type)) continue;
    const value = values[name];
    const file = outputPaths[name];
    if (value === undefined) problems.push(`no value for output '${name}'`);
    else if (!valueMatchesType(value, output.type)) problems.push(`output '${name}' must be of type ${output.type}, got ${JSON.stringify(value)}`);
    else if (file === undefined) problems.push(`no path for output '${name}'`);
    else writes.push({ file, text: String(value) });
  }
  if (problems.length > 0) throw invalidArgs(component, problems);
  for (const { file, text } of writes) {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, text);
  }
}
