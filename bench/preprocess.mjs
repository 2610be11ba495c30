#!/usr/bin/env node
// Figure 1: preprocessing throughput on real full-size JPEGs (kaggle-fullres-sample): decode, EXIF orientation,
// resize to a model's input size, normalise to float32 x/127.5 − 1; at 224 px (MobileNet: feature extraction,
// evaluation, serving) and at 128 px (the CNN). catdog is decodeToRgb from dist/, the one decode every product path
// uses (a photo is decoded to one size per use), vs OpenCV and Pillow, with 1 and 2 workers: decode threads of
// libuv's pool fed by one JavaScript thread, as the product decodes, and processes in Python (multiprocessing); each
// worker single-threaded inside (sharp.concurrency(1), cv2.setNumThreads(1)) so "workers" is the parallelism.
// Several rounds, interleaved: 2-worker runs of every contender on this VM vary by up to 2x from one run to the next.
// Usage: node bench/preprocess.mjs [--images 399] [--passes 4] [--rounds 3] [--sizes 224,128]
import fs from 'node:fs';
import path from 'node:path';
import { interleaved, loadAverage, normalisedPixels, options, peersPython, repoRoot, report, requireShared, runMeasured, sharedDir } from './lib.mjs';

const folder = path.join(sharedDir, 'data', 'kaggle-fullres-sample');

function photoFiles(count) {
  const files = ['cat', 'dog'].flatMap((label) => fs.readdirSync(path.join(folder, label)).sort().map((name) => path.join(folder, label, name)));
  return files.slice(0, count);
}

/**
 * catdog's side, parallel the way the product decodes a dataset (src/ml/feature-cache.ts keeps a chunk of 32 photos in
 * flight): one JavaScript thread queues decodes on libuv's pool, sized to `workers` threads by the parent
 * (UV_THREADPOOL_SIZE), and normalises each result as it arrives. With 1 worker one photo is in flight at a time, so
 * decode and normalise never overlap: one core's worth, like one Python process. With more, 8 photos per worker are
 * queued ahead, as Python's Pool hands each process chunks of 8, so no decode thread waits for the JavaScript thread;
 * that thread's normalising then shares the same cores. The clock runs from the first photo to the last.
 */
async function measureCatdog({ images, passes, workers, size }) {
  const { default: sharp } = await import('sharp');
  sharp.concurrency(1);
  const { decodeToRgb } = await import(path.join(repoRoot, 'dist', 'images', 'index.js'));
  const photos = photoFiles(images).map((file) => fs.readFileSync(file));
  // Warm: the addon, sharp and the pool's threads are up before the clock, as the peers' processes are.
  await Promise.all(photos.slice(0, workers).map((bytes) => decodeToRgb(bytes, size)));
  const work = Array.from({ length: passes }, () => photos).flat();
  const inFlight = workers === 1 ? 1 : 8 * workers;
  let next = 0;
  let checksum = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < work.length) {
      const { data } = await decodeToRgb(work[next++], size);
      checksum += normalisedPixels(data)[0];
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ value: work.length / seconds, images: work.length, seconds, checksum }));
}

async function main() {
  const opts = options({ images: 399, passes: 4, rounds: 3, sizes: '224,128', side: '', workers: 1, size: 224 });
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
        catdog: () => runMeasured(process.execPath, [fileURLToPathname(import.meta.url), '--side', 'catdog', ...common], { env: { UV_THREADPOOL_SIZE: String(workers) } }),
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

await main();
