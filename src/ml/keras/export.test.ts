import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPython, skipWithoutPython } from '../../../test/support/python.js';
import { kaggleFiles, sharedPath, skipWithoutShared, smallBackbone } from '../../../test/support/shared.js';
import { combineBackbones, loadBackbone } from '../backbone.js';
import { exportKeras } from './export.js';
import { readHdf5, isDataset, isGroup, type Group } from './hdf5.js';
import { type LayersModel, initTensorflow } from './tfjs.js';

const skipReason = skipWithoutPython || skipWithoutShared;
const { tf } = await initTensorflow();
const TOLERANCE = 1e-4;

/**
 * Loads a `.keras` file with real Keras, predicts the float32 NHWC pixels in `pixels`, then saves the loaded
 * model again so the test can compare our file with Keras's own.
 */
const LOAD_PREDICT_RESAVE = `
import json, sys, zipfile
import numpy as np, keras
model_path, pixels_path, shape, resaved_path = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
model = keras.saving.load_model(model_path)
pixels = np.fromfile(pixels_path, dtype="<f4").reshape(shape)
predictions = model.predict(pixels, verbose=0)
model.save(resaved_path)
entries = [[info.filename, info.compress_type] for info in zipfile.ZipFile(model_path).infolist()]
print(json.dumps({"predictions": predictions.reshape(-1).tolist(), "entries": entries}))
`;

interface KerasRun {
  predictions: number[];
  entries: [string, number][];
}

let workDir = '';
beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-keras-export-'));
});
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

/** Eight Kaggle photos squashed to `size`², RGB 0–255 as float32 NHWC. */
async function photoBatch(size: number): Promise<Float32Array> {
  const files = [...kaggleFiles('cat', 4), ...kaggleFiles('dog', 4)];
  expect(files).toHaveLength(8);
  const batch = new Float32Array(files.length * size * size * 3);
  for (const [index, file] of files.entries()) {
    const rgb = await sharp(file).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
    batch.set(Float32Array.from(rgb), index * size * size * 3);
  }
  return batch;
}

async function kerasPredictions(keras: Uint8Array, pixels: Float32Array, size: number, name: string) {
  const modelPath = path.join(workDir, `${name}.keras`);
  const pixelsPath = path.join(workDir, `${name}.f32`);
  const resavedPath = path.join(workDir, `${name}.resaved.keras`);
  fs.writeFileSync(modelPath, keras);
  fs.writeFileSync(pixelsPath, pixels);
  const shape = JSON.stringify([pixels.length / (size * size * 3), size, size, 3]);
  const run = JSON.parse(await runPython(LOAD_PREDICT_RESAVE, [modelPath, pixelsPath, shape, resavedPath])) as KerasRun;
  return { ...run, resaved: new Uint8Array(fs.readFileSync(resavedPath)) };
}

function tfjsPredictions(model: LayersModel, pixels: Float32Array, size: number): number[] {
  return tf.tidy(() => {
    const input = tf.tensor4d(pixels, [pixels.length / (size * size * 3), size, size, 3]);
    return Array.from((model.predict(input) as ReturnType<typeof tf.tensor>).dataSync());
  });
}

/** Every group and dataset of an HDF5 file: path, dataset shape, and the `name` attribute of `vars` groups. */
async function hdf5Tree(bytes: Uint8Array): Promise<string[]> {
  return readHdf5(bytes, (file) => {
    const lines: string[] = [];
    const visit = (group: Group, prefix: string) => {
      for (const key of group.keys()) {
        const entity = group.get(key);
        const at = `${prefix}${key}`;
        if (isGroup(entity)) {
          const name = entity.attrs.name?.value;
          lines.push(name === undefined ? `${at}/` : `${at}/ name=${String(name)}`);
          visit(entity, `${at}/`);
        } else if (isDataset(entity)) {
          lines.push(`${at} ${JSON.stringify(entity.shape)} ${entity.dtype}`);
        }
      }
    };
    visit(file, '');
    return lines.sort();
  });
}

/** config.json without `shared_object_id`, which Keras numbers from Python object ids. */
function configOf(keras: Uint8Array): unknown {
  const text = new TextDecoder().decode(unzipSync(keras)['config.json']);
  return JSON.parse(text, (key, value: unknown) => (key === 'shared_object_id' ? undefined : value));
}

function expectClose(actual: number[], expected: number[]) {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - (expected[index] ?? Number.NaN))));
  expect(worst).toBeLessThan(TOLERANCE);
}

async function expectSameFileAsKeras(ours: Uint8Array, kerasRun: KerasRun & { resaved: Uint8Array }) {
  expect(kerasRun.entries).toEqual([
    ['metadata.json', 0],
    ['config.json', 0],
    ['model.weights.h5', 0],
  ]);
  expect(configOf(ours)).toEqual(configOf(kerasRun.resaved));
  const [ourTree, kerasTree] = [
    await hdf5Tree(unzipSync(ours)['model.weights.h5']!),
    await hdf5Tree(unzipSync(kerasRun.resaved)['model.weights.h5']!),
  ];
  expect(ourTree).toEqual(kerasTree);
}

describe.skipIf(skipReason)(`exportKeras, loaded by Python Keras 3.15${skipReason && ` (skipped: ${skipReason})`}`, () => {
  it('exports the trained catdog CNN: same probabilities on real photos, same file as Keras writes', async () => {
    const size = 128;
    const convBlock = (filters: number) => [
      tf.layers.conv2d({ filters, kernelSize: 3, activation: 'relu' }),
      tf.layers.batchNormalization(),
      tf.layers.maxPooling2d({ poolSize: 2 }),
    ];
    const cnn = tf.sequential({
      name: 'cnn',
      layers: [
        tf.layers.rescaling({ scale: 1 / 255, inputShape: [size, size, 3] }),
        ...convBlock(32),
        ...convBlock(64),
        ...convBlock(128),
        tf.layers.flatten(),
        tf.layers.dense({ units: 128, activation: 'relu' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 64, activation: 'relu' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
    });
    // Two training steps move the BatchNorm moving statistics away from their 0/1 start.
    cnn.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
    const trainX = tf.randomUniform([8, size, size, 3], 0, 255, 'float32', 7);
    const trainY = tf.tensor2d([0, 1, 0, 1, 1, 0, 1, 0], [8, 1]);
    await cnn.fit(trainX, trainY, { epochs: 2, batchSize: 8, verbose: 0 });
    tf.dispose([trainX, trainY]);
    const movingMean = cnn.layers[2]!.getWeights()[2]!;
    expect(Math.max(...Array.from(movingMean.abs().dataSync()))).toBeGreaterThan(1e-3);

    const pixels = await photoBatch(size);
    const keras = await exportKeras(cnn);
    const kerasRun = await kerasPredictions(keras, pixels, size, 'cnn');
    expectClose(kerasRun.predictions, tfjsPredictions(cnn, pixels, size));
    await expectSameFileAsKeras(keras, kerasRun);
  });

  it('exports a functional model that calls a nested functional model, with unit input scaling', async () => {
    const size = 16;
    type Symbolic = ReturnType<typeof tf.input>;
    const chain = (input: Symbolic, ...layers: { apply(input: Symbolic): unknown }[]) =>
      layers.reduce((tensor, layer) => layer.apply(tensor) as Symbolic, input);
    const blockInput = tf.input({ shape: [size, size, 4] });
    const blockOutput = chain(
      blockInput,
      tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }),
      tf.layers.reLU({ maxValue: 6 }),
    );
    const block = tf.model({ name: 'block', inputs: blockInput, outputs: blockOutput });
    const input = tf.input({ shape: [size, size, 3] });
    const output = chain(
      input,
      tf.layers.conv2d({ filters: 4, kernelSize: 1 }),
      block,
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 1 }),
      tf.layers.activation({ activation: 'sigmoid' }),
    );
    const model = tf.model({ name: 'nested_functional', inputs: input, outputs: output });

    const pixels = tf.tidy(() => tf.randomUniform([8, size, size, 3], 0, 255, 'float32', 3).dataSync() as Float32Array);
    const keras = await exportKeras(model, { preprocessing: 'unit' });
    const kerasRun = await kerasPredictions(keras, pixels, size, 'nested');
    expectClose(kerasRun.predictions, tfjsPredictions(model, pixels.map((value) => value / 255), size));
    await expectSameFileAsKeras(keras, kerasRun);
  });

  it('exports the MobileNet transfer model with its input scaling: Keras users feed raw pixels', async () => {
    const size = 224;
    const mobilenet = await tf.loadLayersModel(`file://${smallBackbone}`);
    const trunk = tf.model({
      inputs: mobilenet.inputs,
      outputs: mobilenet.getLayer('global_average_pooling2d_1').output,
      name: 'trunk',
    });
    const head = tf.sequential({
      name: 'logistic_head',
      layers: [
        tf.layers.dense({
          inputShape: [256],
          units: 1,
          activation: 'sigmoid',
          kernelRegularizer: tf.regularizers.l2({ l2: 1e-4 }),
          biasInitializer: tf.initializers.constant({ value: 0.3 }),
        }),
      ],
    });
    // catdog feeds its MobileNet graphs x / 127.5 − 1 computed in code, so the tfjs model itself has no scaling.
    const transfer = tf.sequential({ name: 'transfer', layers: [trunk, head] });

    const pixels = await photoBatch(size);
    const keras = await exportKeras(transfer, { preprocessing: 'mobilenet' });
    const kerasRun = await kerasPredictions(keras, pixels, size, 'mobilenet');
    const scaled = pixels.map((value) => value / 127.5 - 1);
    expectClose(kerasRun.predictions, tfjsPredictions(transfer, scaled, size));
    await expectSameFileAsKeras(keras, kerasRun);
  });

  it("exports an ensemble's feature model at another input size: Keras computes catdog's concatenated features", async () => {
    // What bench/peer-backbone.mjs gives the Keras peers: two backbones (BatchNorm and DepthwiseConv2D in one,
    // residual Adds and ReLU6 in the other, rebuilt from TFLite) as nested models on one input, resized, concatenated.
    const size = 160;
    const options = { cacheDir: workDir, inputSize: size };
    const parts = [await loadBackbone(smallBackbone, options), await loadBackbone(sharedPath('models', 'efficientnet_lite0_224', 'model.json'), options)];
    try {
      const ensemble = combineBackbones(parts);
      const pixels = await photoBatch(size);
      const keras = await exportKeras(ensemble.featureModel!, { preprocessing: 'mobilenet' });
      const kerasRun = await kerasPredictions(keras, pixels, size, 'ensemble');
      const features = tf.tidy(() => Array.from(ensemble.features(tf.tensor4d(pixels, [8, size, size, 3])).dataSync()));
      expect(features).toHaveLength(8 * (256 + 1280));
      expectClose(kerasRun.predictions, features);
      await expectSameFileAsKeras(keras, kerasRun);
    } finally {
      for (const part of parts) part.dispose();
    }
  });
});
