import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { loadConfig } from '../../src/config/index.js';
import { importFolder } from '../../src/datasets/import-folder.js';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { createAppJobQueue, type JobInfo, type JobQueue } from '../../src/jobs/index.js';
import { JOB, type TrainJobData } from '../../src/jobs/product-jobs.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { datasetParams } from '../../src/training/params.js';
import type { SweepRecord } from '../../src/training/sweep.js';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../support/shared.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const REDIS_URL = 'redis://127.0.0.1:6379';
const queueName = `scale-${randomUUID()}`;

/** The workers run the compiled CLI: rebuild when any source file is newer than it. */
function buildIfStale(): void {
  const newestSource = fs
    .readdirSync(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .reduce((newest, entry) => Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0);
  const built = fs.existsSync(cli) ? fs.statSync(cli).mtimeMs : 0;
  if (built >= newestSource && fs.existsSync(path.join(repoRoot, 'dist', 'cli', 'commands', 'worker.js'))) return;
  try {
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'pipe' });
  } catch (error) {
    // Type errors elsewhere still emit JavaScript; only a missing worker command makes this test meaningless.
    if (!fs.existsSync(path.join(repoRoot, 'dist', 'cli', 'commands', 'worker.js'))) throw error;
  }
}

interface WorkerProcess {
  child: ChildProcess;
  id: string;
  log: string[];
}

function startWorker(configFile: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [cli, '--config', configFile, 'worker'], {
    cwd: repoRoot,
    env: { ...process.env, CATDOG_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const worker: WorkerProcess = { child, id: `${hostname()}-${child.pid}`, log: [] };
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready:\n${worker.log.join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      worker.log.push(line);
      if (line.includes('"worker ready"')) resolve(worker);
    });
  });
}

function runCli(configFile: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, '--config', configFile, ...args], { cwd: repoRoot, env: { ...process.env, CATDOG_LOG_LEVEL: 'warn' }, timeout: timeoutMs, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe.skipIf(skipWithoutShared)('scale-out: two worker processes on one Redis queue, one database and blob store', () => {
  let home: string;
  let configFile: string;
  let app: AppContext;
  let queue: JobQueue;
  let server: RunningServer;
  let datasetId: number;
  const workers: WorkerProcess[] = [];

  const api = async <T>(pathname: string): Promise<T> => {
    const response = await fetch(`${server.url}/api/v1${pathname}`);
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    buildIfStale();
    home = fs.mkdtempSync(path.join(tmpdir(), 'catdog-scale-'));
    const photos = path.join(home, 'photos');
    for (const label of ['cat', 'dog'] as const) {
      fs.mkdirSync(path.join(photos, label), { recursive: true });
      for (const file of kaggleFiles(label, 20)) fs.symlinkSync(file, path.join(photos, label, path.basename(file)));
    }
    configFile = path.join(home, 'config.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        home,
        training: { backbone: smallBackbone, epochs: 6, earlyStoppingPatience: 0 },
        // A short stalled check moves a killed worker's job to the survivor within seconds; the lock stays longer
        // than TensorFlow's start-up blocks a worker's event loop, or live jobs would be taken for dead ones.
        jobs: { kind: 'bullmq', redisUrl: REDIS_URL, queueName, lockDurationMs: 15_000, stalledIntervalMs: 2000 },
        server: { anonymousViewer: true },
      }),
    );
    app = await openApp(loadConfig({ file: configFile }), { logger: createLogger('warn') });
    const report = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, photos);
    expect(report.imported).toBe(40);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    queue = createAppJobQueue(app);
    server = await startServer(app, { port: 0, host: '127.0.0.1', handleSignals: false });
    workers.push(...(await Promise.all([startWorker(configFile), startWorker(configFile)])));
  }, 240_000);

  afterAll(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await queue?.close();
    await server?.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`catdog:${queueName}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('runs a sweep of 4 candidates on both workers, finalizes the best on validation and promotes it', async () => {
    const sweep = await runCli(configFile, ['sweep', '--grid', '{"learningRate":[0.001,0.01],"head":["logistic","mlp"]}', '--dataset', String(datasetId), '--wait', '--json'], 100_000);
    expect(sweep.code, `${sweep.stderr}\n${workers.map((worker) => worker.log.join('\n')).join('\n')}`).toBe(0);
    const record = JSON.parse(sweep.stdout) as SweepRecord;
    expect(record.status).toBe('finished');
    expect(record.candidates).toHaveLength(4);
    expect(record.candidates.every((candidate) => candidate.state === 'completed')).toBe(true);
    // Both processes trained candidates.
    expect(new Set(record.candidates.map((candidate) => candidate.workerId))).toEqual(new Set(workers.map((worker) => worker.id)));

    const best = Math.max(...record.candidates.map((candidate) => candidate.validation!.accuracy));
    const winner = record.candidates[record.winner!.index]!;
    expect(winner.validation!.accuracy).toBe(best);
    const tiedLosses = record.candidates.filter((candidate) => candidate.validation!.accuracy === best).map((candidate) => candidate.validation!.loss);
    expect(winner.validation!.loss).toBe(Math.min(...tiedLosses));

    // Only the winner is registered; nothing served before, so it is promoted.
    const models = await app.db.models.list();
    expect(models.map((model) => model.id)).toEqual([winner.modelId]);
    expect(record.promotion?.promoted).toBe(true);
    expect((await app.db.models.current())?.id).toBe(winner.modelId);
    expect(JSON.parse(new TextDecoder().decode(await app.blobs.get(`sweeps/${record.id}.json`)))).toMatchObject({ status: 'finished', winner: record.winner });

    const completed = await api<{ items: JobInfo[] }>('/jobs?state=completed');
    expect(completed.items.map((job) => job.id).sort()).toEqual([...record.candidates.map((candidate) => candidate.jobId), record.finalJobId].sort());
    const logged = workers.flatMap((worker) => worker.log).filter((line) => line.includes('"job completed"'));
    expect(logged.length).toBe(5);
  }, 120_000);

  it('moves the job of a worker killed mid-training to the other worker, which finishes it', async () => {
    const data: TrainJobData = { datasetId, architecture: 'cnn', epochs: 8 };
    const job = await queue.enqueue(JOB.train, data, { jobId: `train-kill-${randomUUID()}`, attempts: 2 });
    let running: JobInfo | undefined;
    const deadline = Date.now() + 60_000;
    // Mid-training: the worker has reported an epoch.
    while (Date.now() < deadline) {
      running = await api<JobInfo>(`/jobs/${job.id}`);
      if (running.state === 'active' && running.progress > 0.4 && running.workerId !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(running).toMatchObject({ state: 'active' });
    const victim = workers.find((worker) => worker.id === running!.workerId)!;
    const survivor = workers.find((worker) => worker !== victim)!;
    victim.child.kill('SIGKILL');

    const finished = await queue.waitFor(job.id, 90_000);
    expect(finished).toMatchObject({ state: 'completed', workerId: survivor.id });
    const result = finished.result as { modelId: string; runId: string };
    expect(await app.db.models.get(result.modelId)).toMatchObject({ architecture: 'cnn', datasetId });
    expect(await app.db.runs.get(result.runId)).toMatchObject({ status: 'succeeded' });
    expect(survivor.log.some((line) => line.includes('"job started"') && line.includes(job.id))).toBe(true);
  }, 120_000);
});
