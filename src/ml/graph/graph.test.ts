import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SymbolicTensor, Tensor, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import type * as TensorflowNode from '@tensorflow/tfjs-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultBackbone, kaggleFiles, sharedPath, skipWithoutShared, smallBackbone } from '../../../test/support/shared.js';
import { type Backbone, loadBackbone } from '../backbone.js';
import { maxAbsDifference, rgbPixels } from '../../../test/support/ml.js';
import { initTensorflow, type Tensorflow } from '../tf.js';
import { layersGraph, UnsupportedLayerError } from './from-layers.js';

const trunkBackbone = sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json');
const onWasm = process.env.CATDOG_BACKEND === 'wasm';

describe.skipIf(skipWithoutShared || onWasm)('backbones as one TensorFlow graph', () => {
  let tf: Tensorflow;
  let cacheDir: string;
  let photos: Tensor4D;
  const savedModels = () => (tf as unknown as typeof TensorflowNode).node.getNumOfSavedModels();

  /** The loaded (not folded) model run eagerly by tfjs: the reference the graph must reproduce. */
  const eager = (tensor: SymbolicTensor | SymbolicTensor[], backbone: Backbone, rgb: Tensor4D): Tensor =>
    tf.tidy(() => tf.model({ inputs: backbone.layersModel!.inputs, outputs: tensor }).predict(tf.sub(tf.div(rgb, 127.5), 1)) as Tensor);
  const values = (tensor: Tensor) => {
    const data = tensor.dataSync();
    tensor.dispose();
    return data;
  };

  beforeAll(async () => {
    ({ tf } = await initTensorflow());
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-graph-'));
    const pixels = await rgbPixels([...kaggleFiles('cat', 3), ...kaggleFiles('dog', 3)]);
    photos = tf.tensor4d(Float32Array.from(pixels.flatMap((photo) => [...photo])), [pixels.length, 224, 224, 3]);
  });
  afterAll(async () => {
    photos?.dispose();
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  it('gives MobileNet v1 0.75 the features and ImageNet probabilities of the layers model, from one cached graph', async () => {
    const backbone = await loadBackbone(defaultBackbone, { cacheDir });
    try {
      expect(backbone.forwardPass).toEqual({ kind: 'graph', folder: expect.stringContaining(path.join(cacheDir, 'graphs', backbone.id)) });
      const folder = (backbone.forwardPass as { folder: string }).folder;
      expect((await fs.readdir(folder)).sort()).toEqual(['saved_model.pb']);

      const features = values(backbone.features(photos));
      const reference = values(eager(backbone.featureModel!.outputs, backbone, photos));
      expect(features).toHaveLength(6 * 768);
      expect(maxAbsDifference(features, reference)).toBeLessThan(1e-4);
      const probabilities = values(backbone.imagenet!(photos));
      expect(maxAbsDifference(probabilities, values(eager(backbone.layersModel!.outputs, backbone, photos)))).toBeLessThan(1e-4);

      const onePass = backbone.featuresAndImagenet(photos);
      expect(maxAbsDifference(values(onePass.features), features)).toBeLessThan(1e-6);
      expect(maxAbsDifference(values(onePass.imagenet!), probabilities)).toBeLessThan(1e-6);
      // A single photo gives the row it had in the batch.
      const single = values(tf.tidy(() => backbone.features(tf.slice(photos, [4], [1]))));
      expect(maxAbsDifference(single, features.slice(4 * 768, 5 * 768))).toBeLessThan(1e-5);

      const again = await loadBackbone(defaultBackbone, { cacheDir });
      expect(again.forwardPass).toEqual(backbone.forwardPass);
      again.dispose();
    } finally {
      backbone.dispose();
    }
  });

  it('inlines the nested MobileNetV2 0.35 trunk of a Teachable Machine export, with its BatchNorms and residual adds', async () => {
    const trunk = await loadBackbone(trunkBackbone, { cacheDir });
    try {
      expect(trunk.forwardPass?.kind).toBe('graph');
      expect(trunk.imagenet).toBeUndefined();
      const features = values(trunk.features(photos));
      expect(features).toHaveLength(6 * 1280);
      expect(maxAbsDifference(features, values(eager(trunk.featureModel!.outputs, trunk, photos)))).toBeLessThan(1e-4);
      const { features: onePass, imagenet } = trunk.featuresAndImagenet(photos);
      expect(imagenet).toBeUndefined();
      expect(maxAbsDifference(values(onePass), features)).toBeLessThan(1e-6);
    } finally {
      trunk.dispose();
    }
  });

  it('leaves no tensor behind over repeated passes, and dispose closes the session', async () => {
    const sessionsBefore = savedModels();
    const backbone = await loadBackbone(defaultBackbone, { cacheDir });
    expect(savedModels()).toBe(sessionsBefore + 1);
    const pass = () => {
      const { features, imagenet } = backbone.featuresAndImagenet(photos);
      tf.dispose([features, imagenet!, backbone.features(photos), backbone.imagenet!(photos)]);
    };
    pass();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) pass();
    expect(tf.memory().numTensors).toBe(tensors);
    backbone.dispose();
    expect(savedModels()).toBe(sessionsBefore);
  });

  it('falls back to running eagerly, and says why, when a layer has no graph translation', async () => {
    const modelDir = path.join(cacheDir, 'leaky');
    const input = tf.input({ shape: [224, 224, 3] });
    const convolved = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(input);
    const leaky = tf.layers.leakyReLU({ alpha: 0.2, name: 'leaky' }).apply(convolved);
    const saved = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(leaky) as SymbolicTensor });
    await saved.save(`file://${modelDir}`);
    saved.dispose();
    const backbone = await loadBackbone(modelDir, { cacheDir });
    try {
      expect(backbone.forwardPass).toEqual({ kind: 'eager', reason: 'its layer leaky (LeakyReLU) has no TensorFlow graph translation' });
      const features = backbone.features(photos) as Tensor2D;
      expect(features.shape).toEqual([6, 4]);
      features.dispose();
    } finally {
      backbone.dispose();
    }
  });

  it('falls back to running eagerly when the graph cannot be written', async () => {
    const blockedCache = path.join(cacheDir, 'blocked');
    await fs.mkdir(blockedCache);
    await fs.writeFile(path.join(blockedCache, 'graphs'), 'a file where the graphs folder goes');
    const backbone = await loadBackbone(smallBackbone, { cacheDir: blockedCache });
    try {
      expect(backbone.forwardPass).toEqual({ kind: 'eager', reason: expect.stringMatching(/^its TensorFlow graph could not be written or loaded: .*(EEXIST|ENOTDIR)/) });
      expect(values(backbone.features(photos))).toHaveLength(6 * 256);
    } finally {
      backbone.dispose();
    }
  });

  describe('when an upgrade changed how a backbone graph is built', () => {
    const folderOf = (backbone: Backbone) => (backbone.forwardPass as { kind: 'graph'; folder: string }).folder;

    /**
     * The small backbone's graph cache as a catdog upgrade finds it: `stale` graph folders of the same backbone
     * from other bytes, plus `kept` ones, and no folder of the graph this version builds. Answers that folder.
     */
    async function upgradedCache(stale: (id: string) => string[], kept: (id: string) => string[]) {
      const cache = await fs.mkdtemp(path.join(cacheDir, 'upgrade-'));
      const before = await loadBackbone(smallBackbone, { cacheDir: cache });
      const { id } = before;
      const current = folderOf(before);
      before.dispose();
      await fs.rm(current, { recursive: true });
      for (const name of [...stale(id), ...kept(id)]) {
        await fs.mkdir(path.join(cache, 'graphs', name));
        await fs.writeFile(path.join(cache, 'graphs', name, 'saved_model.pb'), 'an older graph');
      }
      return { cache, id, current, graphs: path.join(cache, 'graphs'), kept: kept(id) };
    }

    it('removes the same backbone\'s graphs with other hashes once it writes the new one, and no other folder', async () => {
      const { cache, id, current, graphs, kept } = await upgradedCache(
        (id) => [`${id}-000000000000`, `${id}-0123456789ab`],
        // Other backbones: the same model name with other weights, and one whose id only starts like this one's.
        (id) => [`${id.replace(/-[0-9a-f]{12}$/, '-ffffffffffff')}-000000000000`, `${id}-000000000000-000000000000`],
      );
      const debug: string[] = [];
      const backbone = await loadBackbone(smallBackbone, { cacheDir: cache, logger: { debug: (_details, message) => debug.push(message) } });
      try {
        expect(folderOf(backbone)).toBe(current);
        expect(values(backbone.features(photos))).toHaveLength(6 * 256);
      } finally {
        backbone.dispose();
      }
      expect((await fs.readdir(graphs)).sort()).toEqual([...kept, path.basename(current)].sort());
      expect(debug).toEqual([]);

      // Reusing the graph this version wrote leaves an older one alone: only writing a new graph tidies up.
      await fs.mkdir(path.join(graphs, `${id}-000000000000`));
      (await loadBackbone(smallBackbone, { cacheDir: cache })).dispose();
      expect(await fs.readdir(graphs)).toContain(`${id}-000000000000`);
    });

    it('removes the temporary folder of a write killed over an hour ago, and not one another process is writing', async () => {
      const { cache, current, graphs } = await upgradedCache(() => [], () => []);
      const temporary = async (name: string, modified: Date) => {
        await fs.mkdir(path.join(graphs, name));
        await fs.writeFile(path.join(graphs, name, 'saved_model.pb'), 'half a graph');
        await fs.utimes(path.join(graphs, name), modified, modified);
      };
      await temporary('.writing-killed', new Date(Date.now() - 2 * 60 * 60 * 1000));
      await temporary('.writing-in-progress', new Date());
      const debug: string[] = [];
      (await loadBackbone(smallBackbone, { cacheDir: cache, logger: { debug: (_details, message) => debug.push(message) } })).dispose();
      expect((await fs.readdir(graphs)).sort()).toEqual(['.writing-in-progress', path.basename(current)].sort());
      expect(debug).toEqual([]);
    });

    it('leaves an old graph it cannot remove to a debug line, and runs the new one', async (context) => {
      const { cache, id, current, graphs } = await upgradedCache((id) => [`${id}-000000000000`], () => []);
      const stuck = path.join(graphs, `${id}-000000000000`);
      const release = await makeUndeletable(stuck);
      if (!release) context.skip('this machine cannot make a folder undeletable (chmod as a user, chattr +i as root)');
      const debug: { details: object; message: string }[] = [];
      try {
        const backbone = await loadBackbone(smallBackbone, { cacheDir: cache, logger: { debug: (details, message) => debug.push({ details, message }) } });
        expect(folderOf(backbone)).toBe(current);
        backbone.dispose();
      } finally {
        await release?.();
      }
      expect(debug).toEqual([{ details: { err: expect.any(Error), folder: stuck }, message: 'could not remove an old backbone graph' }]);
      expect((await fs.readdir(graphs)).sort()).toEqual([path.basename(current), path.basename(stuck)].sort());
    });
  });

  it('names the layer it cannot translate', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const output = tf.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'tanh', name: 'tanh_conv' }).apply(input) as SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    try {
      expect(() => layersGraph(tf, model, { out: output }, { inputScaling: { divisor: 1, subtrahend: 0 } })).toThrow(
        new UnsupportedLayerError('tanh_conv', 'Conv2D', 'has activation tanh, which the graph builder does not translate'),
      );
    } finally {
      model.dispose();
    }
  });
});

/**
 * Makes the entries of `folder` impossible to delete (a read-only folder for a user, the immutable attribute for
 * root, who ignores permissions) and answers how to undo it; undefined when this machine cannot do either.
 */
async function makeUndeletable(folder: string): Promise<(() => Promise<void>) | undefined> {
  if (process.getuid?.() !== 0) {
    await fs.chmod(folder, 0o555);
    return () => fs.chmod(folder, 0o755);
  }
  const chattr = (flag: string) => promisify(execFile)('chattr', [flag, folder]);
  return chattr('+i').then(
    () => async () => void (await chattr('-i')),
    () => undefined,
  );
}

describe.skipIf(skipWithoutShared)('backbones on the WebAssembly backend', () => {
  it('run eagerly, with one stderr line saying so and why', async () => {
    const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-graph-wasm-'));
    const moduleUrl = (file: string) => new URL(file, import.meta.url).href;
    const registerHooks = `import { register } from 'node:module'; register(${JSON.stringify(moduleUrl('../../../test/support/typescript-hooks.mjs'))});`;
    const script = `
      const { loadBackbone } = await import(${JSON.stringify(moduleUrl('../backbone.ts'))});
      const backbone = await loadBackbone(${JSON.stringify(smallBackbone)}, { cacheDir: ${JSON.stringify(cacheDir)} });
      console.log(JSON.stringify(backbone.forwardPass));`;
    try {
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        ['--import', `data:text/javascript,${encodeURIComponent(registerHooks)}`, '--input-type=module', '-e', script],
        { env: { ...process.env, CATDOG_BACKEND: 'wasm' }, timeout: 120_000 },
      );
      expect(JSON.parse(stdout)).toEqual({ kind: 'eager', reason: 'the wasm backend runs no TensorFlow graphs' });
      expect(stderr.split('\n').filter((line) => line.startsWith('catdog: backbone '))).toEqual([
        expect.stringMatching(/^catdog: backbone mobilenet_v1_0\.25_224-[0-9a-f]{12} runs eagerly, layer by layer: the wasm backend runs no TensorFlow graphs$/),
      ]);
      await expect(fs.readdir(cacheDir)).resolves.toEqual([]);
    } finally {
      await fs.rm(cacheDir, { recursive: true, force: true });
    }
  });
});
