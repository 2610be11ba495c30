import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catdog } from '../support/cli.js';
import { collectPageErrors, expectNoAxeViolations, fitsViewportWidth, launchChromium, signIn, skipBrowser, VIEWPORTS } from '../support/browser.js';
import { readEvents, startTestServer, type TestServer } from '../support/server.js';
import { kaggleFiles } from '../support/shared.js';

/** Enough photos that the test split holds at least 5 of each class, the fewest a degenerate model is judged on. */
const PER_CLASS = 70;
/**
 * A CNN with Adam at learning rate 1 saturates its sigmoid within the first epoch: it answers one class for every
 * photo, the "succeeded" run with a useless model the issue saw. Seeded, so every run of this test trains the same.
 */
const DEGENERATE_TRAINING = ['--architecture', 'cnn', '--image-size', '32', '--epochs', '1', '--learning-rate', '1', '--batch-size', '4'];

interface RunJson {
  status: string;
  warnings: { code: string; summary: string; reason: string }[];
}

describe.skipIf(skipBrowser)('a training run whose model answers one class only (real CNN training, CLI, API and Training page)', () => {
  let home: string;
  let t: TestServer;
  let browser: Browser;
  let cliOutput: string;
  let jsonOutput: { runId: string; warnings: RunJson['warnings'] };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-degenerate-'));
    for (const label of ['cat', 'dog'] as const) {
      fs.mkdirSync(path.join(home, 'photos', label), { recursive: true });
      for (const file of kaggleFiles(label, PER_CLASS)) fs.symlinkSync(file, path.join(home, 'photos', label, path.basename(file)));
    }
    const text = await catdog(home, ['train', '--data', 'photos', ...DEGENERATE_TRAINING]);
    expect(text.code, text.stderr).toBe(0);
    cliOutput = text.stdout;
    const json = await catdog(home, ['train', '--dataset', '1', ...DEGENERATE_TRAINING, '--json']);
    expect(json.code, json.stderr).toBe(0);
    jsonOutput = JSON.parse(json.stdout) as typeof jsonOutput;
    // The server over the same database the CLI trained into.
    t = await startTestServer({ CATDOG_HOME: home });
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('catdog train says the run succeeded with a degenerate model, in text and in --json', () => {
    const warning = /^warning: the run succeeded but its model is degenerate: predicts only (cat|dog) \(degenerate: it answers (cat|dog) for all \d+ test photos \(\d+ of them (cats|dogs)\)\)$/m.exec(cliOutput);
    expect(warning, cliOutput).not.toBeNull();
    expect(warning![2]).toBe(warning![1]);
    expect(cliOutput).toContain('not promoted');
    expect(jsonOutput.warnings).toEqual([{ code: 'degenerate_model', summary: `degenerate: predicts only ${warning![1]}`, reason: expect.stringMatching(/^degenerate: it answers (cat|dog) for all \d+ test photos/) }]);
  });

  it('GET /api/v1/training-runs/{id}, the run list and the run\'s finished event carry the warning; a viewer reads them', async () => {
    const response = await t.fetchAs(`/api/v1/training-runs/${jsonOutput.runId}`, undefined, 'viewer');
    expect(response.status).toBe(200);
    const run = (await response.json()) as RunJson;
    expect(run.status).toBe('succeeded');
    expect(run.warnings).toEqual(jsonOutput.warnings);
    const list = (await (await t.fetchAs('/api/v1/training-runs', undefined, 'viewer')).json()) as { items: (RunJson & { id: string })[] };
    expect(list.items).toHaveLength(2);
    for (const item of list.items) expect(item.warnings.map((warning) => warning.code)).toEqual(['degenerate_model']);
    // The event stream's last word, which a page following the run live shows.
    const events = await readEvents(await t.fetchAs(`/api/v1/training-runs/${jsonOutput.runId}/events`, undefined, 'viewer'), () => false);
    expect(events.at(-1)).toMatchObject({ event: 'finished', data: { promoted: false, warnings: jsonOutput.warnings } });
  });

  it('flags both models on the Models page with what they predict, and says why they were never promoted automatically', async () => {
    const [warning] = jsonOutput.warnings;
    const page = await browser.newPage({ viewport: VIEWPORTS.desktop });
    await signIn(page, t.url(''), t.tokens.viewer, '/models');
    const flags = page.locator('table.registry .flag.degenerate');
    expect(await flags.allTextContents()).toEqual([warning!.summary, warning!.summary]);
    expect(await flags.first().getAttribute('title')).toBe(warning!.reason);
    const run = (await (await t.fetchAs(`/api/v1/training-runs/${jsonOutput.runId}`, undefined, 'viewer')).json()) as { modelId: string };
    await page.goto(t.url(`/models?model=${run.modelId}`));
    expect(await page.locator('#model-promotion .flag.degenerate').textContent()).toBe(`never promoted automatically: ${warning!.reason}`);
    await page.close();
  });

  for (const viewport of ['desktop', 'phone'] as const) {
    it(`shows the runs on the Training page as "succeeded — degenerate" in amber with the reason, not a green success (${viewport})`, async () => {
      const page = await browser.newPage({ viewport: VIEWPORTS[viewport] });
      const errors = collectPageErrors(page);
      await signIn(page, t.url(''), t.tokens.viewer, '/training');
      const [warning] = jsonOutput.warnings;
      const status = page.locator(`tr[data-run-id="${jsonOutput.runId}"] .status`);
      expect(await status.textContent()).toBe(`succeeded — ${warning!.summary}`);
      expect(await status.getAttribute('class')).toBe('status warning');
      expect(await status.getAttribute('title')).toBe(warning!.reason);
      // Amber (the --warn colour), where a plain success is green.
      const colour = (element: unknown) => (globalThis as unknown as { getComputedStyle(element: unknown): { color: string } }).getComputedStyle(element).color;
      expect(await status.evaluate(colour)).toBe('rgb(138, 90, 0)');
      expect(await page.locator(`tr[data-run-id="${jsonOutput.runId}"] td.promotion`).textContent()).toBe(`not promoted: ${warning!.reason}`);
      expect(await page.locator('#run-history .status.succeeded').count()).toBe(0);
      // Nothing runs: the live panel shows the last run, with its warning.
      const live = page.locator('#run-status');
      await expect.poll(() => live.textContent()).toMatch(new RegExp(`^last run ${jsonOutput.runId}: succeeded — ${warning!.summary}, test accuracy`));
      expect(await live.getAttribute('class')).toContain('warning');
      expect(await fitsViewportWidth(page)).toBe(true);
      await expectNoAxeViolations(page, `/training with degenerate runs (${viewport})`);
      expect(errors).toEqual([]);
      await page.close();
    });
  }
});
