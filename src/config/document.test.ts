import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CatdogError } from '../errors.js';
import { configJsonSchema, defaultConfigDocument, formatConfigShow, initConfig } from './document.js';
import { builtInDefaults, loadConfig } from './load.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'catdog-config-doc-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

type JsonObject = Record<string, unknown>;
const property = (schema: unknown, ...keys: string[]): JsonObject =>
  keys.reduce((node, key) => ((node as { properties: JsonObject }).properties[key] as JsonObject), schema as JsonObject);

describe('initConfig', () => {
  it('writes a config.json that re-loads to exactly the defaults, pointing at its schema', () => {
    const { configPath, schemaPath } = initConfig(path.join(dir, 'project'));
    expect(configPath).toBe(path.join(dir, 'project', 'config.json'));
    expect(schemaPath).toBe(path.join(dir, 'project', 'config.schema.json'));
    expect(JSON.parse(readFileSync(configPath, 'utf8')).$schema).toBe('./config.schema.json');

    const loaded = loadConfig({ file: configPath, env: {} });
    expect(loaded.config).toEqual({ ...builtInDefaults(), home: path.join(dir, 'project', '.catdog') });
    expect(loaded.sources['training.epochs']).toEqual({ kind: 'file', file: configPath });
    expect(loaded.sources.$schema).toBeUndefined();
  });

  it('writes a JSON schema carrying the descriptions, defaults and strictness of the zod schema', () => {
    const { schemaPath } = initConfig(dir);
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as JsonObject;
    expect(schema).toEqual(configJsonSchema());
    expect(property(schema, 'training', 'epochs')).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000, default: 20 });
    expect(property(schema, 'training', 'epochs').description).toMatch(/passes over the training split/);
    expect(property(schema, 'dataset', 'augmentation', 'rotation', 'maxDegrees').description).toMatch(/rotation in degrees/);
    expect(property(schema, 'training').additionalProperties).toBe(false);
    expect(property(schema, '$schema').type).toBe('string');
  });

  it('refuses to overwrite an existing config.json unless forced', () => {
    const { configPath } = initConfig(dir);
    writeFileSync(configPath, '{ "training": { "epochs": 3 } }');
    let refusal: unknown;
    try {
      initConfig(dir);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(CatdogError);
    expect(refusal).toMatchObject({ code: 'config_exists' });
    expect((refusal as Error).message).toContain(configPath);
    expect(readFileSync(configPath, 'utf8')).toContain('"epochs": 3');

    initConfig(dir, { force: true });
    expect(readFileSync(configPath, 'utf8')).toBe(defaultConfigDocument());
  });
});

describe('formatConfigShow', () => {
  it('prints every leaf key with its value and where it came from', () => {
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ training: { batchSize: 16 } }));
    const loaded = loadConfig({ cwd: dir, env: { CATDOG_TRAINING__EPOCHS: '5', CATDOG_DATABASE_URL: 'postgres://bob:s3cret@db/catdog' } });
    const lines = formatConfigShow(loaded).split('\n');

    expect(lines).toHaveLength(Object.keys(loaded.sources).length);
    expect(lines).toContainEqual(expect.stringMatching(/^training\.epochs = 5 +\(env CATDOG_TRAINING__EPOCHS\)$/));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^training\\.batchSize = 16 +\\(file ${file.replaceAll('.', '\\.')}\\)$`)));
    expect(lines).toContainEqual(expect.stringMatching(/^training\.learningRate = 0\.001 +\(default\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^storage\.kind = "local" +\(default\)$/));
  });

  it('aligns the sources and hides passwords in URLs', () => {
    const loaded = loadConfig({ cwd: dir, env: { CATDOG_DATABASE_URL: 'postgres://bob:s3cret@db/catdog' } });
    const output = formatConfigShow(loaded);
    expect(output).not.toContain('s3cret');
    expect(output).toContain('database.url = "postgres://bob:***@db/catdog"');
    // The backbone paths and the default preset's ensemble run past the aligned width, and are left unaligned.
    const shortLines = output.split('\n').filter((line) => !/^training\.(backbone|ensemble)/.test(line));
    expect(new Set(shortLines.map((line) => line.indexOf('('))).size).toBe(1);
  });
});
