import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutShared } from '../../test/support/shared.js';
import { catPhotos, dogPhotos, photoForm, startTestServer, type TestServer } from '../../test/support/server.js';

interface ImageJson {
  hash: string;
  label: 'cat' | 'dog' | null;
  pDog: number | null;
  scoreModelId: string | null;
}

interface PredictionJson {
  imageHash: string;
  modelId: string;
  probabilities: { dog: number };
  fileName: string;
}

const tileHashes = (page: string): string[] => [...page.matchAll(/<li class="tile[^"]*" data-hash="([0-9a-f]+)"/g)].map((match) => match[1]!).sort();

/** A prediction of a stored photo leaves the serving model's P(dog) where the gallery's model filters read it. */
describe.skipIf(skipWithoutShared)("predictions store the serving model's P(dog) of each photo", () => {
  let t: TestServer;
  const labelOf = new Map<string, 'cat' | 'dog'>();

  const images = async () => {
    const response = await t.fetchAs('/api/v1/images?limit=200', undefined, 'viewer');
    expect(response.status).toBe(200);
    return new Map(((await response.json()) as { items: ImageJson[] }).items.map((image) => [image.hash, image]));
  };

  beforeAll(async () => {
    t = await startTestServer();
    // Two dogs labelled cat: whatever the serving model makes of the photos, some labels it likely disagrees with.
    const labelled = [
      ['cat', catPhotos(4, 1)],
      ['dog', dogPhotos(4, 1)],
      ['cat', dogPhotos(2, 5)],
    ] as const;
    for (const [label, files] of labelled) {
      const response = await t.fetchAs('/api/v1/images', { method: 'POST', body: photoForm(files, { label }) }, 'curator');
      expect(response.status).toBe(201);
      for (const item of ((await response.json()) as { items: { hash: string }[] }).items) labelOf.set(item.hash, label);
    }
  });

  afterAll(async () => {
    await t?.close();
  });

  it('stores P(dog) and the model for every predicted photo, labelled or new, as the prediction answered it', async () => {
    const before = await images();
    expect([...before.values()].every((image) => image.pDog === null && image.scoreModelId === null)).toBe(true);

    const files = [...catPhotos(4, 1), ...dogPhotos(4, 1), ...dogPhotos(2, 5), catPhotos(1, 50)[0]!];
    const response = await t.fetchAs('/api/v1/predictions', { method: 'POST', body: photoForm(files) }, 'viewer');
    expect(response.status).toBe(200);
    const { predictions } = (await response.json()) as { predictions: PredictionJson[] };
    expect(predictions.map((prediction) => prediction.fileName)).toEqual(files.map((file) => path.basename(file)));

    const after = await images();
    expect(after.size).toBe(labelOf.size + 1);
    for (const prediction of predictions) {
      const image = after.get(prediction.imageHash)!;
      expect(image.scoreModelId).toBe(prediction.modelId);
      expect(image.pDog).toBeCloseTo(prediction.probabilities.dog, 6);
    }
    // The photo nobody labelled is scored too (the review queue ranks by it).
    const fresh = predictions.at(-1)!;
    expect(after.get(fresh.imageHash)!.label).toBeNull();
    expect(after.get(fresh.imageHash)!.pDog).not.toBeNull();

    // "Score them" finds nothing left to score: the predictions did it.
    const scored = await t.fetchAs('/api/v1/images/scores', { method: 'POST' }, 'curator');
    expect(scored.status).toBe(200);
    expect(await scored.json()).toMatchObject({ modelId: fresh.modelId, scored: 0, remaining: 0 });
  });

  it("feeds the gallery's disagreement and confidence filters without any other scoring", async () => {
    const stored = await images();
    const labelled = [...labelOf.keys()];
    const pLabel = (hash: string) => (labelOf.get(hash) === 'dog' ? stored.get(hash)!.pDog! : 1 - stored.get(hash)!.pDog!);
    const grid = async (query: string) => {
      const response = await t.fetchAs(`/dataset/gallery/grid?${query}`, undefined, 'viewer');
      expect(response.status).toBe(200);
      return tileHashes(await response.text());
    };
    const disagree = await grid('agreement=disagree');
    const agree = await grid('agreement=agree');
    expect(disagree).toEqual(labelled.filter((hash) => pLabel(hash) < 0.5).sort());
    expect(agree).toEqual(labelled.filter((hash) => pLabel(hash) >= 0.5).sort());
    expect(disagree.length + agree.length).toBe(labelled.length);
    const unsure = await grid('maxConfidence=0.9');
    expect(unsure).toEqual(labelled.filter((hash) => Math.abs(stored.get(hash)!.pDog! - 0.5) + 0.5 <= 0.9).sort());
  });
});
