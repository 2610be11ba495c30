import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { ingestImage } from '../../src/datasets/ingest.js';
import { CatdogError } from '../../src/errors.js';
import { decodeToRgb } from '../../src/images/index.js';
import { deserializeModel, initTensorflow, type LayersModel, type Tensor } from '../../src/ml/index.js';
import { readModelFiles } from '../../src/registry/artifacts.js';
import { loadClassifier } from '../../src/registry/classifier.js';
import { exportModel, type ExportedModelCard } from '../../src/registry/export.js';
import { importModel } from '../../src/registry/import.js';
import { datasetParams, resolveTrainingParams } from '../../src/training/params.js';
import { trainOnDataset } from '../../src/training/run-training.js';
import type { CatdogConfig } from '../../src/config/index.js';
import type { ModelRow } from '../../src/db/index.js';
import { createTestApp, type TestApp, withOverrides } from '../support/app.js';
import { runPython, skipWithoutPython } from '../support/python.js';
import { kaggleFiles, sharedPath, skipWithoutShared, smallBackbone } from '../support/shared.js';

const skipReason = skipWithoutPython || skipWithoutShared;
const TOLERANCE = 1e-4;
/** Training, a CLI process and Python's TensorFlow start-up, on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Loads each `.keras` file with real Keras and predicts raw float32 NHWC pixels; prints one list per file. */
const KERAS_PREDICT = `
import json, sys
import numpy as np, keras
jobs = json.loads(sys.argv[1])
out = []
for job in jobs:
    model = keras.saving.load_model(job["model"])
    pixels = np.fromfile(job["pixels"], dtype="<f4").reshape(job["shape"])
    out.append(model.predict(pixels, verbose=0).reshape(-1).tolist())
print(json.dumps(out))
`;

/** A small pixel-fed cat/dog network built and saved by Keras itself, and its predictions on the given pixels. */
const KERAS_BUILD_SAVE_PREDICT = `
import json, sys
import numpy as np, keras
model_path, pixels_path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
keras.utils.set_random_seed(7)
model = keras.Sequential([
    keras.Input((size, size, 3)),
    keras.layers.Rescaling(1 / 255),
    keras.layers.Conv2D(8, 3, activation="relu"),
    keras.layers.BatchNormalization(),
    keras.layers.MaxPooling2D(2),
    keras.layers.Flatten(),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy")
x = np.random.default_rng(7).uniform(0, 255, (16, size, size, 3)).astype("float32")
y = np.array([0, 1] * 8, dtype="float32")
model.fit(x, y, epochs=2, batch_size=8, verbose=0)
model.save(model_path)
pixels = np.fromfile(pixels_path, dtype="<f4").reshape((-1, size, size, 3))
print(json.dumps(model.predict(pixels, verbose=0).reshape(-1).tolist()))
`;

/** Eight photos not used for training, decoded as catdog decodes them (squashed to size², RGB 0–255). */
function photoPixels(size: number): Promise<Uint8Array[]> {
  const files = [...kaggleFiles('cat', 4, 300), ...kaggleFiles('dog', 4, 300)];
  expect(files).toHaveLength(8);
  return Promise.all(files.map(async (file) => (await decodeToRgb(fs.readFileSync(file), size)).data));
}

function writePixels(file: string, images: readonly Uint8Array[]): string {
  const flat = new Float32Array(images.reduce((total, image) => total + image.length, 0));
  let offset = 0;
  for (const image of images) {
    flat.set(image, offset);
    offset += image.length;
  }
  fs.writeFileSync(file, flat);
  return file;
}

function expectClose(actual: readonly number[], expected: readonly number[]) {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - (expected[index] ?? Number.NaN))));
  expect(worst).toBeLessThan(TOLERANCE);
}

async function tfjsPredictions(model: LayersModel, images: readonly Uint8Array[], size: number): Promise<number[]> {
  const { tf } = await initTensorflow();
  const flat = new Float32Array(images.length * size * size * 3);
  images.forEach((image, i) => flat.set(image, i * size * size * 3));
  const output = tf.tidy(() => model.predict(tf.tensor4d(flat, [images.length, size, size, 3])) as Tensor);
  const values = Array.from(await output.data());
  output.dispose();
  return values;
}

/** `catdog …` as users run it, from the TypeScript sources, against the test app's home. */
function runCli(home: string, args: string[]): Promise<string> {
  const hooks = pathToFileURL(path.join(repoRoot, 'test', 'support', 'typescript-hooks.mjs')).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], {
    cwd: home,
    env: { ...process.env, CATDOG_HOME: home, CATDOG_BACKBONE_URL: smallBackbone, CATDOG_TRAINING__PRESET: 'fast', CATDOG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`catdog ${args.join(' ')} exited with ${code}: ${stderr}`))));
  });
}

describe.skipIf(skipReason)(`catdog models ↔ Python Keras 3.15${skipReason && ` (skipped: ${skipReason})`}`, () => {
  let app: TestApp;
  let datasetId: number;

  const train = async (architecture: 'cnn' | 'mobilenet', imageSize: number, epochs: number, training: Partial<CatdogConfig['training']> = {}): Promise<ModelRow> => {
    const overridden = withOverrides(app.config, { architecture, imageSize, epochs });
    const config = { ...overridden, training: { ...overridden.training, ...training } };
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config) });
    return outcome.model;
  };

  /** What catdog itself answers for the photos (temperature scaling included). */
  const catdogPredictions = async (model: ModelRow, images: readonly Uint8Array[]) => {
    const classifier = await loadClassifier(app, model);
    try {
      return (await classifier.predictPixels(images)).map((prediction) => prediction.pDog);
    } finally {
      classifier.dispose();
    }
  };

  const kerasPredictions = async (files: string[], pixelsFile: string, size: number): Promise<number[][]> =>
    JSON.parse(await runPython(KERAS_PREDICT, [JSON.stringify(files.map((model) => ({ model, pixels: pixelsFile, shape: [-1, size, size, 3] })))])) as number[][];

  /** The TF.js export, loaded from its files alone: same answers, and a card saying how to feed it. */
  const expectTfjsExportAnswersAsCatdog = async (model: ModelRow, images: readonly Uint8Array[], size: number, expected: number[]) => {
    const exported = await exportModel(app, model.id, 'tfjs');
    expect(exported.format).toBe('tfjs');
    if (exported.format !== 'tfjs') return;
    expect(Object.keys(exported.files).sort()).toEqual(['catdog.json', 'model.json', 'weights.bin']);
    const card = JSON.parse(new TextDecoder().decode(exported.files['catdog.json'])) as ExportedModelCard;
    const { card: stored } = await readModelFiles(app.blobs, model.artifactPrefix);
    expect(card).toMatchObject({
      sourceModelId: model.id,
      labels: ['cat', 'dog'],
      output: 'sigmoid-p-dog',
      imageSize: size,
      preprocessing: 'rgb-0-255, squash resize',
      temperature: stored.calibration?.temperature ?? 1,
    });
    const network = await deserializeModel({ modelJson: exported.files['model.json']!, weights: exported.files['weights.bin']! });
    try {
      expectClose(await tfjsPredictions(network, images, size), expected);
    } finally {
      network.dispose();
    }
  };

  beforeAll(async () => {
    app = await createTestApp();
    for (const label of ['cat', 'dog'] as const) {
      for (const file of kaggleFiles(label, 12)) {
        await ingestImage({ db: app.db, blobs: app.blobs, limits: app.config.images }, { bytes: fs.readFileSync(file), label, source: 'test', originalName: path.basename(file) });
      }
    }
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
  });
  afterAll(async () => app?.dispose());

  it('refuses to export the zero-shot model, which serves before any model is promoted', async () => {
    const refusal = await exportModel(app, 'current', 'keras').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(CatdogError);
    expect(refusal).toMatchObject({ code: 'export_unavailable' });
  });

  it('exports the CNN (.keras from the API and the CLI, and TF.js): Keras answers as catdog does', async () => {
    const size = 64;
    const model = await train('cnn', size, 1);
    expect((await app.db.models.current())?.id).toBe(model.id);
    const images = await photoPixels(size);
    const expected = await catdogPredictions(model, images);

    const exported = await exportModel(app, model.id, 'keras');
    expect(exported).toMatchObject({ format: 'keras', fileName: `catdog-v${model.version}-${model.id}.keras` });
    const apiFile = path.join(app.home, 'api.keras');
    fs.writeFileSync(apiFile, exported.format === 'keras' ? exported.bytes : new Uint8Array());
    const cliFile = path.join(app.home, 'cli.keras');
    expect(await runCli(app.home, ['models', 'export', 'current', '--format', 'keras', '-o', cliFile])).toContain(model.id);

    const [fromApi, fromCli] = await kerasPredictions([apiFile, cliFile], writePixels(path.join(app.home, 'cnn.f32'), images), size);
    expectClose(fromApi!, expected);
    expectClose(fromCli!, expected);
    await expectTfjsExportAnswersAsCatdog(model, images, size, expected);
  }, SLOW_TEST_MS);

  it('exports the MobileNet transfer model as one pixel-fed network (scaling, backbone, head): Keras answers as catdog does', async () => {
    const model = await train('mobilenet', 224, 2);
    const images = await photoPixels(224);
    const expected = await catdogPredictions(model, images);
    // A head that answers the same for every photo would make the comparison say little.
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(1e-3);

    const exported = await exportModel(app, model.id, 'keras');
    const file = path.join(app.home, 'mobilenet.keras');
    fs.writeFileSync(file, exported.format === 'keras' ? exported.bytes : new Uint8Array());
    const [fromKeras] = await kerasPredictions([file], writePixels(path.join(app.home, 'mobilenet.f32'), images), 224);
    expectClose(fromKeras!, expected);
    await expectTfjsExportAnswersAsCatdog(model, images, 224, expected);
  }, SLOW_TEST_MS);

  it('exports a fine-tuned MobileNet (frozen layers below the cut, then the fine-tuned blocks with frozen BatchNorm and the head): Keras answers as catdog does', async () => {
    const model = await train('mobilenet', 224, 2, { fineTune: { enabled: true, blocks: 2, learningRate: 0.0005, epochs: 1 } });
    expect((await readModelFiles(app.blobs, model.artifactPrefix)).card.fineTuned).toEqual({ blocks: 2, layer: 'conv_pw_11_relu' });
    const images = await photoPixels(224);
    const expected = await catdogPredictions(model, images);
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(1e-3);

    const exported = await exportModel(app, model.id, 'keras');
    const file = path.join(app.home, 'fine-tuned.keras');
    fs.writeFileSync(file, exported.format === 'keras' ? exported.bytes : new Uint8Array());
    const [fromKeras] = await kerasPredictions([file], writePixels(path.join(app.home, 'fine-tuned.f32'), images), 224);
    expectClose(fromKeras!, expected);
    await expectTfjsExportAnswersAsCatdog(model, images, 224, expected);
  }, SLOW_TEST_MS);

  it('exports a head on a backbone ensemble (MobileNet v1 and the MobileNetV2 trunk side by side): Keras answers as catdog does', async () => {
    const model = await train('mobilenet', 224, 2, { ensemble: [sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json')] });
    const images = await photoPixels(224);
    const expected = await catdogPredictions(model, images);
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(1e-3);

    const exported = await exportModel(app, model.id, 'keras');
    const file = path.join(app.home, 'ensemble.keras');
    fs.writeFileSync(file, exported.format === 'keras' ? exported.bytes : new Uint8Array());
    const [fromKeras] = await kerasPredictions([file], writePixels(path.join(app.home, 'ensemble.f32'), images), 224);
    expectClose(fromKeras!, expected);
    await expectTfjsExportAnswersAsCatdog(model, images, 224, expected);
  }, SLOW_TEST_MS);

  it('imports a model built and saved by Keras: registered, evaluated, promoted by the usual rule, predicting as Keras does', async () => {
    const size = 32;
    const images = await photoPixels(size);
    const modelFile = path.join(app.home, 'built-by-keras.keras');
    const fromKeras = JSON.parse(await runPython(KERAS_BUILD_SAVE_PREDICT, [modelFile, writePixels(path.join(app.home, 'k.f32'), images), String(size)])) as number[];
    const incumbent = await app.db.models.current();

    const { model, metrics, promotion } = await importModel(app, { fileName: 'built-by-keras.keras', bytes: fs.readFileSync(modelFile) }, { name: 'built by Keras' });
    expect(model).toMatchObject({ name: 'built by Keras', architecture: 'imported', datasetId, runId: null });
    expect((await app.db.models.get(model.id))?.version).toBe(model.version);
    expect(model.metrics).toEqual({ ...metrics });
    expect(metrics.accuracy).toBeGreaterThanOrEqual(0);
    expect(promotion.incumbent?.modelId).toBe(incumbent?.id);
    expect(promotion.promoted).toBe(metrics.accuracy > promotion.incumbent!.value);
    expect((await app.db.models.current())?.id).toBe(promotion.promoted ? model.id : incumbent?.id);
    expect((await readModelFiles(app.blobs, model.artifactPrefix)).card).toMatchObject({ architecture: 'imported', imageSize: size });

    expectClose(await catdogPredictions(model, images), fromKeras);
  }, SLOW_TEST_MS);

  it('refuses a model that is not one image in and P(dog) out, naming what it has', async () => {
    const before = (await app.db.models.list()).length;
    const file = sharedPath('keras-fixtures', 'k3_ammar_mnist_dense.keras');
    const refusal = await importModel(app, { fileName: path.basename(file), bytes: fs.readFileSync(file) }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(CatdogError);
    expect(refusal).toMatchObject({ code: 'incompatible_model' });
    expect((refusal as Error).message).toContain('[[null,28,28]]');
    expect((refusal as Error).message).toContain('[[null,10]] through softmax');
    expect(await app.db.models.list()).toHaveLength(before);
  });
});
