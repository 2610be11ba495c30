import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recordingBlobs } from '../../test/support/blobs.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { DECODE_ID, decodeToRgb, sha256Hex } from '../images/index.js';
import { imageBlobKey, LocalBlobStore } from '../storage/index.js';
import { featuresFor, featuresForRequests, mirroredVariant } from './feature-cache.js';
import { initTensorflow, type FeatureExtractor } from './index.js';

describe.skipIf(skipWithoutShared)('the feature cache', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-features-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  /** Three cats and two dogs of kaggle-dev, stored in a blob store of their own under `root`. */
  async function storedPhotos(folderPrefix: string) {
    const files = [...kaggleFiles('cat', 3), ...kaggleFiles('dog', 2)];
    const blobs = new LocalBlobStore(fs.mkdtempSync(path.join(root, folderPrefix)));
    const hashes = await Promise.all(files.map(async (file) => {
      const bytes = new Uint8Array(fs.readFileSync(file));
      await blobs.put(imageBlobKey(sha256Hex(bytes)), bytes);
      return sha256Hex(bytes);
    }));
    return { files, blobs, hashes };
  }

  it('keys features by the decode that made their pixels, so features of other pixels are never reused', async () => {
    const { tf } = await initTensorflow();
    // Mean R, G and B of the decoded photo: a real extractor's contract without a network.
    const meanColour: FeatureExtractor = { id: 'mean-colour', inputSize: 32, featureShape: [3], featureSize: 3, features: (rgb) => tf.mean(rgb, [1, 2]) };
    const bytes = new Uint8Array(fs.readFileSync(kaggleFiles('cat', 1)[0]!));
    const hash = sha256Hex(bytes);
    const blobs = new LocalBlobStore(root);
    await blobs.put(imageBlobKey(hash), bytes);
    // What a cache written before the decode had an id holds: values of other pixels, under the old key.
    await blobs.put(`features/mean-colour/plain/${hash}.f32`, new Uint8Array(new Float32Array([999, 999, 999]).buffer));

    const { store, written } = recordingBlobs(blobs);
    const [features] = await featuresFor({ blobs: store }, meanColour, [hash]);
    const pixels = (await decodeToRgb(bytes, 32)).data;
    const red = pixels.filter((_, i) => i % 3 === 0).reduce((sum, value) => sum + value, 0) / (32 * 32);
    expect(features![0]).toBeCloseTo(red, 3);
    expect(written).toEqual([`features/mean-colour/${DECODE_ID}/plain/${hash}.f32`]);

    const again = recordingBlobs(blobs);
    expect(await featuresFor({ blobs: again.store }, meanColour, [hash])).toEqual([features]);
    expect(again.written).toEqual([]);
  });

  it('gives every photo its own features across overlapping chunks, and fails when a write fails', async () => {
    const { tf } = await initTensorflow();
    const meanColour: FeatureExtractor = { id: 'mean-colour-chunks', inputSize: 32, featureShape: [3], featureSize: 3, features: (rgb) => tf.mean(rgb, [1, 2]) };
    const { files, blobs, hashes } = await storedPhotos('chunks-');
    // Chunks of 2: the third chunk decodes while the second one's features are computed and the first's written.
    const chunked = await featuresFor({ blobs }, meanColour, hashes, { batchSize: 2 });
    const oneByOne = await Promise.all(files.map(async (file) => {
      const pixels = (await decodeToRgb(new Uint8Array(fs.readFileSync(file)), 32)).data;
      return [0, 1, 2].map((channel) => pixels.filter((_, i) => i % 3 === channel).reduce((sum, value) => sum + value, 0) / (32 * 32));
    }));
    chunked.forEach((features, photo) => [0, 1, 2].forEach((channel) => expect(features[channel]).toBeCloseTo(oneByOne[photo]![channel]!, 3)));
    expect(new Set((await blobs.list('features/mean-colour-chunks/')).map((key) => key.split('/').at(-1)))).toEqual(new Set(hashes.map((hash) => `${hash}.f32`)));

    const failing = { ...recordingBlobs(blobs).store, put: () => Promise.reject(new Error('disk full')) };
    const other: FeatureExtractor = { ...meanColour, id: 'mean-colour-failing' };
    await expect(featuresFor({ blobs: failing }, other, hashes, { batchSize: 2 })).rejects.toThrow('disk full');
  });

  it('reads and decodes each photo once for all of an ensemble\'s parts and views, and runs only the parts not cached', async () => {
    const { tf } = await initTensorflow();
    const channelMeans: FeatureExtractor = { id: 'channel-means', inputSize: 32, featureShape: [3], featureSize: 3, features: (rgb) => tf.mean(rgb, [1, 2]) };
    // The mean of the left half's red channel: it tells a photo from its mirror image, which channel means cannot.
    const leftRed: FeatureExtractor = { id: 'left-red', inputSize: 32, featureShape: [1], featureSize: 1, features: (rgb) => tf.mean(rgb.slice([0, 0, 0, 0], [-1, -1, 16, 1]), [1, 2, 3]).reshape([-1, 1]) };
    const ensemble: FeatureExtractor = { id: 'ensemble', inputSize: 32, featureShape: [4], featureSize: 4, features: () => { throw new Error('the cache runs the parts'); }, parts: [channelMeans, leftRed] };
    const { files, blobs, hashes } = await storedPhotos('shared-decode-');
    /** What the parts give for a photo's pixels, left to right or mirrored (tf.reverse, not the code under test). */
    const expected = async (file: string, mirrored: boolean) => {
      const pixels = (await decodeToRgb(new Uint8Array(fs.readFileSync(file)), 32)).data;
      const values = tf.tidy(() => {
        const photo = tf.tensor4d(Float32Array.from(pixels), [1, 32, 32, 3]);
        const x = mirrored ? tf.reverse(photo, 2) : photo;
        return tf.concat([channelMeans.features(x), leftRed.features(x)], 1).dataSync();
      });
      return [...values];
    };
    // left-red is cached for photos 0 and 2 only: within the first chunk (photos 0 and 1) the two parts need other photos.
    for (const photo of [0, 2]) {
      const value = (await expected(files[photo]!, false))[3]!;
      await blobs.put(`features/left-red/${DECODE_ID}/plain/${hashes[photo]}.f32`, new Uint8Array(new Float32Array([value]).buffer));
    }

    const recorded = recordingBlobs(blobs);
    const progress: number[] = [];
    const [plain, mirrored] = await featuresForRequests({ blobs: recorded.store }, ensemble, [{ hashes }, { hashes: hashes.slice(0, 3), variant: mirroredVariant }], {
      batchSize: 2,
      onProgress: ({ done, total }) => progress.push(done / total),
    });
    const photoReads = recorded.read.filter((key) => !key.startsWith('features/'));
    expect(photoReads.sort()).toEqual(hashes.map((hash) => imageBlobKey(hash)).sort());
    expect(recorded.written).toHaveLength(hashes.length * 2 - 2 + 3 * 2);
    expect(progress.at(-1)).toBe(1);
    for (const [photo, file] of files.entries()) {
      (await expected(file, false)).forEach((value, i) => expect(plain![photo]![i]).toBeCloseTo(value, 3));
      if (photo < 3) (await expected(file, true)).forEach((value, i) => expect(mirrored![photo]![i]).toBeCloseTo(value, 3));
    }
    expect(mirrored![0]![3]).not.toBeCloseTo(plain![0]![3]!, 1);

    // A part added later runs alone on the photos; the cached parts are read, not computed again.
    const blueOnly: FeatureExtractor = { id: 'blue-only', inputSize: 32, featureShape: [1], featureSize: 1, features: (rgb) => tf.mean(rgb.slice([0, 0, 0, 2], [-1, -1, -1, 1]), [1, 2, 3]).reshape([-1, 1]) };
    const grown = recordingBlobs(blobs);
    const [withBlue] = await featuresForRequests({ blobs: grown.store }, { ...ensemble, id: 'grown', featureShape: [5], featureSize: 5, parts: [channelMeans, leftRed, blueOnly] }, [{ hashes }]);
    expect(grown.written.every((key) => key.startsWith('features/blue-only/'))).toBe(true);
    expect(grown.written).toHaveLength(hashes.length);
    withBlue!.forEach((features, photo) => {
      expect([...features.slice(0, 4)]).toEqual([...plain![photo]!]);
      expect(features[4]).toBeCloseTo(features[2]!, 3);
    });
  });
});
