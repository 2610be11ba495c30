import { sql, type Kysely, type Selectable } from 'kysely';
import { CatdogError, NotFoundError } from '../../errors.js';
import type { PredictionsTable, Schema, ValidationsTable } from '../schema.js';
import { predictionProbabilitiesDocument } from '../documents/index.js';
import { newId, normalizeTime, nowIso, toNumber, withConflictRetry, type Dialect } from '../support.js';
import type { Label, NewPrediction, Page, PredictionFilter, PredictionRow, ReviewStrategy, ValidationRow } from '../types.js';

export interface ReviewQueueQuery {
  actor: string;
  /** The model whose stored scores rank `uncertain`. */
  servingModelId: string;
  strategy: ReviewStrategy;
  /** Prediction ids to leave out (skipped in this page before the skip was stored). */
  exclude?: readonly string[];
  limit: number;
}

const probabilitiesColumn = (rowId: string) => ({ table: 'predictions', column: 'probabilities', rowId });

function toPrediction(row: Selectable<PredictionsTable>): PredictionRow {
  return {
    id: row.id,
    imageHash: row.image_hash,
    modelId: row.model_id,
    label: row.label as Label,
    confidence: row.confidence,
    probabilities: predictionProbabilitiesDocument.read(row.probabilities, probabilitiesColumn(row.id)),
    latencyMs: row.latency_ms,
    createdAt: row.created_at,
    validatedLabel: row.validated_label as Label | null,
    validatedAt: row.validated_at,
  };
}

function toValidation(row: Selectable<ValidationsTable>): ValidationRow {
  return {
    id: row.id,
    predictionId: row.prediction_id,
    label: row.label as Label,
    actor: row.actor,
    createdAt: row.created_at,
    undoneAt: row.undone_at,
  };
}

export function predictionsRepository(db: Kysely<Schema>, dialect: Dialect) {
  async function get(id: string): Promise<PredictionRow | undefined> {
    const row = await db.selectFrom('predictions').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toPrediction(row);
  }

  /** Reads the prediction inside `trx`, locking it where the dialect has row locks (SQLite runs one writer). */
  async function lockPrediction(trx: Kysely<Schema>, id: string): Promise<Selectable<PredictionsTable>> {
    const row = await trx
      .selectFrom('predictions')
      .selectAll()
      .where('id', '=', id)
      .$if(dialect !== 'sqlite', (query) => query.forUpdate())
      .executeTakeFirst();
    if (!row) throw new NotFoundError('prediction', id);
    return row;
  }

  async function setValidated(trx: Kysely<Schema>, row: Selectable<PredictionsTable>, label: string | null, at: string | null) {
    await trx.updateTable('predictions').set({ validated_label: label, validated_at: at }).where('id', '=', row.id).execute();
    return toPrediction({ ...row, validated_label: label, validated_at: at });
  }

  const randomOrder = dialect === 'mysql' ? sql`rand()` : sql`random()`;

  /** The latest unvalidated prediction of each photo that needs a label, minus the photos `actor` skipped. */
  const pendingReview = (actor: string | null) =>
    db
      .selectFrom('predictions as p')
      .innerJoin('images as i', 'i.hash', 'p.image_hash')
      .where('p.validated_label', 'is', null)
      .where('i.label', 'is', null)
      .where('i.deleted_at', 'is', null)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('predictions as other')
              .select('other.id')
              .whereRef('other.image_hash', '=', 'p.image_hash')
              .where((inner) =>
                inner.or([
                  inner('other.validated_label', 'is not', null),
                  inner('other.created_at', '>', inner.ref('p.created_at')),
                  inner.and([inner('other.created_at', '=', inner.ref('p.created_at')), inner('other.id', '>', inner.ref('p.id'))]),
                ]),
              ),
          ),
        ),
      )
      .$if(actor !== null, (query) =>
        query.where((eb) =>
          eb.not(eb.exists(eb.selectFrom('review_skips as s').select('s.image_hash').whereRef('s.image_hash', '=', 'p.image_hash').where('s.actor', '=', actor!))),
        ),
      );

  return {
    get,

    async create(prediction: NewPrediction): Promise<PredictionRow> {
      const id = newId('prd');
      const row = {
        id,
        image_hash: prediction.imageHash,
        model_id: prediction.modelId,
        label: prediction.label,
        confidence: prediction.confidence,
        probabilities: predictionProbabilitiesDocument.write(prediction.probabilities, probabilitiesColumn(id)),
        latency_ms: prediction.latencyMs,
        created_at: nowIso(),
        validated_label: null,
        validated_at: null,
      };
      await db.insertInto('predictions').values(row).execute();
      return toPrediction(row);
    },

    /** Newest first. */
    async list({ validated, label, modelId, since, until, limit, offset }: PredictionFilter): Promise<Page<PredictionRow>> {
      let query = db.selectFrom('predictions');
      if (validated !== undefined) query = query.where('validated_label', validated ? 'is not' : 'is', null);
      if (label) query = query.where('label', '=', label);
      if (modelId) query = query.where('model_id', '=', modelId);
      if (since) query = query.where('created_at', '>=', normalizeTime(since));
      if (until) query = query.where('created_at', '<', normalizeTime(until));
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute(),
        query.select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toPrediction), total: toNumber(count.total) };
    },

    /** Records a user's label; the history keeps every change. Repeating the current label changes nothing. */
    async validate(id: string, { label, actor }: { label: Label; actor: string }): Promise<PredictionRow> {
      return withConflictRetry(db, async (trx) => {
        const row = await lockPrediction(trx, id);
        if (row.validated_label === label) return toPrediction(row);
        const { highest } = await trx
          .selectFrom('validations')
          .select((eb) => eb.fn.max('sequence').as('highest'))
          .where('prediction_id', '=', id)
          .executeTakeFirstOrThrow();
        const createdAt = nowIso();
        await trx
          .insertInto('validations')
          .values({
            id: newId('val'),
            prediction_id: id,
            sequence: toNumber(highest) + 1,
            label,
            actor,
            created_at: createdAt,
            undone_at: null,
          })
          .execute();
        return setValidated(trx, row, label, createdAt);
      });
    },

    /** Withdraws the latest change and restores the label before it (none if it was the first). */
    async undoValidation(id: string): Promise<PredictionRow> {
      return withConflictRetry(db, async (trx) => {
        const row = await lockPrediction(trx, id);
        const [latest, previous] = await trx
          .selectFrom('validations')
          .selectAll()
          .where('prediction_id', '=', id)
          .where('undone_at', 'is', null)
          .orderBy('sequence', 'desc')
          .limit(2)
          .execute();
        if (!latest) {
          throw new CatdogError('nothing_to_undo', `Prediction ${id} has no validation to undo.`, 409, { id });
        }
        await trx.updateTable('validations').set({ undone_at: nowIso() }).where('id', '=', latest.id).execute();
        return setValidated(trx, row, previous?.label ?? null, previous?.created_at ?? null);
      });
    },

    /** Every change in the order it was made, undone ones included. */
    async history(id: string): Promise<ValidationRow[]> {
      const rows = await db.selectFrom('validations').selectAll().where('prediction_id', '=', id).orderBy('sequence').execute();
      return rows.map(toValidation);
    },

    /**
     * Photos waiting for a person's label, one item per photo (its latest prediction): unlabelled, in the data
     * set, never validated, and not skipped by `actor`. `uncertain` ranks by the serving model's stored score of
     * the photo (closest to a coin flip first); photos it has not scored yet follow, by their prediction's
     * confidence.
     */
    async reviewQueue({ actor, servingModelId, strategy, exclude = [], limit }: ReviewQueueQuery): Promise<PredictionRow[]> {
      let query = pendingReview(actor).selectAll('p');
      if (exclude.length > 0) query = query.where('p.id', 'not in', exclude);
      if (strategy === 'uncertain') {
        query = query
          .orderBy(sql`case when i.p_dog_model_id = ${servingModelId} then 0 else 1 end`)
          .orderBy(sql`case when i.p_dog_model_id = ${servingModelId} then abs(i.p_dog - 0.5) end`)
          .orderBy('p.confidence')
          .orderBy('p.created_at')
          .orderBy('p.id');
      } else if (strategy === 'oldest') query = query.orderBy('p.created_at').orderBy('p.id');
      else query = query.orderBy(randomOrder);
      const rows = await query.limit(limit).execute();
      return rows.map(toPrediction);
    },

    /** How many photos wait in `actor`'s review queue, and how many of the others they skipped. */
    async reviewCounts(actor: string): Promise<{ pending: number; skipped: number }> {
      const [pending, skipped] = await Promise.all([
        pendingReview(actor).select((eb) => eb.fn.countAll().as('total')).executeTakeFirstOrThrow(),
        pendingReview(null)
          .where((eb) => eb.exists(eb.selectFrom('review_skips as s').select('s.image_hash').whereRef('s.image_hash', '=', 'p.image_hash').where('s.actor', '=', actor)))
          .select((eb) => eb.fn.countAll().as('total'))
          .executeTakeFirstOrThrow(),
      ]);
      return { pending: toNumber(pending.total), skipped: toNumber(skipped.total) };
    },

    /** `actor` does not want to see this photo in their queue again (others still do). */
    async skipForReview(actor: string, imageHash: string): Promise<void> {
      const insert = db.insertInto('review_skips').values({ actor, image_hash: imageHash, created_at: nowIso() });
      await (dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.columns(['actor', 'image_hash']).doNothing())).execute();
    },

    /** Puts every photo `actor` skipped back into their queue; returns how many. */
    async clearReviewSkips(actor: string): Promise<number> {
      const result = await db.deleteFrom('review_skips').where('actor', '=', actor).executeTakeFirst();
      return toNumber(result.numDeletedRows);
    },

    /** Unvalidated predictions of the photos the review queue holds, for scoring them with the serving model. */
    async pendingImageHashes(limit: number, unscoredBy: string): Promise<string[]> {
      const rows = await pendingReview(null)
        .where((eb) => eb.or([eb('i.p_dog_model_id', 'is', null), eb('i.p_dog_model_id', '!=', unscoredBy)]))
        .select('p.image_hash')
        .orderBy('p.created_at')
        .limit(limit)
        .execute();
      return rows.map((row) => row.image_hash);
    },

    /** How many predictions carry a user's label given at or after `since`. */
    async countValidatedSince(since: string): Promise<number> {
      const { total } = await db
        .selectFrom('predictions')
        .select((eb) => eb.fn.countAll().as('total'))
        .where('validated_at', '>=', normalizeTime(since))
        .executeTakeFirstOrThrow();
      return toNumber(total);
    },
  };
}

export type PredictionsRepository = ReturnType<typeof predictionsRepository>;
