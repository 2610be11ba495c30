import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeToRgb } from '../images/index.js';
import { loadBackbone, type Backbone } from '../ml/index.js';
import { zeroShotClassifier, type Classifier, type Prediction } from '../registry/classifier.js';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { batchPredictions } from './batcher.js';

describe.skipIf(skipWithoutShared)('batchPredictions', () => {
  let cacheDir: string;
  let backbone: Backbone;
  let model: Classifier;
  let modelCalls: number[];
  let photos: Uint8Array[];

  beforeAll(async () => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-batcher-'));
    backbone = await loadBackbone(smallBackbone, { cacheDir });
    const real = await zeroShotClassifier(backbone);
    modelCalls = [];
    // Counts the calls that reach the real model, and their sizes.
    model = { ...real, predictPixels: (images) => (modelCalls.push(images.length), real.predictPixels(images)) };
    const files = [...kaggleFiles('cat', 3), ...kaggleFiles('dog', 3)];
    photos = await Promise.all(files.map(async (file) => (await decodeToRgb(fs.readFileSync(file), 224)).data));
  });

  afterAll(() => {
    backbone?.dispose();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  it('merges concurrent calls into fewer model calls with the answers of separate calls', async () => {
    const separate: Prediction[] = [];
    for (const photo of photos) separate.push(...(await model.predictPixels([photo])));
    modelCalls.length = 0;

    const observed: number[] = [];
    const batched = batchPredictions(model, { onModelCall: (images) => observed.push(images) });
    const requests = [[photos[0]!], [photos[1]!, photos[2]!], [photos[3]!], [photos[4]!, photos[5]!]];
    const answers = await Promise.all(requests.map((images) => batched.predictPixels(images)));

    expect(modelCalls).toEqual([6]);
    expect(observed, 'onModelCall sees the merged calls, not the requests').toEqual([6]);
    expect(answers.map((answer) => answer.length)).toEqual([1, 2, 1, 2]);
    answers.flat().forEach((answer, i) => {
      expect(answer.pDog).toBeCloseTo(separate[i]!.pDog, 5);
      expect(answer.animalMass).toBeCloseTo(separate[i]!.animalMass!, 5);
    });
    expect(answers.flat().map((answer) => answer.pDog >= 0.5)).toEqual([false, false, false, true, true, true]);
  });

  it('never hands the model more than maxBatch images: a larger request is split, its answers in order', async () => {
    const separate: Prediction[] = [];
    for (const photo of photos) separate.push(...(await model.predictPixels([photo])));
    modelCalls.length = 0;
    const batched = batchPredictions(model, { maxBatch: 2 });
    const answers = await Promise.all([
      batched.predictPixels([photos[0]!]),
      batched.predictPixels([photos[1]!]),
      batched.predictPixels(photos.slice(2, 5)),
      batched.predictPixels([photos[5]!]),
    ]);
    expect(Math.max(...modelCalls), 'the largest batch the model was handed').toBe(2);
    expect(modelCalls).toEqual([2, 2, 2]);
    expect(answers.map((answer) => answer.length)).toEqual([1, 1, 3, 1]);
    answers.flat().forEach((answer, i) => expect(answer.pDog).toBeCloseTo(separate[i]!.pDog, 5));

    modelCalls.length = 0;
    const alone = await batched.predictPixels([...photos, ...photos, photos[0]!]);
    expect(modelCalls).toEqual([2, 2, 2, 2, 2, 2, 1]);
    expect(alone.map((answer) => answer.pDog >= 0.5)).toEqual([false, false, false, true, true, true, false, false, false, true, true, true, false]);
  });

  it('holds a call back for photos announced while they decode, and not for withdrawn ones', async () => {
    // A long linger bound (a hundred times the last call, up to the cap), so what ends a wait here is the photos,
    // not the clock; each model call's start is noted, so a wait is told apart from the call that follows it.
    const callStarts: number[] = [];
    const batched = batchPredictions({ ...model, predictPixels: (images) => (callStarts.push(performance.now()), model.predictPixels(images)) }, { lingerShare: 100 });
    const lastCallStart = () => callStarts[callStarts.length - 1]!;
    // A first call, so the batcher knows how long one takes.
    await batched.predictPixels([photos[0]!]);
    modelCalls.length = 0;

    // Three requests announced at once; their "decodes" end one after another while the first one's call waits.
    const decodeMs = [0, 30, 60];
    const answers = await Promise.all(
      decodeMs.map(async (ms, i) => {
        const arrived = batched.announce!(2);
        await new Promise((resolve) => setTimeout(resolve, ms));
        arrived();
        return batched.predictPixels([photos[2 * i]!, photos[2 * i + 1]!]);
      }),
    );
    expect(modelCalls, 'one call for the three requests').toEqual([6]);
    expect(answers.flat().map((answer) => answer.pDog >= 0.5)).toEqual([false, false, false, true, true, true]);

    // An announcement withdrawn without photos (a decode that failed) releases the waiting call at once.
    modelCalls.length = 0;
    const withdrawn = batched.announce!(5);
    const started = performance.now();
    const answered = batched.predictPixels([photos[3]!]);
    setTimeout(withdrawn, 20);
    await answered;
    expect(modelCalls).toEqual([1]);
    expect(lastCallStart() - started, 'the wait ended at the withdrawal, not at the bound').toBeLessThan(200);

    // Never withdrawn (a client that stalls mid-upload): the call goes at the bound, and an announcement larger
    // than the room left in the batch holds nothing back at all.
    const stalled = batched.announce!(1);
    const atBound = performance.now();
    await batched.predictPixels([photos[0]!]);
    const waited = lastCallStart() - atBound;
    expect(waited, 'released by the 250 ms cap').toBeGreaterThanOrEqual(240);
    expect(waited).toBeLessThan(1_500);
    stalled();
    const tooLarge = batched.announce!(40);
    const unheld = performance.now();
    await batched.predictPixels([photos[0]!]);
    expect(lastCallStart() - unheld, 'not held for 40 photos that cannot fit').toBeLessThan(200);
    tooLarge();
  });

  it('rejects every request of a failed call and keeps serving afterwards', async () => {
    const batched = batchPredictions(model);
    // One pixel too many does not fit the batch tensor: the model call throws.
    const wrongSize = new Uint8Array(224 * 224 * 3 + 1);
    const failed = await Promise.allSettled([batched.predictPixels([photos[0]!]), batched.predictPixels([wrongSize])]);
    expect(failed.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    const [after] = await batched.predictPixels([photos[3]!]);
    expect(after!.pDog).toBeGreaterThan(0.5);
  });
});
