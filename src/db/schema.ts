/**
 * The tables as Kysely sees them: snake_case columns exactly as migrated. Times are ISO-8601 strings and JSON
 * is text so SQLite, PostgreSQL and MySQL store and return identical values; repositories map these rows to
 * the camelCase types in `types.ts`.
 */
export interface Schema {
  images: ImagesTable;
  dataset_versions: DatasetVersionsTable;
  dataset_items: DatasetItemsTable;
  training_runs: TrainingRunsTable;
  training_epochs: TrainingEpochsTable;
  models: ModelsTable;
  model_promotions: ModelPromotionsTable;
  predictions: PredictionsTable;
  validations: ValidationsTable;
  jobs: JobsTable;
  review_skips: ReviewSkipsTable;
  job_locks: JobLocksTable;
}

export interface ImagesTable {
  hash: string;
  label: string | null;
  source: string;
  original_name: string | null;
  format: string;
  width: number;
  height: number;
  byte_size: number;
  created_at: string;
  updated_at: string;
  /** Null for photos in the data set; set by a curator's delete (built versions keep the photo). */
  deleted_at: string | null;
  /** 16 hex digits of dHash; null until computed (photos stored before 0007 are hashed lazily). */
  perceptual_hash: string | null;
  /** The latest P(dog) the model `p_dog_model_id` gave this photo; null until scored. */
  p_dog: number | null;
  p_dog_model_id: string | null;
}

export interface ReviewSkipsTable {
  /** The token id of the reviewer (or the principal's name without one). */
  actor: string;
  image_hash: string;
  created_at: string;
}

export interface DatasetVersionsTable {
  id: number;
  created_at: string;
  params: string;
  manifest_key: string;
  image_count: number;
  counts: string;
}

export interface DatasetItemsTable {
  dataset_id: number;
  image_hash: string;
  label: string;
  split: string;
}

export interface TrainingRunsTable {
  id: string;
  dataset_id: number;
  status: string;
  params: string;
  code_version: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  error: string | null;
  metrics: string | null;
  model_id: string | null;
  /** `host:pid` of the process holding the run (null before 0003 or when unknown). */
  owner: string | null;
  /** The queue job running it (null for runs trained in the asking process, or before 0006). */
  job_id: string | null;
}

export interface TrainingEpochsTable {
  run_id: string;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
  val_loss: number | null;
  val_accuracy: number | null;
  duration_ms: number;
  /** Null for epochs recorded before migration 0005. */
  total_epochs: number | null;
}

export interface ModelsTable {
  id: string;
  version: number;
  name: string;
  architecture: string;
  dataset_id: number;
  run_id: string | null;
  params: string;
  metrics: string;
  artifact_prefix: string;
  created_at: string;
}

export interface ModelPromotionsTable {
  id: number;
  model_id: string;
  promoted_at: string;
  reason: string;
  actor: string;
  previous_model_id: string | null;
}

export interface PredictionsTable {
  id: string;
  image_hash: string;
  model_id: string;
  label: string;
  confidence: number;
  probabilities: string;
  latency_ms: number;
  created_at: string;
  validated_label: string | null;
  validated_at: string | null;
}

export interface ValidationsTable {
  id: string;
  prediction_id: string;
  sequence: number;
  label: string;
  actor: string;
  created_at: string;
  undone_at: string | null;
}

export interface JobsTable {
  id: string;
  name: string;
  data: string;
  state: string;
  progress: number;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  backoff_ms: number;
  stalls: number;
  result: string | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  run_after: string | null;
  worker_id: string | null;
  owner: string | null;
  /** 1 once a process asked to cancel the job while another process runs it (0006). */
  cancel_requested: number;
}

/** The named locks of in-process queues (`JobQueue.tryLock`), in the database every process on the queue shares. */
export interface JobLocksTable {
  name: string;
  /** Who holds it: only the holder renews or releases it. */
  holder: string;
  /** A holder that died stops renewing; the lock is free once this time has passed. */
  expires_at: string;
}
