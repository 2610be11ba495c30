import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '../errors.js';
import { assertValidBlobKey, assertValidBlobPrefix, TEMP_MARKER, type BlobStore } from './blob-store.js';

function isMissingFileError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  describe(): string {
    return `local folder ${this.root}`;
  }

  private pathOf(key: string): string {
    assertValidBlobKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const finalPath = this.pathOf(key);
    const directory = path.dirname(finalPath);
    await mkdir(directory, { recursive: true });
    const tempPath = `${finalPath}${TEMP_MARKER}${randomBytes(6).toString('hex')}`;
    try {
      const file = await open(tempPath, 'wx');
      try {
        await file.writeFile(bytes);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tempPath, finalPath);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    // The rename itself is only durable once the directory entry is on disk.
    const directoryHandle = await open(directory, 'r');
    try {
      await directoryHandle.sync();
    } finally {
      await directoryHandle.close();
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const bytes = await this.getOrUndefined(key);
    if (bytes === undefined) throw new NotFoundError('blob', key);
    return bytes;
  }

  async getOrUndefined(key: string): Promise<Uint8Array | undefined> {
    const filePath = this.pathOf(key);
    try {
      return new Uint8Array(await readFile(filePath));
    } catch (error) {
      if (isMissingFileError(error) || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw error;
    }
  }

  async has(key: string): Promise<boolean> {
    const filePath = this.pathOf(key);
    try {
      return (await stat(filePath)).isFile();
    } catch (error) {
      if (isMissingFileError(error)) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const filePath = this.pathOf(key);
    try {
      await unlink(filePath);
    } catch (error) {
      if (!isMissingFileError(error)) throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    // Only the folder the prefix points into is walked, not the whole store.
    assertValidBlobPrefix(prefix);
    const folderKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const folder = path.join(this.root, ...folderKey.split('/'));
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { recursive: true, withFileTypes: true });
    } catch (error) {
      if (isMissingFileError(error)) return [];
      throw error;
    }
    const keys: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.includes(TEMP_MARKER)) continue;
      const key = path.relative(this.root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys.sort();
  }

  /**
   * Deletes the temporary files of puts that never finished (a process killed between writing and renaming) last
   * modified more than `olderThanMs` ago, and answers how many: nothing else ever removes them. The age keeps a put
   * in flight in another process (CLI, worker and server share the folder) safe.
   */
  async removeAbandonedWrites(olderThanMs: number, now = Date.now()): Promise<number> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.root, { recursive: true, withFileTypes: true });
    } catch (error) {
      if (isMissingFileError(error)) return 0;
      throw error;
    }
    let removed = 0;
    for (const entry of entries) {
      if (!entry.isFile() || !entry.name.includes(TEMP_MARKER)) continue;
      const file = path.join(entry.parentPath, entry.name);
      try {
        if (now - (await stat(file)).mtimeMs <= olderThanMs) continue;
        await unlink(file);
        removed++;
      } catch (error) {
        // Renamed or removed by its own writer or another process meanwhile: nothing left to do.
        if (!isMissingFileError(error)) throw error;
      }
    }
    return removed;
  }
}
