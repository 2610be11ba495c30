import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/index.js';
import { openDatabase } from '../../src/db/index.js';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../support/shared.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const chromiumPath = '/usr/bin/chromium';
const screenshots = path.join(repoRoot, 'test-output', 'screenshots');
const skipReason = skipWithoutShared || (fs.existsSync(chromiumPath) ? '' : `${chromiumPath} is missing: apt-get install -y chromium (CI installs it)`);
if (skipReason) console.warn(`skipping the browser feedback loop: ${skipReason}`);

// Debian's Chromium in a closed network: without the networking switches it stalls on background requests.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `catdog serve` exactly as users start it, from the TypeScript sources, on a random port. */
function startCli(home: string): Promise<{ child: ChildProcess; url: string }> {
  const hooks = pathToFileURL(path.join(repoRoot, 'src', 'ml', 'typescript-hooks.mjs')).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  const child = spawn(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--port', '0'],
    {
      cwd: home,
      env: {
        ...process.env,
        CATDOG_HOME: home,
        CATDOG_BACKBONE_URL: smallBackbone,
        CATDOG_TRAINING__PRESET: 'fast',
        CATDOG_LOG_LEVEL: 'warn',
        // Only the first model is promoted by training, so promoting the second is the user's act in the browser.
        CATDOG_TRAINING__PROMOTION__MIN_IMPROVEMENT: '1',
        // The browser runs on this machine: without this it would be a token-less local viewer and never sign in.
        CATDOG_SERVER__LOCAL_VIEWER: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /catdog listening on (http:\/\/\S+)/.exec(stdout);
      if (match) resolve({ child, url: match[1]! });
    });
    child.once('exit', (code) => reject(new Error(`catdog serve exited with ${code}: ${stderr}`)));
  });
}

function form(files: string[], label: string): FormData {
  const body = new FormData();
  for (const file of files) body.append('file', new Blob([fs.readFileSync(file)]), path.basename(file));
  body.append('label', label);
  return body;
}

async function waitForRun(url: string, runId: string, auth: Record<string, string>): Promise<{ status: string; modelId: string | null }> {
  for (;;) {
    const run = (await (await fetch(`${url}/api/v1/training-runs/${runId}`, { headers: auth })).json()) as { status: string; modelId: string | null };
    if (run.status !== 'queued' && run.status !== 'running') return run;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe.skipIf(skipReason)('the feedback loop in a browser', () => {
  let home: string;
  let server: { child: ChildProcess; url: string };
  let browser: Browser;
  let page: Page;
  let firstModelId: string;
  let adminToken: string;
  const auth = () => ({ Authorization: `Bearer ${adminToken}` });
  const consoleErrors: string[] = [];

  const shoot = (name: string) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    fs.mkdirSync(screenshots, { recursive: true });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-e2e-'));
    server = await startCli(home);
    // The first way in, as docs/security.md tells a new installation: a token made offline on the database.
    const database = await openDatabase(`sqlite:${path.join(home, 'catdog.db')}`);
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
    expect(run.status).toBe('succeeded');
    firstModelId = run.modelId!;
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (server?.child.exitCode === null) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
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
    const database = await openDatabase(`sqlite:${path.join(home, 'catdog.db')}`);
    try {
      await database.models.promote(firstModelId, { reason: 'rollback from another process', actor: 'e2e' });
    } finally {
      await database.close();
    }
    await expect
      .poll(async () => ((await (await fetch(`${server.url}/api/v1/models`, { headers: auth() })).json()) as { servingModelId: string }).servingModelId, { timeout: 10_000 })
      .toBe(firstModelId);

    await page.goto(`${server.url}/api/docs`);
    await expect.poll(() => page.locator('.operation').count()).toBeGreaterThan(20);
    await shoot('api-docs');

    // CSP violations (an inline script or style) show up here too.
    expect(consoleErrors).toEqual([]);
  }, 300_000);

  it('shuts down cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
