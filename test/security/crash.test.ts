import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { loadConfig } from '../../src/config/index.js';
import { imageBlobKey } from '../../src/storage/index.js';
import { openDatabase } from '../../src/db/index.js';
import { decodeToRgb } from '../../src/images/index.js';
import { loadClassifier } from '../../src/registry/classifier.js';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../support/shared.js';
import { builtCli, cliEnv, collect, skipWithoutBuild, type Finished } from './support.js';

const PHOTOS_PER_CLASS = 100;

/**
 * `node dist/cli/main.js …` killed with SIGKILL mid-way (no handler runs, no finally block), then the app opened
 * again: what a power cut or an OOM kill leaves behind must be consistent.
 */
describe.skipIf(skipWithoutShared || skipWithoutBuild)('crash safety (SIGKILL mid-way)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-crash-'));
  const home = path.join(root, 'home');
  const data = path.join(root, 'photos');
  const databaseFile = path.join(home, 'catdog.db');
  let distinctPhotos: number;

  beforeAll(() => {
    // Symlinks to the shared photos (the import follows them): nothing is copied.
    const sources = [...kaggleFiles('cat', PHOTOS_PER_CLASS, 600), ...kaggleFiles('dog', PHOTOS_PER_CLASS, 600)];
    for (const source of sources) {
      const label = path.basename(source).split('.')[0]!;
      fs.mkdirSync(path.join(data, label), { recursive: true });
      fs.symlinkSync(source, path.join(data, label, path.basename(source)));
    }
    distinctPhotos = new Set(sources.map((file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex'))).size;
    fs.mkdirSync(home);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const cli = (...args: string[]): { child: ChildProcess; done: Promise<Finished> } => {
    const child = spawn(process.execPath, [builtCli, ...args], { cwd: home, env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    return { child, done: collect(child) };
  };

  /** Polls the database (another connection, as a second process would) until `ready` says the child is mid-way. */
  async function killWhen(run: { child: ChildProcess; done: Promise<Finished> }, ready: (count: (sql: string) => Promise<number>) => Promise<boolean>) {
    let exited = false;
    void run.done.then(() => (exited = true));
    while (!exited && !fs.existsSync(databaseFile)) await sleep(20);
    const db = await openDatabase(`sqlite:${databaseFile}`);
    try {
      const count = async (query: string) => Number((await sql<{ n: number }>`${sql.raw(query)}`.execute(db.kysely)).rows[0]?.n ?? 0);
      while (!exited && !(await ready(count).catch(() => false))) await sleep(25);
    } finally {
      await db.close();
    }
    run.child.kill('SIGKILL');
    return run.done;
  }

  async function reopen(): Promise<AppContext> {
    const loaded = loadConfig({ env: { CATDOG_HOME: home, CATDOG_BACKBONE_URL: smallBackbone, CATDOG_TRAINING__PRESET: 'fast' }, cwd: home });
    return openApp(loaded, { logger: createLogger('silent') });
  }

  /** Every image row has its blob, whose bytes hash to the row's key: no row without pixels, no torn write. */
  async function expectImagesIntact(app: AppContext): Promise<number> {
    const { items, total } = await app.db.images.list({ limit: 1000, offset: 0 });
    for (const image of items) {
      const bytes = await app.blobs.get(imageBlobKey(image.hash));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(image.hash);
    }
    return total;
  }

  it('(c) a bulk import killed mid-way loses nothing: re-importing completes with every distinct photo exactly once', async () => {
    const killed = await killWhen(cli('dataset', 'import', data), async (count) => (await count('select count(*) as n from images')) >= 20);
    expect(killed.signal, `the import finished before it could be killed: ${killed.stdout}`).toBe('SIGKILL');

    let app = await reopen();
    try {
      const partial = await expectImagesIntact(app);
      expect(partial).toBeGreaterThanOrEqual(20);
      expect(partial).toBeLessThan(distinctPhotos);
    } finally {
      await app.close();
    }

    const again = await cli('dataset', 'import', data).done;
    expect(again.code, again.stderr).toBe(0);
    app = await reopen();
    try {
      expect(await expectImagesIntact(app)).toBe(distinctPhotos);
      expect(await app.db.images.countByLabel()).toMatchObject({ unlabelled: 0 });
    } finally {
      await app.close();
    }
  }, 300_000);

  it('(b) a dataset build killed mid-way leaves only complete versions, and the next build succeeds', async () => {
    await killWhen(cli('dataset', 'build'), async () => fs.existsSync(path.join(home, 'blobs', 'datasets')));
    const built = await cli('dataset', 'build', '--json').done;
    expect(built.code, built.stderr).toBe(0);
    const app = await reopen();
    try {
      const versions = await app.db.datasets.list();
      expect(versions.length).toBeGreaterThanOrEqual(1);
      for (const version of versions) {
        const manifest = JSON.parse(new TextDecoder().decode(await app.blobs.get(version.manifestKey))) as { items: unknown[] };
        expect(manifest.items).toHaveLength(version.imageCount);
        const { total } = await app.db.datasets.items(version.id, { limit: 1, offset: 0 });
        expect(total).toBe(version.imageCount);
        expect(version.imageCount).toBe(distinctPhotos);
      }
    } finally {
      await app.close();
    }
  }, 300_000);

  it('(a) a training run killed mid-way is marked failed at the next start; every registered model is whole and the promoted one still serves', async () => {
    const first = await cli('train', '--dataset', '1', '--epochs', '2', '--json').done;
    expect(first.code, first.stderr).toBe(0);

    // The from-scratch CNN takes seconds per epoch: killed after its first epoch is recorded.
    const killed = await killWhen(cli('train', '--dataset', '1', '--architecture', 'cnn', '--epochs', '30'), async (count) =>
      (await count("select count(*) as n from training_epochs e join training_runs r on r.id = e.run_id where r.status = 'running'")) >= 1,
    );
    expect(killed.signal, `training finished before it could be killed: ${killed.stdout}`).toBe('SIGKILL');

    const app = await reopen();
    try {
      const runs = (await app.db.runs.list({ limit: 10, offset: 0 })).items;
      expect(runs.map((run) => run.status).sort()).toEqual(['failed', 'succeeded']);
      expect(runs.find((run) => run.status === 'failed')).toMatchObject({ error: 'interrupted', modelId: null });

      const models = await app.db.models.list();
      expect(models).toHaveLength(1);
      for (const model of models) {
        const files = await app.blobs.list(model.artifactPrefix);
        for (const name of ['model.json', 'weights.bin', 'catdog.json']) expect(files).toContain(`${model.artifactPrefix}${name}`);
      }
      const current = await app.db.models.current();
      expect(current?.id).toBe(models[0]!.id);
      const classifier = await loadClassifier(app, current!);
      try {
        const [photo] = kaggleFiles('dog', 1, 900);
        const pixels = await decodeToRgb(fs.readFileSync(photo!), classifier.inputSize);
        const [answer] = await classifier.predictPixels([pixels.data]);
        expect(answer!.pDog).toBeGreaterThanOrEqual(0);
        expect(answer!.pDog).toBeLessThanOrEqual(1);
      } finally {
        classifier.dispose();
      }
      // No half-written blob is visible: temp files of killed writes never show up as keys.
      for (const key of await app.blobs.list('')) expect(key).not.toMatch(/\.tmp|~$/);
    } finally {
      await app.close();
    }
  }, 400_000);
});
