import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { type Backbone, loadBackbone } from './backbone.js';
import { rgbPixels } from '../../test/support/ml.js';
import { initTensorflow } from './tf.js';
import { imagenetAnimalMass, zeroShotPDog } from './zero-shot.js';

function probabilities(mass: Record<number, number>): number[] {
  const all = new Array<number>(1000).fill(0);
  for (const [index, value] of Object.entries(mass)) all[Number(index)] = value;
  return all;
}

describe('zeroShotPDog', () => {
  it('weighs the dog mass per dog class (118) against the cat mass per cat class (5)', () => {
    // Class 151 (Chihuahua) and 268 (Mexican hairless) are the dog range's ends, 281 (tabby) and 285 the cats'.
    const probs = probabilities({ 151: 0.2, 268: 0.1, 281: 0.05, 285: 0.05, 150: 0.3, 286: 0.3 });
    expect(zeroShotPDog(probs)).toBeCloseTo(0.3 / 118 / (0.3 / 118 + 0.1 / 5), 12);
    // Equal mass per class is a coin flip.
    expect(zeroShotPDog(probabilities({ 151: 118 / 123, 281: 5 / 123 }))).toBeCloseTo(0.5, 12);
    expect(zeroShotPDog(probabilities({ 200: 0.9, 283: 0.01 }))).toBeGreaterThan(0.5);
    expect(imagenetAnimalMass(Float32Array.from(probs))).toBeCloseTo(0.4, 6);
  });

  it('says 0.5 when the classifier sees neither a cat nor a dog', () => {
    const probs = probabilities({ 150: 0.5, 286: 0.5 });
    expect(zeroShotPDog(probs)).toBe(0.5);
    expect(imagenetAnimalMass(probs)).toBe(0);
  });

  it('refuses a vector that is not 1000 ImageNet probabilities', () => {
    expect(() => zeroShotPDog([0.5, 0.5])).toThrow(/1000/);
  });
});

describe.skipIf(skipWithoutShared)('zeroShotPDog on real photos with the small MobileNet', () => {
  let backbone: Backbone;
  beforeAll(async () => {
    backbone = await loadBackbone(smallBackbone, { cacheDir: os.tmpdir() });
  });
  afterAll(() => backbone?.dispose());

  it('tells most of 20 cats and 20 dogs apart without any training', async () => {
    const { tf } = await initTensorflow();
    const pDogOf = async (label: 'cat' | 'dog'): Promise<number[]> => {
      const pixels = await rgbPixels(kaggleFiles(label, 20, 1000));
      const input = new Float32Array(pixels.length * 224 * 224 * 3);
      pixels.forEach((image, i) => input.set(image, i * image.length));
      const probs = tf.tidy(() => backbone.imagenet!(tf.tensor4d(input, [pixels.length, 224, 224, 3])).arraySync());
      return probs.map((row) => zeroShotPDog(row));
    };
    const cats = await pDogOf('cat');
    const dogs = await pDogOf('dog');
    expect(cats).toHaveLength(20);
    expect(dogs).toHaveLength(20);
    const catsRight = cats.filter((p) => p < 0.5).length;
    const dogsRight = dogs.filter((p) => p > 0.5).length;
    console.log(`zero-shot with mobilenet_v1_0.25: ${catsRight}/20 cats, ${dogsRight}/20 dogs`);
    expect(catsRight).toBeGreaterThanOrEqual(16);
    expect(dogsRight).toBeGreaterThanOrEqual(16);
  });
});
