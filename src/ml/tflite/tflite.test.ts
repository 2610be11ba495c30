import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, sharedPath, skipWithoutShared } from '../../../test/support/shared.js';
import { type Backbone, loadBackbone } from '../backbone.js';
import { petLogits } from '../imagenet-head.js';
import { rgbPixels } from '../../../test/support/ml.js';
import { initTensorflow, type Tensorflow } from '../tf.js';
import { zeroShotPDog } from '../zero-shot.js';
import { readTflite, tfliteNetwork } from './index.js';

const mobilenetV2Tflite = sharedPath('models', 'tflite', 'tf2_mobilenet_v2_1.0_224_ptq.tflite');
const lite0Tflite = sharedPath('models', 'tflite', 'efficientnet_lite0_modelmaker_3class.tflite');

describe.skipIf(skipWithoutShared)('TFLite backbones', () => {
  let tf: Tensorflow;
  let cacheDir: string;
  let photos: Uint8Array[];
  const loaded: Backbone[] = [];
  const load = async (source: string) => {
    const backbone = await loadBackbone(source, { cacheDir });
    loaded.push(backbone);
    return backbone;
  };

  beforeAll(async () => {
    ({ tf } = await initTensorflow());
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-tflite-'));
    photos = await rgbPixels([...kaggleFiles('cat', 4), ...kaggleFiles('dog', 4)]);
  });
  afterAll(async () => {
    for (const backbone of loaded) backbone.dispose();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  const pixels = () => tf.tensor4d(Float32Array.from(photos.flatMap((photo) => [...photo])), [photos.length, 224, 224, 3]);

  it('reads the flatbuffer: ops, int8 weights with per-channel scales, the uint8 input quantization', async () => {
    const graph = readTflite(new Uint8Array(await fs.readFile(mobilenetV2Tflite)));
    const ops = new Set(graph.operators.map((op) => op.op));
    expect([...ops].sort()).toEqual(['ADD', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'MEAN', 'QUANTIZE', 'RESHAPE', 'SOFTMAX']);
    const input = graph.tensors[graph.inputs[0]!]!;
    expect(input).toMatchObject({ shape: [1, 224, 224, 3], type: 'uint8' });
    const firstConv = graph.operators.find((op) => op.op === 'CONV_2D')!;
    const filter = graph.tensors[firstConv.inputs[1]!]!;
    expect(filter).toMatchObject({ shape: [32, 3, 3, 3], type: 'int8' });
    expect(filter.quantization?.scale).toHaveLength(32);
    expect(filter.values).toHaveLength(32 * 27);
  });

  it.each([
    ['MobileNetV2 1.0', mobilenetV2Tflite, 'mobilenet_v2_1.0_224'],
    ['EfficientNet-Lite0', lite0Tflite, 'efficientnet_lite0_224'],
  ])('rebuilds %s with the weights and features of the shared TF.js model made from the same file', async (_name, file, folder) => {
    const rebuilt = await load(file);
    const shared = await load(sharedPath('models', folder, 'model.json'));
    expect(rebuilt.id).toMatch(new RegExp(`^${path.basename(file, '.tflite').replaceAll('.', '\\.')}-[0-9a-f]{12}$`));
    expect(rebuilt.forwardPass?.kind).toBe('graph');
    expect(rebuilt.featureSize).toBe(1280);
    // Weighted layers in the same order: the rebuilt model keeps its ImageNet or Model Maker classifier at the end.
    const ours = rebuilt.layersModel!.layers.flatMap((layer) => layer.getWeights());
    const theirs = shared.layersModel!.layers.flatMap((layer) => layer.getWeights());
    expect(ours.length).toBe(theirs.length + 2);
    theirs.forEach((weight, index) => {
      expect(ours[index]!.shape).toEqual(weight.shape);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(ours[index]!, weight))).dataSync()[0])).toBeLessThan(1e-5);
    });
    const [a, b] = tf.tidy(() => {
      const batch = pixels();
      return [rebuilt.features(batch).dataSync(), shared.features(batch).dataSync()];
    });
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-3);
  });

  it("keeps MobileNetV2's ImageNet classifier (1,000 classes after its background class): zero-shot answers and the head's cat/dog rows", async () => {
    const backbone = await load(mobilenetV2Tflite);
    expect(backbone.imagenet).toBeDefined();
    const probabilities = tf.tidy(() => backbone.imagenet!(pixels()).arraySync() as number[][]);
    expect(probabilities[0]).toHaveLength(1000);
    const pDog = probabilities.map(zeroShotPDog);
    expect(pDog.slice(0, 4).every((p) => p < 0.5)).toBe(true);
    expect(pDog.slice(4).every((p) => p > 0.5)).toBe(true);
    const logits = petLogits(backbone);
    expect(logits.featureSize).toBe(1280);
    expect(logits.cats + logits.dogs).toBe(5 + 118);
  });

  it('has no ImageNet head where the file ends in another classifier (Model Maker\'s 3 classes)', async () => {
    const backbone = await load(lite0Tflite);
    expect(backbone.imagenet).toBeUndefined();
  });

  it('imports a TFLite model as a network fed raw 0..255 pixels: the same ImageNet answers as the backbone fed x/127.5 − 1', async () => {
    const backbone = await load(mobilenetV2Tflite);
    const network = tfliteNetwork(tf, new Uint8Array(await fs.readFile(mobilenetV2Tflite)));
    try {
      expect(network.inputs[0]!.shape).toEqual([null, 224, 224, 3]);
      const [imported, reference] = tf.tidy(() => {
        const batch = pixels();
        return [(network.predict(batch) as ReturnType<Tensorflow['tensor']>).dataSync(), backbone.imagenet!(batch).dataSync()];
      });
      let worst = 0;
      for (let i = 0; i < imported.length; i++) worst = Math.max(worst, Math.abs(imported[i]! - reference[i]!));
      expect(worst).toBeLessThan(1e-3);
    } finally {
      network.dispose();
    }
  });

  it('refuses a declared scaling that the file\'s input quantization contradicts', async () => {
    await expect(loadBackbone(lite0Tflite, { cacheDir, scaling: 'x/255' })).rejects.toThrow(/declared to take pixels scaled x\/255.*input quantization says 1·x \+ -127/);
  });
});
