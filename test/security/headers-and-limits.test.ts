import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimiter } from '../../src/server/security.js';
import { startTestServer, withBearer, type TestServer } from '../../src/server/test-support.js';
import { skipWithoutShared } from '../support/shared.js';
import { fillPath, operationsOf, type ErrorJson, type OpenApiDocument } from './support.js';

const WEB_PAGES = ['/', '/review', '/dataset', '/dataset/gallery', '/dataset/gallery/grid', '/dataset/health', '/training', '/models', '/signin', '/dataset/thumbnails', '/dataset/preview'];

function expectSecurityHeaders(response: Response, what: string): void {
  const policy = response.headers.get('content-security-policy') ?? '';
  expect(policy, what).toContain("frame-ancestors 'none'");
  expect(policy, what).toMatch(/script-src 'self'(;|$)/);
  expect(policy, what).not.toContain('unsafe-inline');
  expect(policy, what).not.toContain('unsafe-eval');
  expect(response.headers.get('x-content-type-options'), what).toBe('nosniff');
  expect(response.headers.get('x-frame-options'), what).toBe('DENY');
}

describe.skipIf(skipWithoutShared)('security headers', () => {
  let t: TestServer;
  let document: OpenApiDocument;
  beforeAll(async () => {
    t = await startTestServer({ CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0' });
    document = (await (await fetch(t.url('/api/openapi.json'))).json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('are on every web page, signed in or sent to sign in, and no page carries inline script or style', async () => {
    for (const page of WEB_PAGES) {
      const anonymous = await fetch(t.url(page), { headers: { Accept: 'text/html' }, redirect: 'manual' });
      expectSecurityHeaders(anonymous, `${page} (anonymous)`);
      const signedIn = await t.fetchAs(page, { headers: { Accept: 'text/html' } }, 'viewer');
      expect(signedIn.status, page).toBe(200);
      expectSecurityHeaders(signedIn, page);
      const markup = await signedIn.text();
      expect(markup, `${page} has an inline script`).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(markup, `${page} has an inline style or handler`).not.toMatch(/\sstyle=|<style|\son[a-z]+=/);
    }
  });

  it('are on every GET operation of the API, on errors (401, 403, 404, 429) and on static files', async () => {
    const reads = operationsOf(document).filter((operation) => operation.method === 'GET');
    expect(reads.length).toBeGreaterThan(10);
    for (const { path: route } of reads) {
      const response = await t.fetchAs(fillPath(route));
      expectSecurityHeaders(response, route);
      await response.body?.cancel();
    }
    for (const [route, init] of [
      ['/api/v1/models', {}],
      ['/api/v1/tokens', withBearer(t.tokens.viewer)],
      ['/api/v1/nothing', withBearer(t.tokens.viewer)],
      ['/static/app.css', {}],
      ['/api/openapi.json', {}],
    ] as const) {
      const response = await fetch(t.url(route), init);
      expectSecurityHeaders(response, route);
      await response.body?.cancel();
    }
  });
});

describe.skipIf(skipWithoutShared)('rate limit (server.rateLimit)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '60', CATDOG_SERVER__RATE_LIMIT__BURST: '5' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('allows a burst per token, then answers 429 rate_limited with Retry-After; other clients keep their own bucket', async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await t.fetchAs('/api/v1/models', {}, 'viewer')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await t.fetchAs('/api/v1/models', {}, 'viewer');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await limited.json()) as ErrorJson;
    expect(body.error.code).toBe('rate_limited');
    expectSecurityHeaders(limited, '429');

    expect((await t.fetchAs('/api/v1/models', {}, 'curator')).status).toBe(200);
    // Anonymous callers are limited per address, and refused ones count too.
    const anonymous = [];
    for (let i = 0; i < 6; i++) anonymous.push((await fetch(t.url('/api/v1/models'))).status);
    expect(anonymous).toEqual([401, 401, 401, 401, 401, 429]);
    // Pages are not API calls: the UI stays reachable for a limited client.
    expect((await t.fetchAs('/models', {}, 'viewer')).status).toBe(200);
  });
});

describe('rateLimiter', () => {
  it('refills at the configured rate', async () => {
    let now = 0;
    const app = new Hono();
    app.use('*', rateLimiter({ requestsPerMinute: 60, burst: 2 }, () => 'one client', () => now));
    app.get('/', (c) => c.text('ok'));
    const status = async () => (await app.request('/')).status;
    expect([await status(), await status(), await status()]).toEqual([200, 200, 429]);
    now += 999;
    expect(await status()).toBe(429);
    now += 2;
    expect([await status(), await status()]).toEqual([200, 429]);
    now += 60_000;
    expect([await status(), await status(), await status()]).toEqual([200, 200, 429]);
  });

  it('is off at 0 requests per minute', async () => {
    const app = new Hono();
    app.use('*', rateLimiter({ requestsPerMinute: 0, burst: 1 }, () => 'one client'));
    app.get('/', (c) => c.text('ok'));
    for (let i = 0; i < 20; i++) expect((await app.request('/')).status).toBe(200);
  });
});
