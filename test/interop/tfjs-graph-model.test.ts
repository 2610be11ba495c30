import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { decodeToRgb } from '../../src/images/index.js';
import { loadBackbone, type Backbone } from '../../src/ml/backbone.js';
import { BackboneProvider } from '../../src/ml/backbone-provider.js';
import { fineTuneSplitLayer } from '../../src/ml/fine-tune.js';
import { loadGraphBackbone } from '../../src/ml/graph-backbone.js';
import { graphModelJsonSchema } from '../../src/ml/graph/from-graph-model.js';
import { animalMassesOfFeatures, petLogits } from '../../src/ml/imagenet-head.js';
import { initTensorflow } from '../../src/ml/tf.js';
import { readModelFiles } from '../../src/registry/artifacts.js';
import { loadClassifier } from '../../src/registry/classifier.js';
import { exportModel } from '../../src/registry/export.js';
import { datasetParams, resolveTrainingParams } from '../../src/training/params.js';
import { trainOnDataset } from '../../src/training/run-training.js';
import { createTestApp, importKagglePhotos, type TestApp, withOverrides } from '../support/app.js';
import { maxAbsDifference } from '../support/ml.js';
import { runPython, skipWithoutPython } from '../support/python.js';
import { kaggleFiles, skipWithoutShared } from '../support/shared.js';

const skipReason = skipWithoutPython || skipWithoutShared;
/** Python TensorFlow start-up, a Grappler pass and a small training run on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;
const TOLERANCE = 1e-4;
/** The side the fixture's graph declares at its input. */
const SIZE = 64;
const FIXTURE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'support', 'tfjs-graph-model.py');
const { tf, backend } = await initTensorflow();

interface PythonAnswer {
  features: number[][];
  imagenet: number[][];
  featureNode: string;
  imagenetNode: string;
}

describe.skipIf(Boolean(skipReason))('a TF.js graph model as the backbone: features as Python TensorFlow computes them, trained on real photos', () => {
  let folder: string;
  let modelJson: string;
  let pixels: Float32Array;
  let python: PythonAnswer;
  const photos = [...kaggleFiles('cat', 3, 1500), ...kaggleFiles('dog', 3, 1500)];

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-graph-model-'));
    const decoded = await Promise.all(photos.map(async (photo) => (await decodeToRgb(fs.readFileSync(photo), SIZE)).data));
    pixels = Float32Array.from(decoded.flatMap((image) => [...image]));
    fs.writeFileSync(path.join(folder, 'pixels.f32'), pixels);
    const output = await runPython(fs.readFileSync(FIXTURE_SCRIPT, 'utf8'), [path.join(folder, 'graph-model'), path.join(folder, 'pixels.f32'), String(SIZE)]);
    python = JSON.parse(output) as PythonAnswer;
    modelJson = path.join(folder, 'graph-model', 'model.json');
  }, SLOW_TEST_MS);
  afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

  const declared = () => ({ features: python.featureNode, imagenet: python.imagenetNode });
  const batch = () => tf.tensor4d(pixels, [photos.length, SIZE, SIZE, 3]);
  const answers = (backbone: Backbone) =>
    tf.tidy(() => {
      const { features, imagenet } = backbone.featuresAndImagenet(batch());
      return { features: features.arraySync(), imagenet: imagenet?.arraySync() };
    });

  it('is a real converter layout: tfjs-only fused ops, Const values moved to the weight shard', () => {
    const parsed = graphModelJsonSchema.parse(JSON.parse(fs.readFileSync(modelJson, 'utf8')));
    const ops = new Set(parsed.modelTopology.node.map((node) => node.op));
    expect(ops).toContain('FusedDepthwiseConv2dNative');
    expect(ops).toContain('_FusedConv2D');
    const constants = parsed.modelTopology.node.filter((node) => node.op === 'Const');
    expect(parsed.weightsManifest[0]!.weights.map((weight) => weight.name)).toEqual(constants.map((node) => node.name));
    expect(JSON.stringify(constants)).not.toContain('tensorContent');
  });

  it('runs as one TensorFlow session, its declared x/255 computed on the input, as Python computes it', async () => {
    const backbone = await loadBackbone(modelJson, { cacheDir: folder, scaling: 'x/255', outputs: declared() });
    try {
      expect(backbone.forwardPass?.kind).toBe(backend === 'tensorflow' ? 'graph' : 'eager');
      expect(backbone).toMatchObject({ inputSize: SIZE, featureSize: 24, featureShape: [24] });
      expect(backbone.id).toMatch(/^graph-model-[0-9a-f]{12}-x255-features_output-imagenet_output$/);
      expect(backbone.layersModel).toBeUndefined();
      const { features, imagenet } = answers(backbone);
      expect(maxAbsDifference(features.flat(), python.features.flat())).toBeLessThan(TOLERANCE);
      expect(maxAbsDifference(imagenet!.flat(), python.imagenet.flat())).toBeLessThan(TOLERANCE);
      // The scaling matters: fed x/127.5 − 1 instead, the same graph answers otherwise.
      const misdeclared = await loadBackbone(modelJson, { cacheDir: folder, outputs: declared() });
      expect(maxAbsDifference(answers(misdeclared).features.flat(), python.features.flat())).toBeGreaterThan(0.01);
      misdeclared.dispose();
    } finally {
      backbone.dispose();
    }
  });

  it("runs through tfjs's GraphModel where no TensorFlow session does, with the same answers", async () => {
    const parsed = graphModelJsonSchema.parse(JSON.parse(fs.readFileSync(modelJson, 'utf8')));
    const shard = fs.readFileSync(path.join(folder, 'graph-model', 'group1-shard1of1.bin'));
    const backbone = await loadGraphBackbone({ tf, backend: 'wasm' }, parsed, [shard], { source: modelJson, id: 'eager', cacheDir: folder, scaling: 'x/255', outputs: declared() });
    try {
      expect(backbone.forwardPass).toMatchObject({ kind: 'eager', reason: expect.stringContaining("tfjs's GraphModel") });
      const { features, imagenet } = answers(backbone);
      expect(maxAbsDifference(features.flat(), python.features.flat())).toBeLessThan(TOLERANCE);
      expect(maxAbsDifference(imagenet!.flat(), python.imagenet.flat())).toBeLessThan(TOLERANCE);
    } finally {
      backbone.dispose();
    }
  });

  it('takes larger images where training.backboneImageSize says so, in the session and through tfjs alike', async () => {
    const larger = 96;
    const decoded = await Promise.all(photos.slice(0, 2).map(async (photo) => (await decodeToRgb(fs.readFileSync(photo), larger)).data));
    const images = () => tf.tensor4d(Float32Array.from(decoded.flatMap((image) => [...image])), [2, larger, larger, 3]);
    const session = await loadBackbone(modelJson, { cacheDir: folder, scaling: 'x/255', outputs: declared(), inputSize: larger });
    const parsed = graphModelJsonSchema.parse(JSON.parse(fs.readFileSync(modelJson, 'utf8')));
    const shard = fs.readFileSync(path.join(folder, 'graph-model', 'group1-shard1of1.bin'));
    const eager = await loadGraphBackbone({ tf, backend: 'wasm' }, parsed, [shard], { source: modelJson, id: 'eager', cacheDir: folder, scaling: 'x/255', outputs: declared(), inputSize: larger });
    try {
      expect(session).toMatchObject({ inputSize: larger, id: expect.stringMatching(/-96px-features_output-imagenet_output$/) });
      const [fromSession, fromTfjs] = [session, eager].map((backbone) => tf.tidy(() => backbone.features(images()).arraySync()));
      expect(fromSession![0]).toHaveLength(24);
      expect(maxAbsDifference(fromSession!.flat(), fromTfjs!.flat())).toBeLessThan(TOLERANCE);
    } finally {
      session.dispose();
      eager.dispose();
    }
  });

  it('names the candidate nodes when it cannot tell which output is the features, and refuses a node it lacks', async () => {
    await expect(loadBackbone(modelJson, { cacheDir: folder, scaling: 'x/255' })).rejects.toThrow(
      expect.objectContaining({ code: 'backbone_output_ambiguous', message: expect.stringMatching(/2 outputs.*training\.backboneOutputs.*features_output.*imagenet_output/s) }),
    );
    await expect(loadBackbone(modelJson, { cacheDir: folder, outputs: { features: 'pool/Mean' } })).rejects.toThrow(
      expect.objectContaining({ code: 'backbone_unavailable', message: expect.stringMatching(/no node pool\/Mean.*functional_1\/features_1\/Mean/) }),
    );
    await expect(loadBackbone(modelJson, { cacheDir: folder, outputs: { features: python.imagenetNode, imagenet: python.featureNode } })).rejects.toThrow(
      expect.objectContaining({ code: 'backbone_unavailable', message: expect.stringMatching(/outputs \[1,24\], not the 1000 ImageNet class probabilities/) }),
    );
  });

  it('refuses fine-tuning and the zero-shot vote early, and reads no ImageNet mass from features, for want of layers', async () => {
    const backbone = await loadBackbone(modelJson, { cacheDir: folder, scaling: 'x/255', outputs: declared() });
    try {
      expect(() => fineTuneSplitLayer(backbone, 1)).toThrow(expect.objectContaining({ code: 'fine_tune_unavailable', message: expect.stringContaining('TF.js graph model') }));
      expect(() => petLogits(backbone)).toThrow(expect.objectContaining({ code: 'imagenet_head_unavailable', message: expect.stringContaining('TF.js graph model') }));
      expect(animalMassesOfFeatures(backbone, [new Float32Array(24)])).toBeUndefined();
    } finally {
      backbone.dispose();
    }
  });

  describe('trained on', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await createTestApp();
      await importKagglePhotos(app, path.join(app.home, 'photos'), 10, 1600);
    }, SLOW_TEST_MS);
    afterAll(async () => app?.dispose());

    it('trains a head through trainOnDataset, serves it from a process whose config does not declare it, and refuses to export it as one network', async () => {
      const resolution = { backboneDir: '', scaling: { [modelJson]: 'x/255' as const }, outputs: { [modelJson]: declared() } };
      const backbones = new BackboneProvider({ cacheDir: path.join(app.home, 'cache'), resolution });
      const deps = { ...app, backbones };
      const datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
      const plain = withOverrides(app.config, { epochs: 3 });
      const config = { ...plain, training: { ...plain.training, backbone: modelJson, ensemble: [], backboneImageSize: null, tta: false } };
      const outcome = await trainOnDataset(deps, { datasetId, params: resolveTrainingParams(config) });
      expect(outcome.metrics.count).toBeGreaterThan(0);

      // Another process's provider with a config that says nothing of this backbone (a cache of its own, so nothing
      // loaded or written by the training is reused): the model's card recorded its scaling and output nodes.
      const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
      expect(card.backbone).toMatchObject({ source: modelJson, scaling: 'x/255', outputs: declared() });
      const fresh = new BackboneProvider({ cacheDir: path.join(app.home, 'serving-cache') });
      const classifier = await loadClassifier({ blobs: app.blobs, backbones: fresh }, outcome.model);
      try {
        expect(classifier.inputSize).toBe(SIZE);
        const served = await classifier.predictPixels(photos.map((_, i) => Uint8Array.from(pixels.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3))));
        for (const answer of served) {
          expect(answer.pDog).toBeGreaterThanOrEqual(0);
          expect(answer.pDog).toBeLessThanOrEqual(1);
          expect(answer.animalMass).toBeGreaterThanOrEqual(0);
          expect(answer.centroidDistance).toBeGreaterThanOrEqual(0);
        }
      } finally {
        classifier.dispose();
      }
      // A config declaring the file otherwise (another scaling) still serves the model as it was trained.
      const otherwise = new BackboneProvider({ cacheDir: path.join(app.home, 'other-cache'), resolution: { backboneDir: '', scaling: { [modelJson]: 'x/127.5-1' } } });
      const asTrained = await loadClassifier({ blobs: app.blobs, backbones: otherwise }, outcome.model);
      asTrained.dispose();
      for (const format of ['tfjs', 'keras'] as const) {
        await expect(exportModel(deps, outcome.model.id, format)).rejects.toThrow(
          expect.objectContaining({ code: 'export_unavailable', message: expect.stringContaining('TF.js graph model') }),
        );
      }
    }, SLOW_TEST_MS);
  });
});

if (skipReason) console.log(`TF.js graph model tests skipped: ${skipReason}`);
