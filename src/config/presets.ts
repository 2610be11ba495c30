/**
 * The rows of the backbone table in docs/benchmarks.md ("Backbones and presets"), by name: what a preset sets
 * wherever the config file and environment leave a key unset.
 */
export interface TrainingPreset {
  summary: string;
  backbone: string;
  ensemble: readonly string[];
  backboneImageSize: number | null;
  tta: boolean;
}

export const TRAINING_PRESETS = {
  fast: {
    summary: 'MobileNet v1 0.75 at 224 px (the fastest answers, the most errors)',
    backbone: 'mobilenet_v1_0.75',
    ensemble: [],
    backboneImageSize: null,
    tta: false,
  },
  balanced: {
    summary: 'MobileNetV2 1.0 at 288 px',
    backbone: 'mobilenet_v2_1.0',
    ensemble: [],
    backboneImageSize: 288,
    tta: false,
  },
  // MobileNet v1 0.75 beside the pair took the held-out errors from 20 to 19, and its sharp ImageNet classifier,
  // pooled with MobileNetV2's, is what lets "neither" catch as much as `fast` does (docs/benchmarks.md).
  best: {
    summary: 'MobileNetV2 1.0, EfficientNet-Lite0 and MobileNet v1 0.75 side by side at 288 px',
    backbone: 'mobilenet_v2_1.0',
    ensemble: ['efficientnet_lite0', 'mobilenet_v1_0.75'],
    backboneImageSize: 288,
    tta: false,
  },
} as const satisfies Record<string, TrainingPreset>;

export type TrainingPresetName = keyof typeof TRAINING_PRESETS;

// The best measured trade-off (docs/benchmarks.md, "Backbones and presets"): `best` makes 16 held-out errors to
// `fast`'s 40, serves at 0.89× its backbones' own batch-32 speed and catches more non-animal photos; `fast` answers
// about six times as many photos per second and stays one setting away.
export const DEFAULT_PRESET: TrainingPresetName = 'best';

/** The keys a preset sets. */
export const PRESET_KEYS = ['backbone', 'ensemble', 'backboneImageSize', 'tta'] as const;

/**
 * The preset keys' values when no preset applies: a cnn (which has no backbone, and would otherwise contradict them)
 * and a backbone named without a preset (itself alone, at its own size).
 */
export const NO_PRESET_EXTRAS = { ensemble: [], backboneImageSize: null, tta: false } as const;
