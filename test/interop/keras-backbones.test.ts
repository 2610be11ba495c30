import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeToRgb } from '../../src/images/index.js';
import { extractFeatures, loadBackbone } from '../../src/ml/backbone.js';
import { BACKBONE_CATALOGUE, type CatalogueBackbone } from '../../src/ml/catalogue.js';
import { runPython, skipWithoutPython } from '../support/python.js';
import { kaggleFiles, skipWithoutShared } from '../support/shared.js';

const skipReason = skipWithoutPython || skipWithoutShared;
/** Python TensorFlow start-up and five ImageNet-sized networks built, saved and run, on a shared two-core machine. */
const SLOW_TEST_MS = 600_000;
const TOLERANCE = 1e-3;
const SIZE = 224;

/**
 * Builds each network with `weights=None` (no internet here), gives every BatchNormalization a random scale and
 * shift and the moving statistics of its input on the photos themselves (untrained ones are the identity, which
 * would hide a misread moving mean or variance, and leave a deep random network answering the same for every
 * photo), saves it and prints Keras's own features of the photos, fed as the network's declared scaling wants them.
 */
const KERAS_BUILD_SAVE_PREDICT = `
import json, sys
import numpy as np, keras
out_dir, pixels_path = sys.argv[1], sys.argv[2]
jobs = json.loads(sys.argv[3])
pixels = np.fromfile(pixels_path, dtype="<f4").reshape((-1, ${SIZE}, ${SIZE}, 3))
scalings = {
    "x/127.5-1": lambda x: x / 127.5 - 1,
    "torch": lambda x: (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
    "none": lambda x: x,
}
results = {}
for job in jobs:
    keras.utils.set_random_seed(16)
    model = eval("keras.applications." + job["build"][:-1] + ", weights=None)")
    rng = np.random.default_rng(16)
    fed = scalings[job["scaling"]](pixels).astype("float32")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        gamma, beta, mean, variance = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape), mean, variance])
        layer.momentum = 0.0
    # One training-mode pass with momentum 0 leaves each moving statistic at the photos' own.
    model(fed, training=True)
    for layer in norms:
        layer.momentum = 0.99
    for extension in job["save"]:
        model.save(f"{out_dir}/{job['name']}.{extension}")
    results[job["name"]] = {"featureSize": int(model.output_shape[-1]), "features": model.predict(fed, verbose=0).tolist()}
print(json.dumps(results))
`;

interface Job {
  name: string;
  build: string;
  scaling: CatalogueBackbone['scaling'];
  save: ('keras' | 'h5')[];
  /** The declared scaling is folded into the first convolution, exact except where its zero padding reaches. */
  folded: boolean;
}

const catalogueJob = (name: string, save: Job['save'] = ['keras']): Job => {
  const entry = BACKBONE_CATALOGUE.find((candidate) => candidate.name === name);
  if (!entry?.kerasApplication) throw new Error(`${name} is not a Keras applications entry of the catalogue`);
  return { name, build: entry.kerasApplication, scaling: entry.scaling, save, folded: entry.scaling !== 'x/127.5-1' };
};

const JOBS: Job[] = [
  // MobileNetV2 1.0 as both file formats a user may bring: Keras 3's .keras and the legacy full-model .h5.
  { name: 'mobilenet_v2_1.0', build: 'MobileNetV2(alpha=1.0, include_top=False, pooling="avg", input_shape=(224, 224, 3))', scaling: 'x/127.5-1', save: ['keras', 'h5'], folded: false },
  // Every Keras applications entry of the catalogue, built by the very constructor call its entry names.
  catalogueJob('mobilenet_v2_1.4'),
  catalogueJob('mobilenet_v3_large', ['keras', 'h5']),
  catalogueJob('mobilenet_v3_large_minimalistic'),
  // Keras's default MobileNetV3 starts with its own Rescaling to x/127.5 − 1: declared "none" (raw pixels), it takes
  // what catdog feeds, with nothing left to fold.
  {
    name: 'mobilenet_v3_large_with_preprocessing',
    build: 'MobileNetV3Large(include_top=False, pooling="avg", input_shape=(224, 224, 3))',
    scaling: 'none',
    save: ['keras'],
    folded: false,
  },
  catalogueJob('efficientnetv2_b0'),
  // The same network fed x/127.5 − 1, which catdog feeds without folding a scaling into its first convolution.
  { ...catalogueJob('efficientnetv2_b0'), name: 'efficientnetv2_b0_unscaled', scaling: 'x/127.5-1', folded: false },
];

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! ** 2;
    normB += b[i]! ** 2;
  }
  return dot / Math.sqrt(normA * normB);
}

describe.skipIf(skipReason)('Keras applications files as backbones (.keras and .h5, include_top=False)', () => {
  let folder: string;
  let photos: Uint8Array[];
  let keras: Record<string, { featureSize: number; features: number[][] }>;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-keras-backbones-'));
    const files = [...kaggleFiles('cat', 2, 500), ...kaggleFiles('dog', 2, 500)];
    expect(files).toHaveLength(4);
    photos = await Promise.all(files.map(async (file) => (await decodeToRgb(fs.readFileSync(file), SIZE)).data));
    const pixels = new Float32Array(photos.length * SIZE * SIZE * 3);
    photos.forEach((photo, index) => pixels.set(photo, index * SIZE * SIZE * 3));
    fs.writeFileSync(path.join(folder, 'pixels.f32'), pixels);
    keras = JSON.parse(await runPython(KERAS_BUILD_SAVE_PREDICT, [folder, path.join(folder, 'pixels.f32'), JSON.stringify(JOBS)])) as typeof keras;
  }, SLOW_TEST_MS);

  afterAll(() => {
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  const cases = JOBS.flatMap((job) => job.save.map((extension) => ({ ...job, file: `${job.name}.${extension}` })));

  it.each(cases)(
    '$file loads as it is and gives the features Keras gives for real photos (within 1e-3; cosine > 0.99 where a scaling is folded)',
    async ({ name, file, scaling, folded }) => {
      const backbone = await loadBackbone(path.join(folder, file), { cacheDir: path.join(folder, 'cache'), scaling });
      try {
        const expected = keras[name]!;
        expect(backbone.inputSize).toBe(SIZE);
        expect(backbone.featureSize).toBe(expected.featureSize);
        const entry = BACKBONE_CATALOGUE.find((candidate) => candidate.name === name);
        if (entry) expect(backbone.featureSize).toBe(entry.featureSize);
        const ours = await extractFeatures(backbone, photos);
        if (!folded) {
          let worst = 0;
          ours.forEach((features, image) => features.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - expected.features[image]![i]!)))));
          expect(worst).toBeLessThan(TOLERANCE);
        } else {
          // Folded into the first convolution (ml/pixel-scaling.ts): the border pixels move the pooled features a little.
          ours.forEach((features, image) => expect(cosine(features, expected.features[image]!)).toBeGreaterThan(0.99));
        }
        // Features that differ between photos: a network that ignored its input would also match a constant.
        expect(Math.max(...ours[0]!.map((value, i) => Math.abs(value - ours[3]![i]!)))).toBeGreaterThan(100 * TOLERANCE);
      } finally {
        backbone.dispose();
      }
    },
    SLOW_TEST_MS,
  );
});
