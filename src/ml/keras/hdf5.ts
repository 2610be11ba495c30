import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import h5wasm, { type File as Hdf5File, type Group } from 'h5wasm/node';

export type { Hdf5File, Group };

/**
 * h5wasm's Node build works on real files (NODERAWFS), so in-memory bytes pass through a private temporary
 * directory that is always removed.
 */
async function withTemporaryFile<T>(use: (file: string) => Promise<T>): Promise<T> {
  await h5wasm.ready;
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-hdf5-'));
  try {
    return await use(path.join(directory, 'data.h5'));
  } finally {
    await fs.rm(directory, { recursive: true, force: true });
  }
}

export async function writeHdf5(fill: (file: Hdf5File) => void): Promise<Uint8Array> {
  return withTemporaryFile(async (filePath) => {
    const file = new h5wasm.File(filePath, 'w');
    try {
      fill(file);
    } finally {
      file.close();
    }
    return new Uint8Array(await fs.readFile(filePath));
  });
}

export async function readHdf5<T>(bytes: Uint8Array, read: (file: Hdf5File) => T): Promise<T> {
  return withTemporaryFile(async (filePath) => {
    await fs.writeFile(filePath, bytes);
    const file = new h5wasm.File(filePath, 'r');
    try {
      return read(file);
    } finally {
      file.close();
    }
  });
}

/** Creates every missing group along `groupPath` (h5wasm creates one level at a time). */
export function ensureGroup(root: Group, groupPath: string): Group {
  let group = root;
  for (const part of groupPath.split('/').filter(Boolean)) {
    const existing = group.get(part);
    group = existing instanceof h5wasm.Group ? existing : group.create_group(part);
  }
  return group;
}

export function isGroup(entity: unknown): entity is Group {
  return entity instanceof h5wasm.Group;
}

export function isDataset(entity: unknown): entity is InstanceType<typeof h5wasm.Dataset> {
  return entity instanceof h5wasm.Dataset;
}
