import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { createToken, ROLES, type Role } from '../auth/index.js';
import { jobHandlers } from '../jobs/handlers.js';
import { InlineJobQueue } from '../jobs/index.js';
import { JOB } from '../jobs/product-jobs.js';
import { createServer } from '../server/app.js';
import { withBearer } from '../../test/support/server.js';
import { ModelServer } from '../serving/model-server.js';
import { RunManager } from '../training/run-manager.js';
import { webUi } from './index.js';

/** An id a person could choose (`catdog` enqueues with caller-chosen ids): markup in it must stay text. */
const HOSTILE_ID = 'build <img src=x onerror=alert(1)>';
const HOSTILE_ID_ESCAPED = 'build &lt;img src=x onerror=alert(1)&gt;';

/** The table row of one job, from its opening tag to its end. */
function rowOf(markup: string, escapedId: string): string {
  const start = markup.indexOf(`<tr data-job-id="${escapedId}">`);
  expect(start, `no row for ${escapedId}`).toBeGreaterThanOrEqual(0);
  return markup.slice(start, markup.indexOf('</tr>', start));
}

const cancelPath = (id: string, state = '') => `/jobs/${encodeURIComponent(id)}/cancel?state=${state}`;

/**
 * The server runs on a real SQLite app with an inline queue the test holds, so it can enqueue real product jobs
 * (and hold them waiting: no worker runs until the test starts one).
 */
describe.skipIf(skipWithoutShared)('the Jobs page', () => {
  let app: TestApp;
  let jobs: InlineJobQueue;
  let http: ServerType;
  let origin: string;
  const tokens = {} as Record<Role, string>;
  const photos = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-jobs-page-'));

  const request = (pathAndQuery: string, init: RequestInit = {}, role: Role = 'admin') => fetch(`${origin}${pathAndQuery}`, withBearer(tokens[role], init));
  const text = async (pathAndQuery: string, init: RequestInit = {}, role: Role = 'admin') => {
    const response = await request(pathAndQuery, init, role);
    expect(response.status, pathAndQuery).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    app = await createTestApp();
    jobs = new InlineJobQueue();
    const models = new ModelServer({ db: app.db, blobs: app.blobs, backbones: app.backbones, logger: app.logger, defaultBackbone: app.config.training.backbone });
    const hono = createServer(app, { web: webUi, models, runs: new RunManager(app), jobs });
    http = serve({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((resolve) => http.once('listening', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    for (const role of ROLES) tokens[role] = (await createToken(app.db, role, `jobs page ${role}`)).secret;
    fs.mkdirSync(path.join(photos, 'cat'));
    for (const file of kaggleFiles('cat', 2, 500)) fs.symlinkSync(file, path.join(photos, 'cat', path.basename(file)));
  });

  afterAll(async () => {
    await new Promise((resolve) => http?.close(resolve));
    await jobs?.close();
    await app?.dispose();
    fs.rmSync(photos, { recursive: true, force: true });
  });

  it('lists a waiting job with its markup escaped, and shows Cancel only to a role that may cancel', async () => {
    await jobs.enqueue(JOB.buildDataset, {}, { jobId: HOSTILE_ID });

    const asViewer = await text('/jobs', {}, 'viewer');
    expect(asViewer).toContain('<a href="/jobs" aria-current="page">Jobs</a>');
    expect(asViewer).not.toContain('<img src=x');
    const row = rowOf(asViewer, HOSTILE_ID_ESCAPED);
    expect(row).toContain(`${JOB.buildDataset}<br><code class="muted">${HOSTILE_ID_ESCAPED}</code>`);
    expect(row).toContain('<span class="status waiting">waiting</span>');
    expect(row).toContain('<td>0</td>'); // attempts
    expect(row).not.toContain('Cancel');
    expect(asViewer).toMatch(/<span data-state="waiting">1<\/span> waiting/);

    const asCurator = await text('/jobs', {}, 'curator');
    expect(rowOf(asCurator, HOSTILE_ID_ESCAPED)).not.toContain('Cancel');
    const asAdmin = rowOf(await text('/jobs'), HOSTILE_ID_ESCAPED);
    expect(asAdmin).toContain(`hx-post="${cancelPath(HOSTILE_ID)}"`);
    expect(asAdmin).toContain(`hx-confirm="Cancel job ${HOSTILE_ID_ESCAPED}?"`);
  });

  it('cancels through the page: refused below admin and across sites, then the row turns cancelled', async () => {
    const refused = await request(cancelPath(HOSTILE_ID), { method: 'POST' }, 'curator');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    expect((await jobs.get(HOSTILE_ID))?.state).toBe('waiting');

    const fragment = await text(cancelPath(HOSTILE_ID), { method: 'POST' });
    expect(fragment.startsWith('<section id="jobs"')).toBe(true);
    expect(fragment).toContain(`<p class="notice ok" role="status">Cancelled ${HOSTILE_ID_ESCAPED}.</p>`);
    expect(rowOf(fragment, HOSTILE_ID_ESCAPED)).toContain('<span class="status cancelled">cancelled</span>');
    expect(rowOf(fragment, HOSTILE_ID_ESCAPED)).not.toContain('Cancel');
    expect((await jobs.get(HOSTILE_ID))?.state).toBe('cancelled');

    const again = await text(cancelPath(HOSTILE_ID), { method: 'POST' });
    expect(again).toContain(`<p class="notice error" role="status">job ${HOSTILE_ID_ESCAPED} is already cancelled; only waiting or active jobs can be cancelled</p>`);
    expect(await text(cancelPath('no-such-job'), { method: 'POST' })).toContain('no-such-job');

    // A signed-in browser session: the button's POST counts only when it comes from the UI's own page.
    const signedIn = await fetch(`${origin}/signin`, { method: 'POST', headers: { Origin: origin }, body: new URLSearchParams({ token: tokens.admin, next: '/jobs' }), redirect: 'manual' });
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
    const waiting = await jobs.enqueue(JOB.buildDataset, {}, { jobId: 'build-from-session' });
    const crossSite = await fetch(`${origin}${cancelPath(waiting.id)}`, { method: 'POST', headers: { Cookie: cookie, Origin: 'https://evil.example' } });
    expect(crossSite.status).toBe(403);
    expect(((await crossSite.json()) as { error: { code: string } }).error.code).toBe('csrf_rejected');
    expect((await jobs.get(waiting.id))?.state).toBe('waiting');
    const sameSite = await fetch(`${origin}${cancelPath(waiting.id)}`, { method: 'POST', headers: { Cookie: cookie, Origin: origin } });
    expect(sameSite.status).toBe(200);
    expect((await jobs.get(waiting.id))?.state).toBe('cancelled');
  });

  it('shows what real jobs did: progress, attempts, times, the error of a failed one; filters by state and refreshes itself', async () => {
    await jobs.startWorker(jobHandlers(app, jobs), { workerId: 'jobs-page-test' });
    const missing = path.join(photos, 'not <here>');
    const failing = await jobs.enqueue(JOB.import, { folder: missing }, { attempts: 1 });
    const importing = await jobs.enqueue(JOB.import, { folder: photos }, { attempts: 1 });
    expect(await jobs.waitFor(failing.id, 60_000)).toMatchObject({ state: 'failed' });
    expect(await jobs.waitFor(importing.id, 60_000)).toMatchObject({ state: 'completed' });

    const failedOnly = await text('/jobs?state=failed');
    expect(failedOnly).toContain('<option value="failed" selected>failed</option>');
    const failedRow = rowOf(failedOnly, failing.id);
    expect(failedRow).toContain('<span class="status failed">failed</span>');
    expect(failedRow).toContain('<td>1</td>');
    expect(failedRow).toContain(`<td class="job-error">${path.join(photos, 'not &lt;here&gt;')} is not a folder: pass a folder holding cat/ and dog/ photos</td>`);
    expect(failedRow).toMatch(/<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/td>\n<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/td>/);
    expect(failedOnly).not.toContain(`data-job-id="${importing.id}"`);
    expect(failedOnly).not.toContain(`data-job-id="${HOSTILE_ID_ESCAPED}"`);

    const completed = await text('/jobs/table?state=completed', {}, 'viewer');
    expect(completed.startsWith('<section id="jobs" class="card" hx-get="/jobs/table?state=completed" hx-trigger="every 5s" hx-swap="outerHTML">')).toBe(true);
    expect(completed).not.toContain('<html');
    const completedRow = rowOf(completed, importing.id);
    expect(completedRow).toContain('<span class="status completed">completed</span>');
    expect(completedRow).toContain('<progress max="1" value="1"></progress> 100.0% <span class="muted">2 of 2 files</span>');
    expect(completedRow).toContain('<td class="job-error"></td>');
    expect(await app.db.images.countByLabel()).toMatchObject({ cat: 2 });

    expect(await text('/jobs/table?state=active')).toContain('No active job.');
    // An unknown state is no filter: every job is listed.
    const all = await text('/jobs/table?state=sleeping');
    for (const id of [failing.id, importing.id, HOSTILE_ID_ESCAPED]) expect(all).toContain(`data-job-id="${id}"`);
  });
});
