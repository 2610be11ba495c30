import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtCli, catdog } from '../../../test/support/cli.js';
import { kaggleFiles, skipWithoutShared } from '../../../test/support/shared.js';

interface BuiltVersion {
  id: number;
  created: boolean;
  params: Record<string, unknown>;
}

describe.skipIf(skipWithoutShared)('catdog dataset build (built CLI)', () => {
  let home: string;
  beforeAll(async () => {
    expect(fs.existsSync(builtCli), `${builtCli} is missing: run npm run build`).toBe(true);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-dataset-cli-'));
    for (const label of ['cat', 'dog'] as const) {
      fs.mkdirSync(path.join(home, 'photos', label), { recursive: true });
      for (const file of kaggleFiles(label, 15)) fs.symlinkSync(file, path.join(home, 'photos', label, path.basename(file)));
    }
    const imported = await catdog(home, ['dataset', 'import', path.join(home, 'photos'), '--json']);
    expect(imported.code, imported.stderr).toBe(0);
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  const build = async (env: Record<string, string> = {}): Promise<BuiltVersion> => {
    const result = await catdog(home, ['dataset', 'build', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as BuiltVersion;
  };

  it('builds a version of data only, and gives it back when only the image size or augmentation changed', async () => {
    const first = await build();
    expect(first).toMatchObject({ created: true, params: { split: { train: 0.7, validation: 0.2, test: 0.1 }, seed: 42 } });
    expect(Object.keys(first.params).sort()).toEqual(['seed', 'split']);

    const retuned = await build({ CATDOG_DATASET__IMAGE_SIZE: '96', CATDOG_DATASET__AUGMENTATION__ROTATION__ENABLED: 'true' });
    expect(retuned).toMatchObject({ id: first.id, created: false });
  });

  it('refuses --image-size on dataset build, naming where image size went', async () => {
    const result = await catdog(home, ['dataset', 'build', '--image-size', '64']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('catdog train --image-size');
    expect((await catdog(home, ['dataset', 'build', '--help'])).stdout).not.toContain('--image-size');
  });
});
