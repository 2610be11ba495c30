import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Role } from '../../src/auth/index.js';
import { startTestServer, withBearer, type TestServer } from '../support/server.js';
import { kaggleFiles, skipWithoutShared } from '../support/shared.js';
import { builtCli, cliEnv, fillPath, operationsOf, runNode, skipWithoutBuild, type ErrorJson, type OpenApiDocument } from './support.js';

const NO_LIMIT = { CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0' };
const rolesBelow = (role: string): Role[] => ROLES.slice(0, Math.max(0, ROLES.indexOf(role as Role)));

describe.skipIf(skipWithoutShared)('access control', () => {
  let t: TestServer;
  let document: OpenApiDocument;

  beforeAll(async () => {
    // An empty installation: no photo, so no request made with the right role can start a training run.
    t = await startTestServer(NO_LIMIT);
    document = (await (await fetch(t.url('/api/openapi.json'))).json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await t?.close();
  });

  const call = (method: string, route: string, secret?: string) => {
    const init: RequestInit = { method };
    return fetch(t.url(fillPath(route)), secret ? withBearer(secret, init) : init);
  };

  it('every operation of the OpenAPI document declares its role, and the document names the bearer scheme', () => {
    const operations = operationsOf(document);
    expect(operations.length).toBeGreaterThan(20);
    for (const { method, path: route, role } of operations) expect(['public', ...ROLES], `${method} ${route}`).toContain(role);
    expect(JSON.stringify(document)).toContain('"bearerAuth"');
  });

  it('refuses each operation to anonymous callers (401) and lower roles (403), and lets the declared role through', async () => {
    const checked: string[] = [];
    for (const { method, path: route, role } of operationsOf(document)) {
      const name = `${method} ${route}`;
      if (role === 'public') {
        expect((await call(method, route)).status, name).not.toBe(401);
        continue;
      }
      const anonymous = await call(method, route);
      expect(anonymous.status, name).toBe(401);
      expect(((await anonymous.json()) as ErrorJson).error.code, name).toBe('unauthenticated');
      for (const lower of rolesBelow(role)) {
        const refused = await call(method, route, t.tokens[lower]);
        expect(refused.status, `${name} as ${lower}`).toBe(403);
        const body = (await refused.json()) as ErrorJson;
        expect(body.error.code).toBe('forbidden');
        expect(body.error.message, name).toContain(`needs the ${role} role`);
      }
      for (const allowed of ROLES.slice(ROLES.indexOf(role as Role))) {
        const answer = await call(method, route, t.tokens[allowed]);
        expect([401, 403], `${name} as ${allowed}`).not.toContain(answer.status);
        expect(answer.status, `${name} as ${allowed}`).toBeLessThan(500);
        await answer.body?.cancel();
      }
      checked.push(name);
    }
    expect(checked).toContain('POST /api/v1/models/{id}/promote');
  });

  it('refuses a malformed, unknown or revoked token with 401', async () => {
    const models = (init: RequestInit) => fetch(t.url('/api/v1/models'), init);
    expect((await models({ headers: { Authorization: 'Basic abc' } })).status).toBe(401);
    expect((await models(withBearer('catdog_not-a-real-token'))).status).toBe(401);

    const issued = await t.fetchAs('/api/v1/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ role: 'viewer', name: 'short-lived' }) });
    expect(issued.status).toBe(201);
    const { id, secret } = (await issued.json()) as { id: string; secret: string };
    expect((await models(withBearer(secret))).status).toBe(200);
    const listed = (await (await t.fetchAs('/api/v1/tokens')).json()) as { items: { id: string }[] };
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect((await t.fetchAs(`/api/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
    const revoked = await models(withBearer(secret));
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as ErrorJson).error.code).toBe('unauthenticated');
  });

  it('web pages send anonymous visitors to sign in, and the session cookie is httpOnly, SameSite=Strict', async () => {
    const page = await fetch(t.url('/review'), { headers: { Accept: 'text/html' }, redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/signin?next=%2Freview');

    const origin = new URL(t.server.url).origin;
    const signIn = (token: string, headers: Record<string, string> = { Origin: origin }) =>
      fetch(t.url('/signin'), { method: 'POST', headers, body: new URLSearchParams({ token, next: '/review' }), redirect: 'manual' });
    expect((await signIn('catdog_wrong')).status).toBe(401);
    expect((await signIn(t.tokens.curator, { Origin: 'https://evil.example' })).status).toBe(403);

    const signedIn = await signIn(t.tokens.curator);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/review');
    const setCookie = signedIn.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^catdog_session=[\w-]{40,};/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    const cookie = setCookie.split(';')[0]!;

    expect((await fetch(t.url('/review'), { headers: { Cookie: cookie } })).status).toBe(200);
    // A curator's session may upload, but only from the UI's own pages (Origin), never cross-site.
    const upload = (headers: Record<string, string>) => fetch(t.url('/api/v1/images'), { method: 'POST', headers: { Cookie: cookie, ...headers }, body: new FormData() });
    const noOrigin = await upload({});
    expect(noOrigin.status).toBe(403);
    expect(((await noOrigin.json()) as ErrorJson).error.code).toBe('csrf_rejected');
    expect((await upload({ Origin: 'https://evil.example' })).status).toBe(403);
    expect((await upload({ Origin: origin })).status).toBe(400);
    const promote = await fetch(t.url('/api/v1/models/1/promote'), { method: 'POST', headers: { Cookie: cookie, Origin: origin } });
    expect(promote.status).toBe(403);

    const signOut = await fetch(t.url('/signout'), { method: 'POST', headers: { Cookie: cookie, Origin: origin }, redirect: 'manual' });
    expect(signOut.status).toBe(303);
    expect(signOut.headers.get('set-cookie')).toMatch(/catdog_session=;.*Max-Age=0/);
    expect((await fetch(t.url('/review'), { headers: { Cookie: cookie, Accept: 'text/html' }, redirect: 'manual' })).status).toBe(303);
  });

  it('never redirects a sign-in to another site', async () => {
    const origin = new URL(t.server.url).origin;
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const response = await fetch(t.url('/signin'), {
        method: 'POST',
        headers: { Origin: origin },
        body: new URLSearchParams({ token: t.tokens.viewer, next }),
        redirect: 'manual',
      });
      expect(response.headers.get('location'), next).toBe('/');
    }
  });
});

describe.skipIf(skipWithoutShared)('anonymous viewer (server.anonymousViewer)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...NO_LIMIT, CATDOG_SERVER__ANONYMOUS_VIEWER: 'true' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets anonymous requests read as a viewer but never write, not even a viewer write', async () => {
    expect((await fetch(t.url('/api/v1/models'))).status).toBe(200);
    expect((await fetch(t.url('/review'))).status).toBe(200);
    const predict = await fetch(t.url('/api/v1/predictions'), { method: 'POST', body: new FormData() });
    expect(predict.status).toBe(401);
    expect((await fetch(t.url('/api/v1/tokens'))).status).toBe(401);
  });
});

describe.skipIf(skipWithoutShared)('local viewer on the embedded defaults (server.localViewer)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...NO_LIMIT, CATDOG_SERVER__LOCAL_VIEWER: 'true' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets a token-less client on this machine predict and read, but not curate, nor a page of another site', async () => {
    const photo = () => {
      const form = new FormData();
      form.append('file', new Blob([fs.readFileSync(kaggleFiles('cat', 1)[0]!)]), 'cat.jpg');
      return form;
    };
    const predicted = await fetch(t.url('/api/v1/predictions'), { method: 'POST', body: photo() });
    expect(predicted.status).toBe(200);
    expect((await fetch(t.url('/api/v1/models'))).status).toBe(200);
    const { predictions } = (await predicted.json()) as { predictions: { id: string }[] };
    const validate = await fetch(t.url(`/api/v1/predictions/${predictions[0]!.id}/validation`), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'cat' }),
    });
    expect(validate.status).toBe(401);
    const crossSite = await fetch(t.url('/api/v1/predictions'), { method: 'POST', body: photo(), headers: { origin: 'https://evil.example' } });
    expect(crossSite.status).toBe(401);
  });
});

describe.skipIf(skipWithoutShared || skipWithoutBuild)('catdog token (offline, on the database)', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-token-cli-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('creates the first admin token, lists it without its secret, and revokes it', async () => {
    const cli = (...args: string[]) => runNode([builtCli, 'token', ...args], cliEnv(home), home);
    const created = await cli('create', '--role', 'admin', '--name', 'first admin');
    expect(created.code, created.stderr).toBe(0);
    const [summary, secret] = created.stdout.trim().split('\n');
    expect(secret).toMatch(/^catdog_[\w-]{43}$/);
    const id = /^created (tok_[0-9a-f]{16}) \(admin, "first admin"\)$/.exec(summary!)?.[1];
    expect(id).toBeDefined();

    const listed = await cli('list', '--json');
    const tokens = JSON.parse(listed.stdout) as { id: string; role: string; revokedAt: string | null }[];
    expect(tokens).toEqual([expect.objectContaining({ id, role: 'admin', revokedAt: null })]);
    expect(listed.stdout).not.toContain(secret!);
    expect(fs.readFileSync(path.join(home, 'catdog.db')).includes(Buffer.from(secret!))).toBe(false);

    expect((await cli('create', '--role', 'root')).stderr).toContain('unknown role "root"');
    expect((await cli('revoke', id!)).stdout).toBe(`revoked ${id}\n`);
    const again = await cli('revoke', id!);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no live token ${id}`);
  }, 120_000);
});
