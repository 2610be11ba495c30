import http from 'node:http';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRefusedImages, RATE_LIMITED_HOLD_MS, rateLimiter } from '../../src/server/security.js';
import { progressiveScanBomb } from '../support/jpeg-scan-bomb.mjs';
import { catPhotos, photoForm, startTestServer, withBearer, type TestServer } from '../support/server.js';
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
    t = await startTestServer({ CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '6', CATDOG_SERVER__RATE_LIMIT__BURST: '5' });
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
    // A token every 10 s; the answer was held back 1 s of it.
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(5);
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

function bombForm(count: number, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  const bomb = progressiveScanBomb({ width: 640, height: 480 });
  for (let i = 0; i < count; i++) form.append('file', new Blob([bomb]), `bomb-${i}.jpg`);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

describe.skipIf(skipWithoutShared)('refused photos cost more of the rate limit (server.rateLimit.refusedImageCost)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '60',
      CATDOG_SERVER__RATE_LIMIT__BURST: '10',
      CATDOG_SERVER__RATE_LIMIT__REFUSED_IMAGE_COST: '4',
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const predict = (form: FormData) => t.fetchAs('/api/v1/predictions', { method: 'POST', body: form }, 'viewer');
  const codeOf = async (response: Response) => ((await response.json()) as ErrorJson).error.code;

  it('leaves an honest client that sends one bad photo its requests, and makes one sending only refused photos wait', async () => {
    // 10 tokens: the bomb takes 1 + 4, the good photo 1 after it.
    const bomb = await predict(bombForm(1));
    expect([bomb.status, await codeOf(bomb)]).toEqual([422, 'image_too_complex']);
    const good = await predict(photoForm(catPhotos(1)));
    expect(good.status, 'one bad photo does not lock its sender out').toBe(200);
    // Three refused files in one request: 1 + 3 × 4 tokens, more than are left.
    const three = await predict(bombForm(3));
    expect([three.status, await codeOf(three)]).toEqual([422, 'image_too_complex']);
    const limited = await predict(photoForm(catPhotos(1)));
    expect(limited.status).toBe(429);
    expect(await codeOf(limited)).toBe('rate_limited');
    // About 9 tokens in debt at 1 a second: a plain request's 429 would say 1 s.
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(5);
    expect((await t.fetchAs('/api/v1/models', {}, 'admin')).status, 'other clients keep their own bucket').toBe(200);
  });

  it("does not count a curator's refused labelled uploads against them: they label folders with the odd broken file", async () => {
    const statuses = [];
    for (let i = 0; i < 2; i++) {
      const refused = await t.fetchAs('/api/v1/images', { method: 'POST', body: bombForm(1, { label: 'cat' }) }, 'curator');
      statuses.push(`${refused.status} ${await codeOf(refused)}`);
    }
    expect(statuses).toEqual(['422 image_too_complex', '422 image_too_complex']);
    // 10 − 2 left, where a viewer's two refusals would have left 10 − 2 × (1 + 4) = 0.
    expect((await t.fetchAs('/api/v1/models', {}, 'curator')).status).toBe(200);
  });

  it('answers a limited client after a second without reading its body, and closes the connection', async () => {
    const target = new URL(t.url('/api/v1/predictions'));
    const headers = { authorization: `Bearer ${t.tokens.viewer}`, 'content-type': 'multipart/form-data; boundary=x' };
    const sent = performance.now();
    // 20 MB announced, 64 KiB sent: an answer can only come from a server that did not wait for the rest.
    const answer = await Promise.race([
      postPartly(target, headers, 20_000_000, `--x\r\n${'a'.repeat(64 * 1024)}`),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer: the server reads the body of a limited client')), 5_000)),
    ]);
    // Held back: a loop that ignores Retry-After gets one answer a second per request in flight.
    expect(performance.now() - sent).toBeGreaterThanOrEqual(RATE_LIMITED_HOLD_MS - 50);
    expect(answer.status).toBe(429);
    expect(answer.headers.connection).toBe('close');
    await answer.closed;
  });
});

/**
 * POSTs a body declaring `declaredBytes`, sends only `sent` of it, and waits for the answer: an answer can only
 * come from a server that stopped reading. `closed` tells whether the server then closed the connection.
 */
function postPartly(
  target: URL,
  headers: Record<string, string>,
  declaredBytes: number,
  sent: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const request = http.request(target, { method: 'POST', headers: { ...headers, 'content-length': declaredBytes } });
    request.on('response', (response) => {
      let body = '';
      const closed = new Promise<void>((done) => request.socket?.once('close', () => done()));
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body, closed });
        request.destroy();
      });
    });
    request.on('error', reject);
    request.write(sent);
  });
}

/** A sign-in form declaring `declaredBytes`, of which `sentBytes` are sent. */
function postHugeSignIn(url: string, declaredBytes: number, sentBytes: number) {
  const target = new URL('/signin', url);
  // The browser's own marks of a same-origin form, so that only the body decides.
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: target.origin, 'sec-fetch-site': 'same-origin' };
  return postPartly(target, headers, declaredBytes, `token=${'a'.repeat(sentBytes - 6)}`);
}

describe.skipIf(skipWithoutShared)('sign-in limits', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ CATDOG_SERVER__SIGN_IN_RATE_LIMIT__REQUESTS_PER_MINUTE: '6', CATDOG_SERVER__SIGN_IN_RATE_LIMIT__BURST: '3' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses a sign-in body over 8 KiB with 413 payload_too_large without waiting for the rest of it', async () => {
    // 200 MB announced, 64 KiB sent: an answer can only come from a server that stopped reading.
    const answer = await Promise.race([
      postHugeSignIn(t.server.url, 200 * 1024 * 1024, 64 * 1024),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer: the server waits for the whole 200 MB body')), 5_000)),
    ]);
    expect(answer.status).toBe(413);
    expect((JSON.parse(answer.body) as ErrorJson).error.code).toBe('payload_too_large');
  });

  it('limits sign-in attempts per client address with 429 rate_limited and Retry-After; the form stays reachable', async () => {
    const origin = new URL(t.server.url).origin;
    // Each caller as a reverse proxy on this machine reports it (X-Forwarded-For over loopback): its own bucket.
    const attempt = (client: string, token = 'catdog_guess') =>
      fetch(t.url('/signin'), {
        method: 'POST',
        headers: { Origin: origin, 'X-Forwarded-For': `192.0.2.99, ${client}` },
        body: new URLSearchParams({ token, next: '/' }),
        redirect: 'manual',
      });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attempt('198.51.100.1')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const limited = await attempt('198.51.100.1');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as ErrorJson).error.code).toBe('rate_limited');
    expect((await attempt('198.51.100.1', t.tokens.viewer)).status, 'the right token waits too: guesses and uses share the bucket').toBe(429);
    expect((await fetch(t.url('/signin'))).status, 'the sign-in page itself is not limited').toBe(200);
    expect((await attempt('203.0.113.7', t.tokens.viewer)).status, 'another client signs in').toBe(303);
  });
});

describe('rateLimiter', () => {
  it('refills at the configured rate', async () => {
    let now = 0;
    const app = new Hono();
    app.use('*', rateLimiter({ requestsPerMinute: 60, burst: 2 }, () => 'one client', () => now, 0));
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

  it('takes refusedImageCost tokens per refused photo on top, down to burst tokens in debt', async () => {
    let now = 0;
    const app = new Hono();
    app.use('*', rateLimiter({ requestsPerMinute: 60, burst: 10, refusedImageCost: 4 }, () => 'one client', () => now, 0));
    app.get('/', (c) => c.text('ok'));
    app.post('/refuse/:count', (c) => {
      countRefusedImages(c, Number(c.req.param('count')));
      return c.text('refused', 422);
    });
    const status = async (path = '/', method = 'GET') => (await app.request(path, { method })).status;
    // 10 − (1 + 4) leaves 5.
    expect(await status('/refuse/1', 'POST')).toBe(422);
    expect(await Promise.all([1, 2, 3, 4, 5, 6].map(() => status()))).toEqual([200, 200, 200, 200, 200, 429]);
    now += 60_000;
    // 1 + 100 × 4 would be 401 tokens of debt; it stops at 10, which 11 s of refill pay back.
    expect(await status('/refuse/100', 'POST')).toBe(422);
    const limited = await app.request('/');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('11');
    now += 10_999;
    expect(await status()).toBe(429);
    now += 2;
    expect(await status()).toBe(200);
  });

  it('is off at 0 requests per minute', async () => {
    const app = new Hono();
    app.use('*', rateLimiter({ requestsPerMinute: 0, burst: 1 }, () => 'one client'));
    app.get('/', (c) => c.text('ok'));
    for (let i = 0; i < 20; i++) expect((await app.request('/')).status).toBe(200);
  });
});
