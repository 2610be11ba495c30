import { sql, type ColumnDataType, type Expression, type Kysely, type Migration } from 'kysely';
import { z } from 'zod';
import type { Dialect } from './support.js';

/**
 * Every migration, in order, as code: the build ships no migration files to find at runtime. Names sort
 * lexically (Kysely's Migrator applies them in name order); never edit one that has shipped, add the next.
 */
export function migrations(dialect: Dialect): Record<string, Migration> {
  // MySQL's TEXT holds 64 KiB, too little for metrics with curves; the others have no such limit.
  const jsonText: ColumnDataType | Expression<unknown> = dialect === 'mysql' ? sql`longtext` : 'text';
  const time = 'varchar(32)';

  // Byte-wise comparison like SQLite and PostgreSQL, and full Unicode in original file names.
  const createTable = (db: Kysely<unknown>, name: string) => {
    const builder = db.schema.createTable(name);
    return dialect === 'mysql' ? builder.modifyEnd(sql`engine=InnoDB default character set utf8mb4 collate utf8mb4_bin`) : builder;
  };

  return {
    '0001_initial': {
      async up(db) {
        await createTable(db, 'images')
          .addColumn('hash', 'varchar(64)', (col) => col.primaryKey())
          .addColumn('label', 'varchar(16)')
          .addColumn('source', 'text', (col) => col.notNull())
          .addColumn('original_name', 'text')
          .addColumn('format', 'varchar(16)', (col) => col.notNull())
          .addColumn('width', 'integer', (col) => col.notNull())
          .addColumn('height', 'integer', (col) => col.notNull())
          .addColumn('byte_size', 'integer', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('updated_at', time, (col) => col.notNull())
          .execute();
        await db.schema.createIndex('images_label_idx').on('images').columns(['label', 'hash']).execute();
        await db.schema.createIndex('images_created_at_idx').on('images').column('created_at').execute();

        await createTable(db, 'dataset_versions')
          .addColumn('id', 'integer', (col) => col.primaryKey())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('params', jsonText, (col) => col.notNull())
          .addColumn('manifest_key', 'text', (col) => col.notNull())
          .addColumn('image_count', 'integer', (col) => col.notNull())
          .addColumn('counts', jsonText, (col) => col.notNull())
          .execute();

        await createTable(db, 'dataset_items')
          .addColumn('dataset_id', 'integer', (col) => col.notNull().references('dataset_versions.id'))
          .addColumn('image_hash', 'varchar(64)', (col) => col.notNull().references('images.hash'))
          .addColumn('label', 'varchar(16)', (col) => col.notNull())
          .addColumn('split', 'varchar(16)', (col) => col.notNull())
          .addPrimaryKeyConstraint('dataset_items_pk', ['dataset_id', 'image_hash'])
          .execute();
        await db.schema
          .createIndex('dataset_items_split_idx')
          .on('dataset_items')
          .columns(['dataset_id', 'split', 'label', 'image_hash'])
          .execute();
        await db.schema.createIndex('dataset_items_image_idx').on('dataset_items').column('image_hash').execute();

        await createTable(db, 'training_runs')
          .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
          .addColumn('dataset_id', 'integer', (col) => col.notNull().references('dataset_versions.id'))
          .addColumn('status', 'varchar(16)', (col) => col.notNull())
          .addColumn('params', jsonText, (col) => col.notNull())
          .addColumn('code_version', 'varchar(64)', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('started_at', time)
          .addColumn('finished_at', time)
          .addColumn('duration_ms', 'integer')
          .addColumn('error', 'text')
          .addColumn('metrics', jsonText)
          .addColumn('model_id', 'varchar(32)')
          .execute();
        await db.schema.createIndex('training_runs_created_at_idx').on('training_runs').column('created_at').execute();
        await db.schema.createIndex('training_runs_status_idx').on('training_runs').column('status').execute();

        await createTable(db, 'training_epochs')
          .addColumn('run_id', 'varchar(32)', (col) => col.notNull().references('training_runs.id'))
          .addColumn('epoch', 'integer', (col) => col.notNull())
          .addColumn('loss', 'double precision')
          .addColumn('accuracy', 'double precision')
          .addColumn('val_loss', 'double precision')
          .addColumn('val_accuracy', 'double precision')
          .addColumn('duration_ms', 'integer', (col) => col.notNull())
          .addPrimaryKeyConstraint('training_epochs_pk', ['run_id', 'epoch'])
          .execute();

        await createTable(db, 'models')
          .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
          .addColumn('version', 'integer', (col) => col.notNull().unique())
          .addColumn('name', 'varchar(200)', (col) => col.notNull())
          .addColumn('architecture', 'varchar(200)', (col) => col.notNull())
          .addColumn('dataset_id', 'integer', (col) => col.notNull().references('dataset_versions.id'))
          .addColumn('run_id', 'varchar(32)', (col) => col.references('training_runs.id'))
          .addColumn('params', jsonText, (col) => col.notNull())
          .addColumn('metrics', jsonText, (col) => col.notNull())
          .addColumn('artifact_prefix', 'text', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .execute();

        await createTable(db, 'model_promotions')
          .addColumn('id', 'integer', (col) => col.primaryKey())
          .addColumn('model_id', 'varchar(32)', (col) => col.notNull().references('models.id'))
          .addColumn('promoted_at', time, (col) => col.notNull())
          .addColumn('reason', 'text', (col) => col.notNull())
          .addColumn('actor', 'varchar(200)', (col) => col.notNull())
          .addColumn('previous_model_id', 'varchar(32)', (col) => col.references('models.id'))
          .execute();

        // No foreign keys to images or models: a photo is predicted before anyone decides to keep it, and
        // the zero-shot model that serves before any training has no row in `models`.
        await createTable(db, 'predictions')
          .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
          .addColumn('image_hash', 'varchar(64)', (col) => col.notNull())
          .addColumn('model_id', 'varchar(64)', (col) => col.notNull())
          .addColumn('label', 'varchar(16)', (col) => col.notNull())
          .addColumn('confidence', 'double precision', (col) => col.notNull())
          .addColumn('probabilities', jsonText, (col) => col.notNull())
          .addColumn('latency_ms', 'double precision', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('validated_label', 'varchar(16)')
          .addColumn('validated_at', time)
          .execute();
        await db.schema.createIndex('predictions_created_at_idx').on('predictions').columns(['created_at', 'id']).execute();
        await db.schema.createIndex('predictions_review_idx').on('predictions').columns(['validated_label', 'confidence']).execute();
        await db.schema.createIndex('predictions_validated_at_idx').on('predictions').column('validated_at').execute();
        await db.schema.createIndex('predictions_model_idx').on('predictions').column('model_id').execute();

        // `sequence` orders a prediction's history even when two changes share a millisecond.
        await createTable(db, 'validations')
          .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
          .addColumn('prediction_id', 'varchar(32)', (col) => col.notNull().references('predictions.id'))
          .addColumn('sequence', 'integer', (col) => col.notNull())
          .addColumn('label', 'varchar(16)', (col) => col.notNull())
          .addColumn('actor', 'varchar(200)', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('undone_at', time)
          .addUniqueConstraint('validations_sequence_unique', ['prediction_id', 'sequence'])
          .execute();
      },
      async down(db) {
        for (const table of [
          'validations',
          'predictions',
          'model_promotions',
          'models',
          'training_epochs',
          'training_runs',
          'dataset_items',
          'dataset_versions',
          'images',
        ]) {
          await db.schema.dropTable(table).execute();
        }
      },
    },
    '0002_access_tokens': {
      async up(db) {
        await createTable(db, 'access_tokens')
          .addColumn('id', 'varchar(32)', (col) => col.primaryKey())
          .addColumn('name', 'varchar(200)', (col) => col.notNull())
          .addColumn('role', 'varchar(16)', (col) => col.notNull())
          .addColumn('secret_hash', 'varchar(64)', (col) => col.notNull().unique())
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('last_used_at', time)
          .addColumn('revoked_at', time)
          .execute();
        await createTable(db, 'sessions')
          .addColumn('id_hash', 'varchar(64)', (col) => col.primaryKey())
          .addColumn('token_id', 'varchar(32)', (col) => col.notNull().references('access_tokens.id'))
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('expires_at', time, (col) => col.notNull())
          .execute();
        await db.schema.createIndex('sessions_token_idx').on('sessions').column('token_id').execute();
      },
      async down(db) {
        await db.schema.dropTable('sessions').execute();
        await db.schema.dropTable('access_tokens').execute();
      },
    },
    '0003_run_owner': {
      // Several processes (server, CLI, workers) share one database: start-up recovery may only fail runs whose
      // owning process is gone, never runs another live process is training.
      async up(db) {
        await db.schema.alterTable('training_runs').addColumn('owner', 'varchar(200)').execute();
      },
      async down(db) {
        await db.schema.alterTable('training_runs').dropColumn('owner').execute();
      },
    },
    '0004_jobs': {
      // The in-process queue's jobs, so that jobs queued or running when the process stops run after it restarts.
      async up(db) {
        await createTable(db, 'jobs')
          .addColumn('id', 'varchar(255)', (col) => col.primaryKey())
          .addColumn('name', 'varchar(200)', (col) => col.notNull())
          .addColumn('data', jsonText, (col) => col.notNull())
          .addColumn('state', 'varchar(16)', (col) => col.notNull())
          .addColumn('progress', 'double precision', (col) => col.notNull())
          .addColumn('progress_message', 'text')
          .addColumn('attempts', 'integer', (col) => col.notNull())
          .addColumn('max_attempts', 'integer', (col) => col.notNull())
          .addColumn('backoff_ms', 'integer', (col) => col.notNull())
          .addColumn('stalls', 'integer', (col) => col.notNull())
          .addColumn('result', jsonText)
          .addColumn('error', 'text')
          .addColumn('created_at', time, (col) => col.notNull())
          .addColumn('finished_at', time)
          .addColumn('run_after', time)
          .addColumn('worker_id', 'varchar(200)')
          .addColumn('owner', 'varchar(200)')
          .execute();
        await db.schema.createIndex('jobs_state_idx').on('jobs').columns(['state', 'created_at']).execute();
      },
      async down(db) {
        await db.schema.dropTable('jobs').execute();
      },
    },
    '0005_epoch_totals': {
      // The epoch count announced with each epoch: a fine-tuned run's total changes between its two phases, so a
      // client replaying the run from the database must see what live clients saw.
      async up(db) {
        await db.schema.alterTable('training_epochs').addColumn('total_epochs', 'integer').execute();
      },
      async down(db) {
        await db.schema.alterTable('training_epochs').dropColumn('total_epochs').execute();
      },
    },
    '0006_training_jobs': {
      // Every training the server starts is a queue job run by another process: a run names its job, so it can be
      // cancelled from the run, and a cancel asked of a job another process runs is recorded for that process to see.
      async up(db) {
        await db.schema.alterTable('training_runs').addColumn('job_id', 'varchar(255)').execute();
        await db.schema.alterTable('jobs').addColumn('cancel_requested', 'integer', (col) => col.notNull().defaultTo(0)).execute();
      },
      async down(db) {
        await db.schema.alterTable('jobs').dropColumn('cancel_requested').execute();
        await db.schema.alterTable('training_runs').dropColumn('job_id').execute();
      },
    },
    '0007_curation': {
      // The gallery and health views: a soft delete (built versions keep the photo, the next one leaves it out),
      // the serving model's latest P(dog) stored per photo so filters never run the model per page view, a
      // perceptual hash for near-duplicates, and each reviewer's skips.
      async up(db) {
        await db.schema.alterTable('images').addColumn('deleted_at', time).execute();
        await db.schema.alterTable('images').addColumn('perceptual_hash', 'varchar(16)').execute();
        await db.schema.alterTable('images').addColumn('p_dog', 'double precision').execute();
        await db.schema.alterTable('images').addColumn('p_dog_model_id', 'varchar(64)').execute();
        await db.schema.createIndex('images_curation_idx').on('images').columns(['deleted_at', 'label', 'created_at']).execute();
        await createTable(db, 'review_skips')
          .addColumn('actor', 'varchar(200)', (col) => col.notNull())
          .addColumn('image_hash', 'varchar(64)', (col) => col.notNull())
          .addColumn('created_at', time, (col) => col.notNull())
          .addPrimaryKeyConstraint('review_skips_pk', ['actor', 'image_hash'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('review_skips').execute();
        await db.schema.dropIndex('images_curation_idx').on('images').execute();
        for (const column of ['p_dog_model_id', 'p_dog', 'perceptual_hash', 'deleted_at']) {
          await db.schema.alterTable('images').dropColumn(column).execute();
        }
      },
    },
    '0008_dataset_params_data_only': {
      // A dataset version is data only: its params keep the split ratios and seed and drop imageSize and
      // augmentation. Safe because nothing reads those from the version any more, and every run already trained on
      // an old version recorded its own image size and augmentation in training_runs.params (TrainingParams has
      // carried both since the first release) and its model card its input size. Manifests (blobs) are not
      // rewritten: loadManifest still reads the `catdog-dataset/1` format. Rewriting is idempotent, so a run cut short
      // (MySQL has no transactional DDL, so Kysely runs it outside a transaction) is finished by the next. No `down`: the
      // dropped settings are gone.
      async up(db) {
        // The params as this migration knows them, whatever later versions of the document make of them.
        const splitAndSeed = z.object({ split: z.object({ train: z.number(), validation: z.number(), test: z.number() }), seed: z.int() });
        // The table as this migration knows it, whatever later migrations make of it.
        const versions: Kysely<{ dataset_versions: { id: number; params: string } }> = db;
        const rows = await versions.selectFrom('dataset_versions').select(['id', 'params']).execute();
        for (const row of rows) {
          let stored: unknown;
          try {
            stored = JSON.parse(row.params);
          } catch (error) {
            throw new Error(`dataset version v${row.id}: its params are not JSON: ${(error as Error).message}`);
          }
          const parsed = splitAndSeed.safeParse(stored);
          if (!parsed.success) throw new Error(`dataset version v${row.id}: its params have no valid split and seed: ${parsed.error.message}`);
          await versions.updateTable('dataset_versions').set({ params: JSON.stringify(parsed.data) }).where('id', '=', row.id).execute();
        }
      },
    },
    '0009_job_locks': {
      // The in-process queue's named locks lived in one process's memory, but its jobs run in another one (the
      // server's worker process, or several `catdog worker`s on one database): a lock every process sees.
      async up(db) {
        await createTable(db, 'job_locks')
          .addColumn('name', 'varchar(200)', (col) => col.primaryKey())
          .addColumn('holder', 'varchar(200)', (col) => col.notNull())
          .addColumn('expires_at', time, (col) => col.notNull())
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('job_locks').execute();
      },
    },
  };
}
