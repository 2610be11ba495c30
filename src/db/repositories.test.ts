import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Migrator, sql } from 'kysely';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { augmentationSchema } from '../config/schema.js';
import { CatdogError } from '../errors.js';
import type { BinaryMetrics } from '../ml/metrics.js';
import { migrations } from './migrations.js';
import { withConflictRetry } from './support.js';
import { openDatabase, StoredDocumentError, type Database, type DatasetItemRow, type EvaluatedRunMetrics, type JobRow, type NewImage, type NewPrediction, type TrainingParams } from './index.js';

const postgresAdminUrl = process.env.CATDOG_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const mysqlAdminUrl = process.env.CATDOG_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

interface Scratch {
  url: string;
  drop(): Promise<void>;
}

const scratchName = () => `catdog_test_${randomBytes(6).toString('hex')}`;

/** Each run gets its own database: other engineers' tests share these servers. */
const scratchDatabases: Record<'sqlite' | 'postgres' | 'mysql', () => Promise<Scratch>> = {
  async sqlite() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-db-'));
    // A folder that does not exist yet: openDatabase must create it.
    return { url: `sqlite:${path.join(dir, 'nested', 'catdog.db')}`, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  },
  async postgres() {
    const name = scratchName();
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(postgresAdminUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      async drop() {
        const client = new pg.Client({ connectionString: postgresAdminUrl });
        await client.connect();
        await client.query(`drop database if exists ${name} with (force)`);
        await client.end();
      },
    };
  },
  async mysql() {
    const name = scratchName();
    const admin = await mysql.createConnection(mysqlAdminUrl);
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(mysqlAdminUrl);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      async drop() {
        const connection = await mysql.createConnection(mysqlAdminUrl);
        await connection.query(`drop database if exists ${name}`);
        await connection.end();
      },
    };
  },
};

const hashOf = (n: number) => n.toString(16).padStart(64, '0');
const versionParams = { split: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 42 };
const noCounts = { train: { cat: 0, dog: 0 }, validation: { cat: 0, dog: 0 }, test: { cat: 0, dog: 0 } };
const pause = (ms = 3) => new Promise((resolve) => setTimeout(resolve, ms));

function image(n: number, overrides: Partial<NewImage> = {}): NewImage {
  return {
    hash: hashOf(n),
    label: 'cat',
    source: `import:/photos/${n}.jpg`,
    originalName: `${n}.jpg`,
    format: 'jpeg',
    width: 200,
    height: 150,
    byteSize: 12_345,
    ...overrides,
  };
}

function job(id: string, overrides: Partial<JobRow> = {}): JobRow {
  return {
    id,
    name: 'train-candidate',
    data: { datasetId: 3, params: { learningRate: 0.001, head: 'mlp' }, note: 'ünïcödé' },
    state: 'waiting',
    progress: 0,
    progressMessage: null,
    attempts: 0,
    maxAttempts: 3,
    backoffMs: 1000,
    stalls: 0,
    result: undefined,
    error: null,
    createdAt: new Date().toISOString(),
    finishedAt: null,
    runAfter: null,
    workerId: null,
    owner: 'host-a:100',
    cancelRequested: false,
    ...overrides,
  };
}

/** Every option recorded, as `resolveTrainingParams` makes them. */
const trainingParams: TrainingParams = {
  architecture: 'mobilenet',
  imageSize: 224,
  batchSize: 32,
  epochs: 2,
  learningRate: 0.001,
  earlyStoppingPatience: 3,
  head: 'logistic',
  headL2: 'cv',
  tta: false,
  zeroShotVote: false,
  backbone: 'mobilenet_v2_100_224',
  backboneImageSize: null,
  ensemble: [],
  fineTune: { enabled: false, blocks: 1, learningRate: 0.00001, epochs: 5 },
  seed: 42,
  augmentation: augmentationSchema.parse({}),
  promotion: { metric: 'accuracy', minImprovement: 0 },
};

function testMetrics(accuracy: number): BinaryMetrics {
  return { accuracy, precision: 0.8, recall: 1, f1: 0.875, rocAuc: 0.95, count: 10, confusionMatrix: { labels: ['cat', 'dog'], matrix: [[4, 1], [0, 5]] } };
}

const evaluatedRun = (accuracy: number): EvaluatedRunMetrics => ({ ...testMetrics(accuracy), bestEpoch: 2, promoted: true, promotion: 'first model' });

function prediction(overrides: Partial<NewPrediction> = {}): NewPrediction {
  return {
    imageHash: hashOf(1),
    modelId: 'mdl_a',
    label: 'dog',
    confidence: 0.9,
    probabilities: { cat: 0.1, dog: 0.9 },
    latencyMs: 12.5,
    ...overrides,
  };
}

async function expectCatdogError(promise: Promise<unknown>, code: string): Promise<CatdogError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(CatdogError);
  expect((error as CatdogError).code).toBe(code);
  return error as CatdogError;
}

describe('openDatabase', () => {
  it('rejects an unknown scheme', async () => {
    const error = await expectCatdogError(openDatabase('oracle://scott:tiger@host/db'), 'invalid_database_url');
    expect(error.message).toContain('oracle');
    expect(error.message).not.toContain('tiger');
  });

  it.each(['sqlite:', 'postgres://', 'mysql://:3306/db'])('rejects %s, which names no place', async (url) => {
    await expectCatdogError(openDatabase(url), 'invalid_database_url');
  });

  it('reports an SQLite file that cannot be created as unavailable', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-db-'));
    const blocker = path.join(dir, 'not-a-folder');
    fs.writeFileSync(blocker, '');
    try {
      const error = await expectCatdogError(openDatabase(`sqlite:${path.join(blocker, 'catdog.db')}`), 'database_unavailable');
      expect(error.httpStatus).toBe(503);
      expect(error.message).toContain(blocker);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['postgres://postgres:secret@127.0.0.1:1/catdog', 'PostgreSQL'],
    ['postgresql://postgres@127.0.0.1:1/catdog', 'PostgreSQL'],
    ['mysql://root:secret@127.0.0.1:1/catdog', 'MySQL'],
  ])('reports %s as unavailable, naming the host and what to check', async (url, product) => {
    const error = await expectCatdogError(openDatabase(url), 'database_unavailable');
    expect(error.httpStatus).toBe(503);
    expect(error.message).toContain('127.0.0.1:1/catdog');
    expect(error.message).toContain(`Check that ${product}`);
    expect(error.message).not.toContain('secret');
  });

  it('opens an SQLite file in WAL mode with foreign keys and a busy timeout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-db-'));
    const db = await openDatabase(`sqlite:${path.join(dir, 'catdog.db')}`);
    try {
      const pragma = async (name: string) => Object.values((await sql.raw(`pragma ${name}`).execute(db.kysely)).rows[0] as object)[0];
      expect(await pragma('journal_mode')).toBe('wal');
      expect(await pragma('foreign_keys')).toBe(1);
      expect(await pragma('busy_timeout')).toBeGreaterThan(0);
    } finally {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('moves a training run on when another process wrote to the SQLite file after the run was read', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-db-'));
    const url = `sqlite:${path.join(dir, 'catdog.db')}`;
    const [worker, other] = [await openDatabase(url), await openDatabase(url)];
    try {
      await worker.migrate();
      await worker.images.insertIfAbsent(image(1));
      const dataset = await worker.datasets.create({ params: versionParams, manifestKey: 'm', counts: noCounts, items: [{ hash: hashOf(1), label: 'cat', split: 'train' }] });
      const run = await worker.runs.create({ datasetId: dataset.id, params: trainingParams, codeVersion: 'test' });
      // As two workers sharing one file: this one reads, the other process commits a write, then this one writes.
      // SQLite refuses the upgrade at once (not after busy_timeout); withConflictRetry starts over with a fresh view.
      let attempts = 0;
      const written = await withConflictRetry(worker.kysely, async (trx) => {
        attempts++;
        await trx.selectFrom('training_runs').select('status').where('id', '=', run.id).executeTakeFirstOrThrow();
        if (attempts === 1) await other.images.insertIfAbsent(image(2));
        await trx.updateTable('training_runs').set({ owner: 'worker' }).where('id', '=', run.id).execute();
        return attempts;
      });
      expect(written).toBe(2);
      expect((await other.runs.get(run.id))?.owner).toBe('worker');
      // The repositories' read-then-write transactions go through it.
      expect((await worker.runs.markRunning(run.id)).status).toBe('running');
    } finally {
      await Promise.all([worker.close(), other.close()]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens an in-memory SQLite database', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      expect(await db.migrate()).toEqual(Object.keys(migrations('sqlite')));
      expect((await db.images.insertIfAbsent(image(1))).inserted).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe.each(['sqlite', 'postgres', 'mysql'] as const)('migration 0008 on %s', (dialect) => {
  it("rewrites every dataset version's params to its split and seed; the runs keep the image size they trained at", async () => {
    const scratch = await scratchDatabases[dialect]();
    const db = await openDatabase(scratch.url);
    try {
      const all = migrations(dialect);
      const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => all } });
      expect((await migrator.migrateTo('0007_curation')).error).toBeUndefined();
      // Rows as the previous release wrote them: image size and augmentation in the version.
      const split = { train: 0.7, validation: 0.2, test: 0.1 };
      const augmentation = { horizontalFlip: { enabled: true, probability: 0.5 }, rotation: { enabled: false, maxDegrees: 15 } };
      const now = new Date().toISOString();
      await db.kysely
        .insertInto('dataset_versions')
        .values([
          { id: 1, created_at: now, params: JSON.stringify({ imageSize: 224, split, seed: 42, augmentation }), manifest_key: 'datasets/a.json', image_count: 0, counts: JSON.stringify(noCounts) },
          { id: 2, created_at: now, params: JSON.stringify({ imageSize: 64, split, seed: 7, augmentation }), manifest_key: 'datasets/b.json', image_count: 0, counts: JSON.stringify(noCounts) },
        ])
        .execute();
      const runParams: TrainingParams = { ...trainingParams, architecture: 'cnn', imageSize: 64, seed: 7 };
      await db.kysely
        .insertInto('training_runs')
        .values({ id: 'run_before', dataset_id: 2, status: 'succeeded', params: JSON.stringify(runParams), code_version: 'previous', created_at: now })
        .execute();

      expect(await db.migrate()).toContain('0008_dataset_params_data_only');

      // The stored text itself: the repository's schema would drop the old keys on reading anyway.
      const stored = await db.kysely.selectFrom('dataset_versions').select(['id', 'params']).orderBy('id').execute();
      expect(stored.map((row) => JSON.parse(row.params))).toEqual([{ split, seed: 42 }, { split, seed: 7 }]);
      expect((await db.datasets.get(2))?.params).toEqual({ split, seed: 7 });
      expect((await db.runs.get('run_before'))?.params).toEqual(runParams);
    } finally {
      await db.close();
      await scratch.drop();
    }
  });

  it('names the version whose params it cannot rewrite', async () => {
    const scratch = await scratchDatabases[dialect]();
    const db = await openDatabase(scratch.url);
    try {
      const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => migrations(dialect) } });
      expect((await migrator.migrateTo('0007_curation')).error).toBeUndefined();
      await db.kysely
        .insertInto('dataset_versions')
        .values({ id: 3, created_at: new Date().toISOString(), params: JSON.stringify({ imageSize: 224 }), manifest_key: 'datasets/c.json', image_count: 0, counts: '{}' })
        .execute();
      await expect(db.migrate()).rejects.toMatchObject({ code: 'database_migration_failed', message: expect.stringMatching(/0008_dataset_params_data_only.*dataset version v3/s) });
    } finally {
      await db.close();
      await scratch.drop();
    }
  });
});

describe.each(['sqlite', 'postgres', 'mysql'] as const)('repositories on %s', (dialect) => {
  let scratch: Scratch;
  let db: Database;
  let firstMigration: string[];

  beforeAll(async () => {
    scratch = await scratchDatabases[dialect]();
    db = await openDatabase(scratch.url);
    firstMigration = await db.migrate();
  });

  afterAll(async () => {
    await db?.close();
    await scratch?.drop();
  });

  beforeEach(async () => {
    for (const table of [
      'jobs',
      'job_locks',
      'review_skips',
      'validations',
      'predictions',
      'model_promotions',
      'models',
      'training_epochs',
      'training_runs',
      'dataset_items',
      'dataset_versions',
      'images',
    ] as const) {
      await db.kysely.deleteFrom(table).execute();
    }
  });

  it('migrates once and then has nothing to apply', async () => {
    expect(db.dialect).toBe(dialect);
    expect(firstMigration).toEqual(Object.keys(migrations(dialect)));
    expect(await db.migrate()).toEqual([]);
  });

  it('answers a health check with the server version', async () => {
    const check = await db.check();
    expect(check).toMatchObject({ ok: true, dialect });
    expect(check.version).toMatch(/^\d+\.\d+/);
    expect(check.latencyMs).toBeGreaterThanOrEqual(0);
  });

  describe('images', () => {
    it('stores the same content once and keeps the first row', async () => {
      const first = await db.images.insertIfAbsent(image(1, { source: 'upload', originalName: 'chat ☺.jpg' }));
      const again = await db.images.insertIfAbsent(image(1, { label: 'dog', source: 'import:/elsewhere.jpg' }));
      expect(first.inserted).toBe(true);
      expect(again.inserted).toBe(false);
      expect(again.image).toEqual(first.image);
      expect(again.image).toMatchObject({ hash: hashOf(1), label: 'cat', source: 'upload', originalName: 'chat ☺.jpg', width: 200 });
      expect(await db.images.get(hashOf(1))).toEqual(first.image);
      expect(await db.images.get(hashOf(2))).toBeUndefined();
    });

    it('relabels, counts, lists and pages', async () => {
      for (let n = 1; n <= 5; n++) await db.images.insertIfAbsent(image(n, { label: n <= 2 ? 'cat' : n <= 4 ? 'dog' : null }));
      const relabelled = await db.images.setLabel(hashOf(5), 'dog', 'feedback:prd_0123');
      expect(relabelled).toMatchObject({ label: 'dog', source: 'feedback:prd_0123' });
      await db.images.setLabel(hashOf(1), null, 'upload');
      await expect(db.images.setLabel(hashOf(99), 'cat', 'upload')).rejects.toMatchObject({ code: 'not_found' });

      expect(await db.images.countByLabel()).toEqual({ cat: 1, dog: 3, unlabelled: 1 });
      expect(await db.images.listLabelled()).toEqual([
        { hash: hashOf(2), label: 'cat' },
        { hash: hashOf(3), label: 'dog' },
        { hash: hashOf(4), label: 'dog' },
        { hash: hashOf(5), label: 'dog' },
      ]);

      const dogs = await db.images.list({ label: 'dog', limit: 2, offset: 0 });
      expect(dogs.total).toBe(3);
      expect(dogs.items).toHaveLength(2);
      const rest = await db.images.list({ label: 'dog', limit: 2, offset: 2 });
      expect(rest.items).toHaveLength(1);
      expect(new Set([...dogs.items, ...rest.items].map((row) => row.hash))).toEqual(new Set([hashOf(3), hashOf(4), hashOf(5)]));
      expect((await db.images.list({ label: 'unlabelled', limit: 10, offset: 0 })).items.map((row) => row.hash)).toEqual([hashOf(1)]);
      expect((await db.images.list({ limit: 10, offset: 0 })).total).toBe(5);
    });
  });

  describe('curation', () => {
    it('soft-deletes, filters the gallery by label, source and the serving model, and keeps perceptual hashes', async () => {
      for (let n = 1; n <= 6; n++) {
        await db.images.insertIfAbsent(
          image(n, { label: n <= 3 ? 'cat' : n <= 5 ? 'dog' : null, source: n % 2 ? `import:/p/${n}.jpg` : 'upload', perceptualHash: n === 6 ? null : `00000000000000${n}0` }),
        );
        await pause();
      }
      expect(await db.images.softDelete([hashOf(3), hashOf(3), hashOf(99)])).toBe(1);
      expect(await db.images.softDelete([hashOf(3)])).toBe(0);
      expect((await db.images.get(hashOf(3)))?.deletedAt).toMatch(/^\d{4}-/);
      expect(await db.images.countByLabel()).toEqual({ cat: 2, dog: 2, unlabelled: 1 });
      expect((await db.images.listLabelled()).map((row) => row.hash)).toEqual([hashOf(1), hashOf(2), hashOf(4), hashOf(5)]);
      expect((await db.images.getMany([hashOf(5), hashOf(99), hashOf(1)])).map((row) => row.hash)).toEqual([hashOf(5), hashOf(1)]);

      const gallery = (filter: Partial<Parameters<typeof db.images.galleryHashes>[0]>) =>
        db.images.galleryHashes({ order: 'newest', scoreModelId: 'mdl_now', ...filter });
      expect(await gallery({})).toEqual([hashOf(6), hashOf(5), hashOf(4), hashOf(2), hashOf(1)]);
      expect(await gallery({ label: 'cat' })).toEqual([hashOf(2), hashOf(1)]);
      expect(await gallery({ label: 'unlabelled' })).toEqual([hashOf(6)]);
      expect(await gallery({ sourceKind: 'import' })).toEqual([hashOf(5), hashOf(1)]);
      expect(await gallery({ sourceKind: 'upload' })).toEqual([hashOf(6), hashOf(4), hashOf(2)]);

      await db.images.setScores('mdl_now', [
        { hash: hashOf(1), pDog: 0.9 },
        { hash: hashOf(2), pDog: 0.3 },
        { hash: hashOf(4), pDog: 0.55 },
      ]);
      await db.images.setScores('mdl_old', [{ hash: hashOf(5), pDog: 0.01 }]);
      expect(await gallery({ disagreement: true })).toEqual([hashOf(1)]);
      expect(await gallery({ disagreement: false })).toEqual([hashOf(4), hashOf(2)]);
      expect(await gallery({ maxConfidence: 0.7 })).toEqual([hashOf(4), hashOf(2)]);
      expect(await gallery({ order: 'suspicious' })).toEqual([hashOf(1), hashOf(4), hashOf(2)]);
      expect(await gallery({ maxLabelProbability: 0.6 })).toEqual([hashOf(4), hashOf(1)]);
      expect(await db.images.unscored('mdl_now', 10)).toEqual({ hashes: [hashOf(5)], total: 1 });

      expect(await db.images.withoutPerceptualHash(10)).toEqual({ hashes: [hashOf(6)], total: 1 });
      await db.images.setPerceptualHash(hashOf(6), 'ffffffffffffffff');
      expect((await db.images.perceptualHashes()).map((row) => [row.hash, row.perceptualHash])).toEqual([
        [hashOf(1), '0000000000000010'],
        [hashOf(2), '0000000000000020'],
        [hashOf(4), '0000000000000040'],
        [hashOf(5), '0000000000000050'],
        [hashOf(6), 'ffffffffffffffff'],
      ]);

      // A person labelling a deleted photo again brings it back.
      expect(await db.images.setLabel(hashOf(3), 'dog', 'upload')).toMatchObject({ label: 'dog', deletedAt: null });
      expect(await db.images.countByLabel()).toEqual({ cat: 2, dog: 3, unlabelled: 1 });
    });
  });

  describe('datasets', () => {
    const itemCount = 2_500;
    const splitOf = (n: number): DatasetItemRow['split'] => (n % 10 === 0 ? 'test' : n % 10 === 1 ? 'validation' : 'train');

    beforeEach(async () => {
      // Only the datasets tests need thousands of images; a transaction keeps SQLite from syncing each one.
      await db.kysely.transaction().execute(async (trx) => {
        const rows = Array.from({ length: itemCount }, (_, i) => ({
          hash: hashOf(i),
          label: i % 2 ? 'dog' : 'cat',
          source: 'upload',
          original_name: null,
          format: 'jpeg',
          width: 1,
          height: 1,
          byte_size: 1,
          created_at: '2024-01-01T00:00:00.000Z',
          updated_at: '2024-01-01T00:00:00.000Z',
        }));
        for (let start = 0; start < rows.length; start += 500) await trx.insertInto('images').values(rows.slice(start, start + 500)).execute();
      });
    });

    const items = (count: number): DatasetItemRow[] =>
      Array.from({ length: count }, (_, i) => ({ hash: hashOf(i), label: i % 2 ? 'dog' : 'cat', split: splitOf(i) }));

    it('numbers versions 1, 2, 3 and stores thousands of items', async () => {
      const created = [];
      for (const count of [itemCount, 10, 3]) {
        created.push(
          await db.datasets.create({
            params: versionParams,
            manifestKey: (id) => `datasets/${id}/manifest.json`,
            counts: { ...noCounts, train: { cat: count, dog: 0 } },
            items: items(count),
          }),
        );
      }
      expect(created.map((version) => version.id)).toEqual([1, 2, 3]);
      expect(created[0]).toMatchObject({ manifestKey: 'datasets/1/manifest.json', imageCount: itemCount, counts: { ...noCounts, train: { cat: itemCount, dog: 0 } } });
      expect(await db.datasets.get(1)).toEqual(created[0]);
      expect(await db.datasets.get(99)).toBeUndefined();
      expect((await db.datasets.latest())?.id).toBe(3);
      expect((await db.datasets.list()).map((version) => version.id)).toEqual([3, 2, 1]);

      const all = await db.datasets.items(1);
      expect(all.total).toBe(itemCount);
      expect(all.items).toHaveLength(itemCount);
      expect(all.items.map((item) => item.hash)).toEqual(items(itemCount).map((item) => item.hash).sort());

      const testDogs = await db.datasets.items(1, { split: 'test', label: 'dog' });
      expect(testDogs.total).toBe(0); // test split holds multiples of 10, all even: cats
      const testCats = await db.datasets.items(1, { split: 'test', label: 'cat', limit: 100, offset: 200 });
      expect(testCats.total).toBe(250);
      expect(testCats.items).toHaveLength(50);
      expect(testCats.items.every((item) => item.split === 'test' && item.label === 'cat')).toBe(true);
      expect((await db.datasets.items(1, { offset: 2_490 })).items).toHaveLength(10);
    });

    it('numbers concurrent versions without gaps or duplicates', async () => {
      const created = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          db.datasets.create({ params: versionParams, manifestKey: `datasets/concurrent-${i}`, counts: noCounts, items: items(50) }),
        ),
      );
      expect(created.map((version) => version.id).sort()).toEqual([1, 2, 3, 4]);
      expect((await db.datasets.items(4)).total).toBe(50);
    });

    it('stores a version with all its items or not at all', async () => {
      const withUnknownImage = [...items(5), { hash: 'f'.repeat(64), label: 'cat' as const, split: 'train' as const }];
      await expect(db.datasets.create({ params: versionParams, manifestKey: 'k', counts: noCounts, items: withUnknownImage })).rejects.toThrow();
      expect(await db.datasets.list()).toEqual([]);
      expect((await db.datasets.create({ params: versionParams, manifestKey: 'k', counts: noCounts, items: items(5) })).id).toBe(1);
    });
  });

  describe('training runs and models', () => {
    let datasetId: number;

    beforeEach(async () => {
      await db.images.insertIfAbsent(image(1));
      datasetId = (await db.datasets.create({ params: versionParams, manifestKey: 'm', counts: noCounts, items: [{ hash: hashOf(1), label: 'cat', split: 'train' }] })).id;
    });

    it('runs through its lifecycle and keeps its epochs', async () => {
      const queued = await db.runs.create({ datasetId, params: { ...trainingParams, epochs: 2 }, codeVersion: 'abc123' });
      expect(queued).toMatchObject({ status: 'queued', datasetId, params: { epochs: 2 }, startedAt: null, metrics: null });
      expect(queued.id).toMatch(/^run_[0-9a-f]{16}$/);

      const running = await db.runs.markRunning(queued.id);
      expect(running.status).toBe('running');
      expect(running.startedAt).not.toBeNull();
      await expectCatdogError(db.runs.markRunning(queued.id), 'run_state_conflict');

      // An epoch nothing validated (a cross-validated head's refit) comes with NaN figures: none is stored.
      await db.runs.addEpoch(queued.id, { epoch: 2, loss: 0.3, accuracy: 0.9, valLoss: Number.NaN, valAccuracy: Number.NaN, durationMs: 900, totalEpochs: 7 });
      // A duration measured with performance.now() has a fraction, which an integer column of PostgreSQL refuses.
      await db.runs.addEpoch(queued.id, { epoch: 1, loss: 0.6, accuracy: 0.7, valLoss: 0.55, valAccuracy: 0.75, durationMs: 999.61 });
      expect(await db.runs.epochs(queued.id)).toEqual([
        { epoch: 1, loss: 0.6, accuracy: 0.7, valLoss: 0.55, valAccuracy: 0.75, durationMs: 1000, totalEpochs: null },
        { epoch: 2, loss: 0.3, accuracy: 0.9, valLoss: null, valAccuracy: null, durationMs: 900, totalEpochs: 7 },
      ]);

      await pause();
      const model = await db.models.create({
        name: 'logistic',
        architecture: 'mobilenet+logistic',
        datasetId,
        runId: queued.id,
        params: trainingParams,
        metrics: testMetrics(0.9),
        artifactPrefix: 'models/x/',
      });
      const finished = await db.runs.finish(queued.id, { status: 'succeeded', metrics: evaluatedRun(0.9), modelId: model.id });
      expect(finished).toMatchObject({ status: 'succeeded', metrics: { accuracy: 0.9 }, modelId: model.id, error: null });
      expect(finished.durationMs).toBeGreaterThan(0);
      expect(finished.durationMs).toBe(Date.parse(finished.finishedAt ?? '') - Date.parse(finished.startedAt ?? ''));
      expect(await db.runs.get(queued.id)).toEqual(finished);
      await expectCatdogError(db.runs.finish(queued.id, { status: 'failed' }), 'run_state_conflict');
      await expect(db.runs.markRunning('run_missing')).rejects.toMatchObject({ code: 'not_found' });
      expect(await db.runs.get('run_missing')).toBeUndefined();
    });

    it('fails runs interrupted by a crash and pages the list', async () => {
      const queued = await db.runs.create({ datasetId, params: trainingParams, codeVersion: 'v' });
      const running = await db.runs.create({ datasetId, params: trainingParams, codeVersion: 'v' });
      const done = await db.runs.create({ datasetId, params: trainingParams, codeVersion: 'v' });
      await db.runs.markRunning(running.id);
      await db.runs.finish(done.id, { status: 'cancelled' });

      expect(await db.runs.failInterrupted()).toBe(2);
      expect(await db.runs.failInterrupted()).toBe(0);
      for (const id of [queued.id, running.id]) {
        expect(await db.runs.get(id)).toMatchObject({ status: 'failed', error: 'interrupted' });
      }
      expect((await db.runs.get(done.id))?.status).toBe('cancelled');

      const page = await db.runs.list({ limit: 2, offset: 0 });
      expect(page.total).toBe(3);
      expect(page.items).toHaveLength(2);
      expect((await db.runs.list({ limit: 2, offset: 2 })).items).toHaveLength(1);
    });

    it('versions models and keeps the promotion history', async () => {
      const newModel = (name: string) =>
        db.models.create({ name, architecture: 'imported', datasetId, params: { importedFrom: `${name}.keras`, format: 'keras', imageSize: 160 }, metrics: testMetrics(0.8), artifactPrefix: `models/${name}/` });
      const first = await newModel('first');
      const second = await newModel('second');
      expect([first.version, second.version]).toEqual([1, 2]);
      expect(first).toMatchObject({ runId: null, params: { importedFrom: 'first.keras', imageSize: 160 }, metrics: { accuracy: 0.8 } });
      expect(await db.models.getByVersion(2)).toEqual(second);
      expect(await db.models.get(first.id)).toEqual(first);
      expect((await db.models.list()).map((model) => model.version)).toEqual([2, 1]);

      expect(await db.models.current()).toBeUndefined();
      const promotedFirst = await db.models.promote(first.id, { reason: 'first model', actor: 'training' });
      expect(promotedFirst).toMatchObject({ modelId: first.id, previousModelId: null, reason: 'first model', actor: 'training' });
      const promotedSecond = await db.models.promote(second.id, { reason: 'better f1', actor: 'training' });
      expect(promotedSecond.previousModelId).toBe(first.id);
      expect(await db.models.current()).toEqual(second);
      const rollback = await db.models.promote(first.id, { reason: 'rollback', actor: 'alice' });
      expect(rollback.previousModelId).toBe(second.id);
      expect((await db.models.current())?.id).toBe(first.id);
      expect((await db.models.promotions()).map((promotion) => promotion.reason)).toEqual(['rollback', 'better f1', 'first model']);
      await expect(db.models.promote('mdl_missing', { reason: 'x', actor: 'y' })).rejects.toMatchObject({ code: 'not_found' });

      const chosenId = 'mdl_00000000000000aa';
      expect((await db.models.create({ id: chosenId, name: 'third', architecture: 'cnn', datasetId, params: trainingParams, metrics: testMetrics(0.5), artifactPrefix: 'p' })).id).toBe(chosenId);
    });

    it('promotes compare-and-set: of two candidates racing against the same serving model, one wins and the other is told', async () => {
      const newModel = (name: string) =>
        db.models.create({ name, architecture: 'cnn', datasetId, params: trainingParams, metrics: testMetrics(0.5), artifactPrefix: `models/${name}/` });
      const incumbent = await newModel('incumbent');
      await db.models.promote(incumbent.id, { reason: 'first model', actor: 'test' });
      // A second connection, as a second worker process has: the race crosses connections, not only promises.
      const other = await openDatabase(scratch.url);
      try {
        for (let round = 0; round < 5; round += 1) {
          const current = (await db.models.current())!;
          const [left, right] = [await newModel(`left-${round}`), await newModel(`right-${round}`)];
          const outcomes = await Promise.all([
            db.models.promoteIfCurrent(left.id, current.id, { reason: 'beats it', actor: 'left' }),
            other.models.promoteIfCurrent(right.id, current.id, { reason: 'beats it', actor: 'right' }),
          ]);
          const winners = outcomes.filter((promotion) => promotion !== undefined);
          expect(winners, `round ${round}`).toHaveLength(1);
          expect(winners[0]!.previousModelId).toBe(current.id);
          expect((await db.models.current())?.id).toBe(winners[0]!.modelId);
        }
        // Nothing serves yet is an expectation too: null.
        expect(await db.models.promoteIfCurrent(incumbent.id, null, { reason: 'first', actor: 'late' })).toBeUndefined();
      } finally {
        await other.close();
      }
    });
  });

  describe('stored documents', () => {
    let datasetId: number;

    beforeEach(async () => {
      await db.images.insertIfAbsent(image(1));
      datasetId = (await db.datasets.create({ params: versionParams, manifestKey: 'm', counts: noCounts, items: [{ hash: hashOf(1), label: 'cat', split: 'train' }] })).id;
    });

    /** A row as an earlier catdog wrote it: the JSON columns exactly as given, no repository in between. */
    const storeRun = (id: string, params: string, metrics: string | null) =>
      db.kysely
        .insertInto('training_runs')
        .values({ id, dataset_id: datasetId, status: 'succeeded', params, code_version: 'old', created_at: new Date().toISOString(), started_at: null, finished_at: null, duration_ms: null, error: null, metrics, model_id: null, owner: null, job_id: null })
        .execute();
    const storeModel = (id: string, params: string, metrics: string) =>
      db.kysely
        .insertInto('models')
        .values({ id, version: 1, name: id, architecture: 'cnn', dataset_id: datasetId, run_id: null, params, metrics, artifact_prefix: `models/${id}/`, created_at: new Date().toISOString() })
        .execute();

    it('reads rows written before versioning as version 1 and upgrades them to what the code uses', async () => {
      // Runs recorded before TTA, the zero-shot vote, backbone sizes and ensembles existed lack them: they were off.
      const { tta: _tta, zeroShotVote: _vote, backboneImageSize: _size, ensemble: _ensemble, fineTune: _fineTune, ...older } = trainingParams;
      const upgraded = { ...older, tta: false, zeroShotVote: false, backboneImageSize: null, ensemble: [] };
      // JSON has no NaN: an undefined ROC AUC (one class in the test split) was written as null.
      await storeRun('run_unversioned', JSON.stringify(older), JSON.stringify({ ...evaluatedRun(0.9), rocAuc: null }));
      const run = await db.runs.get('run_unversioned');
      expect(run?.params).toEqual(upgraded);
      expect(run?.metrics).toEqual({ ...evaluatedRun(0.9), rocAuc: Number.NaN });

      // The first catdog recorded whether a run's model was promoted, not why.
      const { promotion: _reason, ...withoutReason } = evaluatedRun(0.8);
      await storeRun('run_first_release', JSON.stringify(older), JSON.stringify(withoutReason));
      expect((await db.runs.get('run_first_release'))?.metrics).toEqual(withoutReason);

      // Today's rows record every option and carry no marker either: read as version 1, they come back unchanged.
      await storeRun('run_unmarked', JSON.stringify(trainingParams), JSON.stringify({ validation: { accuracy: 0.8, loss: null, bestEpoch: 1 }, candidate: { modelId: 'mdl_c', artifactPrefix: 'models/mdl_c/' } }));
      expect(await db.runs.get('run_unmarked')).toMatchObject({
        params: trainingParams,
        metrics: { validation: { accuracy: 0.8, loss: Number.NaN, bestEpoch: 1 }, candidate: { modelId: 'mdl_c', artifactPrefix: 'models/mdl_c/' } },
      });

      await storeModel('mdl_trained', JSON.stringify(older), JSON.stringify(testMetrics(0.7)));
      expect(await db.models.get('mdl_trained')).toMatchObject({ params: upgraded, metrics: testMetrics(0.7) });
      const imported = { importedFrom: 'cats.h5', format: 'h5', imageSize: 128 };
      await db.kysely.updateTable('models').set({ id: 'mdl_imported', params: JSON.stringify(imported), version: 2 }).where('id', '=', 'mdl_trained').execute();
      expect((await db.models.list()).map((model) => model.params)).toEqual([imported]);

      await db.kysely
        .insertInto('predictions')
        .values({ id: 'prd_unversioned', image_hash: hashOf(1), model_id: 'mdl_imported', label: 'dog', confidence: 0.9, probabilities: '{"cat":0.1,"dog":0.9}', latency_ms: 3, created_at: new Date().toISOString(), validated_label: null, validated_at: null })
        .execute();
      expect((await db.predictions.get('prd_unversioned'))?.probabilities).toEqual({ cat: 0.1, dog: 0.9 });
    });

    it('names the table, column and row of a document that does not fit, and stores none that does not', async () => {
      await storeRun('run_broken', JSON.stringify({ ...trainingParams, architecture: 'rnn' }), null);
      const error = await expectCatdogError(db.runs.get('run_broken'), 'stored_document_invalid');
      expect(error).toBeInstanceOf(StoredDocumentError);
      expect(error.details).toMatchObject({ table: 'training_runs', column: 'params', rowId: 'run_broken' });
      expect(error.message).toContain('training_runs.params of row run_broken does not hold valid training parameters');
      expect(error.message).toMatch(/architecture/);
      await expectCatdogError(db.runs.list({ limit: 10, offset: 0 }), 'stored_document_invalid');

      const { accuracy: _accuracy, ...withoutAccuracy } = testMetrics(0.5);
      await storeModel('mdl_broken', JSON.stringify({ $version: 2, ...trainingParams }), JSON.stringify(withoutAccuracy));
      const modelError = await expectCatdogError(db.models.get('mdl_broken'), 'stored_document_invalid');
      expect(modelError.details).toMatchObject({ table: 'models', column: 'metrics', rowId: 'mdl_broken' });
      expect(modelError.message).toMatch(/accuracy/);

      await storeRun('run_half_metrics', JSON.stringify(trainingParams), JSON.stringify({ accuracy: 0.5 }));
      const metricsError = await expectCatdogError(db.runs.get('run_half_metrics'), 'stored_document_invalid');
      expect(metricsError.details).toMatchObject({ table: 'training_runs', column: 'metrics', rowId: 'run_half_metrics' });
      // Neither a registered model's metrics nor a candidate's: the message says what each form misses.
      expect(metricsError.message).toMatch(/fits none of its forms: \(1\) .*precision.* \(2\) .*validation/);

      await storeRun('run_newer', JSON.stringify({ $version: 3, ...trainingParams }), null);
      expect((await expectCatdogError(db.runs.get('run_newer'), 'stored_document_invalid')).message).toContain('version 3, written by a newer catdog');
      await storeRun('run_not_json', 'architecture=cnn', null);
      expect((await expectCatdogError(db.runs.get('run_not_json'), 'stored_document_invalid')).message).toContain('not JSON');

      await expectCatdogError(db.runs.create({ id: 'run_zero_epochs', datasetId, params: { ...trainingParams, epochs: 0 }, codeVersion: 'v' }), 'stored_document_invalid');
      expect(await db.kysely.selectFrom('training_runs').select('id').where('id', '=', 'run_zero_epochs').executeTakeFirst()).toBeUndefined();
    });

    it('stores every document whole, marked with its version', async () => {
      const params: TrainingParams = {
        ...trainingParams,
        tta: true,
        zeroShotVote: true,
        backboneImageSize: 288,
        ensemble: ['efficientnet_lite0'],
        fineTune: { enabled: true, blocks: 2, learningRate: 0.0001, epochs: 3 },
      };
      const fineTune = { blocks: 2, layer: 'block_14_add', epochs: 3, bestEpoch: 2, before: { valLoss: 0.4, valAccuracy: 0.8 }, after: { valLoss: 0.3, valAccuracy: 0.85 }, durationMs: 1234 };
      const evaluated = { ...evaluatedRun(0.9), rocAuc: Number.NaN, promoted: false, promotion: 'accuracy 0.9000 does not beat mdl_x (0.9100) by more than 0', fineTune };
      const run = await db.runs.create({ datasetId, params, codeVersion: 'v' });
      await db.runs.markRunning(run.id);
      const finished = await db.runs.finish(run.id, { status: 'succeeded', metrics: evaluated });
      expect(finished).toMatchObject({ params, metrics: evaluated });
      expect(await db.runs.get(run.id)).toEqual(finished);
      const stored = await db.kysely.selectFrom('training_runs').select(['params', 'metrics']).where('id', '=', run.id).executeTakeFirstOrThrow();
      expect(JSON.parse(stored.params)).toEqual({ $version: 2, ...params });
      expect(JSON.parse(stored.metrics!)).toMatchObject({ $version: 1, rocAuc: null });

      const candidate = { validation: { accuracy: 0.8, loss: 0.45, bestEpoch: 3 }, candidate: { modelId: 'mdl_candidate', artifactPrefix: 'models/mdl_candidate/' }, fineTune };
      const candidateRun = await db.runs.create({ datasetId, params, codeVersion: 'v' });
      await db.runs.finish(candidateRun.id, { status: 'succeeded', metrics: candidate });
      expect((await db.runs.get(candidateRun.id))?.metrics).toEqual(candidate);

      const trained = await db.models.create({ name: 'trained', architecture: 'mobilenet', datasetId, runId: run.id, params, metrics: testMetrics(0.9), artifactPrefix: 'models/trained/' });
      const imported = await db.models.create({ name: 'imported', architecture: 'imported', datasetId, params: { importedFrom: 'dogs.tflite', format: 'tflite', imageSize: 224 }, metrics: { ...testMetrics(0.6), rocAuc: Number.NaN }, artifactPrefix: 'models/imported/' });
      expect(await db.models.get(trained.id)).toEqual(trained);
      expect(trained).toMatchObject({ params, metrics: testMetrics(0.9) });
      expect(await db.models.get(imported.id)).toMatchObject({ params: { importedFrom: 'dogs.tflite', format: 'tflite', imageSize: 224 }, metrics: { ...testMetrics(0.6), rocAuc: Number.NaN } });

      const probabilities = { cat: 0.25, dog: 0.75, animalMass: 0.02, centroidDistance: 12.5, neitherReason: 1 };
      const storedPrediction = await db.predictions.create(prediction({ label: 'neither', probabilities }));
      expect((await db.predictions.get(storedPrediction.id))?.probabilities).toEqual(probabilities);
    });
  });

  describe('jobs of in-process queues', () => {
    it('stores a job once per id, changes it only while it is as expected, and lists and counts them', async () => {
      const first = job('train-candidate-swp_1-0', { createdAt: '2026-01-01T00:00:00.000Z' });
      expect(await db.jobs.insertIfAbsent(first)).toEqual({ inserted: true, job: first });
      expect(await db.jobs.insertIfAbsent({ ...first, data: { other: true } })).toEqual({ inserted: false, job: first });
      const second = job('retrain-after-v1', { createdAt: '2026-01-01T00:00:01.000Z' });
      await db.jobs.insertIfAbsent(second);

      const started = { state: 'active', attempts: 1, workerId: 'server-1' } as const;
      expect(await db.jobs.update(first.id, started, { states: ['waiting'], owner: 'host-a:100' })).toBe(true);
      // Not again: it is active now, and the condition names another owner.
      expect(await db.jobs.update(first.id, started, { states: ['waiting'] })).toBe(false);
      expect(await db.jobs.update(first.id, { progress: 0.5 }, { owner: 'host-b:200' })).toBe(false);
      expect(await db.jobs.update('no-such-job', { progress: 0.5 })).toBe(false);
      const result = { runId: 'run_1', validation: { accuracy: 0.875 }, curve: [0.1, 0.2] };
      const finished = { state: 'completed', result, progress: 1, progressMessage: 'epoch 3 of 3', finishedAt: '2026-01-01T00:01:00.000Z' } as const;
      expect(await db.jobs.update(first.id, finished, { states: ['active'], owner: 'host-a:100' })).toBe(true);
      expect(await db.jobs.get(first.id)).toEqual({ ...first, ...started, ...finished });
      expect(await db.jobs.get('no-such-job')).toBeUndefined();

      expect((await db.jobs.list({ limit: 10 })).map((row) => row.id)).toEqual([second.id, first.id]);
      expect((await db.jobs.list({ states: ['completed', 'failed'], limit: 10 })).map((row) => row.id)).toEqual([first.id]);
      expect((await db.jobs.list({ limit: 1 })).map((row) => row.id)).toEqual([second.id]);
      expect(await db.jobs.counts()).toEqual({ waiting: 1, active: 0, completed: 1, failed: 0, cancelled: 0 });
    });

    it('hands the unfinished jobs of owners that are gone to one claimer, oldest first, and releases waiting ones', async () => {
      await db.jobs.insertIfAbsent(job('running', { state: 'active', owner: 'dead:1', createdAt: '2026-01-01T00:00:02.000Z' }));
      await db.jobs.insertIfAbsent(job('waiting', { owner: 'dead:1', createdAt: '2026-01-01T00:00:01.000Z' }));
      await db.jobs.insertIfAbsent(job('released', { owner: null, createdAt: '2026-01-01T00:00:03.000Z' }));
      await db.jobs.insertIfAbsent(job('held', { owner: 'alive:2' }));
      await db.jobs.insertIfAbsent(job('done', { state: 'completed', owner: 'dead:1', finishedAt: '2026-01-01T00:00:04.000Z' }));
      const isAbandoned = (owner: string | null) => owner === null || owner.startsWith('dead:');

      const claimed = await db.jobs.claimAbandoned('heir:3', isAbandoned);
      expect(claimed.map((row) => [row.id, row.state, row.owner])).toEqual([
        ['waiting', 'waiting', 'heir:3'],
        ['running', 'active', 'heir:3'],
        ['released', 'waiting', 'heir:3'],
      ]);
      expect(await db.jobs.claimAbandoned('other:4', isAbandoned)).toEqual([]);
      expect((await db.jobs.get('held'))?.owner).toBe('alive:2');
      expect((await db.jobs.get('done'))?.owner).toBe('dead:1');

      await db.jobs.releaseWaiting('heir:3');
      expect((await db.jobs.get('waiting'))?.owner).toBeNull();
      expect((await db.jobs.get('released'))?.owner).toBeNull();
      // A running job stays with its process: if it dies, the job is taken as interrupted.
      expect((await db.jobs.get('running'))?.owner).toBe('heir:3');
    });

    it('lets one holder at a time take a named lock across connections; it lapses unless renewed', async () => {
      const other = await openDatabase(scratch.url);
      try {
        const outcomes = await Promise.all([db.jobs.tryLock('retrain', 'left', 60_000), other.jobs.tryLock('retrain', 'right', 60_000)]);
        expect(outcomes.filter(Boolean)).toHaveLength(1);
        const [winner, loser] = outcomes[0] ? ['left', 'right'] : ['right', 'left'];
        expect(await other.jobs.isLocked('retrain')).toBe(true);
        expect(await db.jobs.renewLock('retrain', loser!, 60_000)).toBe(false);
        expect(await db.jobs.renewLock('retrain', winner!, 60_000)).toBe(true);
        // Only its holder frees it.
        await db.jobs.releaseLock('retrain', loser!);
        expect(await db.jobs.isLocked('retrain')).toBe(true);
        await other.jobs.releaseLock('retrain', winner!);
        expect(await db.jobs.isLocked('retrain')).toBe(false);

        expect(await db.jobs.tryLock('retrain', 'short-lived', 50)).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 120));
        expect(await other.jobs.isLocked('retrain')).toBe(false);
        expect(await other.jobs.tryLock('retrain', 'next', 60_000)).toBe(true);
        expect(await db.jobs.renewLock('retrain', 'short-lived', 60_000)).toBe(false);
      } finally {
        await other.close();
      }
    });

    it('forgets the jobs that finished longest ago beyond the newest kept', async () => {
      for (const [id, finishedAt] of [['b', '2026-01-01T00:00:02.000Z'], ['a', '2026-01-01T00:00:01.000Z'], ['c', '2026-01-01T00:00:03.000Z']] as const) {
        await db.jobs.insertIfAbsent(job(id, { state: 'failed', error: 'disk full', finishedAt }));
      }
      await db.jobs.insertIfAbsent(job('unfinished'));
      await db.jobs.pruneFinished(2);
      expect((await db.jobs.list({ limit: 10 })).map((row) => row.id).sort()).toEqual(['b', 'c', 'unfinished']);
      await db.jobs.pruneFinished(2);
      expect((await db.jobs.counts()).failed).toBe(2);
    });
  });

  describe('predictions', () => {
    it('filters by validation, label, model and time', async () => {
      const early = await db.predictions.create(prediction({ label: 'cat', confidence: 0.7, probabilities: { cat: 0.7, dog: 0.3 } }));
      await pause();
      const boundary = new Date().toISOString();
      await pause();
      const middle = await db.predictions.create(prediction({ modelId: 'zero-shot' }));
      await pause();
      const late = await db.predictions.create(prediction({ label: 'neither', confidence: 0.55 }));
      await db.predictions.validate(middle.id, { label: 'cat', actor: 'alice' });

      expect(early).toMatchObject({ id: expect.stringMatching(/^prd_[0-9a-f]{16}$/), probabilities: { cat: 0.7, dog: 0.3 }, latencyMs: 12.5 });
      expect(await db.predictions.get(early.id)).toEqual(early);
      const ids = async (filter: Partial<Parameters<Database['predictions']['list']>[0]>) =>
        (await db.predictions.list({ limit: 10, offset: 0, ...filter })).items.map((row) => row.id).sort();
      expect(await ids({})).toEqual([early.id, middle.id, late.id].sort());
      expect(await ids({ validated: true })).toEqual([middle.id]);
      expect(await ids({ validated: false })).toEqual([early.id, late.id].sort());
      expect(await ids({ label: 'cat' })).toEqual([early.id]);
      expect(await ids({ modelId: 'zero-shot' })).toEqual([middle.id]);
      expect(await ids({ since: boundary })).toEqual([middle.id, late.id].sort());
      expect(await ids({ until: boundary })).toEqual([early.id]);
      expect(await ids({ since: boundary, validated: false, label: 'neither' })).toEqual([late.id]);
      const firstPage = await db.predictions.list({ limit: 1, offset: 0 });
      expect(firstPage.total).toBe(3);
      expect(firstPage.items.map((row) => row.id)).toEqual([late.id]);
      expect((await db.predictions.list({ limit: 10, offset: 1 })).items.map((row) => row.id)).toEqual([middle.id, early.id]);
    });

    it('keeps the validation history through changes and undo', async () => {
      const { id } = await db.predictions.create(prediction());
      const before = new Date(Date.now() - 1000).toISOString();
      expect(await db.predictions.countValidatedSince(before)).toBe(0);

      const asCat = await db.predictions.validate(id, { label: 'cat', actor: 'alice' });
      expect(asCat).toMatchObject({ validatedLabel: 'cat', label: 'dog' });
      expect(asCat.validatedAt).not.toBeNull();
      expect(await db.predictions.validate(id, { label: 'cat', actor: 'alice' })).toEqual(asCat);
      const asNeither = await db.predictions.validate(id, { label: 'neither', actor: 'bob' });
      expect(asNeither.validatedLabel).toBe('neither');
      expect(await db.predictions.countValidatedSince(before)).toBe(1);

      const undone = await db.predictions.undoValidation(id);
      expect(undone).toMatchObject({ validatedLabel: 'cat', validatedAt: asCat.validatedAt });
      expect(await db.predictions.get(id)).toEqual(undone);
      const history = await db.predictions.history(id);
      expect(history.map((row) => [row.label, row.actor, row.undoneAt === null])).toEqual([
        ['cat', 'alice', true],
        ['neither', 'bob', false],
      ]);
      expect(history[0]?.id).toMatch(/^val_[0-9a-f]{16}$/);

      const cleared = await db.predictions.undoValidation(id);
      expect(cleared).toMatchObject({ validatedLabel: null, validatedAt: null });
      expect(await db.predictions.countValidatedSince(before)).toBe(0);
      await expectCatdogError(db.predictions.undoValidation(id), 'nothing_to_undo');
      await expect(db.predictions.validate('prd_missing', { label: 'cat', actor: 'a' })).rejects.toMatchObject({ code: 'not_found' });

      const again = await db.predictions.validate(id, { label: 'dog', actor: 'carol' });
      expect(again.validatedLabel).toBe('dog');
      expect((await db.predictions.history(id)).map((row) => row.label)).toEqual(['cat', 'neither', 'dog']);
    });

    it('queues one item per photo that needs a label, ranked by the serving model, minus what each reviewer skipped', async () => {
      // Photos 1–5 unlabelled; 6 labelled by the folder import; 7 deleted by a curator.
      for (let n = 1; n <= 7; n++) await db.images.insertIfAbsent(image(n, { label: n === 6 ? 'dog' : null }));
      await db.images.softDelete([hashOf(7)]);
      const predict = async (n: number, confidence: number, modelId = 'zero-shot') => {
        const row = await db.predictions.create(prediction({ imageHash: hashOf(n), confidence, modelId }));
        await pause();
        return row.id;
      };
      const first1 = await predict(1, 0.51);
      const latest1 = await predict(1, 0.52);
      const p2 = await predict(2, 0.9);
      const p3 = await predict(3, 0.6);
      const p4 = await predict(4, 0.99);
      const p5 = await predict(5, 0.7);
      const other5 = await predict(5, 0.55);
      await predict(6, 0.5);
      await predict(7, 0.5);
      // Someone labelled photo 5 through one of its two predictions: the other one leaves the queue too.
      await db.predictions.validate(p5, { label: 'neither', actor: 'alice' });

      const queue = async (strategy: 'uncertain' | 'oldest' | 'random', actor = 'alice', exclude: string[] = []) =>
        (await db.predictions.reviewQueue({ actor, servingModelId: 'mdl_now', strategy, exclude, limit: 10 })).map((row) => row.id);
      expect(await queue('oldest')).toEqual([latest1, p2, p3, p4]);
      expect(await queue('uncertain')).toEqual([latest1, p3, p2, p4]);
      expect((await queue('random')).sort()).toEqual([latest1, p2, p3, p4].sort());
      expect(await queue('oldest', 'alice', [p2])).toEqual([latest1, p3, p4]);
      expect(first1).not.toBe(latest1);
      expect(other5).toBeDefined();

      // The serving model scored photos 4 and 2: they rank by its uncertainty, before the photos it has not scored.
      await db.images.setScores('mdl_now', [{ hash: hashOf(4), pDog: 0.45 }, { hash: hashOf(2), pDog: 0.2 }]);
      await db.images.setScores('mdl_old', [{ hash: hashOf(3), pDog: 0.5 }]);
      expect(await queue('uncertain')).toEqual([p4, p2, latest1, p3]);
      expect(await db.predictions.pendingImageHashes(10, 'mdl_now')).toEqual([hashOf(1), hashOf(3)]);

      await db.predictions.skipForReview('alice', hashOf(4));
      await db.predictions.skipForReview('alice', hashOf(4));
      expect(await queue('uncertain')).toEqual([p2, latest1, p3]);
      expect(await queue('uncertain', 'bob')).toEqual([p4, p2, latest1, p3]);
      expect(await db.predictions.reviewCounts('alice')).toEqual({ pending: 3, skipped: 1 });
      expect(await db.predictions.reviewCounts('bob')).toEqual({ pending: 4, skipped: 0 });
      expect(await db.predictions.clearReviewSkips('alice')).toBe(1);
      expect(await db.predictions.reviewCounts('alice')).toEqual({ pending: 4, skipped: 0 });
    });
  });
});
