import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The read-only photos, backbones and fixtures in ../shared (see its README). Tests reference them by path,
 * never copy them. `CATDOG_SHARED` points elsewhere when the checkout is not beside shared/.
 */
export const sharedDir = path.resolve(process.env.CATDOG_SHARED ?? path.join(repoRoot, '..', 'shared'));
export const hasShared = fs.existsSync(path.join(sharedDir, 'README.md'));
export const sharedPath = (...parts: string[]): string => path.join(sharedDir, ...parts);

export const kaggleDev = sharedPath('data', 'kaggle-dev');
export const kaggleFullRes = sharedPath('data', 'kaggle-fullres-sample');
export const smallBackbone = sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json');
export const defaultBackbone = sharedPath('models', 'mobilenet_v1_0.75_224', 'model.json');

/** The first `count` Kaggle photos of one class, in numeric order (cat.0.jpg, cat.1.jpg, …). */
export function kaggleFiles(label: 'cat' | 'dog', count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => path.join(kaggleDev, label, `${label}.${from + i}.jpg`)).filter((file) =>
    fs.existsSync(file),
  );
}

export const skipWithoutShared = hasShared ? '' : `../shared not found at ${sharedDir}; set CATDOG_SHARED`;
