import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NON_API_RULES } from '../../src/server/auth-middleware.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { skipWithoutShared } from '../support/shared.js';
import { ACCESS_TABLE_END, ACCESS_TABLE_START, operationsOf, renderAccessTable, repoRoot, type OpenApiDocument } from './support.js';

const docsFile = path.join(repoRoot, 'docs', 'security.md');

describe.skipIf(skipWithoutShared)('docs/security.md', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows the role of every route exactly as the server enforces it', async () => {
    const document = (await (await fetch(t.url('/api/openapi.json'))).json()) as OpenApiDocument;
    const table = renderAccessTable([
      ...operationsOf(document).map(({ method, path: route, role, operation }) => ({
        method,
        path: route,
        // What the middleware falls back to for a route that declares nothing (access.test.ts names it).
        role: role === 'undefined' ? `${method === 'GET' ? 'viewer' : 'admin'} (undeclared)` : role,
        summary: String(operation.summary ?? ''),
      })),
      ...NON_API_RULES.map((rule) => ({ method: rule.method, path: rule.path, role: rule.access, summary: rule.what })),
      { method: 'GET', path: '/ (every other page and fragment)', role: 'viewer', summary: 'the web UI; anonymous visitors are sent to /signin' },
      { method: 'POST/PUT/DELETE', path: '(any route not declared)', role: 'admin', summary: 'fail-closed default' },
    ]);
    const docs = fs.readFileSync(docsFile, 'utf8');
    const start = docs.indexOf(ACCESS_TABLE_START);
    const end = docs.indexOf(ACCESS_TABLE_END);
    expect(start, `${docsFile} lacks the access table markers`).toBeGreaterThanOrEqual(0);
    const current = docs.slice(start + ACCESS_TABLE_START.length, end).trim();
    if (process.env.UPDATE_SECURITY_DOCS === '1' && current !== table) {
      fs.writeFileSync(docsFile, `${docs.slice(0, start + ACCESS_TABLE_START.length)}\n${table}\n${docs.slice(end)}`);
      return;
    }
    expect(current).toBe(table);
  });
});
