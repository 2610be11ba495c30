#!/usr/bin/env node
// Serving's micro-batching, before/after: `concurrency` single-photo predictions issued at once against the
// zero-shot MobileNet v1 0.75 classifier, each its own model call (before) vs merged by batchPredictions
// (after, what ModelServer serves). Interleaved rounds in one process, best run kept; prints one JSON line.
// Usage: node bench/batching.mjs [--concurrency 16] [--rounds 3]
import fs from 'node:fs';
import path from 'node:path';
import { loadAverage, options, repoRoot, report, requireShared, sharedDir } from './lib.mjs';

const { concurrency, rounds } = options({ concurrency: 16, rounds: 3 });
requireShared();
const { decodeToRgb } = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
const { loadBackbone } = await import(path.join(repoRoot, 'dist', 'ml', 'index.js'));
const { zeroShotClassifier } = await import(path.join(repoRoot, 'dist', 'registry', 'classifier.js'));
const { batchPredictions } = await import(path.join(repoRoot, 'dist', 'serving', 'batcher.js'));

const backbone = await loadBackbone(path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json'), { cacheDir: path.join(repoRoot, 'test-output') });
const direct = await zeroShotClassifier(backbone);
const batched = batchPredictions(direct);
const folder = path.join(sharedDir, 'data', 'kaggle-dev', 'cat');
const photos = await Promise.all(
  fs.readdirSync(folder).slice(0, concurrency).map(async (name) => (await decodeToRgb(fs.readFileSync(path.join(folder, name)), 224)).data),
);
await direct.predictPixels(photos.slice(0, 2)); // warm-up

const loadBefore = loadAverage();
const seconds = { 'one model call per request': [], 'batchPredictions (merged)': [] };
for (let round = 0; round < rounds; round++) {
  for (const [name, classifier] of [['one model call per request', direct], ['batchPredictions (merged)', batched]]) {
    const started = performance.now();
    await Promise.all(photos.map((photo) => classifier.predictPixels([photo])));
    seconds[name].push((performance.now() - started) / 1000);
  }
}
report('batching', {
  unit: 'predictions/s',
  what: `${concurrency} concurrent single-photo predictions (zero-shot MobileNet v1 0.75, in process, no HTTP), best of ${rounds} interleaved rounds`,
  loadBefore,
  loadAfter: loadAverage(),
  rows: Object.entries(seconds).map(([impl, list]) => {
    const values = list.map((s) => concurrency / s);
    return { group: `${concurrency} concurrent requests`, impl, value: Math.max(...values), values };
  }),
});
