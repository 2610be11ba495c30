#!/usr/bin/env node
// The CNN's held-out accuracy through both training paths (issue 17): the same network, seed, photos, batches and
// augmentation trained once through the graph step (one TensorFlow session call per batch) and once through
// tfjs-layers' trainOnBatch (the eager fallback), each keeping its best epoch by validation loss as `catdog train`
// does, then scored on held-out kaggle-dev photos that neither saw. Prints both and writes them to
// docs/benchmarks.md (section cnn-paths-accuracy). Not a speed figure: the two runs' timings are printed as context.
// kaggle-dev photos by number: training from the first, validation from the 1000th, held-out from the 2000th, per class.
// A few hundred photos are not enough: the CNN memorises them while BatchNorm's moving statistics (momentum 0.99) lag
// behind, and both paths stay at chance on held-out photos (400 photos, 64 px, 25 epochs: 52 % and 50 %). 2,000
// photos at 64 px learn in 10 epochs (~8 min eagerly on the 2 cores under load, ~1.5 min through the graph).
// Usage: npm run build && node bench/cnn-paths-accuracy.mjs [--size 64] [--trainPerClass 1000] [--validationPerClass 100]
//        [--heldOutPerClass 500] [--epochs 10] [--seed 42] [--only graph|eager: one run, printed, nothing written]
import fs from 'node:fs';
import path from 'node:path';
import { loadAverage, machine, options, repoRoot, replaceBenchmarkSection, requireShared, sharedDir } from './lib.mjs';

const BATCH = 32;
const LEARNING_RATE = 1e-3;
const AUGMENTATION = {
  horizontalFlip: { enabled: true, probability: 0.5 },
  rotation: { enabled: true, maxDegrees: 10 },
  zoom: { enabled: true, maxFraction: 0.1 },
  brightness: { enabled: false, maxDelta: 0 },
  contrast: { enabled: false, maxFraction: 0 },
  grayscale: { enabled: false, probability: 0 },
};

requireShared();
const opts = options({ size: 64, trainPerClass: 1000, validationPerClass: 100, heldOutPerClass: 500, epochs: 10, seed: 42, only: '' });
const dist = (file) => import(path.join(repoRoot, 'dist', file));
const { buildCnn, initTensorflow, predictPDog, trainBinaryClassifier, trainingPath } = await dist('ml/index.js');
const { augment, decodeToRgb } = await dist('images/index.js');
const { pixelBatches } = await dist('training/batches.js');
const { tf, backend } = await initTensorflow();
if (backend !== 'tensorflow' || (await trainingPath()).kind !== 'graph') throw new Error('the graph path is off here (wasm backend or CATDOG_TRAINING_STEP=eager): nothing to compare');

/** Photos of both classes numbered from the `from`-th, `perClass` each, decoded at the bench's size; label 1 = dog. */
async function photos(from, perClass) {
  const files = ['cat', 'dog'].flatMap((label) => {
    const folder = path.join(sharedDir, 'data', 'kaggle-dev', label);
    const numbered = fs.readdirSync(folder).map((name) => ({ name, n: Number(name.split('.')[1]) })).sort((a, b) => a.n - b.n);
    return numbered.slice(from, from + perClass).map(({ name }) => ({ file: path.join(folder, name), label: label === 'dog' ? 1 : 0 }));
  });
  const pixels = [];
  for (const { file } of files) pixels.push((await decodeToRgb(fs.readFileSync(file), opts.size)).data);
  return { pixels, labels: files.map(({ label }) => label) };
}

const train = await photos(0, opts.trainPerClass);
const validation = await photos(1000, opts.validationPerClass);
const heldOut = await photos(2000, opts.heldOutPerClass);
const heldOutX = tf.tensor4d(Buffer.concat(heldOut.pixels.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))), [heldOut.pixels.length, opts.size, opts.size, 3], 'float32');

async function trainThrough(eager) {
  const model = buildCnn(opts.size, opts.seed);
  const started = performance.now();
  const result = await trainBinaryClassifier({
    model,
    train: pixelBatches(tf, train.pixels, train.labels, opts.size, BATCH, opts.seed, (pixels, random) => augment(pixels, opts.size, AUGMENTATION, random)),
    validation: pixelBatches(tf, validation.pixels, validation.labels, opts.size, BATCH, opts.seed),
    epochs: opts.epochs,
    learningRate: LEARNING_RATE,
    earlyStoppingPatience: 0,
    eager,
    onEpoch: (stats) => console.error(`${eager ? 'eager' : 'graph'} epoch ${stats.epoch}: loss ${stats.loss.toFixed(4)}, accuracy ${stats.accuracy.toFixed(3)}, validation ${stats.valLoss.toFixed(4)} / ${stats.valAccuracy.toFixed(3)}, ${stats.imagesPerSecond.toFixed(1)} img/s`),
  });
  const seconds = (performance.now() - started) / 1000;
  const pDog = await predictPDog(model, heldOutX);
  const correct = heldOut.labels.filter((label, i) => (pDog[i] > 0.5 ? 1 : 0) === label).length;
  model.dispose();
  const best = result.epochs.find((epoch) => epoch.epoch === result.bestEpoch);
  const row = { path: eager ? 'eager (trainOnBatch)' : 'graph', heldOutAccuracy: correct / heldOut.labels.length, correct, bestEpoch: result.bestEpoch, bestValAccuracy: best?.valAccuracy, lastTrainAccuracy: result.epochs.at(-1).accuracy, seconds, pDog };
  console.log(JSON.stringify({ ...row, pDog: undefined }));
  return row;
}

const loadBefore = loadAverage();
if (opts.only) {
  if (opts.only !== 'graph' && opts.only !== 'eager') throw new Error(`--only ${opts.only}: graph or eager`);
  await trainThrough(opts.only === 'eager');
  process.exit(0);
}
const graph = await trainThrough(false);
const eager = await trainThrough(true);
const points = Math.abs(graph.heldOutAccuracy - eager.heldOutAccuracy) * 100;
const disagreements = graph.pDog.filter((p, i) => p > 0.5 !== eager.pDog[i] > 0.5).length;
const verdict = points <= 0.3 ? 'within' : 'NOT within';
console.log(`held-out accuracy: graph ${(graph.heldOutAccuracy * 100).toFixed(2)} %, eager ${(eager.heldOutAccuracy * 100).toFixed(2)} %: ${points.toFixed(2)} points apart, ${verdict} 0.3; ${disagreements} of ${heldOut.labels.length} photos answered differently`);
const percent = (value) => `${(value * 100).toFixed(2)} %`;
replaceBenchmarkSection(
  'cnn-paths-accuracy',
  [
    `CNN held-out accuracy, graph step against eager step (\`node bench/cnn-paths-accuracy.mjs${process.argv.slice(2).map((arg) => ` ${arg}`).join('')}\`, ${new Date().toISOString().slice(0, 16)} UTC, ${machine()}, load ${loadBefore} → ${loadAverage()}):`,
    `\`buildCnn(${opts.size}, ${opts.seed})\`, ${train.labels.length} kaggle-dev training photos (flip, ±10° rotation, 10 % zoom), ${validation.labels.length} validation photos choosing the kept epoch, ${opts.epochs} epochs, batch ${BATCH}, Adam ${LEARNING_RATE}; ${heldOut.labels.length} held-out photos.`,
    '',
    '| path | held-out accuracy | kept epoch | its validation accuracy | last epoch training accuracy | training + validation, s |',
    '| --- | --- | --- | --- | --- | --- |',
    ...[graph, eager].map((row) => `| ${row.path} | ${percent(row.heldOutAccuracy)} (${row.correct}/${heldOut.labels.length}) | ${row.bestEpoch} | ${row.bestValAccuracy === undefined ? '–' : percent(row.bestValAccuracy)} | ${percent(row.lastTrainAccuracy)} | ${row.seconds.toFixed(0)} |`),
    '',
    `${points.toFixed(2)} points apart: ${verdict} 0.3 points; ${disagreements} held-out photos answered differently.`,
  ].join('\n'),
);
heldOutX.dispose();
