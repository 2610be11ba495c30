import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, type Role } from '../../src/auth/index.js';
import { openDatabase } from '../../src/db/index.js';
import { launchChromium, repoRoot, skipBrowser, startCli, stopProcess } from '../support/browser.js';
import { kaggleDev, kaggleFiles, kaggleFullRes } from '../support/shared.js';

/** UPDATE_SCREENSHOTS=1 (scripts/screenshots.sh) writes the documentation's screenshots; otherwise they go to test-output. */
const screenshots = process.env.UPDATE_SCREENSHOTS ? path.join(repoRoot, 'docs', 'screenshots') : path.join(repoRoot, 'test-output', 'screenshots');
if (skipBrowser) console.warn(`skipping the curation browser test: ${skipBrowser}`);

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
/** The Kaggle photos also stored at full size, uploaded a second time with the other label: the conflicts to find. */
const CONFLICTS = 5;
const PER_CLASS = 100 - CONFLICTS;
const isOpen = (page: Page) => page.locator('#photo-view').getAttribute('open').then((open) => open !== null);

function form(files: { bytes: Uint8Array; name: string }[], label?: string): FormData {
  const body = new FormData();
  for (const file of files) body.append('file', new Blob([file.bytes as Uint8Array<ArrayBuffer>]), file.name);
  if (label) body.append('label', label);
  return body;
}
const onDisk = (files: string[]) => files.map((file) => ({ bytes: fs.readFileSync(file), name: path.basename(file) }));

describe.skipIf(skipBrowser)('curating the data set in a browser', () => {
  let home: string;
  let server: Awaited<ReturnType<typeof startCli>>;
  let browser: Browser;
  const tokens = {} as Record<Role, string>;
  let initial: { cat: number; dog: number; unlabelled: number };
  const consoleErrors: string[] = [];
  const api = async <T>(role: Role, pathAndQuery: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${server.url}${pathAndQuery}`, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${tokens[role]}` } });
    expect(response.status, `${pathAndQuery}: ${response.status}`).toBeLessThan(300);
    return (response.status === 204 ? undefined : await response.json()) as T;
  };
  const counts = async () => (await api<{ counts: { cat: number; dog: number; unlabelled: number } }>('viewer', '/api/v1/images?limit=1')).counts;

  async function signedIn(role: Role, viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${role}: ${message.text()}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`${role}: ${error.message}`));
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${server.url}/signin`);
    await page.fill('input[name="token"]', tokens[role]);
    await page.click('form.signin button[type="submit"]');
    await page.waitForURL(`${server.url}/`);
    return { context, page };
  }
  /** A full-page screenshot once every lazy thumbnail has come into view and loaded. */
  async function shoot(page: Page, name: string) {
    const height = await page.evaluate<number>('document.documentElement.scrollHeight');
    for (let y = 0; y < height; y += 500) await page.evaluate(`window.scrollTo(0, ${y})`);
    await expect.poll(() => page.evaluate<boolean>('[...document.images].every((image) => image.complete)'), { timeout: 15_000 }).toBe(true);
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
  }

  beforeAll(async () => {
    fs.mkdirSync(screenshots, { recursive: true });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-curation-'));
    server = await startCli(home);
    const database = await openDatabase(`sqlite:${path.join(home, 'catdog.db')}`);
    try {
      for (const role of ['viewer', 'curator'] as const) tokens[role] = (await createToken(database, role, `curation ${role}`)).secret;
    } finally {
      await database.close();
    }
    // 200 photos: 95 cats and 95 dogs at 200 px, and 5 of each again at full size with the other label.
    for (const label of ['cat', 'dog'] as const) {
      const other = label === 'cat' ? 'dog' : 'cat';
      // In requests of at most server.maxFilesPerRequest (64) photos.
      const photos = onDisk(kaggleFiles(label, PER_CLASS, 1));
      for (let start = 0; start < photos.length; start += 48) {
        await api('curator', '/api/v1/images', { method: 'POST', body: form(photos.slice(start, start + 48), label) });
      }
      const fullSize = Array.from({ length: CONFLICTS }, (_, i) => path.join(kaggleFullRes, label, `${label}.${i + 1}.jpg`));
      await api('curator', '/api/v1/images', { method: 'POST', body: form(onDisk(fullSize), other) });
    }
    // Kaggle holds a few byte-identical photos, stored once: the counts are what was stored.
    initial = await counts();
    expect(initial.cat + initial.dog).toBeGreaterThan(195);
    expect(initial.unlabelled).toBe(0);
    await api('curator', '/api/v1/datasets', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await stopProcess(server?.child);
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('groups the Kaggle photos stored at two sizes as near-duplicates with conflicting labels, and a curator deletes the full-size copies in bulk', async () => {
    const { context, page } = await signedIn('curator', DESKTOP);
    await page.goto(`${server.url}/dataset/health`);
    expect(await page.locator('#group-count').textContent()).toBe(String(2 * CONFLICTS));
    expect(await page.locator('#conflict-count').textContent()).toBe(String(2 * CONFLICTS));
    const groups = page.locator('.duplicate-group.conflicting');
    expect(await groups.count()).toBe(2 * CONFLICTS);
    const large: string[] = [];
    for (let i = 0; i < 2 * CONFLICTS; i++) {
      const members = groups.nth(i).locator('button.open');
      expect(await members.count()).toBe(2);
      const [a, b] = [members.nth(0), members.nth(1)];
      // The same Kaggle file name, once at 200 px and once at full size.
      expect(await a.getAttribute('data-name')).toBe(await b.getAttribute('data-name'));
      const sizes = [await a.getAttribute('data-size'), await b.getAttribute('data-size')];
      expect(sizes.filter((size) => size === '200×200')).toHaveLength(1);
      large.push((await (sizes[0] === '200×200' ? b : a).getAttribute('data-hash'))!);
    }
    expect(await page.locator('#balance').textContent()).toContain(`${initial.cat} cats`);
    expect(await page.locator('#changes-summary').textContent()).toContain('No label changed since v1');
    await shoot(page, 'health-desktop');

    // Select the full-size copy in each group and delete them together.
    expect(new Set(large).size).toBe(2 * CONFLICTS);
    for (const hash of large) await page.check(`input.select[value="${hash}"]`);
    expect(await page.locator('#selected-count').textContent()).toBe(String(2 * CONFLICTS));
    await page.click('button[data-bulk="delete"]');
    await page.waitForLoadState('load');
    await expect.poll(() => page.locator('#group-count').textContent(), { timeout: 15_000 }).toBe('0');
    expect(await counts()).toEqual({ cat: initial.cat - CONFLICTS, dog: initial.dog - CONFLICTS, unlabelled: 0 });
    expect(await page.locator('#changes-summary').textContent()).toContain(`${2 * CONFLICTS} new labels since v1`);
    await context.close();
  });

  it('lets a curator filter, view large, relabel one photo and relabel or delete a selection in the gallery, and shows the difference between versions', async () => {
    const [cats, dogs] = [initial.cat - CONFLICTS, initial.dog - CONFLICTS];
    const { context, page } = await signedIn('curator', DESKTOP);
    await page.goto(`${server.url}/dataset/gallery`);
    expect(await page.locator('#gallery-total').textContent()).toContain(`${cats + dogs} photos`);
    await page.selectOption('select[name="label"]', 'cat');
    await expect.poll(() => page.locator('#gallery-total').textContent(), { timeout: 15_000 }).toContain(`${cats} photos`);
    await page.selectOption('select[name="split"]', 'train');
    await expect.poll(() => page.locator('#gallery-grid').getAttribute('data-reload'), { timeout: 15_000 }).toContain('split=train');
    const trainCats = Number((await page.locator('#gallery-total').textContent())!.split(' ')[0]);
    expect(trainCats).toBeGreaterThan(40);
    expect(trainCats).toBeLessThan(cats);

    // Score with the serving (zero-shot) model, then the model filters work.
    await page.click('#score-photos');
    await expect.poll(() => page.locator('#scoring').textContent(), { timeout: 120_000 }).toContain('Every labelled photo is scored');
    await page.selectOption('select[name="split"]', '');
    await page.selectOption('select[name="maxLabelProbability"]', '0.5');
    await expect.poll(() => page.locator('#gallery-grid').getAttribute('data-reload'), { timeout: 15_000 }).toContain('maxLabelProbability=0.5');
    expect(await page.locator('.tile:not(.disagrees)').count()).toBe(0);
    await page.selectOption('select[name="agreement"]', 'disagree');
    await expect.poll(() => page.locator('#gallery-grid').getAttribute('data-reload'), { timeout: 15_000 }).toContain('agreement=disagree');
    const disagreeing = Number((await page.locator('#gallery-total').textContent())!.split(' ')[0]);
    await page.selectOption('select[name="agreement"]', '');
    await page.selectOption('select[name="maxLabelProbability"]', '');
    await expect.poll(() => page.locator('#gallery-grid').getAttribute('data-reload'), { timeout: 15_000 }).not.toContain('agreement=');
    expect(Number((await page.locator('#gallery-total').textContent())!.split(' ')[0])).toBeGreaterThanOrEqual(disagreeing);
    await page.selectOption('select[name="order"]', 'suspicious');
    await expect.poll(() => page.locator('#gallery-grid').getAttribute('data-reload'), { timeout: 15_000 }).toContain('order=suspicious');
    expect(await page.locator('.tile .p-label').count()).toBeGreaterThan(0);

    // One photo in the large view: relabel it with the keyboard.
    await page.locator('.tile button.open').first().click();
    await expect.poll(() => isOpen(page), { timeout: 15_000 }).toBe(true);
    const firstHash = (await page.locator('#photo-view').getAttribute('data-hash'))!;
    expect(await page.locator('#photo-view-meta').textContent()).toContain('label cat');
    expect((await page.locator('#photo-view-image').boundingBox())!.width).toBeGreaterThan(400);
    await shoot(page, 'gallery-large-view-desktop');
    await page.keyboard.press('d');
    await expect.poll(() => isOpen(page), { timeout: 15_000 }).toBe(false);
    const image = await api<{ items: { hash: string; label: string; source: string }[] }>('viewer', '/api/v1/images?label=dog&limit=200');
    expect(image.items.find((item) => item.hash === firstHash)).toMatchObject({ label: 'dog', source: expect.stringMatching(/^curation:/) });

    // A whole page of cats relabelled at once, then half of them back, then 3 deleted.
    await page.selectOption('select[name="order"]', 'newest');
    await expect.poll(() => page.locator('#gallery-total').textContent(), { timeout: 15_000 }).toContain(`${cats - 1} photos`);
    await page.click('#select-page');
    expect(await page.locator('#selected-count').textContent()).toBe('48');
    await page.click('button[data-bulk="dog"]');
    await expect.poll(() => page.locator('#bulk-status').textContent(), { timeout: 15_000 }).toBe('48 photos now labelled dog');
    await expect.poll(() => page.locator('#gallery-total').textContent(), { timeout: 15_000 }).toContain(`${cats - 49} photos`);
    expect(await counts()).toEqual({ cat: cats - 49, dog: dogs + 49, unlabelled: 0 });
    await page.selectOption('select[name="label"]', 'dog');
    await expect.poll(() => page.locator('#gallery-total').textContent(), { timeout: 15_000 }).toContain(`${dogs + 49} photos`);
    const boxes = page.locator('input.select');
    for (let i = 0; i < 3; i++) await boxes.nth(i).check();
    await page.click('button[data-bulk="delete"]');
    await expect.poll(() => page.locator('#bulk-status').textContent(), { timeout: 15_000 }).toBe('deleted 3 photos (built versions keep them)');
    await expect.poll(() => page.locator('#gallery-total').textContent(), { timeout: 15_000 }).toContain(`${dogs + 46} photos`);
    await shoot(page, 'gallery-desktop');

    // Built versions stay as they were; the next one leaves the deleted photos out.
    const v1 = await api<{ imageCount: number }>('viewer', '/api/v1/datasets/1');
    expect(v1.imageCount).toBe(initial.cat + initial.dog);
    await page.goto(`${server.url}/dataset/health`);
    expect(await page.locator('#changes-summary').textContent()).toContain(`${2 * CONFLICTS + 3 + 49} new labels since v1`);
    const v2 = await api<{ id: number; imageCount: number }>('curator', '/api/v1/datasets', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(v2).toMatchObject({ id: 2, imageCount: initial.cat + initial.dog - 2 * CONFLICTS - 3 });
    await page.goto(`${server.url}/dataset/health?from=1&to=2`);
    const stat = (kind: string) => page.locator(`#version-difference .stat[data-kind="${kind}"]`).textContent();
    expect(await stat('added')).toBe('0');
    expect(await stat('removed')).toBe(String(2 * CONFLICTS + 3));
    expect(await stat('relabelled')).toBe('49');
    expect(await page.locator('#changes-summary').textContent()).toContain('No label changed since v2');
    await context.close();
  });

  it('works at phone size: the gallery, its large view and the health view', async () => {
    const { context, page } = await signedIn('curator', PHONE);
    await page.goto(`${server.url}/dataset/gallery`);
    await expect.poll(() => page.locator('.tile').count(), { timeout: 15_000 }).toBe(48);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await shoot(page, 'gallery-phone');
    await page.locator('.tile button.open').first().click();
    await expect.poll(() => isOpen(page), { timeout: 15_000 }).toBe(true);
    expect((await page.locator('#photo-view-image').boundingBox())!.width).toBeGreaterThan(PHONE.width * 0.7);
    await page.keyboard.press('Escape');
    await page.goto(`${server.url}/dataset/health`);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth')).toBeLessThanOrEqual(0);
    await shoot(page, 'health-phone');
    await context.close();
  });

  it('queues each photo once in Review, shows file name, model and confidence, accepts with A, enlarges a 1×1 photo, and remembers a skip across reloads', async () => {
    const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#884422' } }).png().toBuffer();
    const photos = [...onDisk(kaggleFiles('cat', 2, 300)), ...onDisk(kaggleFiles('dog', 1, 300)), { bytes: tiny, name: 'dot.png' }];
    await api('curator', '/api/v1/predictions', { method: 'POST', body: form(photos) });
    await api('curator', '/api/v1/predictions', { method: 'POST', body: form(photos) });
    // A photo the folder import already labelled is not asked again.
    await api('curator', '/api/v1/predictions', { method: 'POST', body: form(onDisk([path.join(kaggleDev, 'cat', 'cat.10.jpg')])) });

    for (const viewport of [DESKTOP, PHONE]) {
      const { context, page } = await signedIn('curator', viewport);
      await page.goto(`${server.url}/review`);
      await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
      if (viewport === DESKTOP) expect(await page.locator('#pending-count').textContent()).toBe('4');
      expect(await page.locator('#review-verdict').textContent()).toMatch(/ says \d+\.\d% (cat|dog)$/);
      expect(await page.locator('#review-details').textContent()).toMatch(/(cat|dog)\.30[01]\.jpg|dot\.png/);
      const panel = await page.locator('#review-image').boundingBox();
      expect(panel!.width).toBeGreaterThan(viewport.width * 0.5);
      await shoot(page, `review-${viewport === DESKTOP ? 'desktop' : 'phone'}`);
      await context.close();
    }

    const { context, page } = await signedIn('curator', DESKTOP);
    await page.goto(`${server.url}/review`);
    await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
    const skippedName = await page.locator('#review-details').textContent();
    await page.keyboard.press('s');
    await expect.poll(() => page.locator('#skipped-count').textContent(), { timeout: 15_000 }).toBe('1');
    await page.reload();
    await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.locator('#pending-count').textContent()).toBe('3');
    expect(await page.locator('#review-details').textContent()).not.toBe(skippedName);

    const acceptLabel = await page.locator('#accept-label').textContent();
    const before = await counts();
    await page.keyboard.press('a');
    await expect.poll(() => page.locator('#pending-count').textContent(), { timeout: 15_000 }).toBe('2');
    const after = await counts();
    expect(after[acceptLabel as 'cat' | 'dog']).toBe(before[acceptLabel as 'cat' | 'dog'] + 1);

    // Until the dot comes up, label the others; it is then drawn across the panel.
    for (let i = 0; i < 3 && !(await page.locator('#review-details').textContent())!.includes('dot.png'); i++) {
      if (!(await page.locator('#review-item').isVisible())) await page.click('#restore-skips');
      await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
      if ((await page.locator('#review-details').textContent())!.includes('dot.png')) break;
      const pending = Number(await page.locator('#pending-count').textContent());
      await page.keyboard.press('c');
      await expect.poll(async () => Number(await page.locator('#pending-count').textContent()), { timeout: 15_000 }).toBeLessThan(pending);
    }
    await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
    if (!(await page.locator('#review-details').textContent())!.includes('dot.png')) {
      await page.click('#restore-skips');
      await expect.poll(() => page.locator('#review-details').textContent(), { timeout: 15_000 }).toContain('dot.png');
    }
    expect(await page.locator('#review-details').textContent()).toContain('1×1');
    const dot = await page.locator('#review-image').boundingBox();
    expect(dot!.height).toBeGreaterThan(200);
    expect(await page.locator('#review-image').evaluate((image) => image.classList.contains('pixelated'))).toBe(true);
    await context.close();
  });

  it('shows a viewer the photos without any curation action, and the API refuses theirs', async () => {
    for (const viewport of [DESKTOP, PHONE]) {
      const { context, page } = await signedIn('viewer', viewport);
      await page.goto(`${server.url}/dataset/gallery`);
      await expect.poll(() => page.locator('.tile').count(), { timeout: 15_000 }).toBeGreaterThan(0);
      expect(await page.locator('input.select').count()).toBe(0);
      expect(await page.locator('#bulk-bar').count()).toBe(0);
      expect(await page.locator('#score-photos').count()).toBe(0);
      expect(await page.locator('#read-only-note').isVisible()).toBe(true);
      await page.locator('.tile button.open').first().click();
      await expect.poll(() => isOpen(page), { timeout: 15_000 }).toBe(true);
      expect(await page.locator('#photo-view button[data-single]').count()).toBe(0);
      await page.keyboard.press('d');
      await page.keyboard.press('Escape');
      await page.goto(`${server.url}/dataset/health`);
      expect(await page.locator('input.select').count()).toBe(0);
      expect(await page.locator('#changes-summary a').count()).toBe(0);
      await page.goto(`${server.url}/review`);
      await expect.poll(() => page.locator('#review-item').isVisible(), { timeout: 15_000 }).toBe(true);
      expect(await page.locator('#review-item button').count()).toBe(0);
      await context.close();
    }
    const refused = await fetch(`${server.url}/api/v1/images/bulk`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.viewer}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ action: 'delete', hashes: ['ab'.repeat(32)] }),
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    expect(await counts()).toEqual(expect.objectContaining({ cat: expect.any(Number) }));

    // CSP violations (an inline script or style) and failed requests show up here too.
    expect(consoleErrors).toEqual([]);
  });
});
