import type { z } from '@hono/zod-openapi';
import type { AppContext } from '../app/context.js';
import { configSchema, effectiveImageSize, type CatdogConfig } from '../config/index.js';
import { imageBlobKey } from '../storage/index.js';
import type { DatasetParams } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import { augment, decodeToRgb, encodeJpeg, seededRandom, type AugmentationConfig } from '../images/index.js';
import { datasetParams } from '../training/params.js';
import { describeZodError } from './errors.js';
import type { AugmentationRequestSchema, BuildDatasetSchema } from './schemas.js';

type AugmentationRequest = z.infer<typeof AugmentationRequestSchema>;

export function mergeAugmentation(base: AugmentationConfig, changes: AugmentationRequest = {}): AugmentationConfig {
  return {
    horizontalFlip: { ...base.horizontalFlip, ...changes.horizontalFlip },
    rotation: { ...base.rotation, ...changes.rotation },
    zoom: { ...base.zoom, ...changes.zoom },
    brightness: { ...base.brightness, ...changes.brightness },
    contrast: { ...base.contrast, ...changes.contrast },
    grayscale: { ...base.grayscale, ...changes.grayscale },
  };
}

/** Throws `invalid_request` with the config schema's own wording, so requests accept exactly what config.json accepts. */
function validDatasetSection(dataset: CatdogConfig['dataset']): CatdogConfig['dataset'] {
  const parsed = configSchema.shape.dataset.safeParse(dataset);
  if (!parsed.success) throw new CatdogError('invalid_request', describeZodError(parsed.error), 400);
  return parsed.data;
}

/** The configured split and seed with a build request's changes on top. */
export function datasetParamsFrom(config: CatdogConfig, request: Pick<z.infer<typeof BuildDatasetSchema>, 'split' | 'seed'> = {}): DatasetParams {
  const dataset = validDatasetSection({ ...config.dataset, split: request.split ?? config.dataset.split, seed: request.seed ?? config.dataset.seed });
  return datasetParams({ ...config, dataset });
}

/** How training will transform its photos: image size and augmentation are settings of the run, not of a version. */
export interface TrainingImageSettings {
  imageSize: number;
  augmentation: AugmentationConfig;
  seed: number;
}

/** The configured training image settings with a preview's changes on top (what a run would use if the config said so). */
export function trainingImageSettingsFrom(config: CatdogConfig, changes: { imageSize?: number | null; augmentation?: AugmentationRequest } = {}): TrainingImageSettings {
  const dataset = validDatasetSection({
    ...config.dataset,
    imageSize: changes.imageSize === undefined ? config.dataset.imageSize : changes.imageSize,
    augmentation: mergeAugmentation(config.dataset.augmentation, changes.augmentation),
  });
  return { imageSize: effectiveImageSize({ ...config, dataset }), augmentation: dataset.augmentation, seed: dataset.seed };
}

export interface AugmentedSample {
  hash: string;
  label: string;
  /** A `data:image/jpeg;base64,…` URL, ready for an <img>. */
  dataUrl: string;
}

/**
 * What training will see: a few training images through the augmentation, at the training size. Images are taken
 * evenly across the list, and the draws are seeded, so the same settings always show the same samples.
 */
export async function augmentedSamples(
  app: Pick<AppContext, 'blobs'>,
  items: readonly { hash: string; label: string }[],
  params: TrainingImageSettings,
  count: number,
): Promise<AugmentedSample[]> {
  const step = Math.max(1, Math.floor(items.length / count));
  const chosen = Array.from({ length: Math.min(count, items.length) }, (_, i) => items[i * step]!);
  return Promise.all(
    chosen.map(async (item, i) => {
      const rgb = await decodeToRgb(await app.blobs.get(imageBlobKey(item.hash)), params.imageSize);
      const pixels = augment(rgb.data, params.imageSize, params.augmentation, seededRandom(params.seed + i));
      const jpeg = await encodeJpeg({ ...rgb, data: pixels }, 80);
      return { hash: item.hash, label: item.label, dataUrl: `data:image/jpeg;base64,${Buffer.from(jpeg).toString('base64')}` };
    }),
  );
}
