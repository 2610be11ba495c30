#!/usr/bin/env node
// Accuracy variants: train on the first N kaggle-dev photos per class (default 1000) with the shared MobileNet v1
// 0.75, then score every kaggle-dev photo numbered >= 4000 (held out). Variants: logistic / MLP head on the frozen
// backbone, its last block(s) fine-tuned (training.fineTune defaults), and the MobileNet v1 0.75 + MobileNetV2 0.35
// ensemble (logistic and MLP heads), each with and without test-time augmentation (mirror), and heads that also take
// the backbone's ImageNet zero-shot vote (training.zeroShotVote), and the backbone fed larger photos than its own 224 px
// (training.backboneImageSize). Each variant is a whole
// training run (features or activations cached by earlier variants are reused, as they would be by a later
// `catdog train`; "computed" counts the feature-cache entries each run wrote, per extractor and variant).
// Also: ECE after temperature scaling, serving latency per photo (pixels → answer, batches of 32), and how many
// held-out cats and dogs the "neither" rule wrongly rejects. Runs the TypeScript sources in-process.
// Usage: node bench/accuracy-variants.mjs [perClass=1000] [neitherPhotos=400] [variant names, comma-separated]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catdogSources, kaggleTrainAndHeldOut, machine, repoRoot, requireShared, sharedDir } from './lib.mjs';

requireShared();
const { src, loadConfig, openApp, createLogger, importFolder, ingestImage, buildDatasetVersion, trainOnDataset, datasetParams, resolveTrainingParams, loadClassifier, readModelFiles, binaryMetrics, expectedCalibrationError, decodeToRgb, neitherReason } = await catdogSources();
const { predictStored } = await src('registry/evaluate.ts');

const perClass = Number(process.argv[2] ?? 1000);
const heldOutFrom = Number(process.env.BENCH_HELD_OUT_FROM ?? 4000);
const neitherPhotos = Number(process.argv[3] ?? 400);
const only = process.argv[4]?.split(',');
const models = path.join(sharedDir, 'models');
const v1 = path.join(models, 'mobilenet_v1_0.75_224', 'model.json');
const v2 = path.join(models, 'mobilenet_v2_0.35_trunk_tm', 'model.json');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-variants-'));
const { trainDir, heldOut } = kaggleTrainAndHeldOut(work, perClass, heldOutFrom);
const loaded = loadConfig({ env: { CATDOG_HOME: path.join(work, 'home'), CATDOG_BACKBONE_URL: v1 }, cwd: work });
const app = await openApp(loaded, { logger: createLogger('warn') });
const load = () => os.loadavg()[0].toFixed(1);
const loadSamples = [load()];
try {
  let started = Date.now();
  await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, trainDir);
  // Held-out photos go into the blob store unlabelled, so no dataset version ever contains them.
  const heldOutHashes = [];
  for (const { file } of heldOut) heldOutHashes.push((await ingestImage({ db: app.db, blobs: app.blobs, limits: app.config.images }, { bytes: fs.readFileSync(file), label: null, source: 'bench' })).image.hash);
  const importSeconds = (Date.now() - started) / 1000;
  const params = datasetParams(app.config);
  const { version } = await buildDatasetVersion(app, params);
  const labels = heldOut.map((item) => item.label);

  const fineTune = { ...app.config.training.fineTune, enabled: true };
  const blocks = `${fineTune.blocks} block${fineTune.blocks > 1 ? 's' : ''}`;
  const variants = [
    { name: 'frozen + logistic' },
    { name: 'frozen + logistic + TTA', tta: true },
    { name: 'frozen + MLP', head: 'mlp' },
    { name: 'frozen + MLP + TTA', head: 'mlp', tta: true },
    { name: `fine-tuned ${blocks} + logistic`, fineTune },
    { name: `fine-tuned ${blocks} + logistic + TTA`, fineTune, tta: true },
    { name: 'ensemble v1 0.75 + v2 0.35 + logistic', ensemble: [v2] },
    { name: 'ensemble v1 0.75 + v2 0.35 + logistic + TTA', ensemble: [v2], tta: true },
    { name: 'ensemble v1 0.75 + v2 0.35 + MLP', ensemble: [v2], head: 'mlp' },
    { name: 'ensemble v1 0.75 + v2 0.35 + MLP + TTA', ensemble: [v2], head: 'mlp', tta: true },
    { name: 'frozen + logistic + zero-shot vote', zeroShotVote: true },
    { name: 'frozen + logistic + zero-shot vote + TTA', zeroShotVote: true, tta: true },
    { name: 'ensemble v1 0.75 + v2 0.35 + logistic + zero-shot vote + TTA', ensemble: [v2], zeroShotVote: true, tta: true },
    { name: `fine-tuned ${blocks} + logistic + zero-shot vote + TTA`, fineTune, zeroShotVote: true, tta: true },
    { name: 'backbone at 288 px + logistic', backboneImageSize: 288 },
    { name: 'backbone at 288 px + logistic + zero-shot vote + TTA', backboneImageSize: 288, zeroShotVote: true, tta: true },
    { name: 'backbone at 320 px + logistic + zero-shot vote + TTA', backboneImageSize: 320, zeroShotVote: true, tta: true },
  ].filter((variant) => !only || only.some((name) => variant.name.includes(name)));
  const rows = [];
  let first;
  // Decoded once per size: variants with training.backboneImageSize take larger photos.
  const decoded = new Map();
  const servingPixelsAt = (size) => {
    if (!decoded.has(size)) decoded.set(size, Promise.all(heldOut.slice(0, 64).map(async ({ file }) => (await decodeToRgb(fs.readFileSync(file), size)).data)));
    return decoded.get(size);
  };
  // What each run computed: feature-cache writes per extractor (a backbone, or a backbone cut for fine-tuning).
  let computed = {};
  const store = app.blobs;
  const blobs = {
    kind: store.kind,
    get: (key) => store.get(key),
    getOrUndefined: (key) => store.getOrUndefined(key),
    has: (key) => store.has(key),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    describe: () => store.describe(),
    put: (key, bytes) => {
      const [root, extractor, variant] = key.split('/');
      if (root === 'features') computed[`${extractor}/${variant}`] = (computed[`${extractor}/${variant}`] ?? 0) + 1;
      return store.put(key, bytes);
    },
  };
  for (const variant of variants) {
    started = Date.now();
    computed = {};
    const training = {
      ...app.config.training,
      head: variant.head ?? 'logistic',
      tta: variant.tta ?? false,
      zeroShotVote: variant.zeroShotVote ?? false,
      ensemble: variant.ensemble ?? [],
      backboneImageSize: variant.backboneImageSize ?? null,
      fineTune: variant.fineTune ?? app.config.training.fineTune,
    };
    const config = { ...app.config, training };
    const outcome = await trainOnDataset({ ...app, blobs }, { datasetId: version.id, params: resolveTrainingParams(config) });
    const trainComputed = computed;
    const trainSeconds = (Date.now() - started) / 1000;
    started = Date.now();
    const classifier = await loadClassifier(app, outcome.model);
    const pDog = await predictStored(app, classifier, heldOutHashes);
    const scoreSeconds = (Date.now() - started) / 1000;
    // Serving: decoded pixels → answer, in batches of 32, after one warm-up batch.
    const servingPixels = await servingPixelsAt(classifier.inputSize);
    await classifier.predictPixels(servingPixels.slice(0, 32));
    started = Date.now();
    for (let i = 0; i < servingPixels.length; i += 32) await classifier.predictPixels(servingPixels.slice(i, i + 32));
    const servingMsPerPhoto = (Date.now() - started) / servingPixels.length;
    const metrics = binaryMetrics(labels, pDog);
    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    const run = await app.db.runs.get(outcome.runId);
    rows.push({
      variant: variant.name,
      heldOutAccuracy: metrics.accuracy,
      heldOutErrors: Math.round((1 - metrics.accuracy) * labels.length),
      heldOutEce: expectedCalibrationError(labels, pDog),
      testSplitAccuracy: outcome.metrics.accuracy,
      testSplitEce: card.calibration.eceTest,
      temperature: card.calibration.temperature,
      trainSeconds,
      computed: trainComputed,
      epochs: outcome.epochs.length,
      fineTune: run.metrics.fineTune,
      heldOutScoreSeconds: scoreSeconds,
      servingMsPerPhoto,
      loadAverage1m: load(),
    });
    console.error(JSON.stringify(rows.at(-1)));
    if (!first) first = { classifier, card };
    else classifier.dispose();
  }

  // "neither" on real cats and dogs: the full serving path (pixels → backbone → ImageNet head + centroids).
  started = Date.now();
  const sample = [...heldOut.filter((item) => item.label === 0).slice(0, neitherPhotos / 2), ...heldOut.filter((item) => item.label === 1).slice(0, neitherPhotos / 2)];
  const reasons = {};
  for (let i = 0; i < sample.length; i += 32) {
    const pixels = await Promise.all(sample.slice(i, i + 32).map(async ({ file }) => (await decodeToRgb(fs.readFileSync(file), first.classifier.inputSize)).data));
    for (const prediction of await first.classifier.predictPixels(pixels)) {
      const reason = neitherReason(prediction, first.card, app.config.serving.neither);
      if (reason) reasons[reason] = (reasons[reason] ?? 0) + 1;
    }
  }
  first.classifier.dispose();
  const rejected = Object.values(reasons).reduce((sum, count) => sum + count, 0);
  console.log(JSON.stringify({
    figure: 'accuracy-variants',
    machine: machine(),
    loadAverage1m: [loadSamples[0], ...rows.map((row) => row.loadAverage1m)],
    trainPhotos: perClass * 2,
    heldOutPhotos: heldOut.length,
    importSeconds,
    rows,
    neither: { photos: sample.length, rejected, rate: rejected / sample.length, reasons, threshold: app.config.serving.neither.threshold, seconds: (Date.now() - started) / 1000 },
  }));
} finally {
  await app.close();
  fs.rmSync(work, { recursive: true, force: true });
}
