import { z } from 'zod';
import { CatdogError } from '../errors.js';
import { allowedText, isPlainObject, schemaAt, sectionKeys } from './shape.js';

/** Every configuration problem found at once, one per line, each naming key, value, origin and what is allowed. */
export class ConfigError extends CatdogError {
  constructor(readonly problems: readonly string[]) {
    super(
      'invalid_config',
      problems.length === 1
        ? `Invalid configuration: ${problems[0]}`
        : `Invalid configuration (${problems.length} problems):\n${problems.map((problem) => `- ${problem}`).join('\n')}`,
      400,
      { problems },
    );
    this.name = 'ConfigError';
  }
}

export function dottedKey(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

export function showValue(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

export interface IssueContext {
  schema: z.core.$ZodType;
  /** The merged file + environment input that was parsed. */
  input: unknown;
  /** Where the value at a path came from, e.g. " (env CATDOG_PORT)", or "" for a default. */
  origin(path: readonly string[]): string;
}

function valueAt(input: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((value, key) => (isPlainObject(value) ? value[key] : undefined), input);
}

function sectionName(path: readonly string[]): string {
  return path.length === 0 ? 'the top level' : dottedKey(path);
}

/** One line per problem; an issue listing several unknown keys yields one line per key. */
export function describeIssue(issue: z.core.$ZodIssue, context: IssueContext): string[] {
  const path = issue.path.map(String);
  const key = dottedKey(path);
  const value = valueAt(context.input, path);
  const subject = `${key} = ${showValue(value)}${context.origin(path)}`;
  const allowed = () => {
    const schema = schemaAt(context.schema, path, context.input);
    return schema ? allowedText(schema) : 'a valid value';
  };
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowedKeys = sectionKeys(schemaAt(context.schema, path, context.input) ?? context.schema, value).join(', ');
      return issue.keys.map((unknownKey) => {
        const keyPath = [...path, unknownKey];
        return `${dottedKey(keyPath)} = ${showValue(valueAt(context.input, keyPath))}${context.origin(keyPath)}: unknown key; allowed keys of ${sectionName(path)}: ${allowedKeys}`;
      });
    }
    case 'invalid_type':
      return [value === undefined ? `${key} is required${context.origin(path.slice(0, -1))}: ${allowed()}` : `${subject}: expected ${allowed()}`];
    case 'invalid_union':
      if ('options' in issue && issue.options) return [`${subject}: must be one of ${issue.options.map((option) => JSON.stringify(option)).join(', ')}`];
      return [`${subject}: must be ${allowed()}`];
    case 'invalid_value':
      // Inside a record (training.backboneScaling) the schema walk finds no field; the issue lists what is allowed.
      if (!schemaAt(context.schema, path, context.input)) return [`${subject}: must be one of ${issue.values.map((option) => JSON.stringify(option)).join(', ')}`];
      return [`${subject}: must be ${allowed()}`];
    case 'too_small':
    case 'too_big':
    case 'invalid_format':
    case 'not_multiple_of':
      return [`${subject}: must be ${allowed()}`];
    default:
      return [`${subject}: ${issue.message}`];
  }
}
