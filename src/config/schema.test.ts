import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_PRESET, TRAINING_PRESETS } from './presets.js';
import { blobRoot, configSchema, databaseUrl, effectiveImageSize, pipelineRoot } from './schema.js';

describe('configSchema', () => {
  it('accepts {} and fills in the documented defaults', () => {
    expect(configSchema.parse({})).toEqual({
      home: './.catdog',
      images: {
        maxBytes: 20 * 1024 * 1024,
        maxPixels: 25_000_000,
        maxJpegScans: 100,
        maxJpegScanPixels: 1_000_000_000,
        decodeConcurrency: 4,
      },
      dataset: {
        imageSize: null,
        split: { train: 0.7, validation: 0.2, test: 0.1 },
        seed: 42,
        augmentation: {
          horizontalFlip: { enabled: true, probability: 0.5 },
          rotation: { enabled: false, maxDegrees: 15 },
          zoom: { enabled: false, maxFraction: 0.15 },
          brightness: { enabled: false, maxDelta: 0.2 },
          contrast: { enabled: false, maxFraction: 0.2 },
          grayscale: { enabled: false, probability: 0.1 },
        },
      },
      training: {
        architecture: 'mobilenet',
        preset: DEFAULT_PRESET,
        backbone: TRAINING_PRESETS.fast.backbone,
        ensemble: [],
        backboneDir: '',
        backboneScaling: {},
        backboneOutputs: {},
        head: 'logistic',
        headL2: 'cv',
        tta: false,
        zeroShotVote: false,
        backboneImageSize: null,
        batchSize: 32,
        epochs: 20,
        learningRate: 0.001,
        earlyStoppingPatience: 3,
        fineTune: { enabled: false, blocks: 1, learningRate: 0.00001, epochs: 5 },
        target: 'local',
        promotion: { metric: 'accuracy', minImprovement: 0 },
      },
      database: { url: '' },
      storage: { kind: 'local', path: '' },
      jobs: { kind: 'inline', redisUrl: 'redis://127.0.0.1:6379', concurrency: 1, queueName: 'catdog', lockDurationMs: 30_000, stalledIntervalMs: 30_000 },
      pipeline: { root: '', region: 'us-central1', project: '', image: 'ghcr.io/catdog/catdog:latest', kubeflowUrl: '' },
      server: { host: '127.0.0.1', port: 8080, anonymousViewer: false, localViewer: true, sessionHours: 12, maxFilesPerRequest: 64, rateLimit: { requestsPerMinute: 1200, burst: 200, refusedImageCost: 50 }, allowedHosts: [], signInRateLimit: { requestsPerMinute: 10, burst: 10 } },
      serving: { neither: { enabled: true, farFromClasses: true, threshold: 0.01 } },
      retraining: { enabled: false, minNewValidated: 100, cron: '' },
    });
  });

  it('fills defaults inside a partially given section', () => {
    const config = configSchema.parse({ dataset: { augmentation: { rotation: { enabled: true } } }, storage: { kind: 's3', bucket: 'photos' } });
    expect(config.dataset.augmentation.rotation).toEqual({ enabled: true, maxDegrees: 15 });
    expect(config.dataset.augmentation.horizontalFlip).toEqual({ enabled: true, probability: 0.5 });
    expect(config.storage).toEqual({ kind: 's3', bucket: 'photos', prefix: '', region: 'us-east-1', forcePathStyle: false });
  });

  it.each([
    ['unknown nested key', { training: { epoch: 5 } }],
    ['split not summing to 1', { dataset: { split: { train: 0.5, validation: 0.2, test: 0.1 } } }],
    ['zero test share', { dataset: { split: { train: 0.8, validation: 0.2, test: 0 } } }],
    ['unsupported database scheme', { database: { url: 'mongodb://localhost/catdog' } }],
    ['s3 without bucket', { storage: { kind: 's3' } }],
    ['image size below 16', { dataset: { imageSize: 8 } }],
    ['cron with 3 fields', { retraining: { cron: '0 3 *' } }],
    ['kubeflow URL that is not http', { pipeline: { kubeflowUrl: 'ftp://kfp' } }],
    ['fine-tuning a cnn', { training: { architecture: 'cnn', fineTune: { enabled: true } } }],
    ['an ensemble for a cnn', { training: { architecture: 'cnn', ensemble: ['v2/model.json'] } }],
    ['fine-tuning an ensemble', { training: { ensemble: ['v2/model.json'], fineTune: { enabled: true } } }],
    ['a zero-shot vote for a cnn', { training: { architecture: 'cnn', zeroShotVote: true } }],
    ['a backbone image size for a cnn', { training: { architecture: 'cnn', backboneImageSize: 288 } }],
    ['a backbone image size below 32', { training: { backboneImageSize: 8 } }],
  ])('rejects %s', (_, input) => {
    expect(configSchema.safeParse(input).success).toBe(false);
  });

  it.each(['sqlite:/data/catdog.db', 'postgres://u:p@db/catdog', 'postgresql://db/catdog', 'mysql://db/catdog'])('accepts database url %s', (url) => {
    expect(configSchema.parse({ database: { url } }).database.url).toBe(url);
  });

  it('accepts a split summing to 1 within rounding', () => {
    expect(configSchema.safeParse({ dataset: { split: { train: 0.6, validation: 0.3, test: 0.1 } } }).success).toBe(true);
  });

  it('describes every field, so the generated JSON schema documents config.json', () => {
    const undocumented: string[] = [];
    const visit = (schema: z.core.JSONSchema.BaseSchema, at: string) => {
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (typeof property === 'boolean') continue;
        if (!property.description) undocumented.push(`${at}${key}`);
        visit(property, `${at}${key}.`);
        for (const variant of property.oneOf ?? []) visit(variant, `${at}${key}.`);
      }
    };
    visit(z.toJSONSchema(configSchema, { io: 'input' }), '');
    expect(undocumented).toEqual([]);
  });
});

describe('derived settings', () => {
  const defaults = configSchema.parse({ home: '/srv/catdog' });

  it('uses the architecture image size unless one is configured', () => {
    expect(effectiveImageSize(defaults)).toBe(224);
    expect(effectiveImageSize({ ...defaults, training: { ...defaults.training, architecture: 'cnn' } })).toBe(128);
    expect(effectiveImageSize({ ...defaults, dataset: { ...defaults.dataset, imageSize: 96 } })).toBe(96);
  });

  it('resolves the "" defaults under home', () => {
    expect(databaseUrl(defaults)).toBe(`sqlite:${path.resolve('/srv/catdog/catdog.db')}`);
    expect(blobRoot(defaults)).toBe(path.resolve('/srv/catdog/blobs'));
    expect(pipelineRoot(defaults)).toBe(path.resolve('/srv/catdog/pipeline-runs'));
  });

  it('keeps explicit values and has no local blob folder for s3', () => {
    const explicit = configSchema.parse({
      home: '/srv/catdog',
      database: { url: 'postgres://db/catdog' },
      storage: { kind: 'local', path: '/mnt/blobs' },
      pipeline: { root: '/mnt/runs' },
    });
    expect(databaseUrl(explicit)).toBe('postgres://db/catdog');
    expect(blobRoot(explicit)).toBe(path.resolve('/mnt/blobs'));
    expect(pipelineRoot(explicit)).toBe(path.resolve('/mnt/runs'));
    expect(blobRoot(configSchema.parse({ storage: { kind: 's3', bucket: 'b' } }))).toBeUndefined();
  });

  it('makes a relative home absolute', () => {
    expect(path.isAbsolute(databaseUrl(configSchema.parse({})).slice('sqlite:'.length))).toBe(true);
  });
});
