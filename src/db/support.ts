import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export const nowIso = (): string => new Date().toISOString();

/** Text ids such as `run_3f9a…`: the prefix tells a reader what an id in a log or URL points at. */
export function newId(prefix: 'run' | 'mdl' | 'prd' | 'val'): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

/** PostgreSQL returns bigint aggregates as strings and MySQL returns SUM as a decimal string. */
export const toNumber = (value: string | number | bigint | null | undefined): number => Number(value ?? 0);

/** Accepts any date string `Date` understands and returns the stored format, so text comparison orders times. */
export function normalizeTime(value: string): string {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new TypeError(`not a date: ${value}`);
  return time.toISOString();
}

type NumberedColumn = ['dataset_versions', 'id'] | ['models', 'version'] | ['model_promotions', 'id'];

/** max + 1 of a user-visible counter; only safe inside `withConflictRetry`, which settles concurrent writers. */
export async function nextNumber(trx: Kysely<Schema>, [table, column]: NumberedColumn): Promise<number> {
  const { rows } = await sql<{ highest: number | string | null }>`
    select max(${sql.ref(column)}) as highest from ${sql.table(table)}`.execute(trx);
  return toNumber(rows[0]?.highest) + 1;
}

const retryableCodes = new Set([
  '23505', // PostgreSQL unique_violation
  '40001', // PostgreSQL serialization_failure
  '40P01', // PostgreSQL deadlock_detected
  'ER_DUP_ENTRY',
  'ER_LOCK_DEADLOCK',
  'SQLITE_CONSTRAINT_PRIMARYKEY',
  'SQLITE_CONSTRAINT_UNIQUE',
  // A SQLite transaction that read before another process (a second worker, the CLI) wrote cannot upgrade to a
  // write: SQLite refuses at once, without waiting out busy_timeout. A new attempt reads afresh.
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
]);

function isKeyConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && retryableCodes.has(code);
}

/**
 * Runs a transaction that reads, then writes what it read decided, again with a fresh view when a concurrent
 * writer made it lose: two writers numbering rows with `nextNumber` read the same max and the unique key rejects
 * one, a PostgreSQL or MariaDB deadlock or serialization failure, a SQLite read snapshot another process wrote past.
 * No table locks, which differ per dialect.
 */
export async function withConflictRetry<T>(db: Kysely<Schema>, work: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
  const attempts = 8;
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (attempt >= attempts || !isKeyConflict(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }
}
