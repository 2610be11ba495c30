import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { kaggleFiles, skipWithoutShared } from '../support/shared.js';
import { builtCli, cliEnv, collect, listeningUrl, repoRoot, skipWithoutBuild, type ErrorJson } from './support.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((candidate) => fs.existsSync(candidate));
const NO_LIMIT = { CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0', CATDOG_SERVER__SIGN_IN_RATE_LIMIT__REQUESTS_PER_MINUTE: '0' };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with exactly these headers (fetch would not let a test choose Host). */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; tls?: boolean } = {}): Promise<Answer> {
  const target = new URL(url);
  const client = options.tls ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      target,
      { method: options.method ?? 'GET', headers: options.headers, ...(options.tls && { rejectUnauthorized: false, servername: 'catdog.example.org' }) },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

const errorCode = (answer: Answer): string => (JSON.parse(answer.body) as ErrorJson).error.code;

/** A multipart body with one photo under `file`, as curl -F file=@cat.jpg sends it. */
function photoBody(): { body: Buffer; contentType: string } {
  const boundary = 'catdogproxytest';
  const photo = fs.readFileSync(kaggleFiles('cat', 1, 800)[0]!);
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return { body: Buffer.concat([Buffer.from(head), photo, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe.skipIf(skipWithoutShared)('local viewer and allowed hosts on the embedded defaults', () => {
  let t: TestServer;
  let port: string;
  beforeAll(async () => {
    t = await startTestServer({ ...NO_LIMIT, CATDOG_SERVER__LOCAL_VIEWER: 'true' });
    port = new URL(t.server.url).port;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is a viewer only for a direct loopback request: any proxy header makes it anonymous', async () => {
    expect((await send(t.url('/api/v1/images'))).status).toBe(200);
    const proxyHeaders: Record<string, string>[] = [
      { 'X-Forwarded-For': '203.0.113.9' },
      { Forwarded: 'for=203.0.113.9;proto=https' },
      { 'X-Forwarded-Proto': 'https' },
      { 'X-Forwarded-Host': `127.0.0.1:${port}` },
      { 'X-Real-IP': '203.0.113.9' },
      { Via: '1.1 proxy' },
    ];
    for (const headers of proxyHeaders) {
      for (const route of ['/api/v1/images', '/metrics', '/api/v1/models']) {
        const answer = await send(t.url(route), { headers });
        expect(answer.status, `${route} with ${JSON.stringify(headers)}`).toBe(401);
      }
      const page = await send(t.url('/'), { headers: { ...headers, Accept: 'text/html' } });
      expect(page.status, `web UI with ${JSON.stringify(headers)}`).toBe(303);
      expect(page.headers.location).toMatch(/^\/signin/);
      const { body, contentType } = photoBody();
      const predicted = await send(t.url('/api/v1/predictions'), { method: 'POST', headers: { ...headers, 'Content-Type': contentType }, body });
      expect(predicted.status, `prediction with ${JSON.stringify(headers)}`).toBe(401);
    }
  });

  it('answers the loopback names only, refusing another Host (DNS rebinding) with 421 host_not_allowed', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'LOCALHOST.']) {
      expect((await send(t.url('/api/v1/health'), { headers: { Host: host } })).status, host).toBe(200);
    }
    for (const host of [`rebound.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`]) {
      for (const route of ['/api/v1/images', '/api/v1/health', '/', '/static/app.css']) {
        const answer = await send(t.url(route), { headers: { Host: host } });
        expect(answer.status, `${route} with Host ${host}`).toBe(421);
        expect(errorCode(answer)).toBe('host_not_allowed');
        expect(answer.headers['content-security-policy'], 'security headers on the refusal').toBeDefined();
      }
    }
    const forwardedHost = await send(t.url('/api/v1/health'), { headers: { 'X-Forwarded-Host': 'rebound.example' } });
    expect(forwardedHost.status).toBe(421);

    // A rebound page posting a photo, with or without a token: refused before anything is read or written.
    const predictions = async () => (await t.app.db.predictions.list({ limit: 1, offset: 0 })).total;
    const before = await predictions();
    for (const headers of [{}, { Authorization: `Bearer ${t.tokens.admin}` }] as Record<string, string>[]) {
      const { body, contentType } = photoBody();
      const upload = await send(t.url('/api/v1/predictions'), { method: 'POST', headers: { ...headers, Host: `rebound.example:${port}`, 'Content-Type': contentType }, body });
      expect(upload.status).toBe(421);
    }
    expect(await predictions()).toBe(before);
  });
});

describe.skipIf(skipWithoutShared || skipWithoutBuild)('catdog serve --host and CATDOG_HOST', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-host-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  const localViewerAnswer = async (args: string[], env: Record<string, string>) => {
    const child = spawn(process.execPath, [builtCli, 'serve', '--port', '0', ...args], { cwd: home, env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = collect(child);
    try {
      const url = await listeningUrl(child, exited);
      const port = new URL(url).port;
      return (await send(`http://127.0.0.1:${port}/api/v1/models`)).status;
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  };

  it('mean the same: bound to 0.0.0.0 either way, a token-less loopback request is not a viewer', async () => {
    expect(await localViewerAnswer([], {}), 'the embedded defaults: local viewer').toBe(200);
    expect(await localViewerAnswer(['--host', '0.0.0.0'], {}), '--host 0.0.0.0').toBe(401);
    expect(await localViewerAnswer([], { CATDOG_HOST: '0.0.0.0' }), 'CATDOG_HOST=0.0.0.0').toBe(401);
    expect(await localViewerAnswer(['--host', '127.0.0.1'], { CATDOG_HOST: '0.0.0.0' }), 'the flag wins over the variable').toBe(200);
    // Four servers start one after the other, each loading TensorFlow and a backbone: 80 s on two busy cores.
  }, 300_000);
});

/** The nginx block and catdog configuration of docs/security.md's "Running exposed", as printed there. */
function proxyRecipe(): { nginx: string; config: { server: { allowedHosts: string[] } } } {
  const docs = fs.readFileSync(path.join(repoRoot, 'docs', 'security.md'), 'utf8');
  const section = docs.slice(docs.indexOf('## Running exposed'));
  const block = (language: string) => {
    const match = new RegExp('```' + language + '\\n([\\s\\S]*?)\\n\\s*```').exec(section);
    if (!match) throw new Error(`docs/security.md "Running exposed" has no ${language} block`);
    return match[1]!.replace(/^ {3}/gm, '');
  };
  return { nginx: block('nginx'), config: JSON.parse(block('json')) as { server: { allowedHosts: string[] } } };
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe.skipIf(skipWithoutShared || !NGINX)('the reverse-proxy recipe of docs/security.md, in nginx', () => {
  let t: TestServer;
  let scratch: string;
  let proxy: ReturnType<typeof spawn> | undefined;
  let proxyUrl: string;

  beforeAll(async () => {
    const recipe = proxyRecipe();
    // The recipe with catdog's defaults otherwise: the local viewer stays on, as on a fresh installation.
    t = await startTestServer({ ...NO_LIMIT, CATDOG_SERVER__LOCAL_VIEWER: 'true', CATDOG_SERVER__ALLOWED_HOSTS: recipe.config.server.allowedHosts.join(',') });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-nginx-'));
    const certificate = path.join(scratch, 'fullchain.pem');
    const key = path.join(scratch, 'privkey.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=catdog.example.org', '-keyout', key, '-out', certificate], { stdio: 'ignore' });
    const port = await freePort();
    const site = recipe.nginx
      .replace(/listen 443 ssl http2;/, `listen 127.0.0.1:${port} ssl http2;`)
      .replace(/proxy_pass http:\/\/127\.0\.0\.1:8080;/, `proxy_pass ${t.server.url};`)
      .replace(/ssl_certificate +\S+;/, `ssl_certificate ${certificate};`)
      .replace(/ssl_certificate_key +\S+;/, `ssl_certificate_key ${key};`);
    expect(site, 'every replacement found its line').not.toMatch(/443|8080|letsencrypt/);
    const temp = (name: string) => `${name}_temp_path ${path.join(scratch, name)};`;
    fs.writeFileSync(
      path.join(scratch, 'nginx.conf'),
      [
        process.getuid?.() === 0 ? 'user root;' : '',
        'daemon off;',
        `pid ${path.join(scratch, 'nginx.pid')};`,
        `error_log ${path.join(scratch, 'error.log')};`,
        'events {}',
        `http { access_log off; ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
        site,
        '}',
      ].join('\n'),
    );
    proxy = spawn(NGINX!, ['-p', scratch, '-c', path.join(scratch, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proxyUrl = `https://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt++) {
      const ready = await send(`${proxyUrl}/api/v1/health`, { tls: true, headers: { Host: 'catdog.example.org' } }).then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (attempt > 50) throw new Error(`nginx did not start: ${fs.readFileSync(path.join(scratch, 'error.log'), 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 60_000);

  afterAll(async () => {
    if (proxy && proxy.exitCode === null) {
      const exited = new Promise((resolve) => proxy!.once('exit', resolve));
      proxy.kill('SIGTERM');
      await exited;
    }
    await t?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  const viaProxy = (route: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}) =>
    send(`${proxyUrl}${route}`, { ...options, tls: true, headers: { Host: 'catdog.example.org', ...options.headers } });

  it('asks every caller from the Internet for a token (images, predictions, /metrics, the web UI), while local curl keeps the local viewer', async () => {
    for (const route of ['/api/v1/images', '/api/v1/models', '/metrics']) {
      const answer = await viaProxy(route);
      expect(answer.status, route).toBe(401);
      expect(errorCode(answer), route).toBe('unauthenticated');
    }
    const page = await viaProxy('/', { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.location).toMatch(/^\/signin/);
    const { body, contentType } = photoBody();
    expect((await viaProxy('/api/v1/predictions', { method: 'POST', headers: { 'Content-Type': contentType }, body })).status).toBe(401);

    expect((await viaProxy('/api/v1/images', { headers: { Authorization: `Bearer ${t.tokens.viewer}` } })).status, 'with a token').toBe(200);
    expect((await send(t.url('/api/v1/images'))).status, 'direct on the machine').toBe(200);
  });

  it('answers only the public name of server.allowedHosts, and signs in with a Secure cookie under its Origin', async () => {
    const other = await viaProxy('/api/v1/health', { headers: { Host: 'rebound.example' } });
    expect(other.status).toBe(421);
    expect(errorCode(other)).toBe('host_not_allowed');
    expect((await viaProxy('/api/v1/health')).status).toBe(200);

    const signedIn = await viaProxy('/signin', {
      method: 'POST',
      headers: { Origin: 'https://catdog.example.org', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.tokens.viewer, next: '/models' }).toString(),
    });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.location).toBe('/models');
    const cookie = String(signedIn.headers['set-cookie']);
    expect(cookie).toMatch(/catdog_session=.*; Secure/);
    const page = await viaProxy('/models', { headers: { Cookie: cookie.split(';')[0]!, Accept: 'text/html' } });
    expect(page.status).toBe(200);
  });
});
