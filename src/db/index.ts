export { openDatabase, type Database, type DatabaseCheck } from './database.js';
export { newId, type Dialect } from './support.js';
export type { Schema } from './schema.js';
export type { ImageListFilter, ImagesRepository } from './repositories/images.js';
export type { DatasetItemFilter, DatasetsRepository } from './repositories/datasets.js';
export type { RunsRepository } from './repositories/runs.js';
export type { ModelsRepository } from './repositories/models.js';
export type { PredictionsRepository } from './repositories/predictions.js';
export type * from './types.js';
