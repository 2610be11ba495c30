import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { skipBrowser, collectPageErrors, fitsViewportWidth, launchChromium, signIn, VIEWPORTS } from '../../test/support/browser.js';
import { kaggleFiles } from '../../test/support/shared.js';
import { createToken } from '../auth/index.js';
import { createServer } from '../server/app.js';
import { webUi } from './index.js';
import { ModelServer } from '../serving/model-server.js';

/** A name as long as a pasted URL, without a place to break: the error quoting it must wrap, not widen the page. */
const LONG_NAME = `https___photos.example.com_${'album_'.repeat(40)}not-a-photo.jpg`;

describe.skipIf(skipBrowser)('the Predict page in Chromium', () => {
  let app: TestApp;
  let http: ServerType;
  let origin: string;
  let browser: Browser;
  let viewerToken: string;
  let curatorToken: string;

  beforeAll(async () => {
    app = await createTestApp();
    const models = new ModelServer({ db: app.db, blobs: app.blobs, backbones: app.backbones, logger: app.logger, defaultBackbone: app.config.training.backbone });
    // The page names the serving (zero-shot) model: loaded here once, not inside the first page's time limit.
    await models.classifier();
    http = serve({ fetch: createServer(app, { web: webUi, models }).fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((resolve) => http.once('listening', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    viewerToken = (await createToken(app.db, 'viewer', 'predict page viewer')).secret;
    curatorToken = (await createToken(app.db, 'curator', 'predict page curator')).secret;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => http?.close(resolve));
    await app?.dispose();
  });

  for (const viewport of ['phone', 'desktop'] as const) {
    it(`shows results in the order chosen, newest selection on top, and a failed upload without feedback buttons (${viewport})`, async () => {
      const page = await browser.newPage({ viewport: VIEWPORTS[viewport] });
      const errors = collectPageErrors(page);
      await signIn(page, origin, viewerToken, '/');
      const [cat] = kaggleFiles('cat', 1, 700);
      const [dog] = kaggleFiles('dog', 1, 700);
      const photo = (file: string) => ({ name: path.basename(file), mimeType: 'image/jpeg', buffer: fs.readFileSync(file) });
      await page.setInputFiles('#file-input', [photo(cat!), photo(dog!), { name: LONG_NAME, mimeType: 'image/jpeg', buffer: Buffer.from('this is text, not a photo') }]);
      const names = () => page.locator('.result .file-name').allTextContents();
      await expect.poll(() => page.locator('.result .error').last().textContent(), { timeout: 60_000 }).toContain(LONG_NAME);
      expect(await names()).toEqual([path.basename(cat!), path.basename(dog!), LONG_NAME]);
      const failed = page.locator('.result').nth(2);
      expect(await failed.locator('.actions').isVisible()).toBe(false);
      // Its Confirm/Cat/Dog/Neither are in the card, hidden: nothing to confirm about a photo never classified.
      expect(await failed.locator('button').count()).toBe(4);
      expect(await failed.locator('button:visible').count()).toBe(0);
      for (const ok of [0, 1]) {
        // A viewer sees the verdict's feedback buttons, disabled: confirming or correcting needs a curator.
        const actions = page.locator('.result').nth(ok).locator('.actions');
        expect(await actions.isVisible()).toBe(true);
        expect(await actions.locator('button:disabled').count()).toBe(4);
        expect(await actions.locator('.needs-role').textContent()).toBe('needs curator');
      }
      expect(await fitsViewportWidth(page)).toBe(true);

      // The next selection goes above the first.
      const [second] = kaggleFiles('cat', 1, 701);
      await page.setInputFiles('#file-input', [second!]);
      await expect.poll(names).toEqual([path.basename(second!), path.basename(cat!), path.basename(dog!), LONG_NAME]);
      // The upload error is the page's own doing here, not a console error.
      expect(errors.filter((error) => !error.includes('415'))).toEqual([]);
      await page.close();
    });
  }

  it('lets a curator correct a verdict from its card (phone)', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.phone });
    const errors = collectPageErrors(page);
    await signIn(page, origin, curatorToken, '/');
    const [cat] = kaggleFiles('cat', 1, 702);
    await page.setInputFiles('#file-input', [cat!]);
    const card = page.locator('.result').first();
    await expect.poll(() => card.locator('.actions').isVisible(), { timeout: 60_000 }).toBe(true);
    expect(await card.locator('.needs-role').count()).toBe(0);
    await card.locator('button[data-label="cat"]').click();
    await expect.poll(() => card.locator('.feedback').textContent()).toBe('saved: cat');
    expect(errors).toEqual([]);
    await page.close();
  });
});
