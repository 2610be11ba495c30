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

  it('at phone size, starts a CNN run whose progress bar moves within the first epoch, batch by batch (admin)', async () => {
    // More photos than the first runs had, trained one at a time: the epoch is over a hundred batches and lasts
    // seconds, while the worker reports at most twice a second and the server polls once a second.
    await importKagglePhotos(app, path.join(t.home, 'more-photos'), 100, 800);
    const page = await browser.newPage({ viewport: VIEWPORTS.phone });
    const errors = collectPageErrors(page);
    await signIn(page, origin, tokens.admin, '/training');
    expect(await fitsViewportWidth(page)).toBe(true);
    // Every line the live panel shows, with where its bar stood then (the stage handler sets both in one task).
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null; value?: number; hidden?: boolean } } }).document;
      const samples: { text: string; value: number; hidden: boolean }[] = [];
      (globalThis as unknown as { progressSamples: typeof samples }).progressSamples = samples;
      const status = doc.getElementById('run-status');
      const bar = doc.getElementById('run-progress');
      const Observer = (globalThis as unknown as { MutationObserver: new (callback: () => void) => { observe(target: unknown, options: unknown): void } }).MutationObserver;
      new Observer(() => samples.push({ text: status.textContent ?? '', value: bar.value ?? 0, hidden: bar.hidden ?? true })).observe(status, { childList: true, characterData: true, subtree: true });
    });
    await page.selectOption('select[name="architecture"]', 'cnn');
    await page.fill('input[name="epochs"]', '1');
    await page.fill('input[name="batchSize"]', '1');
    await page.click('#train-form button[type="submit"]');
    const status = page.locator('#run-status');
    await expect.poll(() => status.textContent(), { timeout: 60_000, interval: 100 }).toMatch(/epoch 1 of 1: batch \d+ of \d+$/);
    // While it trains, the long status line wraps instead of widening the page.
    expect(await fitsViewportWidth(page)).toBe(true);
    // The history row of the run says it runs (it was queued when the page started it).
    const runId = (await page.locator('#live').getAttribute('data-follow-run'))!;
    await expect.poll(() => page.locator(`tr[data-run-id="${runId}"] .status`).textContent(), { timeout: 10_000 }).toMatch(/^(running|succeeded)$/);
    await expect.poll(() => status.textContent(), { timeout: 180_000 }).toContain('finished');
    const samples = await page.evaluate(() => (globalThis as unknown as { progressSamples: { text: string; value: number; hidden: boolean }[] }).progressSamples);
    const firstEpochEnd = samples.findIndex((sample) => /: epoch 1\/1,/.test(sample.text));
    expect(firstEpochEnd, samples.map((sample) => sample.text).join('\n')).toBeGreaterThan(0);
    const withinEpoch = samples.slice(0, firstEpochEnd).filter((sample) => /epoch 1 of 1: batch \d+ of \d+$/.test(sample.text));
    const fractions = [...new Set(withinEpoch.map((sample) => sample.value))];
    expect(fractions.length, withinEpoch.map((sample) => `${sample.text} @ ${sample.value}`).join('\n')).toBeGreaterThanOrEqual(2);
    // The bar shows the whole run's fraction: training's share lies after extraction (0.4) and before evaluation (0.9).
    for (const fraction of fractions) {
      expect(fraction).toBeGreaterThan(0.4);
      expect(fraction).toBeLessThanOrEqual(0.9);
    }
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(withinEpoch.every((sample) => !sample.hidden)).toBe(true);
    const batches = withinEpoch.map((sample) => Number(/batch (\d+) of/.exec(sample.text)![1]));
    expect(batches).toEqual([...batches].sort((a, b) => a - b));
    expect(await fitsViewportWidth(page)).toBe(true);
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
