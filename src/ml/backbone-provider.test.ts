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

  it('loads a backbone (here by path) asked for at another size at that size only, and serves its own size from the one already loaded', async () => {
    const provider = new BackboneProvider({ cacheDir, resolution: { backboneDir: sharedPath('models'), scaling: {} } });
    const sized = await provider.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'), 160);
    // One frozen graph built, the 160 px one: its own size was not loaded first.
    expect((await fs.readdir(path.join(cacheDir, 'graphs'))).filter((name) => name.startsWith('mobilenet_v1_0.25'))).toEqual([expect.stringMatching(/-160px-/)]);
    const own = await provider.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'));
    try {
      expect(sized.inputSize).toBe(160);
      expect(sized.id).toMatch(/-160px$/);
      expect(own.inputSize).toBe(224);
      expect(await provider.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'), 224)).toBe(own);
      expect(await provider.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'), 160)).toBe(sized);
      // The other order: asked for at its own size first, then without a size, it is loaded once.
      const other = new BackboneProvider({ cacheDir, resolution: { backboneDir: sharedPath('models'), scaling: {} } });
      const atOwnSize = await other.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'), 224);
      expect(await other.get(sharedPath('models', 'mobilenet_v1_0.25_224', 'model.json'))).toBe(atOwnSize);
      atOwnSize.dispose();
    } finally {
      sized.dispose();
      own.dispose();
    }
  });

  it('says where it looked when a named backbone is neither in backboneDir nor downloadable', async () => {
    const provider = new BackboneProvider({ cacheDir, resolution: { backboneDir: path.join(cacheDir, 'empty'), scaling: {} } });
    await expect(provider.get('efficientnet_lite2')).rejects.toThrow(/efficientnet_lite2_260\/model\.json does not exist.*training\.backboneDir/);
  });
});
