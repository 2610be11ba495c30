import { z } from 'zod';

/**
 * Reading the config schema itself: which keys a section has, which schema sits at a dotted path, and what a
 * leaf accepts in words. Env var names and error messages are derived from the schema, so they can never
 * drift from it.
 */

type Schema = z.core.$ZodType;
type JsonSchema = z.core.JSONSchema.BaseSchema;
type PlainObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unwrap(schema: Schema): Schema {
  let inner = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) {
    inner = inner.unwrap();
  }
  return inner;
}

/** The object schemas a section may take; for a discriminated union, the ones matching the input's tag. */
function sectionVariants(schema: Schema, input: unknown): z.ZodObject[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return [inner];
  if (!(inner instanceof z.ZodDiscriminatedUnion)) return [];
  const variants = inner.options.filter((option): option is z.ZodObject => option instanceof z.ZodObject);
  const tag: unknown = isPlainObject(input) ? input[inner.def.discriminator] : undefined;
  const matching = variants.filter((variant) => {
    const tagSchema = variant.shape[inner.def.discriminator];
    return tagSchema instanceof z.ZodLiteral && tagSchema.values.has(tag as z.core.util.Literal);
  });
  return matching.length > 0 ? matching : variants;
}

export function isSection(schema: Schema): boolean {
  return sectionVariants(schema, undefined).length > 0;
}

/** Keys a user may set in a section (the `$schema` editor hint excluded). */
export function sectionKeys(schema: Schema, input?: unknown): string[] {
  const keys = sectionVariants(schema, input).flatMap((variant) => Object.keys(variant.shape));
  return [...new Set(keys)].filter((key) => !key.startsWith('$'));
}

export function childSchema(schema: Schema, key: string, input?: unknown): Schema | undefined {
  for (const variant of sectionVariants(schema, input)) {
    const child = variant.shape[key];
    if (child) return child;
  }
  return undefined;
}

/** The schema at a path, choosing union variants from the raw input along the way. */
export function schemaAt(root: Schema, path: readonly string[], input: unknown): Schema | undefined {
  let schema: Schema | undefined = root;
  let value = input;
  for (const key of path) {
    if (!schema) return undefined;
    schema = childSchema(schema, key, value);
    value = isPlainObject(value) ? value[key] : undefined;
  }
  return schema;
}

/** Turns an environment string into the leaf's type; anything unparseable stays a string for zod to reject. */
export function coerceEnvValue(leaf: Schema, text: string): unknown {
  let inner = leaf;
  let nullable = false;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) {
    if (inner instanceof z.ZodNullable) nullable = true;
    inner = inner.unwrap();
  }
  const trimmed = text.trim();
  if (nullable && (trimmed === '' || trimmed.toLowerCase() === 'null')) return null;
  if (inner instanceof z.ZodNumber) {
    return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : text;
  }
  // One of several forms ('cv' or a number): the first form the text reads as.
  if (inner instanceof z.ZodUnion) {
    for (const option of inner.options as readonly Schema[]) {
      const value = coerceEnvValue(option, text);
      if (z.safeParse(option, value).success) return value;
    }
    return text;
  }
  // A list in one variable: comma-separated (CATDOG_SERVER__ALLOWED_HOSTS=catdog.example.org,catdog.lan).
  if (inner instanceof z.ZodArray) return trimmed === '' ? [] : trimmed.split(',').map((item) => item.trim());
  if (inner instanceof z.ZodBoolean) {
    const lower = trimmed.toLowerCase();
    if (lower === 'true' || lower === '1') return true;
    if (lower === 'false' || lower === '0') return false;
  }
  return text;
}

const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

function boundsText(schema: JsonSchema): string {
  const bound = (value: unknown) => (typeof value === 'number' && !SAFE_INTEGER_BOUNDS.has(value) ? value : undefined);
  const min = bound(schema.minimum);
  const max = bound(schema.maximum);
  const exclusiveMin = bound(schema.exclusiveMinimum);
  const exclusiveMax = bound(schema.exclusiveMaximum);
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  const parts = [
    min !== undefined ? `>= ${min}` : undefined,
    exclusiveMin !== undefined ? `> ${exclusiveMin}` : undefined,
    max !== undefined ? `<= ${max}` : undefined,
    exclusiveMax !== undefined ? `< ${exclusiveMax}` : undefined,
  ].filter((part) => part !== undefined);
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

function jsonSchemaText(schema: JsonSchema): string {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return alternatives.map((alternative) => jsonSchemaText(alternative)).join(' or ');
  if (schema.enum) return `one of ${schema.enum.map((value) => JSON.stringify(value)).join(', ')}`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  switch (schema.type) {
    case 'integer':
      return `an integer${boundsText(schema)}`;
    case 'number':
      return `a number${boundsText(schema)}`;
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'string':
      if (schema.format === 'uri') return 'a URL';
      return (schema.minLength ?? 0) > 0 ? 'a non-empty string' : 'a string';
    case 'object':
      return `an object with keys ${Object.keys(schema.properties ?? {}).join(', ')}`;
    default:
      return 'a valid value';
  }
}

/** What a schema accepts, in words: "an integer from 1 to 1000", "one of "local", "s3""… */
export function allowedText(schema: Schema): string {
  return jsonSchemaText(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }));
}
