import path from 'node:path';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importKagglePhotos } from '../../test/support/app.js';
import { collectPageErrors, expectNoAxeViolations, fitsViewportWidth, launchChromium, signIn, skipBrowser, VIEWPORTS } from '../../test/support/browser.js';
import { startTestServer, type TestServer } from '../../test/support/server.js';

/** The side in pixels of the first augmented sample the page shows. */
async function firstSampleWidth(source: string | null): Promise<number | undefined> {
  const base64 = source?.replace('data:image/jpeg;base64,', '');
  return base64 === undefined ? undefined : (await sharp(Buffer.from(base64, 'base64')).metadata()).width;
}

/** Build from split and seed; image size and augmentation tried out apart, as settings of the training run. */
describe.skipIf(skipBrowser)('the Dataset page in Chromium', () => {
  let t: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestServer({ CATDOG_DATASET__IMAGE_SIZE: '64' });
    await importKagglePhotos(t.app, path.join(t.home, 'photos'), 12, 700);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('builds a version once, previews another image size without making a version, and gives the same version back (desktop, curator)', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.desktop });
    const errors = collectPageErrors(page);
    await signIn(page, t.server.url, t.tokens.curator, '/dataset');
    const firstSample = page.locator('#preview img').first();
    await expect.poll(() => firstSample.getAttribute('src').then(firstSampleWidth), { timeout: 30_000 }).toBe(64);
    expect(await page.locator('#build-form input[name="imageSize"], #build-form input[type="checkbox"]').count()).toBe(0);

    await page.click('#build-form button[type="submit"]');
    await expect.poll(() => page.locator('#versions .notice').textContent()).toMatch(/^Built version v1 with 24 photos/);
    expect(await page.locator('#versions tbody tr').first().textContent()).toContain('0.7/0.2/0.1 · 42');

    await page.fill('#training-images-form input[name="imageSize"]', '48');
    await page.check('#training-images-form input[name="rotation.enabled"]');
    await expect.poll(() => page.locator('#preview img').first().getAttribute('src').then(firstSampleWidth), { timeout: 30_000 }).toBe(48);
    await page.click('#build-form button[type="submit"]');
    await expect.poll(() => page.locator('#versions .notice').textContent()).toMatch(/^Nothing changed since v1/);
    expect(await t.app.db.datasets.list()).toHaveLength(1);

    await expectNoAxeViolations(page, 'the Dataset page');
    expect(errors).toEqual([]);
  });

  it('shows a viewer the build disabled with the role it needs, and lets them preview what training sees (phone, viewer)', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS.phone });
    const errors = collectPageErrors(page);
    await signIn(page, t.server.url, t.tokens.viewer, '/dataset');
    const build = page.locator('#build-form button[type="submit"]');
    expect(await build.isDisabled()).toBe(true);
    expect(await build.getAttribute('title')).toBe('needs the curator role (you have viewer)');
    await page.fill('#training-images-form input[name="imageSize"]', '40');
    await page.locator('#training-images-form input[name="imageSize"]').dispatchEvent('change');
    await expect.poll(() => page.locator('#preview img').first().getAttribute('src').then(firstSampleWidth), { timeout: 30_000 }).toBe(40);
    expect(await fitsViewportWidth(page)).toBe(true);
    await expectNoAxeViolations(page, 'the Dataset page as a viewer on a phone');
    expect(errors).toEqual([]);
  });
});
