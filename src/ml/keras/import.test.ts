import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPython, skipWithoutPython } from '../../../test/support/python.js';
import { sharedPath, skipWithoutShared, smallBackbone } from '../../../test/support/shared.js';
import { CatdogError } from '../../errors.js';
import { importKerasModel, importTfjsModel } from './import.js';
import { type LayersModel, type ModelArtifacts, initTensorflow } from './tfjs.js';

const { tf } = await initTensorflow();
const TOLERANCE = 1e-4;
const BATCH = 4;

/** Real Keras files saved by other projects (see ../shared/README.md), with their input shapes. */
const FIXTURES = [
  { file: 'k3_akshatv25_mnist_cnn.keras', shape: [28, 28, 1] },
  { file: 'k3_melvinarchie01_cifar10_cnn.keras', shape: [32, 32, 3] },
  { file: 'k3_ammar_mnist_dense.keras', shape: [28, 28] },
];

/**
 * Loads each `[model, pixels, shape]` job with real Keras and prints its predictions. Keras 3.15 refuses the
 * \`noise_shape: 2\` that Keras 3.5 wrote for one fixture's Dropout, so the config is rebuilt without it
 * (noise_shape has no effect on predictions) and the file's own weights are loaded into it.
 */
const KERAS_PREDICT = `
import json, sys, tempfile, zipfile, os
import numpy as np, keras

def load(path):
    archive = zipfile.ZipFile(path)
    config = json.loads(archive.read("config.json"))
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dropout" and not isinstance(layer["config"].get("noise_shape"), (list, type(None))):
            layer["config"]["noise_shape"] = None
    model = keras.saving.deserialize_keras_object(config)
    with tempfile.TemporaryDirectory() as directory:
        weights = os.path.join(directory, "model.weights.h5")
        open(weights, "wb").write(archive.read("model.weights.h5"))
        model.load_weights(weights)
    return model

results = []
for model_path, pixels_path, shape in json.loads(sys.argv[1]):
    pixels = np.fromfile(pixels_path, dtype="<f4").reshape(shape)
    results.append(load(model_path).predict(pixels, verbose=0).reshape(-1).tolist())
print(json.dumps(results))
`;

/**
 * Builds with real Keras the models catdog must read: a functional CNN using every supported layer (with a
 * nested functional block and BatchNorm statistics far from their 0/1 start), a Sequential CNN, a model with a
 * layer catdog cannot run, and a weights-only file. Saves each as `.keras` and legacy `.h5`; prints predictions.
 */
const KERAS_BUILD = `
import json, os, sys
import numpy as np, keras
from keras import layers
out, pixels_path = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(3)
keras.utils.set_random_seed(3)

block_in = keras.Input((16, 16, 8))
x = layers.ZeroPadding2D(((0, 1), (0, 1)))(block_in)
x = layers.DepthwiseConv2D(3, strides=2, use_bias=False)(x)
x = layers.BatchNormalization()(x)
x = layers.ReLU(max_value=6.0)(x)
block = keras.Model(block_in, x, name="depthwise_block")

inputs = keras.Input((32, 32, 3))
x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
x = layers.BatchNormalization()(x)
x = layers.Activation("relu6")(x)
x = block(x)
x = layers.MaxPooling2D(2)(x)
x = layers.Conv2D(16, 1, activation="relu")(x)
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dropout(0.2)(x)
x = layers.Reshape((4, 4))(x)
x = layers.Flatten()(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
functional = keras.Model(inputs, outputs, name="small_cnn")

sequential = keras.Sequential([
    keras.Input((32, 32, 3)),
    layers.Rescaling(1 / 255.0),
    layers.Conv2D(4, 3, activation="relu"),
    layers.BatchNormalization(),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(8, activation="relu"),
    layers.Dropout(0.5),
    layers.Dense(2, activation="softmax"),
], name="small_sequential")

for model in (functional, sequential):
    for layer in model._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])

unsupported = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.LayerNormalization(), layers.Dense(1)])
unsupported.save(os.path.join(out, "unsupported.keras"))
functional.save_weights(os.path.join(out, "weights_only.weights.h5"))

pixels = np.fromfile(pixels_path, dtype="<f4").reshape((-1, 32, 32, 3))
predictions = {}
for name, model in (("functional", functional), ("sequential", sequential)):
    model.save(os.path.join(out, name + ".keras"))
    model.save(os.path.join(out, name + ".h5"))
    predictions[name] = model.predict(pixels, verbose=0).reshape(-1).tolist()
print(json.dumps(predictions))
`;

let workDir = '';
beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-keras-import-'));
});
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

function randomPixels(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomUniform([BATCH, ...shape], 0, 255, 'float32', seed).dataSync() as Float32Array);
}

function predict(model: LayersModel, pixels: Float32Array, shape: number[]): number[] {
  return tf.tidy(() => Array.from((model.predict(tf.tensor(pixels, [BATCH, ...shape])) as ReturnType<typeof tf.tensor>).dataSync()));
}

function expectClose(actual: number[], expected: number[]) {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - (expected[index] ?? Number.NaN))));
  expect(worst).toBeLessThan(TOLERANCE);
}

async function importFile(file: string): Promise<LayersModel> {
  return importKerasModel(new Uint8Array(fs.readFileSync(file)), path.basename(file));
}

async function catdogError(promise: Promise<unknown>): Promise<CatdogError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(CatdogError);
  return error as CatdogError;
}

const skipReason = skipWithoutPython || skipWithoutShared;

describe.skipIf(skipReason)(`importKerasModel on files saved by Python Keras${skipReason && ` (skipped: ${skipReason})`}`, () => {
  it('imports the three real .keras fixtures and predicts what Keras predicts', async () => {
    const jobs = FIXTURES.map(({ file, shape }, index) => {
      const pixelsPath = path.join(workDir, `fixture-${index}.f32`);
      fs.writeFileSync(pixelsPath, randomPixels(shape, index + 1).map((value) => value / 255));
      return [sharedPath('keras-fixtures', file), pixelsPath, [BATCH, ...shape]] as const;
    });
    const expected = JSON.parse(await runPython(KERAS_PREDICT, [JSON.stringify(jobs)])) as number[][];
    for (const [index, [modelPath, pixelsPath]] of jobs.entries()) {
      const model = await importFile(modelPath);
      const pixels = new Float32Array(fs.readFileSync(pixelsPath).buffer.slice(0));
      expectClose(predict(model, pixels, FIXTURES[index]!.shape), expected[index]!);
    }
  });

  describe('models built and saved by Keras in this test', () => {
    const shape = [32, 32, 3];
    const pixels = randomPixels(shape, 11);
    let expected: Record<'functional' | 'sequential', number[]>;
    beforeAll(async () => {
      const pixelsPath = path.join(workDir, 'pixels.f32');
      fs.writeFileSync(pixelsPath, pixels);
      expected = JSON.parse(await runPython(KERAS_BUILD, [workDir, pixelsPath])) as typeof expected;
    });

    for (const name of ['functional', 'sequential'] as const) {
      for (const format of ['keras', 'h5'] as const) {
        it(`imports the ${name} CNN from .${format} with the same predictions`, async () => {
          const model = await importFile(path.join(workDir, `${name}.${format}`));
          expectClose(predict(model, pixels, shape), expected[name]);
        });
      }
    }

    it('rejects a layer catdog cannot run, naming it and the supported ones', async () => {
      const error = await catdogError(importFile(path.join(workDir, 'unsupported.keras')));
      expect(error.code).toBe('unsupported_layer');
      expect(error.message).toContain('LayerNormalization');
      expect(error.message).toContain('DepthwiseConv2D');
    });

    it('rejects a weights-only .h5 with a reason', async () => {
      const error = await catdogError(importFile(path.join(workDir, 'weights_only.weights.h5')));
      expect(error.code).toBe('invalid_model');
      expect(error.message).toMatch(/only weights/);
    });
  });
});

describe.skipIf(skipWithoutShared)(`importTfjsModel and file sniffing${skipWithoutShared && ` (skipped: ${skipWithoutShared})`}`, () => {
  it('imports the sharded MobileNet model.json and predicts like tf.loadLayersModel', async () => {
    const directory = path.dirname(smallBackbone);
    const modelJson = new Uint8Array(fs.readFileSync(smallBackbone));
    const weights = Object.fromEntries(
      fs
        .readdirSync(directory)
        .filter((file) => file.startsWith('group'))
        .map((file) => [file, new Uint8Array(fs.readFileSync(path.join(directory, file)))]),
    );
    const imported = await importTfjsModel({ modelJson, weights });
    const reference = await tf.loadLayersModel(`file://${smallBackbone}`);
    const shape = [224, 224, 3];
    const scaled = randomPixels(shape, 5).map((value) => value / 127.5 - 1);
    expectClose(predict(imported, scaled, shape), predict(reference, scaled, shape));
  });

  it('imports a tfjs model saved with all weights in one buffer', async () => {
    const model = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 2, activation: 'softmax' })],
    });
    let saved: ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const modelJson = { modelTopology: saved!.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: saved!.weightSpecs }] };
    const weights = new Uint8Array(saved!.weightData as ArrayBuffer);
    const imported = await importTfjsModel({ modelJson: modelJson as never, weights });
    const pixels = randomPixels([4, 4, 3], 9);
    expectClose(predict(imported, pixels, [4, 4, 3]), predict(model, pixels, [4, 4, 3]));
  });

  it('asks for the weights of a model.json and rejects bytes of no known format', async () => {
    const json = await catdogError(importKerasModel(new Uint8Array(fs.readFileSync(smallBackbone)), 'model.json'));
    expect(json.code).toBe('tfjs_weights_required');
    const garbage = await catdogError(importKerasModel(new TextEncoder().encode('not a model'), 'cat.jpg'));
    expect(garbage.code).toBe('unsupported_model_format');
    expect(garbage.message).toContain('cat.jpg');
  });
});
