import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/auth/index.js';
import { catPhotos, dogPhotos, photoForm, startTestServer, type TestServer } from '../support/server.js';
import { collectPageErrors, expectNoAxeViolations, launchChromium, SCREENS, signIn, skipBrowser, type Screen } from '../support/browser.js';

if (skipBrowser) console.warn(`skipping accessibility in a browser: ${skipBrowser}`);

const PAGES = ['/', '/review', '/dataset', '/training', '/models', '/jobs', '/api/docs'];

/** A page once its own requests (htmx fragments, charts' data, the API document) have come back. */
async function visit(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForLoadState('networkidle');
}

/**
 * axe-core over every page of the UI with real content (photos, a trained model with its charts and confusion matrix,
 * predictions waiting for review), as the lowest and the highest role, on a desktop and a phone screen.
 */
describe.skipIf(skipBrowser)('accessibility of every page (axe-core in Chromium)', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startTestServer({ CATDOG_TRAINING__EPOCHS: '2' });
    for (const [label, photos] of [['cat', catPhotos(12, 200)], ['dog', dogPhotos(12, 200)]] as const) {
      const uploaded = await server.fetchAs('/api/v1/images', { method: 'POST', body: photoForm(photos, { label }) });
      expect(uploaded.status).toBe(201);
    }
    const started = (await (await server.fetchAs('/api/v1/training-runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).json()) as { id: string };
    let status = 'queued';
    while (status === 'queued' || status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = ((await (await server.fetchAs(`/api/v1/training-runs/${started.id}`)).json()) as { status: string }).status;
    }
    expect(status).toBe('succeeded');
    const predicted = await server.fetchAs('/api/v1/predictions', { method: 'POST', body: photoForm([...catPhotos(2, 300), ...dogPhotos(1, 300)]) }, 'viewer');
    expect(predicted.status).toBe(200);
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the sign-in page, on both screens', async () => {
    for (const screen of Object.keys(SCREENS) as Screen[]) {
      const context = await browser.newContext(SCREENS[screen]);
      try {
        const page = await context.newPage();
        await visit(page, server.url('/signin'));
        await expectNoAxeViolations(page, `/signin (${screen})`);
        await page.fill('input[name="token"]', 'not a token');
        await page.click('form.signin button[type="submit"]');
        await expect.poll(() => page.locator('.notice.error').count()).toBe(1);
        await expectNoAxeViolations(page, `/signin refusing a token (${screen})`);
      } finally {
        await context.close();
      }
    }
  });

  const cases = (['viewer', 'admin'] as Role[]).flatMap((role) => (Object.keys(SCREENS) as Screen[]).map((screen) => [role, screen] as const));
  it.each(cases)('every page as %s on a %s screen', async (role, screen) => {
    const context = await browser.newContext(SCREENS[screen]);
    try {
      const page = await context.newPage();
      const errors = collectPageErrors(page);
      await signIn(page, server.url(''), server.tokens[role]);
      for (const path of PAGES) {
        await visit(page, server.url(path));
        if (path === '/api/docs') {
          await expect.poll(() => page.locator('.operation').count(), { timeout: 30_000 }).toBeGreaterThan(20);
          // The try-it forms are inside closed <details>: open them all so their fields are checked too.
          await page.locator('details.operation').evaluateAll((details) => details.forEach((detail) => detail.setAttribute('open', '')));
        }
        await expectNoAxeViolations(page, `${path} as ${role} (${screen})`);
      }
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
