#!/usr/bin/env node
// Figure 1: preprocessing throughput on real full-size JPEGs (kaggle-fullres-sample): decode, EXIF orientation,
// resize to a model's input size, normalise to float32 x/127.5 − 1; at 224 px (MobileNet: feature extraction,
// evaluation, serving) and at 128 px (the CNN). catdog is decodeToRgb from dist/, the one decode every product path
// uses (a photo is decoded to one size per use), vs OpenCV and Pillow, with 1 and 2 workers (worker threads here,
// multiprocessing in Python), each worker single-threaded inside (sharp.concurrency(1), cv2.setNumThreads(1)) so
// "workers" is the parallelism.
// Usage: node bench/preprocess.mjs [--images 399] [--passes 2] [--rounds 2] [--sizes 224,128]
import fs from 'node:fs';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { interleaved, loadAverage, normalisedPixels, options, peersPython, repoRoot, report, requireShared, runMeasured, sharedDir } from './lib.mjs';

const folder = path.join(sharedDir, 'data', 'kaggle-fullres-sample');

function photoFiles(count) {
  const files = ['cat', 'dog'].flatMap((label) => fs.readdirSync(path.join(folder, label)).sort().map((name) => path.join(folder, label, name)));
  return files.slice(0, count);
}

/** In a worker thread: preprocess the given photos `passes` times, one at a time. */
async function preprocessInWorker() {
  const { default: sharp } = await import('sharp');
  sharp.concurrency(1);
  const { decodeToRgb } = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
  const photos = workerData.files.map((file) => fs.readFileSync(file));
  parentPort.postMessage('ready');
  await new Promise((resolve) => parentPort.once('message', resolve));
  let checksum = 0;
  for (let pass = 0; pass < workerData.passes; pass++) {
    for (const bytes of photos) checksum += normalisedPixels((await decodeToRgb(bytes, workerData.size)).data)[0];
  }
  parentPort.postMessage({ done: photos.length * workerData.passes, checksum });
}

/** One measurement of catdog: photos split over `workers` threads, timed from "go" to the last result. */
async function measureCatdog({ images, passes, workers, size }) {
  const files = photoFiles(images);
  const threads = Array.from({ length: workers }, (_, w) => new Worker(new URL(import.meta.url), {
    workerData: { files: files.filter((_, i) => i % workers === w), passes, size },
  }));
  await Promise.all(threads.map((thread) => new Promise((resolve) => thread.once('message', resolve))));
  const started = performance.now();
  const finished = threads.map((thread) => new Promise((resolve, reject) => { thread.once('message', resolve); thread.once('error', reject); }));
  for (const thread of threads) thread.postMessage('go');
  const results = await Promise.all(finished);
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(threads.map((thread) => thread.terminate()));
  const done = results.reduce((sum, result) => sum + result.done, 0);
  console.log(JSON.stringify({ value: done / seconds, images: done, seconds }));
}

async function main() {
  const opts = options({ images: 399, passes: 2, rounds: 2, sizes: '224,128', side: '', workers: 1, size: 224 });
  if (opts.side === 'catdog') return measureCatdog(opts);
  requireShared();
  const python = peersPython();
  const sizes = opts.sizes.split(',').map(Number);
  const loadBefore = loadAverage();
  const rows = [];
  for (const size of sizes) {
    for (const workers of [1, 2]) {
      const common = ['--images', String(opts.images), '--passes', String(opts.passes), '--workers', String(workers), '--size', String(size)];
      const peer = (library) => () => runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'preprocess.py'), '--library', library, ...common]);
      const best = interleaved({
        catdog: () => runMeasured(process.execPath, [fileURLToPathname(import.meta.url), '--side', 'catdog', ...common]),
        OpenCV: peer('opencv'),
        Pillow: peer('pillow'),
      }, opts.rounds);
      for (const [impl, result] of Object.entries(best)) {
        rows.push({ group: `${size} px, ${workers} worker${workers > 1 ? 's' : ''}`, impl, value: result.value, values: result.values, peakRssMiB: result.peakRssMiB });
      }
    }
  }
  report('preprocess', {
    unit: 'images/s',
    what: `decode + EXIF + resize to one size (${sizes.join(' px, or ')} px) + normalise, ${opts.images} full-size JPEGs × ${opts.passes} passes, best of ${opts.rounds} interleaved rounds`,
    loadBefore,
    loadAfter: loadAverage(),
    rows,
  });
}

function fileURLToPathname(url) {
  return new URL(url).pathname;
}

if (isMainThread) await main();
else await preprocessInWorker();
