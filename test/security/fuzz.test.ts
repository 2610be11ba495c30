import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig } from '../../src/config/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { skipWithoutShared } from '../support/shared.js';
import { operationsOf, type OpenApiDocument } from './support.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every dotted path of the default config, so mutations hit real keys as well as invented ones. */
function keyPaths(value: Json, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return [prefix, ...Object.entries(value).flatMap(([key, child]) => keyPaths(child, [...prefix, key]))];
}

function setAt(root: Json, at: readonly string[], value: Json | undefined): Json {
  if (at.length === 0) return value ?? null;
  const copy = (root !== null && typeof root === 'object' && !Array.isArray(root) ? { ...root } : {}) as Record<string, Json>;
  const [head, ...rest] = at as [string, ...string[]];
  if (rest.length === 0 && value === undefined) delete copy[head];
  else copy[head] = setAt(copy[head] ?? null, rest, value);
  return copy;
}

describe('config fuzzing', () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-config-fuzz-'));
  const defaults = JSON.parse(JSON.stringify(configSchema.parse({}))) as Json;
  const paths = keyPaths(defaults);
  afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

  /** loadConfig may accept or refuse, but a refusal is always a ConfigError (a message naming the key), never a crash. */
  const loadsOrRefuses = (text: string, env: Record<string, string> = {}) => {
    const file = path.join(folder, 'config.json');
    fs.writeFileSync(file, text);
    try {
      const { config } = loadConfig({ file, env, cwd: folder });
      expect(configSchema.safeParse(config).success).toBe(true);
      return 'accepted';
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      expect(error.message).toMatch(/^Invalid configuration/);
      return 'refused';
    }
  };

  const mutation = fc.oneof(
    fc.record({ at: fc.constantFrom(...paths), value: fc.jsonValue() }),
    fc.record({ at: fc.constantFrom(...paths), value: fc.constant(undefined) }),
    fc.record({ at: fc.tuple(fc.constantFrom(...paths), fc.string({ maxLength: 12 })).map(([at, key]) => [...at, key]), value: fc.jsonValue() }),
    fc.record({ at: fc.constantFrom(...paths), value: fc.constantFrom<Json>(-1, 0, 1e308, -0.5, '', '0', 'true', [], {}, null, 'sqlite:', 'http://', '../..') }),
  );

  it('mutations of the defaults load or throw ConfigError, nothing else', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const config = mutations.reduce<Json>((current, { at, value }) => setAt(current, at, value as Json | undefined), defaults);
        seen.add(loadsOrRefuses(JSON.stringify(config)));
      }),
      { numRuns: 300 },
    );
    expect(seen).toEqual(new Set(['accepted', 'refused']));
  });

  it('arbitrary JSON documents, malformed text and CATDOG_* variables load or throw ConfigError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        loadsOrRefuses(JSON.stringify(value));
      }),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        loadsOrRefuses(text);
      }),
      { numRuns: 100 },
    );
    const envName = fc.oneof(
      fc.constantFrom(...paths.filter((at) => at.length > 0).map((at) => `CATDOG_${at.map((key) => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`)),
      fc.string({ minLength: 1, maxLength: 20 }).map((name) => `CATDOG_${name}`),
    );
    fc.assert(
      fc.property(fc.dictionary(envName, fc.string({ maxLength: 20 }), { maxKeys: 3 }), (env) => {
        loadsOrRefuses('{}', env);
      }),
      { numRuns: 200 },
    );
  });
});

describe.skipIf(skipWithoutShared)('API fuzzing', () => {
  let t: TestServer;
  let document: OpenApiDocument;
  beforeAll(async () => {
    // No photos: no random body can start a training run, so every request stays cheap.
    t = await startTestServer({ CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0' });
    document = (await (await fetch(t.url('/api/openapi.json'))).json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await t?.close();
  });

  const queryValue = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.double().map(String), fc.constantFrom('', 'true', 'false', '-1', '1e309', 'NaN', '%', '../', 'cat', 'dog', 'neither'));
  const pathValue = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.integer().map(String), fc.constantFrom('current', '0', '-1', '1', 'ab'.repeat(32), '..', '%00'));

  it('random query strings, path parameters and JSON bodies never get a 5xx, and every refusal is JSON', async () => {
    const operations = operationsOf(document);
    const request = fc.record({
      operation: fc.constantFrom(...operations),
      params: fc.array(pathValue, { minLength: 3, maxLength: 3 }),
      query: fc.dictionary(fc.oneof(fc.constantFrom('limit', 'offset', 'label', 'validated', 'strategy', 'exclude', 'size', 'n', 'since', 'until', 'modelId'), fc.string({ maxLength: 10 })), queryValue, { maxKeys: 4 }),
      body: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
      rawBody: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    });
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async ({ operation, params, query, body, rawBody }) => {
        let index = 0;
        const route = operation.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(params[index++]!));
        const search = new URLSearchParams(query).toString();
        const init: RequestInit = { method: operation.method };
        if (operation.method !== 'GET' && (body !== undefined || rawBody !== undefined)) {
          init.headers = { 'Content-Type': 'application/json' };
          init.body = rawBody ?? JSON.stringify(body);
        }
        const response = await t.fetchAs(`${route}${search ? `?${search}` : ''}`, init);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const what = `${operation.method} ${route}?${search} ${String(init.body)}`;
        expect(response.status, what).toBeLessThan(500);
        if (response.status >= 400) {
          expect(response.headers.get('content-type'), what).toContain('application/json');
          const answer = (await response.json()) as { error?: { code?: unknown } };
          expect(typeof answer.error?.code, what).toBe('string');
        } else {
          await response.body?.cancel();
        }
      }),
      { numRuns: 400 },
    );
    console.info('API fuzzing statuses:', Object.fromEntries([...statuses].sort(([a], [b]) => a - b)));
    expect((await t.fetchAs('/api/v1/health')).status).toBe(200);
  }, 180_000);
});
