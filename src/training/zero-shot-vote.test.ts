import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp, withOverrides } from '../../test/support/app.js';
import { kerasPredict, skipWithoutPython } from '../../test/support/python.js';
import { defaultBackbone, kaggleFiles, sharedPath, skipWithoutShared } from '../../test/support/shared.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { animalMassesOfFeatures, buildHead, deserializeModel, imagenetAnimalMass, initTensorflow, petLogits, zeroShotPDog, type LayersModel, type Tensor } from '../ml/index.js';
import { maxAbsDifference, rgbPixels } from '../../test/support/ml.js';
import { loadClassifier } from '../registry/classifier.js';
import { exportModel } from '../registry/export.js';
import { datasetParams, resolveTrainingParams } from './params.js';
import { trainOnDataset } from './run-training.js';

/** A training run, a TF.js export and a Keras round trip on a shared two-core machine. */
const SLOW_TEST_MS = 300_000;
const { tf } = await initTensorflow();

let app: TestApp;
let datasetId: number;

describe.skipIf(Boolean(skipWithoutShared))('a head that also takes the backbone\'s ImageNet zero-shot vote, on real photos', () => {
  const photos = [...kaggleFiles('cat', 3, 1300), ...kaggleFiles('dog', 3, 1300)];
  let pixels: Uint8Array[];
  let batch: Tensor;

  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 16, 1200);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
    pixels = await rgbPixels(photos);
    batch = tf.tensor4d(Float32Array.from(pixels.flatMap((image) => [...image])), [pixels.length, 224, 224, 3]);
  }, SLOW_TEST_MS);
  afterAll(async () => {
    batch?.dispose();
    await app?.dispose();
  });

  it('computes inside the head the P(dog) − P(cat) that the ImageNet head gives on its own', async () => {
    const backbone = await app.backbones.get(app.config.training.backbone);
    const head = buildHead('logistic', backbone.featureSize, 7, petLogits(backbone));
    const { features, imagenet } = backbone.featuresAndImagenet(batch as never);
    try {
      const voteModel = tf.model({ inputs: head.inputs, outputs: head.getLayer('zero_shot_vote').output });
      const vote = tf.tidy(() => (voteModel.predict(features) as Tensor).dataSync());
      const expected = (imagenet!.arraySync() as number[][]).map((row) => 2 * zeroShotPDog(row) - 1);
      expect(maxAbsDifference(vote, expected)).toBeLessThan(1e-4);
      // Real photos, not a constant: the vote goes both ways.
      expect(Math.min(...expected)).toBeLessThan(0);
      expect(Math.max(...expected)).toBeGreaterThan(0);
    } finally {
      tf.dispose([features, imagenet!]);
      head.dispose();
    }
  });

  it('reads the ImageNet cat-and-dog mass from pooled features as the classifier gives it, in an ensemble too', async () => {
    const trunkSource = sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json');
    // The part with the classifier comes second, so its features sit after the trunk's.
    const ensemble = await app.backbones.combined([trunkSource, app.config.training.backbone]);
    const { features, imagenet } = ensemble.featuresAndImagenet(batch as never);
    try {
      const rows = (features.arraySync() as number[][]).map((row) => Float32Array.from(row));
      const expected = (imagenet!.arraySync() as number[][]).map((row) => imagenetAnimalMass(row));
      expect(maxAbsDifference(animalMassesOfFeatures(ensemble, rows)!, expected)).toBeLessThan(1e-4);
      // Real cats and dogs: the classifier puts much of its probability on them.
      expect(Math.max(...expected)).toBeGreaterThan(0.2);
      expect(animalMassesOfFeatures(await app.backbones.get(trunkSource), rows)).toBeUndefined();
    } finally {
      tf.dispose([features, imagenet!]);
    }
  });

  it('pools the classifiers of every ensemble part that has one, served and read from features alike', async () => {
    const trunkSource = sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json');
    const sources = [app.config.training.backbone, trunkSource, defaultBackbone];
    const [small, , large] = await Promise.all(sources.map((source) => app.backbones.get(source)));
    const ensemble = await app.backbones.combined(sources);
    const { features, imagenet } = ensemble.featuresAndImagenet(batch as never);
    const own = [small!, large!].map((part) => part.imagenet!(batch as never));
    try {
      const [smallRows, largeRows] = own.map((answer) => answer.arraySync() as number[][]);
      // The normalised geometric mean of the two classifiers' probabilities, computed here by hand.
      const expected = smallRows!.map((row, i) => {
        const geometric = row.map((p, c) => Math.sqrt(p * largeRows![i]![c]!));
        const sum = geometric.reduce((total, value) => total + value, 0);
        return geometric.map((value) => value / sum);
      });
      const pooled = imagenet!.arraySync() as number[][];
      expect(maxAbsDifference(pooled.flat(), expected.flat())).toBeLessThan(1e-5);
      const pooledOnly = ensemble.imagenet!(batch as never);
      expect(maxAbsDifference(pooledOnly.dataSync(), imagenet!.dataSync())).toBeLessThan(1e-6);
      pooledOnly.dispose();

      const masses = pooled.map((row) => imagenetAnimalMass(row));
      const rows = (features.arraySync() as number[][]).map((row) => Float32Array.from(row));
      expect(maxAbsDifference(animalMassesOfFeatures(ensemble, rows)!, masses)).toBeLessThan(1e-4);
      // Neither part's own answer: the pool differs from each by more than float rounding.
      for (const partRows of [smallRows!, largeRows!]) expect(maxAbsDifference(masses, partRows.map((row) => imagenetAnimalMass(row)))).toBeGreaterThan(1e-3);

      const logits = petLogits(ensemble);
      const votes = rows.map((row) => {
        const pet = Array.from(logits.bias, (bias, column) => row.reduce((sum, value, feature) => sum + value * logits.kernel[feature * logits.bias.length + column]!, bias));
        const top = Math.max(...pet);
        const weights = pet.map((logit) => Math.exp(logit - top));
        const cat = weights.slice(0, logits.cats).reduce((sum, value) => sum + value, 0) / logits.cats;
        const dog = weights.slice(logits.cats).reduce((sum, value) => sum + value, 0) / logits.dogs;
        return dog / (cat + dog);
      });
      expect(maxAbsDifference(votes, pooled.map((row) => zeroShotPDog(row)))).toBeLessThan(1e-4);
    } finally {
      tf.dispose([features, imagenet!, ...own]);
    }
  });

  it('refuses a backbone without an ImageNet head, saying what to change', async () => {
    const trunk = await app.backbones.get(sharedPath('models', 'mobilenet_v2_0.35_trunk_tm', 'model.json'));
    expect(() => petLogits(trunk)).toThrow(expect.objectContaining({ code: 'imagenet_head_unavailable', message: expect.stringMatching(/no ImageNet classifier.*set training\.zeroShotVote to false/) }));
  });

  it('trains with the vote frozen, learns to trust it, and serves and exports (TF.js, Keras) the network it trained', async () => {
    const plain = withOverrides(app.config, { epochs: 6 });
    const config = { ...plain, training: { ...plain.training, zeroShotVote: true } };
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config) });
    expect(outcome.model.params).toMatchObject({ zeroShotVote: true });
    expect(outcome.epochs.at(-1)!.loss).toBeLessThan(outcome.epochs[0]!.loss);

    const backbone = await app.backbones.get(config.training.backbone);
    const classifier = await loadClassifier(app, outcome.model);
    try {
      const network = classifier.network!;
      const [kernel, bias] = network.getLayer('imagenet_pet_logits').getWeights();
      expect(maxAbsDifference(kernel!.dataSync(), petLogits(backbone).kernel)).toBe(0);
      expect(bias!.shape).toEqual([123]);
      // The trained layer reads the features and, last, the vote: training moved the vote's weight towards trusting it.
      const untrained = buildHead('logistic', backbone.featureSize, config.dataset.seed, petLogits(backbone));
      const [initial] = untrained.layers.at(-1)!.getWeights();
      const [trained] = network.layers.at(-1)!.getWeights();
      expect(trained!.shape).toEqual([backbone.featureSize + 1, 1]);
      expect(trained!.dataSync()[backbone.featureSize]).toBeGreaterThan(initial!.dataSync()[backbone.featureSize]!);
      untrained.dispose();

      const answers = (await classifier.predictPixels(pixels)).map((answer) => answer.pDog);
      await expectTfjsExportAnswers(outcome.model.id, answers);

      if (skipWithoutPython) return console.log(`Keras round trip skipped: ${skipWithoutPython}`);
      const keras = await exportModel(app, outcome.model.id, 'keras');
      if (keras.format !== 'keras') throw new Error('expected a Keras export');
      const kerasAnswers = await kerasPredict(keras.bytes, Float32Array.from(pixels.flatMap((image) => [...image])), 224);
      expect(maxAbsDifference(kerasAnswers, answers)).toBeLessThan(1e-4);
    } finally {
      classifier.dispose();
    }
  }, SLOW_TEST_MS);

  /** The model's TF.js export, reloaded, answers what serving answered for the same pixels. */
  async function expectTfjsExportAnswers(modelId: string, answers: number[]): Promise<void> {
    const exported = await exportModel(app, modelId, 'tfjs');
    if (exported.format !== 'tfjs') throw new Error('expected a TF.js export');
    const reloaded = await deserializeModel({ modelJson: exported.files['model.json']!, weights: exported.files['weights.bin']! });
    try {
      expect(maxAbsDifference(tf.tidy(() => (reloaded.predict(batch) as Tensor).dataSync()), answers)).toBeLessThan(1e-4);
    } finally {
      reloaded.dispose();
    }
  }

  it('fine-tunes the last block under a head with the vote, the ImageNet rows staying frozen, and exports it', async () => {
    const plain = withOverrides(app.config, { epochs: 3 });
    const config = { ...plain, training: { ...plain.training, zeroShotVote: true, fineTune: { ...plain.training.fineTune, enabled: true, epochs: 2 } } };
    const outcome = await trainOnDataset(app, { datasetId, params: resolveTrainingParams(config) });
    const backbone = await app.backbones.get(config.training.backbone);
    const classifier = await loadClassifier(app, outcome.model);
    try {
      expect(classifier.card?.fineTuned?.blocks).toBe(1);
      // The head is nested in the fine-tuned network, after the top block.
      const head = classifier.network!.getLayer('logistic_head_with_zero_shot_vote') as LayersModel;
      const [kernel] = head.getLayer('imagenet_pet_logits').getWeights();
      expect(maxAbsDifference(kernel!.dataSync(), petLogits(backbone).kernel)).toBe(0);
      const answers = (await classifier.predictPixels(pixels)).map((answer) => answer.pDog);
      await expectTfjsExportAnswers(outcome.model.id, answers);
    } finally {
      classifier.dispose();
    }
  }, SLOW_TEST_MS);
});
