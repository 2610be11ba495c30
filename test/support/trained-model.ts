import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AppContext } from '../../src/app/context.js';
import { buildDatasetVersion } from '../../src/datasets/versions.js';
import { trainOnDataset, type TrainingOutcome } from '../../src/training/run-training.js';
import { datasetParams, trainingParams } from '../../src/training/params.js';
import { importKagglePhotos } from './app.js';

/** Imports the first `perClass` Kaggle photos of each class (symlinked, never copied) and trains on them. */
export async function trainSmallModel(app: AppContext, perClass: number): Promise<TrainingOutcome> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-photos-'));
  try {
    await importKagglePhotos(app, folder, perClass);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  const params = datasetParams(app.config);
  const { version } = await buildDatasetVersion(app, params);
  return trainOnDataset(app, { datasetId: version.id, params: trainingParams(app.config, params) });
}

export const SKIMAGE_NEITHER = ['astronaut.png', 'coffee.png', 'rocket.jpg', 'camera.png', 'coins.png', 'motorcycle_left.png', 'page.png', 'brick.png'];
export const SKIMAGE_CAT = 'chelsea.png';

/**
 * Real photos of neither cats nor dogs: scikit-image's sample data, fetched with pip from its configured index
 * into a temporary folder. Returns the folder, or the reason they are unavailable.
 */
export function skimageSamples(): { folder: string } | { skip: string } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-skimage-'));
  const download = spawnSync('python3', ['-m', 'pip', 'download', '--no-deps', '--quiet', '-d', folder, 'scikit-image'], { encoding: 'utf8', timeout: 120_000 });
  const wheel = fs.readdirSync(folder).find((name) => name.endsWith('.whl'));
  if (download.status !== 0 || !wheel) {
    fs.rmSync(folder, { recursive: true, force: true });
    return { skip: `pip download scikit-image failed: ${(download.stderr || download.error?.message || 'no wheel').trim().slice(-300)}` };
  }
  const wanted = JSON.stringify([...SKIMAGE_NEITHER, SKIMAGE_CAT].map((name) => `skimage/data/${name}`));
  const extract = spawnSync('python3', ['-c', `import json, os, sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
for name in json.loads(sys.argv[2]):
    open(os.path.join(sys.argv[3], os.path.basename(name)), 'wb').write(wheel.read(name))`, path.join(folder, wheel), wanted, folder], { encoding: 'utf8' });
  if (extract.status !== 0) return { skip: `extracting scikit-image's sample photos failed: ${extract.stderr.slice(-300)}` };
  return { folder };
}
