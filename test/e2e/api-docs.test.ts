import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { execFileAsync } from '../support/cli.js';
import { collectPageErrors, launchChromium, SCREENS, signIn, skipBrowser, type Screen } from '../support/browser.js';
import { kaggleFiles } from '../support/shared.js';

if (skipBrowser) console.warn(`skipping the API docs in a browser: ${skipBrowser}`);

/** The <details> of one operation, opened. */
async function operation(page: Page, method: string, apiPath: string): Promise<Locator> {
  const details = page.locator('details.operation').filter({ has: page.locator(`summary:has(.method.${method}):has(code:text-is("${apiPath}"))`) });
  await details.locator('summary').click();
  return details;
}

/** Runs a curl command copied from the page in a shell, as a user pastes it, with their token in $CATDOG_TOKEN. */
async function runCurl(command: string, cwd: string, token: string): Promise<{ status: number; body: unknown }> {
  const { stdout } = await execFileAsync('/bin/sh', ['-c', `${command} -s -w '\\n%{http_code}'`], { cwd, env: { PATH: process.env.PATH, CATDOG_TOKEN: token } });
  const lines = stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) };
}

describe.skipIf(skipBrowser)('the API docs page', () => {
  let server: TestServer;
  let browser: Browser;
  let folder: string;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-api-docs-'));
    // What the examples upload by default: a real cat photo, linked, never copied.
    fs.symlinkSync(kaggleFiles('cat', 1, 7)[0]!, path.join(folder, 'photo.jpg'));
    server = await startTestServer();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it.each(Object.keys(SCREENS) as Screen[])('as a viewer on a %s screen: curl examples that work, required path parameters, a way back', async (screen) => {
    const context = await browser.newContext(SCREENS[screen]);
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    try {
      await signIn(page, server.url(''), server.tokens.viewer);
      await page.click('nav a[href="/api/docs"]');
      await expect.poll(() => page.locator('.operation').count(), { timeout: 30_000 }).toBeGreaterThan(20);

      const predict = await operation(page, 'post', '/api/v1/predictions');
      const predictCurl = await predict.locator('.curl code').textContent();
      expect(predictCurl).toBe(`curl -X POST -H "Authorization: Bearer $CATDOG_TOKEN" -F 'file=@photo.jpg' '${server.url('/api/v1/predictions')}'`);
      const predicted = await runCurl(predictCurl!, folder, server.tokens.viewer);
      expect(predicted.status).toBe(200);
      const prediction = (predicted.body as { predictions: { id: string; label: string }[] }).predictions[0]!;
      expect(prediction.label).toBe('cat');

      // An empty path parameter: the browser keeps the form (nothing is sent) and says which field is missing.
      const show = await operation(page, 'get', '/api/v1/predictions/{id}');
      const id = show.locator('input[name="path:id"]');
      await show.locator('button[type="submit"]').click();
      expect(await id.evaluate((input) => (input as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
      expect(await show.locator('pre[aria-live]').textContent()).toBe('');
      expect(await show.locator('.curl code').textContent()).toContain(`'${server.url('/api/v1/predictions/{id}')}'`);

      await id.fill(prediction.id);
      await show.locator('button[type="submit"]').click();
      await expect.poll(() => show.locator('pre[aria-live]').textContent(), { timeout: 20_000 }).toMatch(/^HTTP 200\n/);
      const showCurl = await show.locator('.curl code').textContent();
      expect(showCurl).toBe(`curl -H "Authorization: Bearer $CATDOG_TOKEN" '${server.url(`/api/v1/predictions/${prediction.id}`)}'`);
      expect(await runCurl(showCurl!, folder, server.tokens.viewer)).toMatchObject({ status: 200, body: { id: prediction.id, label: 'cat' } });

      // A curator's operation: the page shows the server's refusal of a viewer.
      const validate = await operation(page, 'post', '/api/v1/predictions/{id}/validation');
      await validate.locator('input[name="path:id"]').fill(prediction.id);
      await validate.locator('textarea').fill('{"label":"cat"}');
      expect(await validate.locator('.curl code').textContent()).toBe(
        `curl -X POST -H "Authorization: Bearer $CATDOG_TOKEN" -H 'Content-Type: application/json' -d '{"label":"cat"}' '${server.url(`/api/v1/predictions/${prediction.id}/validation`)}'`,
      );
      await validate.locator('button[type="submit"]').click();
      await expect.poll(() => validate.locator('pre[aria-live]').textContent(), { timeout: 20_000 }).toMatch(/^HTTP 403\n/);

      await page.click('text=← Back to the app');
      await page.waitForURL(server.url('/'));
      // Chromium logs every refused request; the viewer's refused validation is the only error.
      expect(errors).toEqual(['Failed to load resource: the server responded with a status of 403 (Forbidden)']);
    } finally {
      await context.close();
    }
  });
});
