import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { browserSkipReason, collectPageErrors, fitsViewportWidth, launchChromium, signIn, VIEWPORTS } from '../../test/support/browser.js';
import { createToken, ROLES, type Role } from '../auth/index.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { createServer } from '../server/app.js';
import { webUi } from './index.js';
import { ModelServer } from '../serving/model-server.js';
import { datasetParams } from '../training/params.js';
import { RunManager } from '../training/run-manager.js';

interface ChartGlobal {
  Chart: { getChart(id: string): { data: { labels: unknown[] } } | undefined };
}

/** Real runs on the small shared backbone, started from the page and through the API, followed by the page. */
describe.skipIf(browserSkipReason)('the Training page in Chromium', () => {
  let app: TestApp;
  let runs: RunManager;
  let http: ServerType;
  let origin: string;
  let browser: Browser;
  let firstRunId: string;
  const tokens = {} as Record<Role, string>;

  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 12, 600);
    const datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    const models = new ModelServer({ db: app.db, blobs: app.blobs, backbones: app.backbones, logger: app.logger, defaultBackbone: app.config.training.backbone });
    runs = new RunManager(app);
    const hono = createServer(app, { web: webUi, models, runs });
    http = serve({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((resolve) => http.once('listening', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    for (const role of ROLES) tokens[role] = (await createToken(app.db, role, `training page ${role}`)).secret;
    firstRunId = (await runs.submit({ datasetId, epochs: 2, learningRate: 0.001 })).id;
    while ((await app.db.runs.get(firstRunId))?.status !== 'succeeded') {
      const status = (await app.db.runs.get(firstRunId))?.status;
      if (status !== 'queued' && status !== 'running') throw new Error(`the first run ended ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => http?.close(resolve));
    await app?.dispose();
  });

  it('follows a run started on the page, refreshes the history when it ends, keeps its curves after a reload and compares parameters (desktop, admin)', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.desktop });
    const errors = collectPageErrors(page);
    await signIn(page, origin, tokens.admin, '/training');
    // Nothing runs: the last run's curves are drawn from its stored epochs.
    await expect.poll(() => page.locator('#run-status').textContent()).toBe(`last run ${firstRunId}: succeeded, test accuracy ${(Number((await app.db.runs.get(firstRunId))!.metrics!.accuracy) * 100).toFixed(1)}%`);
    const epochsShown = () => page.evaluate(() => (globalThis as unknown as ChartGlobal).Chart.getChart('loss-chart')!.data.labels.length);
    expect(await epochsShown()).toBe((await app.db.runs.epochs(firstRunId)).length);

    expect(await page.locator('#run-history tbody tr').count()).toBe(1);
    await page.fill('input[name="epochs"]', '2');
    await page.fill('input[name="learningRate"]', '0.01');
    await page.click('#train-form button[type="submit"]');
    await expect.poll(() => page.locator('#run-status').textContent(), { timeout: 120_000 }).toContain('finished');
    // The history refreshed itself: the new run is there, finished, without a reload.
    await expect.poll(() => page.locator('#run-history tbody tr').count()).toBe(2);
    const newRunId = await page.locator('#run-history tbody tr').first().getAttribute('data-run-id');
    expect(newRunId).not.toBe(firstRunId);
    await expect.poll(() => page.locator(`tr[data-run-id="${newRunId}"] .status`).textContent()).toBe('succeeded');
    expect(await page.locator(`tr[data-run-id="${newRunId}"] td.promotion`).textContent()).toMatch(/^(promoted|not promoted: .+)$/);

    await page.reload();
    await expect.poll(() => page.locator('#run-status').textContent()).toContain(`last run ${newRunId}: succeeded`);
    expect(await epochsShown()).toBe((await app.db.runs.epochs(newRunId!)).length);

    for (const id of [firstRunId, newRunId!]) await page.check(`input[name="compare"][value="${id}"]`);
    await page.click('#compare-button');
    const parameters = page.locator('#compare-params');
    await expect.poll(() => parameters.isVisible()).toBe(true);
    // In the history's order: newest first.
    expect(await parameters.locator('th').allTextContents()).toEqual(['parameter', newRunId, firstRunId]);
    const learningRate = parameters.locator('tr', { hasText: 'learningRate' });
    expect(await learningRate.locator('td').allTextContents()).toEqual(['learningRate', '0.01', '0.001']);
    expect(await learningRate.getAttribute('class')).toBe('differs');
    expect(await parameters.locator('tr', { hasText: 'epochs' }).getAttribute('class')).toBeNull();
    const comparedRuns = await page.evaluate(() => (globalThis as unknown as { Chart: { getChart(id: string): { data: { datasets: unknown[] } } } }).Chart.getChart('compare-accuracy-chart')!.data.datasets.length);
    expect(comparedRuns).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  for (const [role, viewport] of [['viewer', 'phone'], ['viewer', 'desktop']] as const) {
    it(`shows a ${role} Start training disabled with the role it needs (${viewport})`, async () => {
      const page = await browser.newPage({ viewport: VIEWPORTS[viewport] });
      const errors = collectPageErrors(page);
      await signIn(page, origin, tokens[role], '/training');
      const start = page.locator('#train-form button[type="submit"]');
      expect(await start.isDisabled()).toBe(true);
      expect(await page.locator('#train-form .needs-role').textContent()).toBe('needs admin');
      expect(await page.locator('header .role-badge').textContent()).toBe(role);
      expect(await fitsViewportWidth(page)).toBe(true);
      expect(errors).toEqual([]);
      await page.close();
    });
  }
});
