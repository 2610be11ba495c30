import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Label } from '../db/index.js';
import { seededRandom } from '../images/index.js';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { validatePrediction } from './feedback.js';
import { ModelServer } from './model-server.js';
import { neitherReason, suggestNeitherThreshold, tuneNeitherThreshold } from './neither.js';
import { predictUploads } from './predict.js';
import { SKIMAGE_CAT, SKIMAGE_NEITHER, skimageSamples, trainSmallModel } from '../../test/support/trained-model.js';

const settings = { enabled: true, threshold: 0.01, farFromClasses: true };

describe('neitherReason', () => {
  const card = { neither: { centroids: { cat: [1, 0], dog: [0, 1] }, farDistance: 0.3 } };
  it('prefers the ImageNet mass, then the distance to the class centroids', () => {
    expect(neitherReason({ pDog: 0.9, animalMass: 0.005, centroidDistance: 0.9 }, card, settings)).toBe('imagenet_mass');
    expect(neitherReason({ pDog: 0.9, animalMass: 0.5, centroidDistance: 0.31 }, card, settings)).toBe('far_from_classes');
    expect(neitherReason({ pDog: 0.9, animalMass: 0.5, centroidDistance: 0.29 }, card, settings)).toBeUndefined();
    expect(neitherReason({ pDog: 0.9, animalMass: 0.5, centroidDistance: 0.9 }, card, { ...settings, farFromClasses: false })).toBeUndefined();
    expect(neitherReason({ pDog: 0.9, animalMass: 0.005 }, null, { ...settings, enabled: false })).toBeUndefined();
    // A model's own threshold, learned from its training photos, replaces the configured one.
    const learned = { neither: { ...card.neither, animalMassThreshold: 0.05 } };
    expect(neitherReason({ pDog: 0.9, animalMass: 0.03, centroidDistance: 0.1 }, learned, settings)).toBe('imagenet_mass');
    expect(neitherReason({ pDog: 0.9, animalMass: 0.03, centroidDistance: 0.1 }, card, settings)).toBeUndefined();
    // A model without centroids (trained before they existed) is judged on the ImageNet mass only.
    expect(neitherReason({ pDog: 0.9, animalMass: 0.5, centroidDistance: 5 }, null, settings)).toBeUndefined();
  });
});

describe('tuneNeitherThreshold', () => {
  it('takes the highest threshold that loses at most the allowed share of cats and dogs', () => {
    const animals = Array.from({ length: 400 }, (_, i) => ({ animalMass: 0.02 + i / 1000, label: i % 2 ? 'dog' as const : 'cat' as const }));
    animals[0] = { animalMass: 0.001, label: 'cat' };
    animals[1] = { animalMass: 0.004, label: 'dog' };
    const neither = [0.0001, 0.003, 0.01, 0.5].map((animalMass) => ({ animalMass, label: 'neither' as const }));
    // 0.5% of 400 = 2 cats/dogs may fall below: the threshold is the third smallest animal mass, 0.022.
    const suggestion = tuneNeitherThreshold([...animals, ...neither], 0.005);
    expect(suggestion.threshold).toBeCloseTo(0.022, 12);
    expect(suggestion.animalLoss).toBe(2 / 400);
    expect(suggestion.neitherRecall).toBe(3 / 4);
    expect(suggestion).toMatchObject({ animals: 400, neither: 4 });
    expect(tuneNeitherThreshold(animals, 0).threshold).toBe(0.001);
    expect(() => tuneNeitherThreshold(neither)).toThrow(/validate some predictions/);
  });
});

async function generatedImages(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const size = 224;
  const gradient = Buffer.alloc(size * size * 3);
  const noise = Buffer.alloc(size * size * 3);
  const random = seededRandom(3);
  for (let i = 0; i < size * size; i++) {
    const x = i % size;
    const y = Math.floor(i / size);
    gradient.set([x, y, 255 - x], i * 3);
    noise.set([random() * 256, random() * 256, random() * 256], i * 3);
  }
  const raw = { raw: { width: size, height: size, channels: 3 as const } };
  const shapes = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="${size}" height="${size}" fill="#f4f1e8"/>
<circle cx="70" cy="80" r="45" fill="#d33"/><rect x="120" y="110" width="80" height="90" fill="#26c"/><polygon points="20,210 90,130 150,210" fill="#2a4"/></svg>`;
  return [
    { name: 'gradient.png', bytes: await sharp(gradient, raw).png().toBuffer() },
    { name: 'noise.png', bytes: await sharp(noise, raw).png().toBuffer() },
    { name: 'shapes.png', bytes: await sharp(Buffer.from(shapes)).png().toBuffer() },
  ];
}

describe.skipIf(skipWithoutShared)('"neither" with a trained model', () => {
  let app: TestApp;
  let deps: Parameters<typeof predictUploads>[0];
  /** What each prediction really shows, for the users' verdicts in the last test. */
  const truth = new Map<string, Label>();
  const predict = (files: { name: string; bytes: Uint8Array }[]) => predictUploads(deps, files.map(({ name, bytes }) => ({ bytes, fileName: name })));
  const fromDisk = (files: string[]) => files.map((file) => ({ name: path.basename(file), bytes: fs.readFileSync(file) }));

  beforeAll(async () => {
    app = await createTestApp();
    await trainSmallModel(app, 40);
    const models = new ModelServer({ db: app.db, blobs: app.blobs, backbones: app.backbones, logger: app.logger, defaultBackbone: app.config.training.backbone });
    deps = { db: app.db, blobs: app.blobs, limits: app.config.images, models, neither: app.config.serving.neither };
  }, 300_000);
  afterAll(() => app?.dispose());

  it('calls gradients, noise and drawn shapes "neither" and says why', async () => {
    const results = await predict(await generatedImages());
    for (const result of results) truth.set(result.id, 'neither');
    for (const result of results) {
      expect(result.label, result.fileName).toBe('neither');
      expect(['imagenet_mass', 'far_from_classes']).toContain(result.reason);
    }
    const stored = await app.db.predictions.get(results[0]!.id);
    expect(stored?.label).toBe('neither');
    expect(stored?.probabilities.animalMass).toBeTypeOf('number');
  });

  it('keeps held-out Kaggle cats and dogs cats and dogs', async () => {
    const cats = kaggleFiles('cat', 40, 4000);
    const results = await predict(fromDisk([...cats, ...kaggleFiles('dog', 40, 4000)]));
    results.forEach((result, i) => truth.set(result.id, i < cats.length ? 'cat' : 'dog'));
    const neither = results.filter((result) => result.label === 'neither');
    // The small backbone's ImageNet head is weaker than the 0.75 one the bench measures (0 of 400 there).
    expect(neither.length, neither.map((result) => `${result.fileName}: ${result.reason}`).join(', ')).toBeLessThanOrEqual(2);
    expect(results.filter((result) => result.reason === undefined).every((result) => result.label !== 'neither')).toBe(true);
  });

  it('calls real photos of other things "neither" and never the scikit-image cat', async (context) => {
    const samples = skimageSamples();
    if ('skip' in samples) {
      console.warn(`skipping the scikit-image photos: ${samples.skip}`);
      return context.skip();
    }
    try {
      const results = await predict(fromDisk([...SKIMAGE_NEITHER, SKIMAGE_CAT].map((name) => path.join(samples.folder, name))));
      const cat = results.pop()!;
      truth.set(cat.id, 'cat');
      for (const result of results) truth.set(result.id, 'neither');
      // Whether the small test model gets this cat right is its accuracy; here only "not neither" is at stake.
      expect(cat.label).not.toBe('neither');
      const missed = results.filter((result) => result.label !== 'neither').map((result) => result.fileName);
      expect(missed.length, `not "neither": ${missed.join(', ')}`).toBeLessThanOrEqual(1);
    } finally {
      fs.rmSync(samples.folder, { recursive: true, force: true });
    }
  });

  it('tunes the threshold from validated predictions', async () => {
    for (const [id, label] of truth) await validatePrediction(app, id, label, 'test');
    const suggestion = await suggestNeitherThreshold(app.db, 0.05);
    console.info('suggested threshold', suggestion);
    expect(suggestion.neither).toBe([...truth.values()].filter((label) => label === 'neither').length);
    expect(suggestion.animals).toBe(truth.size - suggestion.neither);
    expect(suggestion.animalLoss).toBeLessThanOrEqual(0.05);
    expect(suggestion.neitherRecall).toBeGreaterThanOrEqual(0.7);
  });
});
