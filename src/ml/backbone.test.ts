import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, sharedPath, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { CatdogError } from '../errors.js';
import { type Backbone, extractFeatures, loadBackbone, poolImagenetProbabilities } from './backbone.js';
import { maxAbsDifference, rgbPixels } from '../../test/support/ml.js';
import { initTensorflow, type Tensorflow } from './tf.js';

const smallBackboneDir = path.dirname(smallBackbone);

describe.skipIf(skipWithoutShared)('loadBackbone', () => {
  let tf: Tensorflow;
  let cacheDir: string;
  let backbone: Backbone;
  let photos: Uint8Array[];

  beforeAll(async () => {
    ({ tf } = await initTensorflow());
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-backbone-'));
    backbone = await loadBackbone(smallBackbone, { cacheDir });
    photos = await rgbPixels([...kaggleFiles('cat', 2), ...kaggleFiles('dog', 2)]);
  });
  afterAll(async () => {
    backbone?.dispose();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  it('exposes the pooled features and the ImageNet head of a Keras MobileNet v1', () => {
    expect(backbone.id).toMatch(/^mobilenet_v1_0\.25_224-[0-9a-f]{12}$/);
    expect(backbone.inputSize).toBe(224);
    expect(backbone.featureSize).toBe(256);
    tf.tidy(() => {
      const batch = tf.tensor4d(Float32Array.from(photos.flatMap((photo) => [...photo])), [photos.length, 224, 224, 3]);
      const features = backbone.features(batch);
      const probabilities = backbone.imagenet!(batch);
      expect(features.shape).toEqual([4, 256]);
      expect(probabilities.shape).toEqual([4, 1000]);
      for (const rowSum of probabilities.sum(1).arraySync() as number[]) expect(rowSum).toBeCloseTo(1, 4);

      const onePass = backbone.featuresAndImagenet(batch);
      expect(maxAbsDifference(onePass.features.dataSync(), features.dataSync())).toBeLessThan(1e-5);
      expect(maxAbsDifference(onePass.imagenet!.dataSync(), probabilities.dataSync())).toBeLessThan(1e-6);
      // Features of different photos differ: the scaling and the layer choice did not collapse them.
      const rows = features.arraySync() as number[][];
      expect(maxAbsDifference(Float32Array.from(rows[0]!), Float32Array.from(rows[2]!))).toBeGreaterThan(0.1);
    });
  });

  it('gives the same id through a file:// URL and a folder path, and frees every tensor on dispose', async () => {
    for (const source of [pathToFileURL(smallBackbone).href, smallBackboneDir]) {
      const before = tf.memory().numTensors;
      const again = await loadBackbone(source, { cacheDir });
      expect(again.id).toBe(backbone.id);
      expect(tf.memory().numTensors).toBeGreaterThan(before);
      again.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('extracts the same features as a direct forward pass, in batches, leaving no tensors', async () => {
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const features = await extractFeatures(backbone, photos, 3, (done) => progress.push(done));
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([3, 4]);
    expect(features).toHaveLength(4);
    const direct = tf.tidy(() =>
      backbone.features(tf.tensor4d(Float32Array.from(photos[3]!), [1, 224, 224, 3])).dataSync(),
    );
    expect(maxAbsDifference(features[3]!, direct)).toBeLessThan(1e-5);
  });

  it('uses the nested trunk of a Teachable Machine export and reports no ImageNet head', async () => {
    const trunk = await loadBackbone(sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json'), { cacheDir });
    try {
      expect(trunk.featureSize).toBe(1280);
      expect(trunk.imagenet).toBeUndefined();
      const [features] = await extractFeatures(trunk, photos.slice(0, 1));
      expect(features).toHaveLength(1280);
      expect(features!.some((value) => value !== 0)).toBe(true);
      tf.tidy(() => {
        const result = trunk.featuresAndImagenet(tf.tensor4d(Float32Array.from(photos[0]!), [1, 224, 224, 3]));
        expect(result.imagenet).toBeUndefined();
        expect(maxAbsDifference(result.features.dataSync(), features!)).toBeLessThan(1e-5);
      });
    } finally {
      trunk.dispose();
    }
  });

  it('downloads an http backbone once with progress, then loads it offline from the cache', async () => {
    const server = http.createServer((request, response) => {
      const file = path.join(smallBackboneDir, path.basename(request.url ?? ''));
      fs.readFile(file).then(
        (bytes) => response.end(bytes),
        () => response.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mobilenet_v1_0.25_224/model.json`;
    const progress: [number, number | undefined][] = [];
    try {
      const downloaded = await loadBackbone(url, { cacheDir, onDownload: (received, total) => progress.push([received, total]) });
      expect(downloaded.id).toBe(backbone.id);
      downloaded.dispose();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const [received, total] = progress.at(-1)!;
    expect(received).toBe(total);
    expect(progress.length).toBeGreaterThan(10);
    const cached = await fs.readdir(path.join(cacheDir, 'backbones'));
    expect(cached).toHaveLength(1);
    expect(cached[0]).toMatch(/^[0-9a-f]{16}$/);

    const offline = await loadBackbone(url, { cacheDir, onDownload: () => expect.fail('downloaded twice') });
    expect(offline.id).toBe(backbone.id);
    offline.dispose();
  });

  it('says what it tried when the source is not a backbone', async () => {
    for (const source of [path.join(cacheDir, 'missing', 'model.json'), 'http://127.0.0.1:9/model.json', kaggleFiles('cat', 1)[0]!]) {
      const error = await loadBackbone(source, { cacheDir }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CatdogError);
      expect(error).toMatchObject({ code: 'backbone_unavailable' });
      expect((error as Error).message).toContain(source);
    }
  });

  it('refuses a TF.js graph model that takes no image batch, naming its input', async () => {
    const folder = await fs.mkdtemp(path.join(cacheDir, 'graph-model-'));
    // What tensorflowjs_converter writes for a SavedModel: a GraphDef as the topology, no layers; here fed a vector.
    const vectorInput = { shape: { shape: { dim: [{ size: '-1' }, { size: '16' }] } }, dtype: { type: 'DT_FLOAT' } };
    const graphModel = {
      format: 'graph-model',
      generatedBy: '2.21.0',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: { node: [{ name: 'embedding', op: 'Placeholder', attr: vectorInput }, { name: 'output', op: 'Identity', input: ['embedding'], attr: { T: { type: 'DT_FLOAT' } } }] },
      weightsManifest: [{ paths: [], weights: [] }],
    };
    await fs.writeFile(path.join(folder, 'model.json'), JSON.stringify(graphModel));
    await expect(loadBackbone(folder, { cacheDir })).rejects.toMatchObject({
      code: 'backbone_unavailable',
      message: expect.stringContaining('takes [-1,16] at its input embedding, not a batch of RGB images'),
    });
  });

  it('refuses declared output nodes for a layers model, which finds its own features', async () => {
    await expect(loadBackbone(smallBackbone, { cacheDir, outputs: { features: 'global_average_pooling2d_1' } })).rejects.toMatchObject({
      code: 'backbone_unavailable',
      message: expect.stringContaining('not a TF.js graph model, so it takes no declared output nodes'),
    });
  });
});

describe('poolImagenetProbabilities', () => {
  it('answers with the normalised geometric mean of the classifiers, one classifier as it is, and a 0 as 0, not NaN', async () => {
    const { tf } = await initTensorflow();
    const sure = tf.tensor2d([[0.9, 0.09, 0.01], [0, 0.5, 0.5]]);
    const spread = tf.tensor2d([[0.4, 0.3, 0.3], [0.5, 0.25, 0.25]]);
    try {
      expect(poolImagenetProbabilities([sure])).toBe(sure);
      const pooled = poolImagenetProbabilities([sure, spread]);
      const geometric = [[Math.sqrt(0.36), Math.sqrt(0.027), Math.sqrt(0.003)], [0, Math.sqrt(0.125), Math.sqrt(0.125)]];
      const expected = geometric.flatMap((row) => row.map((value) => value / row.reduce((sum, other) => sum + other, 0)));
      expect(maxAbsDifference(pooled.dataSync(), expected)).toBeLessThan(1e-6);
      pooled.dispose();
    } finally {
      tf.dispose([sure, spread]);
    }
  });
});
