import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { loadConfig } from '../../src/config/index.js';
import { importFolder } from '../../src/datasets/import-folder.js';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { modelIdForJob } from '../../src/training/attempts.js';
import type { JobInfo } from '../../src/jobs/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { datasetParams } from '../../src/training/params.js';
import type { SweepRecord } from '../../src/training/sweep.js';
import { webUi } from '../../src/web/index.js';
import { createToken } from '../../src/auth/index.js';
import { launchChromium, signIn, skipBrowser } from '../support/browser.js';
import { builtCli } from '../support/cli.js';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../support/shared.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const queueName = `scale-${randomUUID()}`;

/** The workers run the compiled CLI: rebuild when any source file is newer than it. */
function buildIfStale(): void {
  const newestSource = fs
    .readdirSync(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .reduce((newest, entry) => Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0);
  const built = fs.existsSync(builtCli) ? fs.statSync(builtCli).mtimeMs : 0;
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
  /** Its stdout and stderr lines (JSON log lines), printed when an assertion fails. */
  log: string[];
}

function startWorker(configFile: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [builtCli, '--config', configFile, 'worker'], {
    cwd: repoRoot,
    env: { ...process.env, CATDOG_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker: WorkerProcess = { child, id: `${hostname()}-${child.pid}`, log: [] };
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before it was ready:\n${worker.log.join('\n')}`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        worker.log.push(line);
        if (line.includes('"worker ready"')) resolve(worker);
      });
    }
  });
}

interface CliRun {
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function startCli(configFile: string, args: string[], timeoutMs: number): CliRun {
  const child = spawn(process.execPath, [builtCli, '--config', configFile, ...args], { cwd: repoRoot, env: { ...process.env, CATDOG_LOG_LEVEL: 'warn' }, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const run: CliRun = { stdout: '', stderr: '', exited: new Promise((resolve) => child.once('exit', resolve)) };
  child.stdout.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

interface LogLine {
  msg: string;
  jobId?: string;
  attempt?: number;
}

const logLines = (worker: WorkerProcess): LogLine[] =>
  worker.log.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as LogLine);

async function until<T>(what: string, look: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await look();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe.skipIf(skipWithoutShared)('scale-out: two worker processes on one Redis queue, one database and blob store', () => {
  let home: string;
  let configFile: string;
  let app: AppContext;
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
        // The CNN candidates train on 64 px photos (the transfer ones decode at the backbone's 224 px): seconds per
        // epoch. Small batches keep each synchronous TensorFlow step short, so lock renewals run on time.
        dataset: { imageSize: 64 },
        training: { preset: 'fast', backbone: smallBackbone, epochs: 6, earlyStoppingPatience: 0, batchSize: 8 },
        // Shorter than the 30 s default so a killed worker's job moves within seconds; still several training steps
        // long, so a live worker never loses its job (every job below must start exactly once, bar the killed one).
        jobs: { kind: 'bullmq', redisUrl: REDIS_URL, queueName, lockDurationMs: 12_000, stalledIntervalMs: 1000 },
        server: { anonymousViewer: true },
      }),
    );
    app = await openApp(loadConfig({ file: configFile }), { logger: createLogger('warn') });
    const report = await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, photos);
    expect(report.imported).toBe(40);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    server = await startServer(app, { web: webUi, port: 0, handleSignals: false });
    workers.push(...(await Promise.all([startWorker(configFile), startWorker(configFile)])));
  }, 120_000);

  afterAll(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await server?.close();
    await app?.close();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`catdog:${queueName}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('trains 4 sweep candidates on both workers; a worker killed mid-candidate loses it to the other; the best is promoted, nothing lost or doubled', async () => {
    // Two transfer candidates (seconds each) and two CNN candidates trained from pixels: long enough to be killed mid-way.
    const grid = { architecture: ['mobilenet', 'cnn'], learningRate: [0.001, 0.01] };
    const sweep = startCli(configFile, ['sweep', '--grid', JSON.stringify(grid), '--dataset', String(datasetId), '--wait', '--json', '--timeout', '2'], 110_000);
    onTestFailed(() => {
      console.error(`catdog sweep:\n${sweep.stderr}\n${sweep.stdout}`);
      for (const worker of workers) console.error(`worker ${worker.id}:\n${worker.log.join('\n')}`);
    });

    // Mid-training: a CNN candidate that has finished an epoch and has more to go ("epoch 2 of 6" once it ends, then
    // "epoch 3 of 6: batch 4 of 9" while the next one trains).
    const target = await until(
      'a CNN candidate past its first epoch',
      async () => {
        const { items } = await api<{ items: JobInfo<{ params: { architecture: string } }>[] }>('/jobs?state=active');
        return items.find((job) => job.data.params.architecture === 'cnn' && /^epoch ([1-4] of 6|[2-5] of 6: batch \d+ of \d+)$/.test(job.progressMessage ?? '') && job.workerId !== undefined);
      },
      90_000,
    );
    const victim = workers.find((worker) => worker.id === target.workerId)!;
    const survivor = workers.find((worker) => worker !== victim)!;
    victim.child.kill('SIGKILL');

    expect(await sweep.exited, 'catdog sweep exit code').toBe(0);
    const record = JSON.parse(sweep.stdout) as SweepRecord;
    expect(record.status).toBe('finished');
    // No candidate missing.
    expect(record.candidates.map((candidate) => candidate.state)).toEqual(['completed', 'completed', 'completed', 'completed']);

    // The killed candidate was started again and finished by the survivor; its first run is marked interrupted.
    const killed = await api<JobInfo>(`/jobs/${target.id}`);
    expect(killed).toMatchObject({ state: 'completed', workerId: survivor.id, attempts: 2 });
    const runIds = (JSON.parse(new TextDecoder().decode(await app.blobs.get(`jobs/${target.id}/runs.json`))) as { runIds: string[] }).runIds;
    expect(runIds).toHaveLength(2);
    expect(await app.db.runs.get(runIds[0]!)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^interrupted/) });
    expect(await app.db.runs.get(runIds[1]!)).toMatchObject({ status: 'succeeded' });

    // Both workers did work; every job started once, bar the killed attempt, and completed once.
    const started = workers.map((worker) => logLines(worker).filter((line) => line.msg === 'job started'));
    expect(started.every((lines) => lines.length > 0)).toBe(true);
    expect(logLines(victim).some((line) => line.msg === 'job started' && line.jobId === target.id && line.attempt === 1)).toBe(true);
    expect(logLines(survivor).some((line) => line.msg === 'job started' && line.jobId === target.id && line.attempt === 2)).toBe(true);
    const jobIds = [...record.candidates.map((candidate) => candidate.jobId), record.finalJobId!];
    expect(started.flat().map((line) => line.jobId).sort()).toEqual([...jobIds, target.id].sort());
    const completed = workers.flatMap((worker) => logLines(worker).filter((line) => line.msg === 'job completed'));
    expect(completed.map((line) => line.jobId).sort()).toEqual([...jobIds].sort());

    // The winner is the best on validation (ties to the lower loss), the only model registered, and serving.
    const best = Math.max(...record.candidates.map((candidate) => candidate.validation!.accuracy));
    const winner = record.candidates[record.winner!.index]!;
    expect(winner.validation!.accuracy).toBe(best);
    const tiedLosses = record.candidates.filter((candidate) => candidate.validation!.accuracy === best).map((candidate) => candidate.validation!.loss);
    expect(winner.validation!.loss).toBe(Math.min(...tiedLosses));
    expect((await app.db.models.list()).map((model) => model.id)).toEqual([winner.modelId]);
    expect(record.promotion?.promoted).toBe(true);
    expect((await app.db.models.current())?.id).toBe(winner.modelId);
    expect(JSON.parse(new TextDecoder().decode(await app.blobs.get(`sweeps/${record.id}.json`)))).toMatchObject({ status: 'finished', winner: record.winner });

    // One set of model files per candidate: the retried one overwrote its killed attempt's, it did not add a model.
    expect(record.candidates.map((candidate) => candidate.modelId)).toEqual(record.candidates.map((candidate) => modelIdForJob(candidate.jobId)));
    const modelFolders = new Set((await app.blobs.list('models/')).map((key) => key.split('/')[1]));
    expect([...modelFolders].sort()).toEqual(record.candidates.map((candidate) => candidate.modelId!).sort());

    const { items } = await api<{ items: JobInfo[] }>('/jobs?state=completed');
    expect(items.map((job) => job.id).sort()).toEqual([...jobIds].sort());
  }, 120_000);

  it.skipIf(skipBrowser)('runs a training started on the web UI\'s Training page on a worker process, not in the server', async () => {
    const admin = (await createToken(app.db, 'admin', 'scale test')).secret;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await signIn(page, server.url, admin, '/training');
      await page.fill('input[name="epochs"]', '2');
      await page.selectOption('select[name="architecture"]', 'mobilenet');
      await page.click('#train-form button[type="submit"]');
      await expect.poll(() => page.locator('#run-status').textContent(), { timeout: 90_000 }).toContain('finished');
    } finally {
      await browser.close();
    }
    const run = (await app.db.runs.list({ limit: 1, offset: 0 })).items[0]!;
    expect(run).toMatchObject({ status: 'succeeded', jobId: `train-${run.id}` });
    const job = await api<JobInfo>(`/jobs/${run.jobId}`);
    expect(job).toMatchObject({ name: 'train', state: 'completed' });
    // Trained by one of the two `catdog worker` processes, whose pid the run recorded as its owner.
    const trainer = workers.find((worker) => worker.id === job.workerId);
    expect(trainer, `job ran on ${job.workerId}`).toBeDefined();
    expect(run.owner).toBe(`${hostname()}:${trainer!.child.pid}`);
    expect(run.owner).not.toBe(`${hostname()}:${process.pid}`);
  }, 120_000);
});
