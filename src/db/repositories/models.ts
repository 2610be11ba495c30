import type { Kysely, Selectable } from 'kysely';
import { NotFoundError } from '../../errors.js';
import type { ModelPromotionsTable, ModelsTable, Schema } from '../schema.js';
import { modelMetricsDocument, modelParamsDocument } from '../documents/index.js';
import { newId, nextNumber, nowIso, withConflictRetry } from '../support.js';
import type { ModelRow, NewModel, PromotionRow } from '../types.js';

const column = (name: 'params' | 'metrics', rowId: string) => ({ table: 'models', column: name, rowId });

function toModel(row: Selectable<ModelsTable>): ModelRow {
  return {
    id: row.id,
    version: row.version,
    name: row.name,
    architecture: row.architecture,
    datasetId: row.dataset_id,
    runId: row.run_id,
    params: modelParamsDocument.read(row.params, column('params', row.id)),
    metrics: modelMetricsDocument.read(row.metrics, column('metrics', row.id)),
    artifactPrefix: row.artifact_prefix,
    createdAt: row.created_at,
  };
}

function toPromotion(row: Selectable<ModelPromotionsTable>): PromotionRow {
  return {
    id: row.id,
    modelId: row.model_id,
    promotedAt: row.promoted_at,
    reason: row.reason,
    actor: row.actor,
    previousModelId: row.previous_model_id,
  };
}

export function modelsRepository(db: Kysely<Schema>) {
  const latestPromotion = (executor: Kysely<Schema>) =>
    executor.selectFrom('model_promotions').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();

  async function get(id: string): Promise<ModelRow | undefined> {
    const row = await db.selectFrom('models').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toModel(row);
  }

  async function promoteWhen(id: string, { reason, actor }: { reason: string; actor: string }, stillExpected: (currentId: string | null) => boolean): Promise<PromotionRow | undefined> {
    return withConflictRetry(db, async (trx) => {
      const model = await trx.selectFrom('models').select('id').where('id', '=', id).executeTakeFirst();
      if (!model) throw new NotFoundError('model', id);
      const latest = await latestPromotion(trx);
      const previousModelId = latest?.model_id ?? null;
      if (!stillExpected(previousModelId)) return undefined;
      const row = {
        // The number after the promotion just read, not max + 1 read later: a promotion committed since takes this
        // number first, the key refuses this one, and the retry reads the new serving model.
        id: (latest?.id ?? 0) + 1,
        model_id: id,
        promoted_at: nowIso(),
        reason,
        actor,
        previous_model_id: previousModelId,
      };
      await trx.insertInto('model_promotions').values(row).execute();
      return toPromotion(row);
    });
  }

  return {
    get,

    /** Versions count 1, 2, 3… in registration order. */
    async create(model: NewModel): Promise<ModelRow> {
      const id = model.id ?? newId('mdl');
      return withConflictRetry(db, async (trx) => {
        const row = {
          id,
          version: await nextNumber(trx, ['models', 'version']),
          name: model.name,
          architecture: model.architecture,
          dataset_id: model.datasetId,
          run_id: model.runId ?? null,
          params: modelParamsDocument.write(model.params, column('params', id)),
          metrics: modelMetricsDocument.write(model.metrics, column('metrics', id)),
          artifact_prefix: model.artifactPrefix,
          created_at: nowIso(),
        };
        await trx.insertInto('models').values(row).execute();
        return toModel(row);
      });
    },

    async getByVersion(version: number): Promise<ModelRow | undefined> {
      const row = await db.selectFrom('models').selectAll().where('version', '=', version).executeTakeFirst();
      return row && toModel(row);
    },

    /** Newest version first. */
    async list(): Promise<ModelRow[]> {
      const rows = await db.selectFrom('models').selectAll().orderBy('version', 'desc').execute();
      return rows.map(toModel);
    },

    /** Makes `id` the serving model; the promotion remembers which model it replaced, so it can be rolled back. */
    async promote(id: string, decision: { reason: string; actor: string }): Promise<PromotionRow> {
      return (await promoteWhen(id, decision, () => true))!;
    },

    /**
     * Compare-and-set: makes `id` the serving model only while `expectedCurrentId` still serves (null: while nothing
     * does); undefined when another promotion came first. Two racing writers number their rows alike, the unique key
     * refuses one, and its retry reads the new serving model and gives up.
     */
    promoteIfCurrent(id: string, expectedCurrentId: string | null, decision: { reason: string; actor: string }): Promise<PromotionRow | undefined> {
      return promoteWhen(id, decision, (currentId) => currentId === expectedCurrentId);
    },

    /** The model of the latest promotion; undefined before the first one. */
    async current(): Promise<ModelRow | undefined> {
      const promotion = await latestPromotion(db);
      return promotion && get(promotion.model_id);
    },

    /** Newest first. */
    async promotions(): Promise<PromotionRow[]> {
      const rows = await db.selectFrom('model_promotions').selectAll().orderBy('id', 'desc').execute();
      return rows.map(toPromotion);
    },
  };
}

export type ModelsRepository = ReturnType<typeof modelsRepository>;
