import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig, RESERVED_ENV } from './load.js';
import { DEFAULT_PRESET, TRAINING_PRESETS } from './presets.js';
import { configSchema } from './schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'catdog-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(value: unknown, name = 'config.json'): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

function configProblem(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.code).toBe('invalid_config');
    expect(configError.httpStatus).toBe(400);
    return configError.message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig sources and precedence', () => {
  it('loads the defaults when there is no file and no CATDOG_ variable', () => {
    const loaded = loadConfig({ cwd: dir, env: { PATH: '/usr/bin' } });
    expect(loaded.file).toBeUndefined();
    const defaults = configSchema.parse({});
    const { summary: _summary, ...preset } = TRAINING_PRESETS[DEFAULT_PRESET];
    expect(loaded.config).toEqual({ ...defaults, home: path.join(dir, '.catdog'), training: { ...defaults.training, ...preset } });
    const presetKeys = ['training.backbone', 'training.ensemble', 'training.backboneImageSize', 'training.tta'];
    expect(Object.entries(loaded.sources).every(([key, source]) => source.kind === (presetKeys.includes(key) ? 'preset' : 'default'))).toBe(true);
    expect(loaded.sources['training.backbone']).toEqual({ kind: 'preset', preset: DEFAULT_PRESET });
    expect(loaded.sources['training.epochs']).toEqual({ kind: 'default' });
    expect(loaded.sources['dataset.augmentation.rotation.maxDegrees']).toEqual({ kind: 'default' });
    expect(loaded.sources['storage.kind']).toEqual({ kind: 'default' });
    expect(loaded.sources.training).toBeUndefined();
  });

  it('fills the backbone keys left unset from training.preset, and nothing for a cnn', () => {
    const file = writeConfig({ training: { preset: 'fast', tta: true } });
    const fast = loadConfig({ cwd: dir, env: {} });
    expect(fast.config.training.backbone).toBe('mobilenet_v1_0.75');
    expect(fast.config.training.backboneImageSize).toBe(TRAINING_PRESETS.fast.backboneImageSize);
    expect(fast.config.training.tta).toBe(true);
    expect(fast.sources['training.backbone']).toEqual({ kind: 'preset', preset: 'fast' });
    expect(fast.sources['training.tta']).toEqual({ kind: 'file', file });

    const best = loadConfig({ cwd: dir, env: { CATDOG_TRAINING__PRESET: 'best', CATDOG_BACKBONE_URL: 'models/v1/model.json' } });
    expect(best.config.training.backbone).toBe(path.join(dir, 'models/v1/model.json'));
    expect(best.config.training.ensemble).toEqual(TRAINING_PRESETS.best.ensemble);

    // A backbone named without a preset stands alone at its own size, whatever the default preset adds.
    writeConfig({});
    const alone = loadConfig({ cwd: dir, env: { CATDOG_BACKBONE_URL: 'models/v1/model.json' } });
    expect(alone.config.training.ensemble).toEqual([]);
    expect(alone.config.training.backboneImageSize).toBeNull();
    expect(alone.config.training.tta).toBe(false);
    expect(alone.sources['training.ensemble']).toEqual({ kind: 'default' });

    writeConfig({ training: { architecture: 'cnn' } });
    const cnn = loadConfig({ cwd: dir, env: {} });
    expect(cnn.config.training.ensemble).toEqual([]);
    expect(cnn.config.training.backboneImageSize).toBeNull();
    expect(cnn.sources['training.backbone']).toEqual({ kind: 'default' });
  });

  it('keeps catalogue names as names and resolves backbone paths, backboneDir, backboneScaling and backboneOutputs keys alike', () => {
    writeConfig({
      training: {
        backbone: 'efficientnet_lite0',
        ensemble: ['own/model.json'],
        backboneDir: 'models',
        backboneScaling: { 'own/model.json': 'x/255' },
        backboneOutputs: { 'own/model.json': { features: 'pool/Mean' } },
      },
    });
    const { config } = loadConfig({ cwd: dir, env: {} });
    expect(config.training.backbone).toBe('efficientnet_lite0');
    expect(config.training.ensemble).toEqual([path.join(dir, 'own/model.json')]);
    expect(config.training.backboneDir).toBe(path.join(dir, 'models'));
    expect(config.training.backboneScaling).toEqual({ [path.join(dir, 'own/model.json')]: 'x/255' });
    expect(config.training.backboneOutputs).toEqual({ [path.join(dir, 'own/model.json')]: { features: 'pool/Mean' } });
    expect(loadConfig({ cwd: dir, env: { CATDOG_BACKBONE_DIR: '/srv/models' } }).config.training.backboneDir).toBe('/srv/models');
  });

  it('refuses a backboneOutputs entry with a key other than features and imagenet', () => {
    writeConfig({ training: { backboneOutputs: { 'own/model.json': { feature: 'pool/Mean' } } } });
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(/training\.backboneOutputs/);
  });

  it('names the allowed scalings when a declared one is unknown', () => {
    writeConfig({ training: { backboneScaling: { 'own/model.json': 'x/128' } } });
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(/training\.backboneScaling.*x\/127\.5-1.*x\/255.*caffe.*none/s);
  });

  it('reads a key of several forms from the environment as the form its text is (training.headL2: cv or a number)', () => {
    expect(loadConfig({ env: { CATDOG_TRAINING__HEAD_L2: '0.0001' }, cwd: '/nonexistent' }).config.training.headL2).toBe(0.0001);
    expect(loadConfig({ env: { CATDOG_TRAINING__HEAD_L2: 'cv' }, cwd: '/nonexistent' }).config.training.headL2).toBe('cv');
    expect(() => loadConfig({ env: { CATDOG_TRAINING__HEAD_L2: 'often' }, cwd: '/nonexistent' })).toThrow(/training\.headL2 = "often"/);
  });

  it('reads ./config.json, lets it win over defaults and the environment win over it', () => {
    const file = writeConfig({ training: { epochs: 7, batchSize: 8 }, server: { port: 9000 } });
    const loaded = loadConfig({ cwd: dir, env: { CATDOG_TRAINING__EPOCHS: '3' } });
    expect(loaded.file).toBe(file);
    expect(loaded.config.training.epochs).toBe(3);
    expect(loaded.config.training.batchSize).toBe(8);
    expect(loaded.config.server.port).toBe(9000);
    expect(loaded.config.training.learningRate).toBe(0.001);
    expect(loaded.sources['training.epochs']).toEqual({ kind: 'env', name: 'CATDOG_TRAINING__EPOCHS' });
    expect(loaded.sources['training.batchSize']).toEqual({ kind: 'file', file });
    expect(loaded.sources['training.learningRate']).toEqual({ kind: 'default' });
  });

  it('prefers the explicit file over CATDOG_CONFIG over ./config.json', () => {
    writeConfig({ training: { epochs: 1 } });
    const fromEnv = writeConfig({ training: { epochs: 2 } }, 'env/catdog.json');
    const explicit = writeConfig({ training: { epochs: 3 } }, 'explicit.json');
    expect(loadConfig({ cwd: dir, env: {} }).config.training.epochs).toBe(1);
    expect(loadConfig({ cwd: dir, env: { CATDOG_CONFIG: 'env/catdog.json' } })).toMatchObject({ file: fromEnv, config: { training: { epochs: 2 } } });
    expect(loadConfig({ cwd: dir, file: 'explicit.json', env: { CATDOG_CONFIG: fromEnv } })).toMatchObject({
      file: explicit,
      config: { training: { epochs: 3 } },
    });
  });

  it('refuses an explicitly named file that does not exist', () => {
    expect(configProblem(() => loadConfig({ cwd: dir, file: 'nope.json', env: {} }))).toContain(`${path.join(dir, 'nope.json')} (given explicitly) does not exist`);
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_CONFIG: 'gone.json' } }))).toContain('named by CATDOG_CONFIG');
  });

  it.each([
    ['CATDOG_HOME', '/srv/catdog', 'home', '/srv/catdog'],
    ['CATDOG_BACKBONE_URL', 'https://example.com/m/model.json', 'training.backbone', 'https://example.com/m/model.json'],
    ['CATDOG_DATABASE_URL', 'postgres://db/catdog', 'database.url', 'postgres://db/catdog'],
    ['CATDOG_REDIS_URL', 'redis://cache:6380', 'jobs.redisUrl', 'redis://cache:6380'],
    ['CATDOG_PORT', '3000', 'server.port', 3000],
    ['CATDOG_HOST', '0.0.0.0', 'server.host', '0.0.0.0'],
  ])('alias %s sets %s', (name, text, key, expected) => {
    const loaded = loadConfig({ cwd: dir, env: { [name]: text } });
    const value = key.split('.').reduce<unknown>((node, segment) => (node as Record<string, unknown>)[segment], loaded.config);
    expect(value).toEqual(path.isAbsolute(String(expected)) ? path.resolve(String(expected)) : expected);
    expect(loaded.sources[key]).toEqual({ kind: 'env', name });
  });

  it('reads a list from one comma-separated variable (server.allowedHosts)', () => {
    const loaded = loadConfig({ cwd: dir, env: { CATDOG_SERVER__ALLOWED_HOSTS: ' catdog.example.org, catdog.lan ' } });
    expect(loaded.config.server.allowedHosts).toEqual(['catdog.example.org', 'catdog.lan']);
    expect(loadConfig({ cwd: dir, env: { CATDOG_SERVER__ALLOWED_HOSTS: '' } }).config.server.allowedHosts).toEqual([]);
  });

  it('maps CATDOG_SECTION__KEY to any key, case-insensitively and with optional underscores inside a segment', () => {
    const loaded = loadConfig({
      cwd: dir,
      env: {
        CATDOG_DATASET__AUGMENTATION__ROTATION__ENABLED: 'true',
        CATDOG_DATASET__AUGMENTATION__ROTATION__MAXDEGREES: '30',
        CATDOG_TRAINING__LEARNING_RATE: '0.01',
        CATDOG_training__fineTune__Blocks: '4',
        CATDOG_JOBS__KIND: 'bullmq',
        CATDOG_STORAGE__KIND: 's3',
        CATDOG_STORAGE__BUCKET: 'photos',
        CATDOG_STORAGE__FORCE_PATH_STYLE: '1',
      },
    });
    expect(loaded.config.dataset.augmentation.rotation).toEqual({ enabled: true, maxDegrees: 30 });
    expect(loaded.config.training.learningRate).toBe(0.01);
    expect(loaded.config.training.fineTune.blocks).toBe(4);
    expect(loaded.config.jobs.kind).toBe('bullmq');
    expect(loaded.config.storage).toEqual({ kind: 's3', bucket: 'photos', prefix: '', region: 'us-east-1', forcePathStyle: true });
    expect(loaded.sources['training.learningRate']).toEqual({ kind: 'env', name: 'CATDOG_TRAINING__LEARNING_RATE' });
    expect(loaded.sources['storage.prefix']).toEqual({ kind: 'default' });
  });

  it.each([
    ['true', true],
    ['FALSE', false],
    ['1', true],
    ['0', false],
  ])('coerces boolean %s', (text, expected) => {
    expect(loadConfig({ cwd: dir, env: { CATDOG_SERVER__ANONYMOUS_VIEWER: text } }).config.server.anonymousViewer).toBe(expected);
  });

  it('coerces numbers and null for a nullable number', () => {
    const loaded = loadConfig({ cwd: dir, env: { CATDOG_DATASET__IMAGE_SIZE: '96', CATDOG_DATASET__SPLIT__TRAIN: '0.75', CATDOG_DATASET__SPLIT__TEST: '0.05' } });
    expect(loaded.config.dataset.imageSize).toBe(96);
    expect(loaded.config.dataset.split).toEqual({ train: 0.75, validation: 0.2, test: 0.05 });
    writeConfig({ dataset: { imageSize: 64 } });
    expect(loadConfig({ cwd: dir, env: { CATDOG_DATASET__IMAGE_SIZE: 'null' } }).config.dataset.imageSize).toBeNull();
  });

  it('ignores reserved CATDOG_ variables and variables of other programs', () => {
    const env = Object.fromEntries([...RESERVED_ENV].filter((name) => name !== 'CATDOG_CONFIG').map((name) => [name, 'whatever']));
    expect(RESERVED_ENV.has('CATDOG_SHARED')).toBe(true);
    const loaded = loadConfig({ cwd: dir, env: { ...env, HOME: '/root', NODE_ENV: 'test' } });
    const defaults = configSchema.parse({});
    const { summary: _summary, ...preset } = TRAINING_PRESETS[DEFAULT_PRESET];
    expect(loaded.config).toEqual({ ...defaults, home: path.join(dir, '.catdog'), training: { ...defaults.training, ...preset } });
  });
});

describe('relative paths', () => {
  it('resolves file values against the config file folder and env values against cwd', () => {
    const file = writeConfig(
      {
        home: 'state',
        training: { backbone: 'models/mobilenet/model.json' },
        database: { url: 'sqlite:db/catdog.db' },
        storage: { kind: 'local', path: '../blobs' },
        pipeline: { root: 'runs' },
      },
      'etc/config.json',
    );
    const etc = path.dirname(file);
    const fromFile = loadConfig({ cwd: dir, file, env: {} }).config;
    expect(fromFile.home).toBe(path.join(etc, 'state'));
    expect(fromFile.training.backbone).toBe(path.join(etc, 'models/mobilenet/model.json'));
    expect(fromFile.database.url).toBe(`sqlite:${path.join(etc, 'db/catdog.db')}`);
    expect(fromFile.storage).toEqual({ kind: 'local', path: path.join(dir, 'blobs') });
    expect(fromFile.pipeline.root).toBe(path.join(etc, 'runs'));

    const fromEnv = loadConfig({ cwd: dir, file, env: { CATDOG_HOME: 'elsewhere', CATDOG_BACKBONE_URL: 'file:///models/model.json' } }).config;
    expect(fromEnv.home).toBe(path.join(dir, 'elsewhere'));
    expect(fromEnv.training.backbone).toBe('file:///models/model.json');
  });

  it('keeps "" defaults empty so that they follow home', () => {
    const { config } = loadConfig({ cwd: dir, env: {} });
    expect(config.storage).toEqual({ kind: 'local', path: '' });
    expect(config.pipeline.root).toBe('');
    expect(config.database.url).toBe('');
  });
});

describe('ConfigError messages', () => {
  it('names key, value, file and the allowed type for a wrong type', () => {
    const file = writeConfig({ training: { epochs: 'many' } });
    const message = configProblem(() => loadConfig({ cwd: dir, env: {} }));
    expect(message).toContain(`training.epochs = "many" (file ${file}): expected an integer from 1 to 1000`);
  });

  it('names the env var of an out-of-range value', () => {
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_PORT: '70000' } }))).toContain(
      'server.port = 70000 (env CATDOG_PORT): must be an integer from 1 to 65535',
    );
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_TRAINING__LEARNING_RATE: '0' } }))).toContain(
      'training.learningRate = 0 (env CATDOG_TRAINING__LEARNING_RATE): must be a number > 0 and <= 1',
    );
  });

  it('reports an unparseable env number as the string it was', () => {
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_TRAINING__BATCH_SIZE: 'lots' } }))).toContain(
      'training.batchSize = "lots" (env CATDOG_TRAINING__BATCH_SIZE): expected an integer from 1 to 1024',
    );
  });

  it('lists the allowed values of an enum', () => {
    const file = writeConfig({ training: { head: 'transformer' } });
    expect(configProblem(() => loadConfig({ cwd: dir, env: {} }))).toContain(
      `training.head = "transformer" (file ${file}): must be one of "logistic", "mlp"`,
    );
  });

  it('names an unknown key and lists the allowed keys of its object', () => {
    const file = writeConfig({ training: { epoch: 5 }, colour: 'red' });
    const message = configProblem(() => loadConfig({ cwd: dir, env: {} }));
    expect(message).toContain(
      `training.epoch = 5 (file ${file}): unknown key; allowed keys of training: ${Object.keys(configSchema.shape.training.unwrap().shape).join(', ')}`,
    );
    expect(message).toContain(`colour = "red" (file ${file}): unknown key; allowed keys of the top level: home, images, dataset,`);
  });

  it('names dataset.split and its sum when the shares do not add up to 1', () => {
    const file = writeConfig({ dataset: { split: { train: 0.6, validation: 0.2 } } });
    expect(configProblem(() => loadConfig({ cwd: dir, env: {} }))).toContain(
      `dataset.split = {"train":0.6,"validation":0.2} (file ${file}): train + validation + test must sum to 1, got 0.9`,
    );
  });

  it('explains storage kinds, a missing bucket and a bad database scheme', () => {
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_STORAGE__KIND: 'gcs' } }))).toContain(
      'storage.kind = "gcs" (env CATDOG_STORAGE__KIND): must be one of "local", "s3"',
    );
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_STORAGE__KIND: 's3' } }))).toContain(
      'storage.bucket is required (env CATDOG_STORAGE__KIND): a non-empty string',
    );
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_DATABASE_URL: 'mongodb://x' } }))).toContain(
      'database.url = "mongodb://x" (env CATDOG_DATABASE_URL): must be "" (SQLite file <home>/catdog.db), sqlite:<path>, postgres://…',
    );
  });

  it('rejects an env var naming no key, with the allowed keys', () => {
    const message = configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_TRAINING__EPOCH: '5' } }));
    expect(message).toContain('environment variable CATDOG_TRAINING__EPOCH names no configuration key: training has no key "EPOCH"');
    expect(message).toContain('allowed keys of training: architecture, preset, backbone, ensemble, backboneDir, backboneScaling, backboneOutputs, head');
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_VERBOSE: '1' } }))).toContain('the top level has no key "VERBOSE"');
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_SERVER: 'x' } }))).toContain(
      'CATDOG_SERVER names the section server, not a key; set one of CATDOG_SERVER__HOST, CATDOG_SERVER__PORT, CATDOG_SERVER__ANONYMOUS_VIEWER',
    );
  });

  it('rejects an alias and the general form disagreeing', () => {
    expect(configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_PORT: '1', CATDOG_SERVER__PORT: '2' } }))).toContain(
      'server.port is set twice with different values',
    );
  });

  it('collects every problem, one per line', () => {
    writeConfig({ training: { epochs: 0, head: 'x' }, server: { port: 'http' } });
    const message = configProblem(() => loadConfig({ cwd: dir, env: { CATDOG_NOPE: '1' } }));
    const lines = message.split('\n');
    expect(lines[0]).toBe('Invalid configuration (4 problems):');
    expect(lines.slice(1).map((line) => line.split(' ')[1]).sort()).toEqual(['environment', 'server.port', 'training.epochs', 'training.head']);
  });

  it('points at the line and column of invalid JSON', () => {
    const file = writeConfig('{\n  "training": {\n    "epochs": 5,\n  }\n}\n');
    expect(configProblem(() => loadConfig({ cwd: dir, env: {} }))).toMatch(
      new RegExp(`^Invalid configuration: ${file.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON at line 4, column 3: `),
    );
  });

  it('rejects a file that is not a JSON object', () => {
    const file = writeConfig('[1, 2]');
    expect(configProblem(() => loadConfig({ cwd: dir, env: {} }))).toContain(`${file}: must contain a JSON object`);
  });
});
