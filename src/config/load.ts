import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, describeIssue, dottedKey, showValue } from './errors.js';
import { catalogueBackbone } from '../ml/catalogue.js';
import { DEFAULT_PRESET, NO_PRESET_EXTRAS, PRESET_KEYS, TRAINING_PRESETS, type TrainingPresetName } from './presets.js';
import { configSchema, isUrl, type CatdogConfig } from './schema.js';
import { childSchema, coerceEnvValue, isPlainObject, isSection, sectionKeys } from './shape.js';

export type ConfigSource = { kind: 'default' } | { kind: 'preset'; preset: string } | { kind: 'file'; file: string } | { kind: 'env'; name: string };

export interface LoadedConfig {
  config: CatdogConfig;
  /** Every leaf dotted key (`training.epochs`) → where its value came from. */
  sources: Record<string, ConfigSource>;
  /** Absolute path of the config file that was read, if any. */
  file?: string;
}

export interface LoadConfigOptions {
  /** Explicit config file (e.g. `--config`); relative to `cwd`. Must exist. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const ENV_PREFIX = 'CATDOG_';

/** CATDOG_* variables that belong to other parts of catdog (tooling, tests, logging), not to this config. */
export const RESERVED_ENV: ReadonlySet<string> = new Set([
  'CATDOG_SHARED',
  'CATDOG_CONFIG',
  'CATDOG_CACHE_DIR',
  'CATDOG_LOG_LEVEL',
  'CATDOG_TF_SKIP_DOWNLOAD',
  'CATDOG_TF_DOWNLOAD_TIMEOUT_MS',
  'CATDOG_TENSORFLOW_WHEEL_SPEC',
  'CATDOG_BACKEND',
  'CATDOG_TRAINING_STEP',
  'CATDOG_PY_VENV',
]);

/** Short names for the settings people set most; every key also has the general CATDOG_SECTION__KEY form. */
export const ENV_ALIASES: Readonly<Record<string, string>> = {
  CATDOG_HOME: 'home',
  CATDOG_BACKBONE_URL: 'training.backbone',
  CATDOG_BACKBONE_DIR: 'training.backboneDir',
  CATDOG_DATABASE_URL: 'database.url',
  CATDOG_REDIS_URL: 'jobs.redisUrl',
  CATDOG_PORT: 'server.port',
  CATDOG_HOST: 'server.host',
};

type PlainObject = Record<string, unknown>;

interface EnvOverride {
  name: string;
  path: string[];
  value: unknown;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const file = resolveConfigFile(options.file, env, cwd);
  const fileValues = file ? readConfigFile(file) : {};
  const problems: string[] = [];
  const overrides = envOverrides(env, problems);

  const input = structuredClone(fileValues);
  for (const override of overrides) setAt(input, override.path, override.value);
  const preset = applyPreset(input);

  const fileOrigin = file ? ` (file ${file})` : '';
  const origin = (at: readonly string[]): string => {
    const names = overrides.filter((override) => startsWith(override.path, at)).map((override) => override.name);
    if (names.length > 0) return ` (env ${names.join(', ')})`;
    return hasAt(fileValues, at) ? fileOrigin : '';
  };

  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.flatMap((issue) => describeIssue(issue, { schema: configSchema, input, origin })));
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);

  const { $schema: _editorHint, ...config } = parsed.data;
  const sources: Record<string, ConfigSource> = {};
  for (const leaf of leafPaths(config)) {
    const override = overrides.find((candidate) => dottedKey(candidate.path) === dottedKey(leaf));
    sources[dottedKey(leaf)] = override
      ? { kind: 'env', name: override.name }
      : file && hasAt(fileValues, leaf)
        ? { kind: 'file', file }
        : preset?.keys.includes(dottedKey(leaf))
          ? { kind: 'preset', preset: preset.name }
          : { kind: 'default' };
  }
  const baseOf = (key: string) => {
    const source = sources[key];
    return source?.kind === 'file' ? path.dirname(source.file) : cwd;
  };
  return { config: resolvePaths(config, baseOf), sources, ...(file ? { file } : {}) };
}

/**
 * The configuration with no file and no environment: the schema's defaults with training.preset's applied (`preset`,
 * or the default one).
 */
export function builtInDefaults(preset?: TrainingPresetName): CatdogConfig {
  const input: PlainObject = preset === undefined ? {} : { training: { preset } };
  applyPreset(input);
  return configSchema.parse(input);
}

/**
 * Fills the backbone keys that the file and environment leave unset from `training.preset` (its default included);
 * returns which keys it set. A cnn has no backbone, so no preset applies to it: it gets no ensemble, size or TTA;
 * nor does a backbone named without a preset.
 */
function applyPreset(input: PlainObject): { name: TrainingPresetName; keys: string[] } | undefined {
  const training = isPlainObject(input.training) ? input.training : {};
  // A cnn has no backbone for a preset to add to; a backbone named without a preset means that backbone alone at its
  // own size, where the default preset's other backbones, side or TTA would otherwise join it unasked.
  if (training.architecture === 'cnn' || ('backbone' in training && !('preset' in training))) {
    input.training = { ...structuredClone(NO_PRESET_EXTRAS), ...training };
    return undefined;
  }
  const name = training.preset ?? DEFAULT_PRESET;
  if (typeof name !== 'string' || !Object.hasOwn(TRAINING_PRESETS, name)) return undefined;
  const preset = TRAINING_PRESETS[name as TrainingPresetName];
  const keys = PRESET_KEYS.filter((key) => !(key in training));
  if (keys.length === 0) return { name: name as TrainingPresetName, keys: [] };
  input.training = { ...training, ...Object.fromEntries(keys.map((key) => [key, structuredClone(preset[key])])) };
  return { name: name as TrainingPresetName, keys: keys.map((key) => `training.${key}`) };
}

function resolveConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const named = explicit ? { file: explicit, by: 'given explicitly' } : env.CATDOG_CONFIG ? { file: env.CATDOG_CONFIG, by: 'named by CATDOG_CONFIG' } : undefined;
  if (named) {
    const file = path.resolve(cwd, named.file);
    if (!existsSync(file)) throw new ConfigError([`config file ${file} (${named.by}) does not exist; create it with \`catdog config init\` or fix the path`]);
    return file;
  }
  const implicit = path.join(cwd, 'config.json');
  return existsSync(implicit) ? implicit : undefined;
}

function readConfigFile(file: string): PlainObject {
  // Editors on Windows may save a byte order mark, which JSON.parse rejects.
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const { line, column } = jsonErrorLocation(reason, text);
    throw new ConfigError([`${file}: invalid JSON at line ${line}, column ${column}: ${reason}`]);
  }
  if (!isPlainObject(value)) throw new ConfigError([`${file}: must contain a JSON object ({ "training": { … } }), got ${showValue(value)}`]);
  return value;
}

/** V8 reports a character offset ("at position 42"); people need a line and column. */
function jsonErrorLocation(reason: string, text: string): { line: number; column: number } {
  const position = /position (\d+)/.exec(reason);
  const offset = position?.[1] !== undefined ? Number(position[1]) : text.length;
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function envOverrides(env: NodeJS.ProcessEnv, problems: string[]): EnvOverride[] {
  const overrides: EnvOverride[] = [];
  for (const [name, text] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || text === undefined) continue;
    const alias = ENV_ALIASES[name];
    const located = alias ? { path: alias.split('.') } : locateEnvKey(name);
    if ('problem' in located) {
      problems.push(located.problem);
      continue;
    }
    const leaf = located.path.reduce<ReturnType<typeof childSchema>>((schema, key) => schema && childSchema(schema, key), configSchema);
    const value = leaf ? coerceEnvValue(leaf, text) : text;
    const clash = overrides.find((other) => dottedKey(other.path) === dottedKey(located.path));
    if (clash && clash.value !== value) {
      problems.push(`${dottedKey(located.path)} is set twice with different values: ${clash.name}=${showValue(clash.value)} and ${name}=${showValue(value)}; keep one`);
      continue;
    }
    overrides.push({ name, path: located.path, value });
  }
  return overrides;
}

const normalizeSegment = (segment: string) => segment.replaceAll('_', '').toLowerCase();
const envSegment = (key: string) => key.replaceAll(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The variable that sets a key: its short alias if it has one (CATDOG_DATABASE_URL), else CATDOG_SECTION__KEY. */
export function envVarName(keyPath: readonly string[]): string {
  const alias = Object.entries(ENV_ALIASES).find(([, key]) => key === dottedKey(keyPath));
  return alias?.[0] ?? `${ENV_PREFIX}${keyPath.map(envSegment).join('__')}`;
}

/** CATDOG_DATASET__AUGMENTATION__ROTATION__ENABLED → dataset.augmentation.rotation.enabled (camelCase, any case). */
function locateEnvKey(name: string): { path: string[] } | { problem: string } {
  const segments = name.slice(ENV_PREFIX.length).split('__');
  const keyPath: string[] = [];
  let schema: ReturnType<typeof childSchema> = configSchema;
  for (const segment of segments) {
    const keys = schema ? sectionKeys(schema) : [];
    const key = keys.find((candidate) => candidate.toLowerCase() === normalizeSegment(segment));
    if (!schema || !key) {
      const section = keyPath.length === 0 ? 'the top level' : dottedKey(keyPath);
      return {
        problem: `environment variable ${name} names no configuration key: ${section} has no key "${segment}"; allowed keys of ${section}: ${keys.join(', ')} (write CATDOG_SECTION__KEY, e.g. CATDOG_TRAINING__EPOCHS; reserved, ignored: ${[...RESERVED_ENV].join(', ')})`,
      };
    }
    keyPath.push(key);
    schema = childSchema(schema, key);
  }
  if (schema && isSection(schema)) {
    const examples = sectionKeys(schema).map((key) => `${name}__${envSegment(key)}`);
    return { problem: `environment variable ${name} names the section ${dottedKey(keyPath)}, not a key; set one of ${examples.join(', ')}` };
  }
  return { path: keyPath };
}

function setAt(target: PlainObject, keyPath: readonly string[], value: unknown): void {
  const last = keyPath.at(-1);
  if (last === undefined) return;
  let node = target;
  for (const key of keyPath.slice(0, -1)) {
    const next = node[key];
    if (isPlainObject(next)) node = next;
    else node = node[key] = {};
  }
  node[last] = value;
}

function hasAt(target: unknown, keyPath: readonly string[]): boolean {
  let node = target;
  for (const key of keyPath) {
    if (!isPlainObject(node) || !(key in node)) return false;
    node = node[key];
  }
  return true;
}

function startsWith(keyPath: readonly string[], prefix: readonly string[]): boolean {
  return prefix.every((key, index) => keyPath[index] === key);
}

function leafPaths(value: unknown, prefix: string[] = []): string[][] {
  if (!isPlainObject(value)) return [prefix];
  return Object.entries(value)
    .filter(([, child]) => child !== undefined)
    .flatMap(([key, child]) => leafPaths(child, [...prefix, key]));
}

/** A catalogue name or URL as it is; a path made absolute. */
function backboneSource(source: string, resolve: (value: string) => string): string {
  return catalogueBackbone(source) || isUrl(source) ? source : resolve(source);
}

/** Relative paths are relative to the config file when they come from it, to the working directory otherwise. */
function resolvePaths(config: Omit<CatdogConfig, '$schema'>, baseOf: (key: string) => string): CatdogConfig {
  const resolve = (key: string, value: string) => (value === '' ? value : path.resolve(baseOf(key), value));
  const sqlite = /^sqlite:(?!\/\/)(.+)$/.exec(config.database.url);
  const sqlitePath = sqlite?.[1];
  return {
    ...config,
    home: resolve('home', config.home),
    training: {
      ...config.training,
      backbone: backboneSource(config.training.backbone, (value) => resolve('training.backbone', value)),
      ensemble: config.training.ensemble.map((source) => backboneSource(source, (value) => resolve('training.ensemble', value))),
      backboneDir: resolve('training.backboneDir', config.training.backboneDir),
      // Keyed by the sources above, so resolved the same way.
      backboneScaling: Object.fromEntries(
        Object.entries(config.training.backboneScaling).map(([source, scaling]) => [backboneSource(source, (value) => resolve('training.backboneScaling', value)), scaling]),
      ),
      backboneOutputs: Object.fromEntries(
        Object.entries(config.training.backboneOutputs).map(([source, outputs]) => [backboneSource(source, (value) => resolve('training.backboneOutputs', value)), outputs]),
      ),
    },
    database: {
      url: sqlitePath !== undefined && sqlitePath !== ':memory:' ? `sqlite:${resolve('database.url', sqlitePath)}` : config.database.url,
    },
    storage: config.storage.kind === 'local' ? { ...config.storage, path: resolve('storage.path', config.storage.path) } : config.storage,
    pipeline: { ...config.pipeline, root: resolve('pipeline.root', config.pipeline.root) },
  };
}
