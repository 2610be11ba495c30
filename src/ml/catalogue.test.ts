import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedPath, skipWithoutShared } from '../../test/support/shared.js';
import { BACKBONE_CATALOGUE, catalogueBackbone, resolveBackbone } from './catalogue.js';

describe('the backbone catalogue', () => {
  it('resolves a name to its published URL without training.backboneDir, with the scaling it declares', () => {
    expect(resolveBackbone('mobilenet_v2_1.0', { backboneDir: '', scaling: {} })).toEqual({
      source: 'https://raw.githubusercontent.com/google-coral/test_data/master/tf2_mobilenet_v2_1.0_224_ptq.tflite',
      scaling: 'x/127.5-1',
    });
    for (const entry of BACKBONE_CATALOGUE) expect(entry.url).toMatch(/^https:\/\//);
  });

  it('passes any other source through, with its declared scaling only when one is declared', () => {
    const resolution = { backboneDir: '/models', scaling: { '/own/model.json': 'caffe' as const } };
    expect(resolveBackbone('/own/model.json', resolution)).toEqual({ source: '/own/model.json', scaling: 'caffe' });
    expect(resolveBackbone('/other/model.tflite', resolution)).toEqual({ source: '/other/model.tflite' });
    expect(catalogueBackbone('/own/model.json')).toBeUndefined();
  });

  it('asks for the full model of a backbone published as Keras weights only, and finds it under training.backboneDir', () => {
    const weightsOnly = BACKBONE_CATALOGUE.filter((entry) => entry.kerasApplication);
    expect(weightsOnly.map((entry) => entry.name)).toEqual(['mobilenet_v2_1.4', 'mobilenet_v3_large', 'mobilenet_v3_large_minimalistic', 'efficientnetv2_b0']);
    for (const entry of weightsOnly) {
      expect(entry.url).toMatch(/^https:\/\/storage\.googleapis\.com\/tensorflow\/keras-applications\/.+\.h5$/);
      expect(entry.urlNotVerified).toBe(true);
      expect(() => resolveBackbone(entry.name, { backboneDir: '', scaling: {} })).toThrow(
        expect.objectContaining({ code: 'backbone_needs_full_model', message: expect.stringContaining(`keras.applications.${entry.kerasApplication}.save(`) }),
      );
      expect(resolveBackbone(entry.name, { backboneDir: '/models', scaling: {} })).toEqual({ source: `/models/${entry.localPath}`, scaling: entry.scaling });
    }
  });

  it.skipIf(skipWithoutShared)('finds the local copies ../shared/models holds at their localPath under training.backboneDir', () => {
    const backboneDir = sharedPath('models');
    for (const name of ['mobilenet_v1_0.75', 'mobilenet_v2_1.0', 'efficientnet_lite0']) {
      const { source } = resolveBackbone(name, { backboneDir, scaling: {} });
      expect(source.startsWith(backboneDir)).toBe(true);
      expect(fs.existsSync(source)).toBe(true);
    }
  });
});
