import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { skipBrowser, collectPageErrors, fitsViewportWidth, launchChromium, signIn, VIEWPORTS } from '../../test/support/browser.js';
import { createToken, revokeToken, ROLES, type Role } from '../auth/index.js';
import type { ModelRow } from '../db/index.js';
import { buildDatasetVersion, loadManifest } from '../datasets/versions.js';
import { binaryMetrics } from '../ml/index.js';
import { compareModels, evaluateModelOn } from '../registry/comparison.js';
import { degenerateReason } from '../registry/degenerate.js';
import { promoteIfBetter } from '../registry/promotion.js';
import { createServer } from '../server/app.js';
import { webUi } from './index.js';
import { withBearer } from '../../test/support/server.js';
import { ModelServer } from '../serving/model-server.js';
import { datasetParams, resolveTrainingParams, type TrainingOverrides } from '../training/params.js';
import { trainOnDataset } from '../training/run-training.js';

/** `CATDOG_SCREENSHOTS=docs/screenshots` (scripts/models-screenshots.sh) keeps the comparison's pictures for the docs. */
const screenshotFolder = process.env.CATDOG_SCREENSHOTS;

/**
 * Two real models (transfer learning on the small shared backbone, and a small CNN) trained on dataset v1, then
 * compared on v2, a version with more photos that neither was measured on: the registry's per-model accuracies
 * come from different test splits, the comparison's from one.
 */
describe.skipIf(skipBrowser)('the Models page in Chromium', () => {
  let app: TestApp;
  let http: ServerType;
  let origin: string;
  let browser: Browser;
  let transfer: ModelRow;
  let cnn: ModelRow;
  let newVersion: number;
  const tokens = {} as Record<Role, string>;

  const request = (pathAndQuery: string, init: RequestInit = {}, role: Role = 'admin') => fetch(`${origin}${pathAndQuery}`, withBearer(tokens[role], init));

  beforeAll(async () => {
    // A test share large enough that the two versions' test splits clearly differ and the models can disagree.
    app = await createTestApp({ CATDOG_DATASET__SPLIT__TRAIN: '0.5', CATDOG_DATASET__SPLIT__VALIDATION: '0.2', CATDOG_DATASET__SPLIT__TEST: '0.3' });
    await importKagglePhotos(app, path.join(app.home, 'photos-1'), 16, 200);
    const firstVersion = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    const train = async (overrides: TrainingOverrides) => (await trainOnDataset(app, { datasetId: firstVersion, params: resolveTrainingParams(app.config, overrides) })).model;
    transfer = await train({ epochs: 3 });
    cnn = await train({ architecture: 'cnn', imageSize: 32, epochs: 1 });
    await importKagglePhotos(app, path.join(app.home, 'photos-2'), 16, 400);
    newVersion = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;

    const models = new ModelServer({ db: app.db, blobs: app.blobs, backbones: app.backbones, logger: app.logger, defaultBackbone: app.config.training.backbone });
    const hono = createServer(app, { web: webUi, models });
    http = serve({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((resolve) => http.once('listening', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    for (const role of ROLES) tokens[role] = (await createToken(app.db, role, `models page ${role}`)).secret;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => http?.close(resolve));
    await app?.dispose();
  });

  async function openModels(role: Role, viewport: keyof typeof VIEWPORTS): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: VIEWPORTS[viewport] });
    const errors = collectPageErrors(page);
    await signIn(page, origin, tokens[role], '/models');
    return { page, errors };
  }

  const chooseComparison = async (page: Page) => {
    for (const model of [transfer, cnn]) await page.locator(`#compare-form input[name="model"][value="${model.id}"]`).check();
    await page.selectOption('#compare-form select[name="dataset"]', String(newVersion));
    await page.click('#compare-form button[type="submit"]');
    await expect.poll(() => page.locator('#comparison-split').textContent()).toContain(`dataset v${newVersion}`);
  };

  for (const viewport of ['desktop', 'phone'] as const) {
    it(`shows a viewer who is signed in, and disables with the role they need what a viewer cannot do (${viewport})`, async () => {
      const { page, errors } = await openModels('viewer', viewport);
      const header = page.locator('header .identity');
      expect(await header.locator('.who').textContent()).toBe('models page viewer');
      expect(await header.locator('.role-badge').textContent()).toBe('viewer');
      expect(await header.locator('.signout button').isVisible()).toBe(true);

      const promote = page.locator('#models button.promote').first();
      expect(await promote.isDisabled()).toBe(true);
      expect(await promote.getAttribute('title')).toBe('needs the admin role (you have viewer)');
      expect(await page.locator('#models .needs-role').first().textContent()).toBe('needs admin');

      await chooseComparison(page);
      expect(await page.locator('#comparison .notice').textContent()).toContain(`Not yet scored on this split: v${cnn.version}, v${transfer.version}.`);
      const score = page.locator('#evaluate-missing');
      expect(await score.isDisabled()).toBe(true);
      expect(await page.locator('#comparison .needs-role').textContent()).toBe('needs curator');
      // Asked anyway (a stale page, a hand-made request), the server refuses the same way the button said.
      const refused = await request('/models/compare', { method: 'POST', body: new URLSearchParams({ model: transfer.id, dataset: String(newVersion) }) }, 'viewer');
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('needs the curator role');
      expect(await fitsViewportWidth(page)).toBe(true);
      expect(errors).toEqual([]);
      await page.close();
    });
  }

  for (const viewport of ['desktop', 'phone'] as const) {
    it(`lets a curator score two models on one test split and compare metrics, confusion matrices and disagreements (${viewport})`, async () => {
      const { page, errors } = await openModels('curator', viewport);
      await chooseComparison(page);
      const score = page.locator('#evaluate-missing');
      if (viewport === 'desktop') {
        expect(await score.isEnabled()).toBe(true);
        await score.click();
      }
      // The phone run comes second: the scores the desktop run stored are read, not computed again.
      await expect.poll(() => page.locator('#comparison table.comparison tbody tr').count(), { timeout: 120_000 }).toBe(2);
      expect(await score.count()).toBe(0);

      const comparison = await compareModels(app, [transfer.id, cnn.id], newVersion);
      const { manifest } = await loadManifest(app, newVersion);
      const testCount = manifest.items.filter((item) => item.split === 'test').length;
      expect(comparison.testCount).toBe(testCount);
      for (const { model, evaluation } of comparison.models) {
        expect(evaluation?.metrics.count).toBe(testCount);
        const row = page.locator(`#comparison tr[data-compared-model="${model.id}"]`);
        expect(await row.locator('td').nth(1).textContent()).toBe(`${(evaluation!.metrics.accuracy * 100).toFixed(1)}%`);
        // Scored on v2's photos, not the ones each model's registry row was measured on.
        expect(evaluation!.metrics.count).not.toBe(model.metrics.count);
      }
      expect(await page.locator('#comparison .confusion').count()).toBe(2);
      const cells = await page.locator('#comparison .confusion').first().locator('[role="cell"]').allTextContents();
      expect(cells.map(Number).reduce((sum, value) => sum + value, 0)).toBe(testCount);
      expect(await page.locator('#comparison h3').nth(1).textContent()).toBe(`${comparison.disagreements.length} photos they disagree on`);
      expect(await page.locator('#comparison .disagreements > li').count()).toBe(Math.min(24, comparison.disagreements.length));
      for (const photo of comparison.disagreements) {
        const [first, second] = photo.pDog.map((p) => p >= 0.5);
        expect(first).not.toBe(second);
      }
      expect(await fitsViewportWidth(page)).toBe(true);
      // Every disagreement's thumbnail is served and drawn (a viewer may read images).
      await expect
        .poll(() => page.evaluate<boolean>("[...document.querySelectorAll('#comparison .disagreements img')].every((img) => img.complete && img.naturalWidth > 0)"))
        .toBe(true);
      if (screenshotFolder) {
        fs.mkdirSync(screenshotFolder, { recursive: true });
        await page.locator('#compare').screenshot({ path: path.join(screenshotFolder, `models-comparison-${viewport}.png`) });
      }
      expect(errors).toEqual([]);
      await page.close();
    });
  }

  it('keeps Promote and the TF.js download in view at 1366 px, and asks before promoting a worse model, naming the drop', async () => {
    // The transfer model serves; the CNN (one epoch on 32-pixel photos) scores below it or answers one class only.
    await app.db.models.promote(transfer.id, { reason: 'test: the better model serves', actor: 'test' });
    const { metrics: cnnMetrics } = cnn;
    const { metrics: transferMetrics } = transfer;
    const { page, errors } = await openModels('admin', 'desktop');
    const row = page.locator(`tr[data-model-id="${cnn.id}"]`);
    const table = await page.locator('#models table').boundingBox();
    for (const element of [row.locator('button.promote'), row.locator('a', { hasText: 'TF.js' })]) {
      const box = (await element.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(Math.min(table!.x + table!.width, VIEWPORTS.desktop.width));
    }
    const confirmation = await row.locator('button.promote').getAttribute('hx-confirm');
    expect(cnnMetrics.accuracy < transferMetrics.accuracy || confirmation?.includes('degenerate'), 'the CNN should be the worse model').toBe(true);
    expect(confirmation).toContain(`Promote v${cnn.version}?`);

    const asked: string[] = [];
    page.once('dialog', (dialog) => {
      asked.push(dialog.message());
      void dialog.dismiss();
    });
    await row.locator('button.promote').click();
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toBe(confirmation);
    if (cnnMetrics.accuracy < transferMetrics.accuracy) {
      expect(asked[0]).toContain(`points below the serving v${transfer.version}'s ${(transferMetrics.accuracy * 100).toFixed(1)}% on the same test split`);
    }
    // Dismissed: nothing changed.
    expect((await app.db.models.current())!.id).toBe(transfer.id);

    // Each model's page says why it serves or never did.
    await page.goto(`${origin}/models?model=${transfer.id}`);
    expect(await page.locator('#model-promotion').textContent()).toContain('by test: test: the better model serves.');
    expect(await page.locator('#model-promotion').textContent()).toContain('by training: first model.');
    await page.goto(`${origin}/models?model=${cnn.id}`);
    const degenerate = degenerateReason(cnn.metrics);
    const line = await page.locator('#model-promotion').textContent();
    if (degenerate) expect(line).toBe(`never promoted automatically: ${degenerate} Never promoted.`);
    else expect(line).not.toContain('never promoted automatically');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a refusal next to the button that caused it: a session revoked while the page was open', async () => {
    const token = await createToken(app.db, 'admin', 'models page revoked admin');
    const page = await browser.newPage({ viewport: VIEWPORTS.phone });
    await signIn(page, origin, token.secret, '/models');
    await revokeToken(app.db, token.token.id);
    page.on('dialog', (dialog) => void dialog.accept());
    const promote = page.locator(`tr[data-model-id="${cnn.id}"] button.promote`);
    await promote.click();
    const refusal = page.locator(`tr[data-model-id="${cnn.id}"] .action-error`);
    await expect.poll(() => refusal.textContent()).toContain(`POST /models/${cnn.id}/promote needs the admin role`);
    expect(await refusal.textContent()).toContain('catdog token create --role admin');
    expect(await refusal.getAttribute('role')).toBe('alert');
    expect(await fitsViewportWidth(page)).toBe(true);
    expect((await app.db.models.current())!.id).toBe(transfer.id);
    await page.close();
  });

  it('scores any model on any version once, then reads it back; the API route is curator-only', async () => {
    const evaluated = await request(`/api/v1/models/${transfer.id}/evaluations`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ datasetId: newVersion }) }, 'curator');
    expect(evaluated.status).toBe(200);
    const body = (await evaluated.json()) as { evaluatedAt: string; metrics: { count: number } };
    expect((await evaluateModelOn(app, transfer.id, newVersion)).evaluatedAt).toBe(body.evaluatedAt);
    const asViewer = await request(`/api/v1/models/${transfer.id}/evaluations`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ datasetId: newVersion }) }, 'viewer');
    expect(asViewer.status).toBe(403);

    const compared = await request(`/api/v1/model-comparisons?models=${transfer.version},${cnn.id}&datasetId=${newVersion}`, {}, 'viewer');
    expect(compared.status).toBe(200);
    const comparison = (await compared.json()) as { models: { model: { id: string }; evaluation: { metrics: { count: number } } | null }[]; disagreements: { thumbnailUrl: string }[] };
    expect(comparison.models.map((entry) => entry.model.id)).toEqual([transfer.id, cnn.id]);
    expect(comparison.models.every((entry) => entry.evaluation?.metrics.count === body.metrics.count)).toBe(true);
    const tooFew = await request(`/api/v1/model-comparisons?models=${transfer.id}&datasetId=${newVersion}`, {}, 'viewer');
    expect(tooFew.status).toBe(400);
    expect(((await tooFew.json()) as { error: { code: string } }).error.code).toBe('invalid_comparison');
  });

  it('never promotes a model that answers one class for every photo, even as the first model, and says why', async () => {
    const { manifest } = await loadManifest(app, newVersion);
    const labels = manifest.items.filter((item) => item.split === 'test').map((item) => (item.label === 'dog' ? 1 : 0));
    const allCats = binaryMetrics(labels, labels.map(() => 0.3));
    const before = await app.db.models.current();
    const decision = await promoteIfBetter(app, cnn, allCats, manifest, { metric: 'accuracy', minImprovement: 0 });
    const dogs = labels.filter((label) => label === 1).length;
    expect(decision).toMatchObject({ promoted: false, reason: `degenerate: it answers cat for all ${labels.length} test photos (${dogs} of them dogs)` });
    expect((await app.db.models.current())?.id).toBe(before?.id);
  });

  it('answers a mistyped web address with an HTML page, and an API one with JSON', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.phone });
    await signIn(page, origin, tokens.viewer, '/models');
    const response = await page.goto(`${origin}/modles?x=1`);
    expect(response!.status()).toBe(404);
    expect(await page.locator('h1').textContent()).toBe('Page not found');
    expect(await page.locator('#not-found code.long-text').textContent()).toBe('/modles');
    expect(await page.locator('nav a').count()).toBeGreaterThan(3);
    await page.close();
    const api = await request('/api/v1/modles', {}, 'viewer');
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('offers Sign in, not Sign out, to a caller who has not signed in', async () => {
    // A token-less request from this machine is a local viewer (server.localViewer), signed in as nobody.
    const markup = await (await fetch(`${origin}/models`, { headers: { Accept: 'text/html' } })).text();
    expect(markup).toContain('<span class="who">not signed in</span> <span class="role-badge">viewer</span> <a class="signin-link" href="/signin?next=%2Fmodels">Sign in</a>');
    expect(markup).not.toContain('Sign out');
  });
});
