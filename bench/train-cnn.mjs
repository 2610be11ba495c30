#!/usr/bin/env node
// Figure 3: training throughput (images/s, training steps only, first epoch excluded as warm-up) on in-memory
// random data: the classic CNN at 128 px batch 32, and the logistic transfer head on 768-d features batch 32.
// catdog (buildCnn/buildHead + trainBinaryClassifier from dist/, tfjs-node) vs Keras model.fit vs PyTorch. The head
// trains on catdog's graph path with its features resident in the session (loaded once, then one session call per
// batch of row indices, as `catdog train` does with cached features); its eager path (tfjs-layers trainOnBatch, the
// fallback) runs beside it, so the head rows also give the graph path's gain over the eager one.
// Usage: node bench/train-cnn.mjs [--cnnImages 128] [--headImages 4096] [--epochs 2] [--rounds 2]
// One contender alone: node bench/train-cnn.mjs --side catdog --model head|cnn --images N [--eager 1] [--resident 0]
import path from 'node:path';
import { interleaved, loadAverage, options, peersPython, repoRoot, report, requireShared, runMeasured } from './lib.mjs';

const IMAGE_SIZE = 128;
const FEATURES = 768;
const BATCH = 32;

async function measureCatdog({ model: kind, images, epochs, eager, resident }) {
  const { buildCnn, buildHead, initTensorflow, trainBinaryClassifier } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
  const { tf } = await initTensorflow();
  const shape = kind === 'cnn' ? [IMAGE_SIZE, IMAGE_SIZE, 3] : [FEATURES];
  const x = tf.randomUniform([images, ...shape], 0, 256, 'float32');
  const y = tf.randomUniform([images], 0, 2, 'int32').toFloat();
  const batches = (count) => ({
    count,
    size: BATCH,
    async *batches() {
      for (let start = 0; start < count; start += BATCH) {
        const size = Math.min(BATCH, count - start);
        yield { x: x.slice(start, size), y: y.slice(start, size) };
      }
    },
    // Cached features are offered resident by catdog's featureBatches (src/training/batches.ts), as here.
    ...(kind === 'head' && resident === 1 && {
      resident: () => ({ x: x.slice(0, count).dataSync(), exampleShape: shape, y: y.slice(0, count).dataSync(), order: () => Int32Array.from({ length: count }, (_, i) => i) }),
    }),
  });
  const model = kind === 'cnn' ? buildCnn(IMAGE_SIZE, 1) : buildHead('logistic', FEATURES, 1);
  const result = await trainBinaryClassifier({
    model,
    train: batches(images),
    validation: batches(BATCH),
    epochs: epochs + 1,
    learningRate: 1e-3,
    earlyStoppingPatience: epochs + 1,
    eager: eager === 1,
  });
  const measured = result.epochs.slice(1);
  const seconds = measured.reduce((sum, epoch) => sum + images / epoch.imagesPerSecond, 0);
  console.log(JSON.stringify({ value: (images * measured.length) / seconds, epochs: measured.map((e) => images / e.imagesPerSecond) }));
}

async function main() {
  const opts = options({ cnnImages: 128, headImages: 4096, epochs: 2, rounds: 2, side: '', model: 'cnn', images: 0, eager: 0, resident: 1 });
  if (opts.side === 'catdog') return measureCatdog(opts);
  requireShared();
  const python = peersPython();
  const loadBefore = loadAverage();
  const rows = [];
  for (const [kind, images, group] of [['cnn', opts.cnnImages, `CNN ${IMAGE_SIZE} px`], ['head', opts.headImages, `logistic head, ${FEATURES}-d`]]) {
    const size = kind === 'cnn' ? IMAGE_SIZE : 0;
    const peerArgs = [String(size), String(images), String(BATCH), String(opts.epochs), kind];
    const catdog = (eager) => () =>
      runMeasured(process.execPath, [new URL(import.meta.url).pathname, '--side', 'catdog', '--model', kind, '--images', String(images), '--epochs', String(opts.epochs), '--eager', String(eager)]);
    const medians = interleaved({
      [kind === 'head' ? 'catdog (tfjs-node, graph step)' : 'catdog (tfjs-node)']: catdog(0),
      ...(kind === 'head' ? { 'catdog eager step (trainOnBatch)': catdog(1) } : {}),
      'Keras 3 fit': () => runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'keras_cnn_train.py'), ...peerArgs]),
      PyTorch: () => runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'torch_cnn_train.py'), ...peerArgs]),
    }, opts.rounds);
    for (const [impl, result] of Object.entries(medians)) {
      rows.push({ group, impl, value: result.value, values: result.values, peakRssMiB: result.peakRssMiB });
    }
  }
  report('train', {
    unit: 'images/s',
    what: `training steps on in-memory random data, batch ${BATCH}, Adam 1e-3; CNN on ${opts.cnnImages} images, head on ${opts.headImages} feature vectors; ${opts.epochs} timed epochs after a warm-up epoch, best of ${opts.rounds} interleaved rounds`,
    loadBefore,
    loadAfter: loadAverage(),
    rows,
  });
}

await main();
