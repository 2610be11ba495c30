#!/usr/bin/env node
// Backbone presets: train on the first N kaggle-dev photos per class (default 1000) with each backbone set, then
// score every kaggle-dev photo numbered >= 4000 (held out). Each row is a whole training run through the product's
// own path (features cached by earlier rows are reused, as a later `catdog train` would); its train time therefore
// counts only the features that row adds: run one row alone (third argument) for its time from an empty cache.
// Rows: each training.preset, `best` with TTA and with each training photo's extra copy always mirrored (as issue 16's
// probe learned), and the pair `best` was before. Backbones are catalogue names read from
// ../shared/models through training.backboneDir. Every row trains with the default head settings (training.headL2 cv:
// the L2 weight chosen by 5-fold cross-validation on the train and validation splits); a row named "… head L2 1e-4"
// keeps the old fixed weight with early stopping, for the comparison. Rows are picked by name substring.
// The linear probe (bench/peers/linear_probe.py, scikit-learn's LogisticRegressionCV, C by 5-fold CV) is fitted on the
// very features the row's head learned from (the cached features of the dataset version's train and validation
// photos, unmirrored) and on all 2,000 photos (issue 16's protocol), and scored on the same held-out photos: the
// gap between catdog's head and the probe. The probe runs on /usr/bin/python3 with scikit-learn (Debian's python3-sklearn;
// BENCH_PROBE_PYTHON overrides); without one the rows say so.
// Held-out photos are answered through the serving path (pixels → backbones → head, ImageNet head and class
// centroids), so each row also says how many of them "neither" flags, and how many of bench/non-animal-photos.mjs
// (made-up non-animal photos and the two kaggle-dev photos that show no animal) it catches, with the default
// serving.neither settings and the threshold each model learned.
// Writes docs/bench/backbone-presets.json and the `bench:backbone-presets` section of docs/benchmarks.md;
// `--render` rewrites that section from the JSON alone.
// Usage: node bench/backbone-presets.mjs [perClass=1000] [rows, comma-separated (name substrings); default all]
//        node bench/backbone-presets.mjs --render
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { catdogSources, kaggleTrainAndHeldOut, loadAverage, machine, replaceBenchmarkSection, repoRoot, requireShared, sharedDir } from './lib.mjs';

const jsonFile = path.join(repoRoot, 'docs', 'bench', 'backbone-presets.json');
if (process.argv[2] === '--render') {
  replaceBenchmarkSection('backbone-presets', section(JSON.parse(fs.readFileSync(jsonFile, 'utf8'))));
  process.exit(0);
}
requireShared();
const { src, loadConfig, openApp, createLogger, importFolder, ingestImage, buildDatasetVersion, loadManifest, trainOnDataset, datasetParams, resolveTrainingParams, loadClassifier, readModelFiles, decodeToRgb, neitherReason, binaryMetrics } = await catdogSources();
const { featuresFor } = await src('ml/feature-cache.ts');
const { TRAINING_PRESETS } = await src('config/presets.ts');
const { nonAnimalPhotos } = await import('./non-animal-photos.mjs');

const perClass = Number(process.argv[2] ?? 1000);
const only = process.argv[3]?.split(',');
const heldOutFrom = 4000;
const presetRow = (name) => {
  const { summary: _summary, ...training } = TRAINING_PRESETS[name];
  return { name: `preset ${name}`, training };
};
const rows = [
  ...Object.keys(TRAINING_PRESETS).map(presetRow),
  { name: 'best with the old fixed head L2 1e-4', training: { ...presetRow('best').training, headL2: 1e-4 } },
  { name: 'V2 1.0 + Lite0 @288 (best before MobileNet v1 0.75 joined)', training: { backbone: 'mobilenet_v2_1.0', ensemble: ['efficientnet_lite0'], backboneImageSize: 288, tta: false } },
  { name: 'best + TTA', training: { ...presetRow('best').training, tta: true } },
].filter((row) => !only || only.some((name) => row.name.includes(name)));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-presets-'));
const { trainDir, heldOut } = kaggleTrainAndHeldOut(work, perClass, heldOutFrom);
const loaded = loadConfig({ env: { CATDOG_HOME: path.join(work, 'home'), CATDOG_BACKBONE_DIR: path.join(sharedDir, 'models') }, cwd: work });
const app = await openApp(loaded, { logger: createLogger('warn') });
const load = () => os.loadavg()[0].toFixed(1);
try {
  await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, trainDir);
  // Held-out photos go into the blob store unlabelled, so no dataset version ever contains them.
  const hashes = [];
  for (const { file } of heldOut) hashes.push((await ingestImage({ db: app.db, blobs: app.blobs, limits: app.config.images }, { bytes: fs.readFileSync(file), label: null, source: 'bench' })).image.hash);
  const params = datasetParams(app.config);
  const { version } = await buildDatasetVersion(app, params);
  const labels = heldOut.map((item) => item.label);
  const nonAnimals = await nonAnimalPhotos();
  const results = [];
  for (const row of rows) {
    const loadBefore = load();
    let started = Date.now();
    const training = { ...app.config.training, ensemble: [], backboneImageSize: null, tta: false, ...row.training };
    const trainingParams = resolveTrainingParams({ ...app.config, training });
    const outcome = await trainOnDataset(app, { datasetId: version.id, params: trainingParams });
    const trainSeconds = (Date.now() - started) / 1000;
    const run = await app.db.runs.get(outcome.runId);
    const classifier = await loadClassifier(app, outcome.model);
    const { card } = await readModelFiles(app.blobs, outcome.model.artifactPrefix);
    const answer = async (photos) => {
      const predictions = [];
      for (let i = 0; i < photos.length; i += 32) {
        const pixels = await Promise.all(photos.slice(i, i + 32).map(async (bytes) => (await decodeToRgb(bytes, classifier.inputSize)).data));
        predictions.push(...(await classifier.predictPixels(pixels)));
      }
      return predictions.map((prediction) => ({ pDog: prediction.pDog, neither: neitherReason(prediction, card, app.config.serving.neither) }));
    };
    const answers = await answer(heldOut.map(({ file }) => fs.readFileSync(file)));
    const nonAnimal = await answer(nonAnimals.map(({ bytes }) => bytes));
    classifier.dispose();
    const pDog = answers.map((item) => item.pDog);
    const flagged = (list, names) => list.flatMap((item, i) => (item.neither ? [`${names[i]} (${item.neither})`] : []));
    const neither = {
      threshold: app.config.serving.neither.threshold,
      heldOutFlagged: flagged(answers, heldOut.map((item) => item.name)),
      nonAnimalCaught: `${nonAnimal.filter((item) => item.neither).length} of ${nonAnimal.length}`,
      nonAnimalMissed: nonAnimals.filter((_, i) => !nonAnimal[i].neither).map((item) => item.name),
    };
    neither.heldOutShare = neither.heldOutFlagged.length / heldOut.length;
    const metrics = binaryMetrics(labels, pDog);
    const wrong = heldOut.filter((item, i) => (pDog[i] >= 0.5 ? 1 : 0) !== item.label).map((item) => item.name);
    const probe = await linearProbe(trainingParams, version.id);
    results.push({ row: row.name, neither, heldOutErrors: wrong.length, heldOutAccuracy: metrics.accuracy, testSplitAccuracy: outcome.metrics.accuracy, trainSeconds, epochs: outcome.epochs.length, headSelection: run?.metrics?.headSelection ?? null, probe, loadBefore, loadAfter: load(), wrong });
    console.error(JSON.stringify(results.at(-1)));
  }
  /** The probe on the row's backbone features (from the feature cache the row filled), on the head's photos and on all of them. */
  async function linearProbe(trainingParams, datasetId) {
    const sources = [trainingParams.backbone, ...(trainingParams.ensemble ?? [])];
    const extractor = await app.backbones.combined(sources, trainingParams.backboneImageSize ?? undefined);
    const { manifest } = await loadManifest(app, datasetId);
    const learned = manifest.items.filter((item) => item.split !== 'test');
    const write = async (name, items) => {
      const features = await featuresFor(app, extractor, items.map((item) => item.hash));
      fs.writeFileSync(path.join(work, `${name}.f32`), Buffer.concat(features.map((row) => Buffer.from(row.buffer, row.byteOffset, row.byteLength))));
      fs.writeFileSync(path.join(work, `${name}.json`), JSON.stringify(items.map((item) => (item.label === 'dog' ? 1 : 0))));
    };
    await write('learned', learned);
    await write('all', manifest.items);
    await write('held-out', hashes.map((hash, i) => ({ hash, label: labels[i] === 1 ? 'dog' : 'cat' })));
    const fit = (name) => {
      const args = [path.join(repoRoot, 'bench', 'peers', 'linear_probe.py'), String(extractor.featureSize), ...['learned' === name ? 'learned' : 'all', 'held-out'].flatMap((file) => [path.join(work, `${file}.f32`), path.join(work, `${file}.json`)])];
      const result = spawnSync(process.env.BENCH_PROBE_PYTHON ?? '/usr/bin/python3', args, { encoding: 'utf8' });
      if (result.status !== 0) return { error: result.stderr.trim().split('\n').at(-1) };
      const { wrong: wrongRows, ...figures } = JSON.parse(result.stdout.trim().split('\n').at(-1));
      return { ...figures, wrong: wrongRows.map((i) => heldOut[i].name) };
    };
    return { sameTrainingPhotos: fit('learned'), allPhotos: fit('all') };
  }
  const outcome = {
    figure: 'backbone-presets',
    machine: machine(),
    command: `node bench/backbone-presets.mjs ${process.argv.slice(2).map((arg) => (arg.includes(' ') ? `'${arg}'` : arg)).join(' ')}`.trim(),
    date: new Date().toISOString(),
    loadAverageAfter: loadAverage(),
    trainPhotos: perClass * 2,
    heldOutPhotos: heldOut.length,
    nonAnimalPhotos: nonAnimals.length,
    rows: results,
  };
  fs.writeFileSync(jsonFile, `${JSON.stringify(outcome, null, 2)}\n`);
  replaceBenchmarkSection('backbone-presets', section(outcome));
  console.log(JSON.stringify(outcome));
} finally {
  await app.close();
  fs.rmSync(work, { recursive: true, force: true });
}

/** The table of docs/benchmarks.md's `bench:backbone-presets` section. */
function section(result) {
  const probe = (figures) => (figures.error ? `not run (${figures.error})` : `${figures.heldOutErrors} (C = ${Number(figures.C.toPrecision(2))})`);
  const head = (row) => (row.headSelection ? `L2 ${row.headSelection.chosen.l2}, ${row.headSelection.chosen.epochs} epochs (5-fold CV)` : 'fixed L2 1e-4, early stopping');
  return [
    '### Measured by bench/backbone-presets.mjs',
    '',
    `\`${result.command}\`, ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.machine}; 1-minute load per row in the table (train time is wall time and only comparable at the same load; a row reuses features earlier rows of the same run cached). ` +
      `Trained on ${result.trainPhotos.toLocaleString('en-US')} kaggle-dev photos (the lowest-numbered per class), scored on the ${result.heldOutPhotos.toLocaleString('en-US')} numbered ≥ 4000 through the serving path. ` +
      'Probe: scikit-learn LogisticRegressionCV (C by 5-fold CV) on the same cached features, fitted on the photos the head learned from (train + validation splits) and on all of them. ' +
      `"Neither": held-out cats and dogs it flags (target ≤ 0.5%) and the ${result.nonAnimalPhotos} non-animal photos of bench/non-animal-photos.mjs it catches (serving.neither's defaults; a model trained on 1,200 photos or more uses the ImageNet-mass threshold it learned from them).`,
    '',
    '| row | held-out errors | catdog head | probe, same photos · all photos | "neither": held-out flagged · non-animal caught | train s (load) |',
    '|---|---:|---|---|---|---|',
    ...result.rows.map((row) =>
      `| ${row.row} | **${row.heldOutErrors}** (${(row.heldOutAccuracy * 100).toFixed(2)}%) | ${head(row)} | ${probe(row.probe.sameTrainingPhotos)} · ${probe(row.probe.allPhotos)} | ${row.neither.heldOutFlagged.length} (${(row.neither.heldOutShare * 100).toFixed(2)}%) · ${row.neither.nonAnimalCaught} | ${row.trainSeconds.toFixed(0)} (${row.loadBefore}–${row.loadAfter}) |`),
  ].join('\n');
}
