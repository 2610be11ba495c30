import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CatdogError } from '../errors.js';
import { PRESET_KEYS } from './presets.js';
import { isPlainObject } from './shape.js';
import type { ConfigSource, LoadedConfig } from './load.js';
import { configSchema } from './schema.js';

/**
 * config.json cannot hold comments, so it is documented by its JSON schema: editors show every `.describe()`
 * text of the zod schema on hover and complete keys and enum values.
 */

export const CONFIG_FILE_NAME = 'config.json';
export const CONFIG_SCHEMA_FILE_NAME = 'config.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  // Input side: keys with defaults are optional in the file, which is what users write.
  return z.toJSONSchema(configSchema, { io: 'input' });
}

/** Every default, except the keys training.preset sets: written out, they would pin today's preset's values. */
export function defaultConfigDocument(): string {
  const defaults = configSchema.parse({});
  const training = Object.fromEntries(Object.entries(defaults.training).filter(([key]) => !(PRESET_KEYS as readonly string[]).includes(key)));
  return `${JSON.stringify({ $schema: `./${CONFIG_SCHEMA_FILE_NAME}`, ...defaults, training }, null, 2)}\n`;
}

export function initConfig(dir: string, options: { force?: boolean } = {}): { configPath: string; schemaPath: string } {
  const configPath = path.resolve(dir, CONFIG_FILE_NAME);
  const schemaPath = path.resolve(dir, CONFIG_SCHEMA_FILE_NAME);
  if (existsSync(configPath) && !options.force) {
    throw new CatdogError('config_exists', `${configPath} already exists; edit it, or pass --force to replace it with the defaults`, 409, {
      configPath,
    });
  }
  mkdirSync(path.dirname(configPath), { recursive: true });
  writeFileSync(configPath, defaultConfigDocument());
  writeFileSync(schemaPath, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return { configPath, schemaPath };
}

function sourceText(source: ConfigSource): string {
  switch (source.kind) {
    case 'default':
      return '(default)';
    case 'preset':
      return `(preset ${source.preset})`;
    case 'file':
      return `(file ${source.file})`;
    case 'env':
      return `(env ${source.name})`;
  }
}

/** Database and Redis URLs may carry passwords; `config show` output ends up in terminals and bug reports. */
function redactPassword(value: unknown): unknown {
  if (typeof value !== 'string' || !value.includes('@')) return value;
  try {
    const url = new URL(value);
    if (url.password === '') return value;
    url.password = '***';
    return url.toString();
  } catch {
    return value;
  }
}

const MAX_ALIGNED_WIDTH = 60;

/** One line per leaf key: `training.epochs = 20   (default)`, values aligned, passwords hidden. */
export function formatConfigShow(loaded: LoadedConfig): string {
  const rows = Object.entries(loaded.sources).map(([key, source]) => {
    const value = key.split('.').reduce<unknown>((node, segment) => (isPlainObject(node) ? node[segment] : undefined), loaded.config);
    return { assignment: `${key} = ${JSON.stringify(redactPassword(value))}`, source: sourceText(source) };
  });
  // Aligned sources read best, but one long URL should not push every other source off screen.
  const width = Math.max(0, ...rows.map((row) => row.assignment.length).filter((length) => length <= MAX_ALIGNED_WIDTH));
  return rows.map((row) => `${row.assignment.padEnd(width)}   ${row.source}`).join('\n');
}
