export { augmentationSchema, blobRoot, configSchema, databaseUrl, effectiveImageSize, pipelineRoot, trainingConflicts, type CatdogConfig } from './schema.js';
export { builtInDefaults, ENV_ALIASES, envVarName, loadConfig, RESERVED_ENV, type ConfigSource, type LoadConfigOptions, type LoadedConfig } from './load.js';
export { ConfigError } from './errors.js';
export { CONFIG_FILE_NAME, CONFIG_SCHEMA_FILE_NAME, configJsonSchema, defaultConfigDocument, formatConfigShow, initConfig } from './document.js';
export { DEFAULT_PRESET, TRAINING_PRESETS, NO_PRESET_EXTRAS, type TrainingPresetName } from './presets.js';
