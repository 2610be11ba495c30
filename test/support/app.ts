import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { loadConfig, type CatdogConfig } from '../../src/config/index.js';
import type { TrainingOverrides } from '../../src/training/params.js';
import { importFolder } from '../../src/datasets/import-folder.js';
import { kaggleFiles, smallBackbone } from './shared.js';

export interface TestApp extends AppContext {
  home: string;
  /** Closes the app and deletes its home folder. */
  dispose(): Promise<void>;
}

/**
 * A real app on embedded defaults (SQLite file, local blob folder) in a fresh temporary CATDOG_HOME, with the small
 * shared backbone so training tests take seconds. `env` adds CATDOG_* overrides.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-test-'));
  const loaded = loadConfig({ env: { CATDOG_HOME: home, CATDOG_BACKBONE_URL: smallBackbone, CATDOG_TRAINING__PRESET: 'fast', ...env }, cwd: home });
  const app = await openApp(loaded, { logger: createLogger('warn') });
  return {
    ...app,
    home,
    async dispose() {
      await app.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Imports kaggle-dev photos number `from` onwards, `perClass` of each class, into `app` as `catdog dataset import`
 * does, from `folder` (made here), which holds symlinks only: the shared photos are never copied.
 */
export async function importKagglePhotos(app: AppContext, folder: string, perClass: number, from = 0): Promise<void> {
  for (const label of ['cat', 'dog'] as const) {
    fs.mkdirSync(path.join(folder, label), { recursive: true });
    for (const file of kaggleFiles(label, perClass, from)) fs.symlinkSync(file, path.join(folder, label, path.basename(file)));
  }
  await importFolder({ db: app.db, blobs: app.blobs, limits: app.config.images }, folder);
}

/** `config` with a run's overrides written into it, for tests that change further settings before resolving params. */
export function withOverrides(config: CatdogConfig, overrides: TrainingOverrides): CatdogConfig {
  return {
    ...config,
    dataset: { ...config.dataset, imageSize: overrides.imageSize ?? config.dataset.imageSize },
    training: {
      ...config.training,
      architecture: overrides.architecture ?? config.training.architecture,
      epochs: overrides.epochs ?? config.training.epochs,
      learningRate: overrides.learningRate ?? config.training.learningRate,
      batchSize: overrides.batchSize ?? config.training.batchSize,
    },
  };
}
