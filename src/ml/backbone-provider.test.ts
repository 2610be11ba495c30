import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedPath, skipWithoutShared } from '../../test/support/shared.js';
import { BackboneProvider } from './backbone-provider.js';

describe.skipIf(skipWithoutShared)('BackboneProvider with catalogue names', () => {
  let cacheDir: string;
  beforeAll(async () => {
    cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-registry-provider-'));
  });
  afterAll(async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
  });

  it('loads a named backbone from training.backboneDir, offline, once per process', async () => {
    const provider = new BackboneProvider({ cacheDir, resolution: { backboneDir: sharedPath('models'), scaling: {} } });
    const backbone = await provider.get('mobilenet_v2_1.0');
    try {
      // The local copy is Coral's .tflite, so the ImageNet classifier (zero-shot answers, "neither") comes with it.
      expect(backbone.id).toMatch(/^tf2_mobilenet_v2_1\.0_224_ptq-[0-9a-f]{12}$/);
      expect(backbone.imagenet).toBeDefined();
      expect(await provider.get('mobilenet_v2_1.0')).toBe(backbone);
    } finally {
      backbone.dispose();
    }
  });

  it('says where it looked when a named backbone is neither in backboneDir nor downloadable', async () => {
    const provider = new BackboneProvider({ cacheDir, resolution: { backboneDir: path.join(cacheDir, 'empty'), scaling: {} } });
    await expect(provider.get('efficientnet_lite2')).rejects.toThrow(/efficientnet_lite2_260\/model\.json does not exist.*training\.backboneDir/);
  });
});
