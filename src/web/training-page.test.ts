import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importKagglePhotos } from '../../test/support/app.js';
import { skipBrowser, collectPageErrors, fitsViewportWidth, launchChromium, signIn, VIEWPORTS } from '../../test/support/browser.js';
import { catPhotos, photoForm, startTestServer, type TestServer } from '../../test/support/server.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import type { AppContext } from '../app/context.js';
import { evaluatedRunMetrics } from '../db/index.js';
import { datasetParams } from '../training/params.js';

interface ChartGlobal {
  Chart: { getChart(id: string): { data: { labels: unknown[] } } | undefined };
}

/** Real runs on the small shared backbone, started from the page and through the API, followed by the page. */
describe.skipIf(skipBrowser)('the Training page in Chromium', () => {
  let t: TestServer;
  let app: AppContext;
  let origin: string;
  let browser: Browser;
  let firstRunId: string;
  let tokens: TestServer['tokens'];

  const runStatus = async (id: string) => (await app.db.runs.get(id))?.status;

  beforeAll(async () => {
    // The whole server as `catdog serve` runs it: training goes to its own worker process, not this event loop.
    t = await startTestServer();
    ({ app, tokens } = t);
    origin = t.server.url;
    await importKagglePhotos(app, path.join(t.home, 'photos'), 12, 600);
    const datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    const started = await t.fetchAs('/api/v1/training-runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ datasetId, epochs: 2, learningRate: 0.001 }) });
    firstRunId = ((await started.json()) as { id: string }).id;
    while ((await runStatus(firstRunId)) !== 'succeeded') {
      const status = await runStatus(firstRunId);
      if (status !== 'queued' && status !== 'running') throw new Error(`the first run ended ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('follows a run started on the page, refreshes the history when it ends, keeps its curves after a reload and compares parameters (desktop, admin)', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.desktop });
    const errors = collectPageErrors(page);
    await signIn(page, origin, tokens.admin, '/training');
    // Nothing runs: the last run's curves are drawn from its stored epochs.
    await expect.poll(() => page.locator('#run-status').textContent()).toBe(`last run ${firstRunId}: succeeded, test accuracy ${(evaluatedRunMetrics((await app.db.runs.get(firstRunId))!.metrics)!.accuracy * 100).toFixed(1)}%`);
    const epochsShown = () => page.evaluate(() => (globalThis as unknown as ChartGlobal).Chart.getChart('loss-chart')!.data.labels.length);
    expect(await epochsShown()).toBe((await app.db.runs.epochs(firstRunId)).length);

    expect(await page.locator('#run-history tbody tr').count()).toBe(1);
    await page.fill('input[name="epochs"]', '2');
    await page.fill('input[name="learningRate"]', '0.01');
    await page.click('#train-form button[type="submit"]');
    // While the run the page started trains, the server answers as usual: training runs in its worker process.
    const running = async () => (await app.db.runs.list({ limit: 1, offset: 0 })).items[0]!;
    await expect.poll(async () => (await running()).status, { timeout: 60_000, interval: 50 }).toBe('running');
    const photo = catPhotos(1, 700)[0]!;
    const trainer = (await running()).owner;
    expect(trainer).not.toBe(`${os.hostname()}:${process.pid}`);
    let probes = 0;
    for (let probe = 0; probe < 5 && (probe === 0 || (await running()).status === 'running'); probe += 1) {
      probes += 1;
      const asked = Date.now();
      expect((await t.fetchAs('/api/v1/health')).status).toBe(200);
      const prediction = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: photoForm([photo]) });
      expect(prediction.status).toBe(200);
      expect(((await prediction.json()) as { predictions: { label: string }[] }).predictions[0]!.label).toMatch(/^(cat|dog|neither)$/);
      // Before training left the server, a health check waited 25-51 s behind a training; seconds here means blocked.
      expect(Date.now() - asked).toBeLessThan(5_000);
    }
    expect(probes).toBeGreaterThan(0);
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
