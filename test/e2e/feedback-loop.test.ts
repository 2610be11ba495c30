import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/index.js';
import { openDatabase } from '../../src/db/index.js';
import { launchChromium, skipBrowser, startCatdog, stopProcess } from '../support/browser.js';
import { startTestS3Server } from '../support/s3-server.js';
import { kaggleFiles, smallBackbone } from '../support/shared.js';

const POSTGRES_ADMIN_URL = process.env.CATDOG_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = 'redis://127.0.0.1:6379';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const screenshots = path.join(repoRoot, 'test-output', 'screenshots');
if (skipBrowser) console.warn(`skipping the browser feedback loop: ${skipBrowser}`);

/** Where the app keeps its data, and the processes beside `catdog serve` that it needs. */
interface Stack {
  env: Record<string, string>;
  databaseUrl: string;
  /** Started once `catdog serve` has migrated the database. */
  startWorkers(home: string, env: Record<string, string>): Promise<ChildProcess[]>;
  dispose(): Promise<void>;
}

const embeddedDefaults = async (home: string): Promise<Stack> => ({
  // On embedded defaults `catdog serve` starts its own worker process.
  env: {},
  databaseUrl: `sqlite:${path.join(home, 'catdog.db')}`,
  startWorkers: async () => [],
  dispose: async () => {},
});

/** What a team deploys: PostgreSQL, an S3-compatible bucket (s3rver) and BullMQ on Redis, with a separate `catdog worker`. */
async function serverStack(): Promise<Stack> {
  const name = `catdog_e2e_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const s3 = await startTestS3Server('catdog-e2e');
  const { bucket, prefix, endpoint, credentials } = s3.storeOptions;
  const queueName = `e2e-${randomUUID()}`;
  const databaseUrl = POSTGRES_ADMIN_URL.replace(/\/test$/, `/${name}`);
  return {
    env: {
      CATDOG_DATABASE_URL: databaseUrl,
      CATDOG_STORAGE__KIND: 's3',
      CATDOG_STORAGE__BUCKET: bucket,
      CATDOG_STORAGE__PREFIX: prefix ?? '',
      CATDOG_STORAGE__ENDPOINT: endpoint!,
      CATDOG_STORAGE__FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: credentials!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials!.secretAccessKey,
      CATDOG_JOBS__KIND: 'bullmq',
      CATDOG_REDIS_URL: REDIS_URL,
      CATDOG_JOBS__QUEUE_NAME: queueName,
    },
    databaseUrl,
    startWorkers: async (home, env) => [(await startCatdog(home, ['worker'], { ...env, CATDOG_LOG_LEVEL: 'info' }, /"worker ready"/)).child],
    async dispose() {
      await s3.stop();
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`catdog:${queueName}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

function form(files: string[], label: string): FormData {
  const body = new FormData();
  for (const file of files) body.append('file', new Blob([fs.readFileSync(file)]), path.basename(file));
  body.append('label', label);
  return body;
}

async function waitForRun(url: string, runId: string, auth: Record<string, string>): Promise<{ status: string; modelId: string | null; error?: string | null }> {
  for (;;) {
    const run = (await (await fetch(`${url}/api/v1/training-runs/${runId}`, { headers: auth })).json()) as { status: string; modelId: string | null; error?: string | null };
    if (run.status !== 'queued' && run.status !== 'running') return run;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe.skipIf(skipBrowser).each([
  { stackName: 'embedded defaults', makeStack: embeddedDefaults },
  { stackName: 'PostgreSQL + S3 + BullMQ with a catdog worker', makeStack: serverStack },
])('the feedback loop in a browser on $stackName', ({ stackName, makeStack }) => {
  let home: string;
  let server: { child: ChildProcess; url: string };
  let stack: Stack;
  let workers: ChildProcess[] = [];
  let browser: Browser;
  let page: Page;
  let firstModelId: string;
  let adminToken: string;
  const auth = () => ({ Authorization: `Bearer ${adminToken}` });
  const consoleErrors: string[] = [];

  const shoot = (name: string) => page.screenshot({ path: path.join(screenshots, `${name}${stackName === 'embedded defaults' ? '' : '-server-stack'}.png`), fullPage: true });

  beforeAll(async () => {
    fs.mkdirSync(screenshots, { recursive: true });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-e2e-'));
    stack = await makeStack(home);
    const env = {
      CATDOG_HOME: home,
      CATDOG_BACKBONE_URL: smallBackbone,
      CATDOG_LOG_LEVEL: 'warn',
      // Only the first model is promoted by training, so promoting the second is the user's act in the browser.
      CATDOG_TRAINING__PROMOTION__MIN_IMPROVEMENT: '1',
      // The browser runs on this machine: without this it would be a token-less local viewer and never sign in.
      CATDOG_SERVER__LOCAL_VIEWER: 'false',
      ...stack.env,
    };
    const serve = await startCatdog(home, ['serve', '--port', '0'], env, /catdog listening on (http:\/\/\S+)/);
    server = { child: serve.child, url: serve.match[1]! };
    workers = await stack.startWorkers(home, env);
    // The first way in, as docs/security.md tells a new installation: a token made offline on the database.
    const database = await openDatabase(stack.databaseUrl);
    try {
      adminToken = (await createToken(database, 'admin', 'e2e')).secret;
    } finally {
      await database.close();
    }
    for (const label of ['cat', 'dog'] as const) {
      const response = await fetch(`${server.url}/api/v1/images`, { method: 'POST', headers: auth(), body: form(kaggleFiles(label, 20, 100), label) });
      expect(response.status).toBe(201);
    }
    const started = (await (await fetch(`${server.url}/api/v1/training-runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...auth() },
      body: JSON.stringify({ epochs: 2 }),
    })).json()) as { id: string };
    const run = await waitForRun(server.url, started.id, auth());
    expect(run.status, JSON.stringify(run)).toBe('succeeded');
    firstModelId = run.modelId!;
    // The server learns of a promotion made by another process on its next look at the database, then loads the model.
    const servingModel = async () => ((await (await fetch(`${server.url}/api/v1/health`)).json()) as { servingModelId?: string }).servingModelId;
    for (const deadline = Date.now() + 60_000; (await servingModel()) !== firstModelId; ) {
      if (Date.now() > deadline) throw new Error(`the server still serves ${await servingModel()} a minute after ${firstModelId} was promoted`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await stopProcess(server?.child);
    for (const worker of workers) await stopProcess(worker);
    await stack?.dispose();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('predicts, takes a correction, grows the data set, trains with live curves, and serves the promoted model', async () => {
    const [cat] = kaggleFiles('cat', 1, 300);
    const [dog] = kaggleFiles('dog', 1, 300);

    await page.goto(server.url);
    expect(page.url()).toContain('/signin');
    await page.fill('input[name="token"]', adminToken);
    await page.click('form.signin button[type="submit"]');
    await page.waitForURL(`${server.url}/`);
    await page.setInputFiles('#file-input', [cat!, dog!]);
    const catResult = page.locator('.result', { hasText: path.basename(cat!) });
    await expect.poll(() => catResult.locator('.verdict').textContent(), { timeout: 30_000 }).toMatch(/^\d+\.\d% (cat|dog)$/);
    expect(await catResult.locator('.model').textContent()).toContain(firstModelId);
    await catResult.locator('button[data-label="cat"]').click();
    await expect.poll(() => catResult.locator('.feedback').textContent()).toBe('saved: cat');
    await shoot('predict');

    await page.goto(`${server.url}/dataset`);
    expect(await page.locator('#count-cat').textContent()).toBe('21');
    await expect.poll(() => page.locator('#preview img').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await page.selectOption('select[name="label"]', 'cat');
    await expect.poll(() => page.locator('#thumbnails p.muted').textContent()).toContain('21 photos labelled cat');
    await shoot('dataset');

    await page.goto(`${server.url}/review`);
    await expect.poll(() => page.locator('#review-item').isVisible()).toBe(true);
    const pendingBefore = Number(await page.locator('#pending-count').textContent());
    await page.keyboard.press('d');
    await expect.poll(async () => Number(await page.locator('#pending-count').textContent())).toBe(pendingBefore - 1);
    await shoot('review');

    await page.goto(`${server.url}/training`);
    await page.fill('input[name="epochs"]', '3');
    await page.click('#train-form button[type="submit"]');
    await expect.poll(() => page.locator('#run-status').textContent(), { timeout: 120_000 }).toMatch(/epoch \d|finished/);
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as { Chart: { getChart(id: string): { data: { labels: unknown[] } } } }).Chart.getChart('loss-chart')!.data.labels.length)).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#run-status').textContent(), { timeout: 120_000 }).toContain('finished');
    const newModelId = await page.locator('#run-status').getAttribute('data-finished-model');
    expect(newModelId).toMatch(/^mdl_/);
    expect(newModelId).not.toBe(firstModelId);
    await shoot('training');

    await page.goto(`${server.url}/models`);
    const row = page.locator(`tr[data-model-id="${newModelId}"]`);
    await expect.poll(() => row.count()).toBe(1);
    // Promoting a model that scores below the serving one asks first (naming the drop): this test means it.
    page.once('dialog', (dialog) => void dialog.accept());
    await row.locator('button.promote').click();
    await expect.poll(() => page.locator(`tr[data-model-id="${newModelId}"] .status`).textContent()).toBe('serving');
    await expect.poll(() => page.locator('#roc-status').textContent(), { timeout: 30_000 }).toContain('thresholds');
    await shoot('models');

    await page.goto(`${server.url}/jobs`);
    await shoot('jobs');

    await page.goto(server.url);
    await page.setInputFiles('#file-input', [kaggleFiles('cat', 1, 301)[0]!]);
    await expect.poll(() => page.locator('.result .model').first().textContent(), { timeout: 30_000 }).toContain(newModelId!);

    // A promotion made by another process (here: this test, on the same database) is served within seconds.
    const database = await openDatabase(stack.databaseUrl);
    try {
      await database.models.promote(firstModelId, { reason: 'rollback from another process', actor: 'e2e' });
    } finally {
      await database.close();
    }
    await expect
      .poll(async () => ((await (await fetch(`${server.url}/api/v1/models`, { headers: auth() })).json()) as { servingModelId: string }).servingModelId, { timeout: 10_000 })
      .toBe(firstModelId);

    await page.goto(`${server.url}/api/docs`);
    // The page renders once /api/openapi.json, generated per request, has come back: seconds on a busy machine.
    await expect.poll(() => page.locator('.operation').count(), { timeout: 30_000 }).toBeGreaterThan(20);
    await shoot('api-docs');

    // CSP violations (an inline script or style) show up here too.
    expect(consoleErrors).toEqual([]);
  }, 300_000);

  it('shuts down cleanly on SIGTERM', async () => {
    expect(await stopProcess(server.child)).toBe(0);
  });
});
