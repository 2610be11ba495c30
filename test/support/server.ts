import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { createToken, ROLES, type Role } from '../../src/auth/index.js';
import { loadConfig } from '../../src/config/index.js';
import { builtCli, cliEnv } from './cli.js';
import { kaggleFiles, smallBackbone } from './shared.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { webUi } from '../../src/web/index.js';

export interface TestServer {
  app: AppContext;
  server: RunningServer;
  home: string;
  url: (pathAndQuery: string) => string;
  /** A live token secret per role. */
  tokens: Record<Role, string>;
  /** fetch on this server with a role's bearer token (admin unless told). */
  fetchAs(pathAndQuery: string, init?: RequestInit, role?: Role): Promise<Response>;
  close(): Promise<void>;
}

/** `init` with `Authorization: Bearer <secret>` added to whatever headers it has. */
export function withBearer(secret: string, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${secret}`);
  return { ...init, headers };
}

/** A real server on 127.0.0.1 (random port) over a fresh CATDOG_HOME, training on the small shared backbone. */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-server-'));
  // Tests reach the server over loopback: without CATDOG_SERVER__LOCAL_VIEWER, every token-less request would act as a local viewer.
  const settings = { CATDOG_HOME: home, CATDOG_BACKBONE_URL: smallBackbone, CATDOG_TRAINING__PRESET: 'fast', CATDOG_TRAINING__EPOCHS: '3', CATDOG_SERVER__LOCAL_VIEWER: 'false', ...env };
  const loaded = loadConfig({ env: settings, cwd: home });
  const app = await openApp(loaded, { logger: createLogger('warn') });
  // The server's job worker process, from the built CLI as `catdog serve` starts it, on the same settings.
  const worker = { command: process.execPath, args: [builtCli, 'worker'], env: cliEnv(home, settings), cwd: home };
  const server = await startServer(app, { web: webUi, worker, port: 0, handleSignals: false });
  const tokens = Object.fromEntries(
    await Promise.all(ROLES.map(async (role) => [role, (await createToken(app.db, role, `test ${role}`)).secret] as const)),
  ) as Record<Role, string>;
  const url = (pathAndQuery: string) => `${server.url}${pathAndQuery}`;
  return {
    app,
    server,
    home,
    url,
    tokens,
    fetchAs: (pathAndQuery, init, role = 'admin') => fetch(url(pathAndQuery), withBearer(tokens[role], init)),
    async close() {
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Multipart form with real files under the field `file` (like `curl -F file=@…`), plus extra text fields. */
export function photoForm(files: readonly string[], fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const file of files) form.append('file', new Blob([fs.readFileSync(file)]), path.basename(file));
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

export const catPhotos = (count: number, from = 0) => kaggleFiles('cat', count, from);
export const dogPhotos = (count: number, from = 0) => kaggleFiles('dog', count, from);

/** Reads a server-sent event stream until `until` says stop (or the stream ends). */
export async function readEvents(
  response: Response,
  until: (event: { event: string; data: Record<string, unknown> }) => boolean,
): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return events;
      buffer += value;
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const lines = block.split('\n');
        const name = lines.find((line) => line.startsWith('event:'))?.slice(6).trim();
        const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('\n');
        if (!name) continue;
        const event = { event: name, data: JSON.parse(data) as Record<string, unknown> };
        events.push(event);
        if (until(event)) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
