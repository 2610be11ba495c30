import fs from 'node:fs/promises';
import path from 'node:path';
import { CatdogError } from '../errors.js';
import { ingestImage, type IngestDependencies } from './ingest.js';
import { labelFromPath } from './labels.js';

export interface SkippedFile {
  path: string;
  reason: string;
  code: string;
}

export interface ImportReport {
  folder: string;
  scanned: number;
  imported: number;
  duplicates: number;
  skipped: SkippedFile[];
  byLabel: { cat: number; dog: number };
}

export interface ImportProgress {
  done: number;
  total: number;
  file: string;
}

// Files that are never photos: listing them as skipped would bury the real problems.
const IGNORED_NAMES = new Set(['.ds_store', 'thumbs.db', 'desktop.ini']);

/** Every file below root, following symbolic links (data sets are often linked in rather than copied). */
export async function listFiles(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  const files = await Promise.all(
    entries
      .filter((entry) => !IGNORED_NAMES.has(entry.name.toLowerCase()))
      .map(async (entry) => {
        const file = path.join(entry.parentPath, entry.name);
        if (entry.isFile()) return file;
        if (!entry.isSymbolicLink()) return undefined;
        const target = await fs.stat(file).catch(() => undefined);
        return target?.isFile() ? file : undefined;
      }),
  );
  return files.filter((file) => file !== undefined).sort();
}

/**
 * Imports a labelled folder: `cat/` + `dog/` (any case, plural too), Microsoft PetImages (`Cat/`, `Dog/`) or
 * Kaggle names (`cat.12.jpg`). Every file either lands once (by content hash) or is listed with the reason.
 */
export async function importFolder(
  deps: IngestDependencies,
  folder: string,
  options: { concurrency?: number; onProgress?: (progress: ImportProgress) => void } = {},
): Promise<ImportReport> {
  const root = path.resolve(folder);
  const stat = await fs.stat(root).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new CatdogError('import_folder_missing', `${root} is not a folder: pass a folder holding cat/ and dog/ photos`);
  }
  const files = await listFiles(root);
  const report: ImportReport = { folder: root, scanned: files.length, imported: 0, duplicates: 0, skipped: [], byLabel: { cat: 0, dog: 0 } };
  let done = 0;
  let next = 0;

  const importOne = async (file: string): Promise<void> => {
    const relative = path.relative(root, file);
    const label = labelFromPath(relative);
    if (!label) {
      report.skipped.push({ path: relative, code: 'no_label', reason: 'no label: put it under cat/ or dog/, or name it cat.N.jpg / dog.N.jpg' });
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(file);
    } catch (error) {
      report.skipped.push({ path: relative, code: 'unreadable', reason: `cannot read: ${(error as Error).message}` });
      return;
    }
    try {
      const { image, inserted } = await ingestImage(deps, { bytes, label, source: `import:${file}`, originalName: path.basename(file), deferPerceptualHash: true });
      if (inserted) {
        report.imported += 1;
        report.byLabel[label] += 1;
      } else if (image.label && image.label !== label) {
        report.skipped.push({ path: relative, code: 'label_conflict', reason: `same photo already stored as ${image.label} (${image.hash.slice(0, 12)})` });
      } else {
        report.duplicates += 1;
      }
    } catch (error) {
      if (!(error instanceof CatdogError)) throw error;
      report.skipped.push({ path: relative, code: error.code, reason: error.message });
    }
  };

  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      await importOne(file);
      done += 1;
      options.onProgress?.({ done, total: files.length, file });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  report.skipped.sort((a, b) => a.path.localeCompare(b.path));
  return report;
}
