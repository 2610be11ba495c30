import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/index.js';
import { openDatabase } from '../../src/db/index.js';
import { BullMqJobQueue, type JobInfo } from '../../src/jobs/index.js';
import { catPhotos, photoForm, startTestServer, type TestServer } from '../../src/server/test-support.js';
import { kaggleFullRes, skipWithoutShared } from '../support/shared.js';
import { builtCli, cliEnv, collect, skipWithoutBuild, type ErrorJson } from './support.js';

const postgresAdminUrl = process.env.CATDOG_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe.skipIf(skipWithoutShared || skipWithoutBuild)('graceful shutdown', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-shutdown-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('finishes a prediction that is in flight when SIGTERM arrives, then exits 0', async () => {
    const child = spawn(process.execPath, [builtCli, 'serve', '--port', '0'], { cwd: home, env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = collect(child);
    const url = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /catdog listening on (http:\/\/\S+)/.exec(stdout);
        if (match) resolve(match[1]!);
      });
      void exited.then((finished) => reject(new Error(`serve exited early: ${finished.stderr}`)));
    });
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
  const answerWithin = { signal: AbortSignal.timeout(30_000) };
  const fetchJobs = (route: string) => t.fetchAs(route, { signal: AbortSignal.timeout(30_000) });

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
    const cancel = await t.fetchAs(`/api/v1/jobs/${before.id}/cancel`, { method: 'POST', ...answerWithin });
    expect(cancel.status).toBe(503);
    // Predictions need no queue: they go on working while it is down.
    const predicted = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: photoForm(catPhotos(1)), ...answerWithin });
    expect(predicted.status).toBe(200);
    expect((await t.fetchAs('/api/v1/models', answerWithin)).status).toBe(200);
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
});
