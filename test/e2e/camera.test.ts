import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { collectPageErrors, expectNoAxeViolations, fakeCameraArgs, launchChromium, photoAsY4m, SCREENS, signIn, skipBrowser, type Screen } from '../support/browser.js';
import { kaggleFiles } from '../support/shared.js';

if (skipBrowser) console.warn(`skipping the camera in a browser: ${skipBrowser}`);

const cards = (page: Page) => page.locator('#results .result');

describe.skipIf(skipBrowser)('the camera on the Predict page (Chromium with its fake camera playing a real cat photo)', () => {
  let server: TestServer;
  let browser: Browser;
  let folder: string;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-camera-'));
    const video = path.join(folder, 'cat.y4m');
    await photoAsY4m(kaggleFiles('cat', 1, 1)[0]!, video);
    server = await startTestServer();
    browser = await launchChromium(fakeCameraArgs(video));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it.each(Object.keys(SCREENS) as Screen[])('as a viewer on a %s screen: a photo and live captures are classified like uploads', async (screen) => {
    const context = await browser.newContext(SCREENS[screen]);
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    try {
      await signIn(page, server.url(''), server.tokens.viewer);
      await expect.poll(() => page.locator('#camera-video').isHidden()).toBe(true);
      await page.click('#camera-start');
      await expect.poll(() => page.locator('#camera-status').textContent(), { timeout: 20_000 }).toBe('Camera on.');
      expect(await page.locator('#camera-video').isVisible()).toBe(true);
      const frameSize = (video: unknown) => [(video as { videoWidth: number }).videoWidth, (video as { videoHeight: number }).videoHeight];
      expect(await page.locator('#camera-video').evaluate(frameSize)).toEqual([640, 480]);

      await page.click('#camera-capture');
      const card = cards(page).first();
      await expect.poll(() => card.locator('.verdict').textContent(), { timeout: 30_000 }).toMatch(/^\d+\.\d% cat$/);
      expect(await card.locator('.file-name').textContent()).toMatch(/^camera-\d{4}-\d\d-\d\dT[\d-]+Z\.jpg$/);
      expect(await card.locator('.model').textContent()).toBe('model zero-shot');
      // A capture is a stored prediction like an upload, one a curator can review later.
      const stored = await server.fetchAs(`/api/v1/predictions/${await card.getAttribute('data-prediction-id')}`, {}, 'viewer');
      expect(stored.status).toBe(200);
      expect(await stored.json()).toMatchObject({ label: 'cat', modelId: 'zero-shot' });
      await expectNoAxeViolations(page, `the Predict page with the camera on (${screen})`);

      await page.selectOption('#camera-interval', '1000');
      await page.click('#camera-live');
      expect(await page.locator('#camera-live').getAttribute('aria-pressed')).toBe('true');
      await expect.poll(() => cards(page).count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(4);
      await page.click('#camera-live');
      expect(await page.locator('#camera-live').getAttribute('aria-pressed')).toBe('false');
      expect(await page.locator('#camera-live').textContent()).toBe('Classify live');
      // The capture under way when live stopped still lands; after it nothing more comes.
      await page.waitForTimeout(1500);
      const afterStop = await cards(page).count();
      await page.waitForTimeout(2500);
      expect(await cards(page).count()).toBe(afterStop);
      await expect.poll(() => page.locator('#results .verdict').allTextContents(), { timeout: 30_000 }).toEqual(Array(afterStop).fill(expect.stringMatching(/^\d+\.\d% cat$/)));

      await page.click('#camera-stop');
      expect(await page.locator('#camera-status').textContent()).toBe('Camera off.');
      expect(await page.locator('#camera-video').isHidden()).toBe(true);
      expect(await page.locator('#camera-capture').isDisabled()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it.each(Object.keys(SCREENS) as Screen[])('signed out on a %s screen: no camera, the sign-in form instead', async (screen) => {
    const context = await browser.newContext(SCREENS[screen]);
    const page = await context.newPage();
    try {
      await page.goto(server.url('/'));
      expect(new URL(page.url()).pathname).toBe('/signin');
      expect(await page.locator('#camera-start').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('without a camera the panel says so and stays usable', async () => {
    const cameraless = await launchChromium();
    try {
      const page = await cameraless.newPage(SCREENS.desktop);
      await signIn(page, server.url(''), server.tokens.viewer);
      await page.click('#camera-start');
      await expect.poll(() => page.locator('#camera-status').textContent(), { timeout: 20_000 }).toMatch(/^(No camera found on this device|The camera is blocked)/);
      expect(await page.locator('#camera-video').isHidden()).toBe(true);
      expect(await page.locator('#camera-start').isEnabled()).toBe(true);
      expect(await page.locator('#camera-capture').isDisabled()).toBe(true);
    } finally {
      await cameraless.close();
    }
  });
});
