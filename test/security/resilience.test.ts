import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/index.js';
import { isDatabaseUnavailable, openDatabase, type JobRow } from '../../src/db/index.js';
import { BullMqJobQueue, InlineJobQueue, type JobInfo } from '../../src/jobs/index.js';
import { importJob } from '../../src/datasets/jobs.js';
import { enqueueJob } from '../../src/jobs/index.js';
import { catPhotos, photoForm, startTestServer, type TestServer } from '../support/server.js';
import { kaggleFullRes, skipWithoutShared } from '../support/shared.js';
import { builtCli, cliEnv, collect, listeningUrl, repoRoot, skipWithoutBuild, type ErrorJson, type Finished } from './support.js';

const postgresAdminUrl = process.env.CATDOG_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe.skipIf(skipWithoutShared || skipWithoutBuild)('graceful shutdown', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-shutdown-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('finishes a prediction that is in flight when SIGTERM arrives, then exits 0', async () => {
    const child = spawn(process.execPath, [builtCli, 'serve', '--port', '0'], { cwd: home, env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = collect(child);
    const url = await listeningUrl(child, exited);
    const database = await openDatabase(`sqlite:${path.join(home, 'catdog.db')}`);
    const { secret } = await createToken(database, 'viewer', 'shutdown test').finally(() => database.close());

    // A multipart body sent in two halves: the request is in flight (headers read, body pending) at SIGTERM.
    const photo = fs.readFileSync(path.join(kaggleFullRes, 'cat', 'cat.5.jpg'));
    const boundary = `catdog${randomBytes(8).toString('hex')}`;
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.5.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
    const body = Buffer.concat([head, photo, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const half = Math.floor(body.length / 2);
    let sendRest!: () => void;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(body.subarray(0, half));
        sendRest = () => {
          controller.enqueue(body.subarray(half));
          controller.close();
        };
      },
    });
    const answer = fetch(`${url}/api/v1/predictions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await sleep(500);
    child.kill('SIGTERM');
    await sleep(500);
    expect(child.exitCode, 'the server must wait for the request in flight').toBeNull();
    // New connections are refused once shutdown began.
    await expect(fetch(`${url}/api/v1/health`)).rejects.toThrow();
    sendRest();
    const response = await answer;
    expect(response.status).toBe(200);
    const { predictions } = (await response.json()) as { predictions: { fileName: string; label: string }[] };
    expect(predictions).toHaveLength(1);
    expect(predictions[0]!.fileName).toBe('cat.5.jpg');
    const finished = await exited;
    expect(finished.code, finished.stderr).toBe(0);
  }, 120_000);
});

/** `catdog serve` from the TypeScript sources (always the code under test, unlike dist/), on a random port. */
async function serveFromSources(home: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string; exited: Promise<Finished> }> {
  const hooks = pathToFileURL(path.join(repoRoot, 'test', 'support', 'typescript-hooks.mjs')).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  const child = spawn(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--port', '0'],
    { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = collect(child);
  return { child, url: await listeningUrl(child, exited), exited };
}

/** The URL `catdog serve` prints once it listens; rejects with its stderr if it exits first. */
describe.skipIf(skipWithoutShared)('SIGTERM with the in-process queue (embedded defaults: SQLite, jobs.kind inline)', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-sigterm-jobs-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  const BATCHES = 6;
  const PHOTOS_PER_BATCH = 30;

  /** Folders of distinct real photos (links to the shared ones, Kaggle names carry the label), one import job each. */
  function photoFolders(): string[] {
    const photos = ['cat', 'dog'].flatMap((label) => fs.readdirSync(path.join(kaggleFullRes, label)).map((name) => path.join(kaggleFullRes, label, name)));
    return Array.from({ length: BATCHES }, (_, batch) => {
      const folder = path.join(home, 'photos', `batch-${batch}`);
      fs.mkdirSync(folder, { recursive: true });
      for (const photo of photos.slice(batch * PHOTOS_PER_BATCH, (batch + 1) * PHOTOS_PER_BATCH)) fs.symlinkSync(photo, path.join(folder, path.basename(photo)));
      return folder;
    });
  }

  it('hands its queued jobs back at SIGTERM; the restarted server runs every one, each photo imported once', async () => {
    // Looks for jobs handed back by other processes every second instead of every 30 s, so the test need not wait.
    const env = { CATDOG_JOBS__STALLED_INTERVAL_MS: '1000' };
    const first = await serveFromSources(home, env);
    const database = await openDatabase(`sqlite:${path.join(home, 'catdog.db')}`);
    try {
      const { secret } = await createToken(database, 'viewer', 'sigterm test');
      const listJobs = async (url: string): Promise<JobInfo[]> => {
        const response = await fetch(`${url}/api/v1/jobs?limit=1000`, { headers: { Authorization: `Bearer ${secret}` } });
        expect(response.status).toBe(200);
        return ((await response.json()) as { items: JobInfo[] }).items;
      };

      // Queued by another process on the same database, as a command would; it hands them over when it closes.
      const enqueuer = new InlineJobQueue({ store: database.jobs });
      const ids: string[] = [];
      for (const folder of photoFolders()) ids.push((await enqueueJob(enqueuer, importJob, { folder })).id);
      await enqueuer.close();

      // SIGTERM once the server has taken the jobs and runs one of them: the others wait behind it.
      const deadline = Date.now() + 60_000;
      while (!(await listJobs(first.url)).some((job) => job.state !== 'waiting')) {
        expect(Date.now(), 'the server did not take the queued jobs within 60 s').toBeLessThan(deadline);
        await sleep(100);
      }
      first.child.kill('SIGTERM');
      const stopped = await first.exited;
      expect(stopped.code, stopped.stderr).toBe(0);

      // Nothing is left running, and what did not run is back in the queue for whoever starts next.
      const rows = (await Promise.all(ids.map((id) => database.jobs.get(id)))) as JobRow[];
      expect(rows.map((row) => row.state).filter((state) => state !== 'completed' && state !== 'waiting')).toEqual([]);
      const handedBack = rows.filter((row) => row.state === 'waiting');
      expect(handedBack.length, 'jobs waiting when SIGTERM came').toBeGreaterThan(0);
      for (const row of handedBack) expect(row.owner).toBeNull();

      const second = await serveFromSources(home, env);
      try {
        const finishedBy = Date.now() + 240_000;
        let jobs = await listJobs(second.url);
        while (jobs.filter((job) => ids.includes(job.id)).some((job) => job.state !== 'completed')) {
          expect(jobs.filter((job) => job.state === 'failed'), 'failed jobs').toEqual([]);
          expect(Date.now(), 'the restarted server did not finish the jobs within 4 min').toBeLessThan(finishedBy);
          await sleep(500);
          jobs = await listJobs(second.url);
        }
        // Run by the restarted server's own worker process (`catdog worker`, a child of it), never in the server itself.
        for (const row of handedBack) {
          const workerId = jobs.find((job) => job.id === row.id)?.workerId;
          expect(workerId).toMatch(/^.+-\d+$/);
          expect(workerId).not.toMatch(new RegExp(`-${second.child.pid}$`));
        }
        // Every photo landed once: the imports together stored each of them exactly one time.
        const imported = jobs.filter((job) => ids.includes(job.id)).map((job) => (job.result as { imported: number; skipped: number }));
        expect(imported.reduce((sum, result) => sum + result.imported, 0)).toBe(BATCHES * PHOTOS_PER_BATCH);
        expect(imported.every((result) => result.skipped === 0)).toBe(true);
        const images = await fetch(`${second.url}/api/v1/images?limit=1`, { headers: { Authorization: `Bearer ${secret}` } });
        expect(((await images.json()) as { total: number }).total).toBe(BATCHES * PHOTOS_PER_BATCH);
      } finally {
        second.child.kill('SIGTERM');
        expect((await second.exited).code).toBe(0);
      }
    } finally {
      await database.close();
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
  }, 420_000);
});

describe.skipIf(skipWithoutShared)('PostgreSQL restarts under a running server', () => {
  const name = `catdog_sec_${randomBytes(6).toString('hex')}`;
  let admin: pg.Client;
  let t: TestServer;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const url = new URL(postgresAdminUrl);
    url.pathname = `/${name}`;
    t = await startTestServer({ CATDOG_DATABASE_URL: url.href, CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0' });
  });
  afterAll(async () => {
    await t?.close();
    await admin?.query(`drop database if exists ${name} with (force)`);
    await admin?.end();
  });

  const terminateBackends = () =>
    admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);

  /** Requests until one answers 200; every answer before it must be a 503 database_unavailable, never a 500. */
  async function untilRecovered(route: string, withinMs: number): Promise<{ failures: number }> {
    const deadline = Date.now() + withinMs;
    let failures = 0;
    for (;;) {
      const response = await t.fetchAs(route);
      if (response.status === 200) return { failures };
      expect(response.status).toBe(503);
      expect(((await response.json()) as ErrorJson).error.code).toBe('database_unavailable');
      failures++;
      expect(Date.now(), `${route} did not recover within ${withinMs} ms`).toBeLessThan(deadline);
      await sleep(100);
    }
  }

  it('recovers by itself after its connections are terminated', async () => {
    for (let i = 0; i < 5; i++) expect((await t.fetchAs('/api/v1/models')).status).toBe(200);
    const { rows } = await terminateBackends();
    expect(rows.length).toBeGreaterThan(0);
    await untilRecovered('/api/v1/models', 10_000);
    await untilRecovered('/api/v1/predictions', 10_000);
  });

  it('survives a connection cut in the middle of a query: the query fails as database_unavailable, the process goes on', async () => {
    // pg reports a cut connection on the client too, with no listener while the pool has lent it out; unhandled, that
    // error would end the process (vitest reports it as an unhandled error and fails the run).
    const inFlight = sql`select pg_sleep(5)`.execute(t.app.db.kysely).then(
      () => 'finished',
      (error: unknown) => error,
    );
    await sleep(500);
    await terminateBackends();
    const error = await inFlight;
    expect(isDatabaseUnavailable(error), String(error)).toBe(true);
    await untilRecovered('/api/v1/models', 10_000);
  });

  it('answers 503 database_unavailable while the database refuses connections, and recovers once it accepts them again', async () => {
    await admin.query(`alter database ${name} allow_connections false`);
    try {
      await terminateBackends();
      for (const route of ['/api/v1/models', '/api/v1/predictions', '/api/v1/images']) {
        const response = await t.fetchAs(route);
        expect(response.status, route).toBe(503);
        expect(((await response.json()) as ErrorJson).error.code, route).toBe('database_unavailable');
      }
      const health = await fetch(t.url('/api/v1/health'));
      expect(health.status).toBe(503);
    } finally {
      await admin.query(`alter database ${name} allow_connections true`);
    }
    await untilRecovered('/api/v1/models', 10_000);
    expect((await fetch(t.url('/api/v1/health'))).status).toBe(200);
  });
});

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A Redis of this test's own, without persistence: the shared one on 6379 serves other tests and is never stopped. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe.skipIf(skipWithoutShared)('Redis restarts under a running server (jobs.kind bullmq)', () => {
  let port: number;
  let redis: ChildProcess;
  let t: TestServer;
  let producer: BullMqJobQueue;
  const queueName = `resilience-${randomBytes(6).toString('hex')}`;
  // A request that hangs fails here, well before the test's own timeout, and says which one it was.
  const answerWithin = () => ({ signal: AbortSignal.timeout(30_000) });
  const fetchJobs = (route: string) => t.fetchAs(route, answerWithin());

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    const redisUrl = `redis://127.0.0.1:${port}`;
    t = await startTestServer({
      CATDOG_JOBS__KIND: 'bullmq',
      CATDOG_REDIS_URL: redisUrl,
      CATDOG_JOBS__QUEUE_NAME: queueName,
      CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0',
    });
    // Another process's queue on the same Redis (the CLI, a sweep), which enqueues the jobs the server lists.
    producer = new BullMqJobQueue({ redisUrl, queueName });
  });
  afterAll(async () => {
    await producer?.close();
    await t?.close();
    if (redis) await kill(redis);
  });

  async function expectQueueUnavailable(route: string): Promise<void> {
    const response = await fetchJobs(route);
    expect(response.status, route).toBe(503);
    const body = (await response.json()) as ErrorJson;
    expect(body.error.code, route).toBe('queue_unavailable');
    expect(body.error.message).toContain(`127.0.0.1:${port}`);
  }

  it('answers 503 queue_unavailable while Redis is down, keeps predicting, and recovers once Redis is back', async () => {
    const before = await producer.enqueue('import', { folder: '/photos/before' }, { jobId: 'before-restart' });
    const listed = await fetchJobs('/api/v1/jobs');
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { items: JobInfo[] }).items.map((job) => job.id)).toEqual([before.id]);

    await kill(redis);
    for (const route of ['/api/v1/jobs', '/api/v1/jobs?state=waiting', `/api/v1/jobs/${before.id}`]) await expectQueueUnavailable(route);
    const cancel = await t.fetchAs(`/api/v1/jobs/${before.id}/cancel`, { method: 'POST', ...answerWithin() });
    expect(cancel.status).toBe(503);
    // Predictions need no queue: they go on working while it is down.
    const predicted = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: photoForm(catPhotos(1)), ...answerWithin() });
    expect(predicted.status).toBe(200);
    expect((await t.fetchAs('/api/v1/models', answerWithin())).status).toBe(200);
    // Still down a while later: every request answers, none waits for Redis.
    await sleep(2000);
    await expectQueueUnavailable('/api/v1/jobs');

    redis = await startRedis(port);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const response = await fetchJobs('/api/v1/jobs');
      if (response.status === 200) {
        // This Redis keeps nothing on disk: the queue starts empty.
        expect(((await response.json()) as { items: JobInfo[] }).items).toEqual([]);
        break;
      }
      expect(response.status).toBe(503);
      expect(((await response.json()) as ErrorJson).error.code).toBe('queue_unavailable');
      expect(Date.now(), 'the jobs API did not recover within 30 s of Redis restarting').toBeLessThan(deadline);
      await sleep(200);
    }
    // The other process's queue recovered as well: what it enqueues now is listed.
    const after = await producer.enqueue('import', { folder: '/photos/after' }, { jobId: 'after-restart' });
    const got = await fetchJobs(`/api/v1/jobs/${after.id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ id: 'after-restart', state: 'waiting', data: { folder: '/photos/after' } });
  }, 180_000);

  it('shuts down while Redis is down instead of waiting for it', async () => {
    await kill(redis);
    const closing = (async () => {
      await producer.close();
      await t.close();
      return 'closed';
    })();
    expect(await Promise.race([closing, sleep(60_000).then(() => 'still closing after 60 s')])).toBe('closed');
  }, 120_000);
});
