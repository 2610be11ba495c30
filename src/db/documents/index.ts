export { StoredDocumentError, type DocumentLocation, type StoredDocument } from './stored-document.js';
export { trainingParamsDocument, trainingParamsPayloadSchema, trainingParamsSchema, type FineTuneParams, type TrainingParams } from './training-params.js';
export { importedModelParamsSchema, modelMetricsDocument, modelParamsDocument, type ImportedModelParams, type ModelParams } from './models.js';
export {
  evaluatedRunMetrics,
  runMetricsDocument,
  validationSummarySchema,
  type CandidateRunMetrics,
  type EvaluatedRunMetrics,
  type FineTuneSummary,
  type HeadSelectionSummary,
  type RunMetrics,
  type ValidationSummary,
} from './runs.js';
export { predictionProbabilitiesDocument, type PredictionProbabilities } from './predictions.js';
