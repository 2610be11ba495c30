import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFullRes, skipWithoutShared } from '../../test/support/shared.js';
import { catPhotos, dogPhotos, photoForm, startTestServer, type TestServer } from '../../test/support/server.js';

interface Member {
  hash: string;
  label: 'cat' | 'dog' | null;
  originalName: string | null;
  perceptualHash: string | null;
  thumbnailUrl: string;
}

interface Difference {
  added: { hash: string; label: string }[];
  removed: { hash: string; label: string }[];
  relabelled: { hash: string; from: string; to: string }[];
}

type Counts = Record<keyof Difference, number>;

interface HealthJson {
  balance: { cat: number; dog: number; unlabelled: number };
  nearDuplicates: { maxDistance: number; notHashed: number; total: number; conflicting: number; groups: { distance: number; conflicting: boolean; members: Member[] }[] };
  sinceLatestVersion: { versionId: number; newLabels: number; summary: string; counts: Counts; changes: Difference } | null;
  versionDifference: { from: number; to: number; counts: Counts; changes: Difference } | null;
}

const PER_CLASS = 8;

/** The JSON twin of /dataset/health, on a real server and database, with the same Kaggle photos stored at two sizes. */
describe.skipIf(skipWithoutShared)('GET /api/v1/datasets/health', () => {
  let t: TestServer;
  /** kaggle-dev name → stored hash. */
  const hashOf = new Map<string, string>();
  let fullSizeCat1: string;
  let fullSizeCat2: string;

  const upload = async (files: string[], label: 'cat' | 'dog') => {
    const response = await t.fetchAs('/api/v1/images', { method: 'POST', body: photoForm(files, { label }) }, 'curator');
    expect(response.status).toBe(201);
    return ((await response.json()) as { items: { hash: string; originalName: string }[] }).items;
  };
  const health = async (query = '', role: 'viewer' | 'curator' = 'viewer') => {
    const response = await t.fetchAs(`/api/v1/datasets/health${query}`, undefined, role);
    return { status: response.status, body: (await response.json()) as HealthJson & { error?: { code: string } } };
  };
  const build = async () => {
    const response = await t.fetchAs('/api/v1/datasets', { method: 'POST' }, 'curator');
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: number }).id;
  };
  const sorted = (difference: Difference): Difference => {
    const byHash = <T extends { hash: string }>(items: T[]) => [...items].sort((a, b) => a.hash.localeCompare(b.hash));
    return { added: byHash(difference.added), removed: byHash(difference.removed), relabelled: byHash(difference.relabelled) };
  };

  beforeAll(async () => {
    t = await startTestServer();
    for (const [label, files] of [['cat', catPhotos(PER_CLASS, 1)], ['dog', dogPhotos(PER_CLASS, 1)]] as const) {
      for (const item of await upload(files, label)) hashOf.set(item.originalName, item.hash);
    }
    // The same Kaggle photos at full size: cat.1 with the other label (a conflict), cat.2 with the same one.
    fullSizeCat1 = (await upload([path.join(kaggleFullRes, 'cat', 'cat.1.jpg')], 'dog'))[0]!.hash;
    fullSizeCat2 = (await upload([path.join(kaggleFullRes, 'cat', 'cat.2.jpg')], 'cat'))[0]!.hash;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('gives a viewer the class balance and the near-duplicate groups, the conflicting one first, before any version is built', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body.balance).toEqual({ cat: PER_CLASS + 1, dog: PER_CLASS + 1, unlabelled: 0 });
    expect(body.nearDuplicates.notHashed).toBe(0);
    expect(body.nearDuplicates.maxDistance).toBeGreaterThan(0);
    const { groups } = body.nearDuplicates;
    const membersOf = (group: (typeof groups)[number]) => group.members.map((member) => member.hash).sort();
    // The two pairs are found; no two different Kaggle photos are grouped.
    expect(groups.map(membersOf)).toEqual([
      [hashOf.get('cat.1.jpg')!, fullSizeCat1].sort(),
      [hashOf.get('cat.2.jpg')!, fullSizeCat2].sort(),
    ]);
    const [conflict, agreeing] = groups;
    expect(conflict!.conflicting).toBe(true);
    expect(conflict!.members.map((member) => member.label).sort()).toEqual(['cat', 'dog']);
    expect(agreeing!.conflicting).toBe(false);
    expect(agreeing!.members.map((member) => member.label)).toEqual(['cat', 'cat']);
    for (const group of groups) {
      expect(group.distance).toBeLessThanOrEqual(body.nearDuplicates.maxDistance);
      for (const member of group.members) {
        expect(member.perceptualHash).toMatch(/^[0-9a-f]{16}$/);
        expect(member.thumbnailUrl).toBe(`/api/v1/images/${member.hash}?size=thumb`);
      }
    }
    expect(body.sinceLatestVersion).toBeNull();
    expect(body.versionDifference).toBeNull();
  });

  it('counts the new labels since the latest version and compares two versions (?from=&to=, by default the two newest)', async () => {
    const v1 = await build();
    expect((await health()).body.sinceLatestVersion).toMatchObject({ versionId: v1, newLabels: 0, summary: `0 new labels since v${v1}` });

    const relabelled = hashOf.get('dog.3.jpg')!;
    expect((await t.fetchAs(`/api/v1/images/${relabelled}/label`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ label: 'cat' }) }, 'curator')).status).toBe(200);
    expect((await t.fetchAs(`/api/v1/images/${fullSizeCat1}`, { method: 'DELETE' }, 'curator')).status).toBe(200);
    const [added] = await upload(dogPhotos(1, 100), 'dog');
    const expected: Difference = {
      added: [{ hash: added!.hash, label: 'dog' }],
      removed: [{ hash: fullSizeCat1, label: 'dog' }],
      relabelled: [{ hash: relabelled, from: 'dog', to: 'cat' }],
    };

    const pending = (await health()).body;
    expect(pending.sinceLatestVersion).toEqual({ versionId: v1, newLabels: 3, summary: `3 new labels since v${v1}`, counts: { added: 1, removed: 1, relabelled: 1 }, changes: expected });
    // One version only: nothing to compare yet.
    expect(pending.versionDifference).toBeNull();
    // The deleted copy left the data set, and with it the conflict.
    expect(pending.nearDuplicates.groups.map((group) => group.conflicting)).toEqual([false]);

    const v2 = await build();
    const latest = (await health()).body;
    expect(latest.sinceLatestVersion).toMatchObject({ versionId: v2, newLabels: 0 });
    expect(latest.versionDifference!.from).toBe(v1);
    expect(latest.versionDifference!.to).toBe(v2);
    expect(sorted(latest.versionDifference!.changes)).toEqual(expected);

    const backwards = await health(`?from=${v2}&to=${v1}`);
    expect(backwards.status).toBe(200);
    expect(sorted(backwards.body.versionDifference!.changes)).toEqual({
      added: expected.removed,
      removed: expected.added,
      relabelled: [{ hash: relabelled, from: 'cat', to: 'dog' }],
    });
  });

  it('pages every list by limit and offset beside its full count, the last page shorter and past it empty', async () => {
    // Full-size copies of cat.3 to cat.5 labelled dog: three more groups, all conflicting, and three photos added
    // since the latest version; the cat.2 pair, which agrees, ranks last.
    const conflicting = await upload([3, 4, 5].map((n) => path.join(kaggleFullRes, 'cat', `cat.${n}.jpg`)), 'dog');
    const pairs = [[hashOf.get('cat.2.jpg')!, fullSizeCat2], ...[3, 4, 5].map((n, i) => [hashOf.get(`cat.${n}.jpg`)!, conflicting[i]!.hash])].map((pair) => pair.sort().join());
    const pairOf = (group: HealthJson['nearDuplicates']['groups'][number]) => group.members.map((member) => member.hash).sort().join();

    const first = await health('?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.nearDuplicates).toMatchObject({ total: 4, conflicting: 3 });
    expect(first.body.nearDuplicates.groups.map((group) => group.conflicting)).toEqual([true, true]);
    expect(first.body.sinceLatestVersion!.counts).toEqual({ added: 3, removed: 0, relabelled: 0 });
    expect(first.body.sinceLatestVersion!.newLabels).toBe(3);
    expect(first.body.sinceLatestVersion!.changes.added).toHaveLength(2);

    const last = await health('?limit=2&offset=2');
    expect(last.body.nearDuplicates).toMatchObject({ total: 4, conflicting: 3 });
    expect(last.body.nearDuplicates.groups.map((group) => group.conflicting)).toEqual([true, false]);
    expect(last.body.sinceLatestVersion!.changes.added).toHaveLength(1);
    // The two pages together are every group and every added photo, once.
    expect([...first.body.nearDuplicates.groups, ...last.body.nearDuplicates.groups].map(pairOf).sort()).toEqual([...pairs].sort());
    const addedHashes = [...first.body.sinceLatestVersion!.changes.added, ...last.body.sinceLatestVersion!.changes.added].map((item) => item.hash).sort();
    expect(addedHashes).toEqual(conflicting.map((item) => item.hash).sort());

    const past = await health('?limit=2&offset=4');
    expect(past.status).toBe(200);
    expect(past.body.nearDuplicates).toMatchObject({ total: 4, conflicting: 3, groups: [] });
    expect(past.body.sinceLatestVersion).toMatchObject({ newLabels: 3, counts: { added: 3, removed: 0, relabelled: 0 }, changes: { added: [], removed: [], relabelled: [] } });

    // The difference between the two versions (one photo in each list) pages the same way.
    const difference = (await health('?limit=1&offset=1')).body.versionDifference!;
    expect(difference.counts).toEqual({ added: 1, removed: 1, relabelled: 1 });
    expect(difference.changes).toEqual({ added: [], removed: [], relabelled: [] });
    expect((await health('?limit=1')).body.versionDifference!.changes.relabelled).toHaveLength(1);

    // Without limit and offset, the default page (50) holds all four groups; the largest page asked for is 200.
    expect((await health()).body.nearDuplicates.groups).toHaveLength(4);
    expect((await health('?limit=200')).body.nearDuplicates.groups).toHaveLength(4);
  });

  it('refuses a page size or offset out of range with 400 invalid_request naming the parameter', async () => {
    for (const [query, parameter] of [['?limit=0', 'limit'], ['?limit=201', 'limit'], ['?limit=ten', 'limit'], ['?limit=2.5', 'limit'], ['?offset=-1', 'offset']] as const) {
      const { status, body } = await health(query);
      expect(status, query).toBe(400);
      expect(body.error, query).toMatchObject({ code: 'invalid_request', message: expect.stringContaining(parameter) });
    }
  });

  it('answers 404 for an unknown version, 400 for one that is not a number, 401 without a token', async () => {
    const unknown = await health('?from=999');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error!.code).toBe('not_found');
    const invalid = await health('?to=latest');
    expect(invalid.status).toBe(400);
    expect((await fetch(t.url('/api/v1/datasets/health'))).status).toBe(401);
  });

  it('is described in the OpenAPI document as a viewer read', async () => {
    const document = (await (await fetch(t.url('/api/openapi.json'))).json()) as {
      paths: Record<string, { get?: { 'x-catdog-role'?: string; parameters?: { name: string; schema?: Record<string, unknown> }[] } }>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const operation = document.paths['/api/v1/datasets/health']?.get;
    expect(operation?.['x-catdog-role']).toBe('viewer');
    expect(operation?.parameters?.map((parameter) => parameter.name).sort()).toEqual(['from', 'limit', 'offset', 'to']);
    const limit = operation?.parameters?.find((parameter) => parameter.name === 'limit');
    expect(limit?.schema).toMatchObject({ default: 50, minimum: 1, maximum: 200 });
    expect(Object.keys(document.components.schemas.DatasetHealth?.properties ?? {}).sort()).toEqual(['balance', 'nearDuplicates', 'sinceLatestVersion', 'versionDifference']);
  });
});
