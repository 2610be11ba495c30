import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, MysqlDialect, PostgresDialect, SqliteDialect, sql, type Dialect as KyselyDialect } from 'kysely';
import { createPool as createMysqlPool } from 'mysql2';
import pg from 'pg';
import { CatdogError } from '../errors.js';
import { migrations } from './migrations.js';
import { datasetsRepository, type DatasetsRepository } from './repositories/datasets.js';
import { imagesRepository, type ImagesRepository } from './repositories/images.js';
import { jobsRepository, type JobsRepository } from './repositories/jobs.js';
import { modelsRepository, type ModelsRepository } from './repositories/models.js';
import { predictionsRepository, type PredictionsRepository } from './repositories/predictions.js';
import { runsRepository, type RunsRepository } from './repositories/runs.js';
import { tokensRepository, type TokensRepository } from './repositories/tokens.js';
import type { Schema } from './schema.js';
import type { Dialect } from './support.js';

export interface DatabaseCheck {
  ok: true;
  dialect: Dialect;
  version: string;
  latencyMs: number;
}

export interface Database {
  kysely: Kysely<Schema>;
  dialect: Dialect;
  /** Applies pending migrations and returns their names; an up-to-date database returns []. */
  migrate(): Promise<string[]>;
  /** One round trip; throws `database_unavailable` when the server does not answer. */
  check(): Promise<DatabaseCheck>;
  close(): Promise<void>;
  images: ImagesRepository;
  datasets: DatasetsRepository;
  runs: RunsRepository;
  models: ModelsRepository;
  predictions: PredictionsRepository;
  tokens: TokensRepository;
  jobs: JobsRepository;
}

const connectTimeoutMs = 10_000;
/** Long enough to wait out another process's write (CLI and server share one file), short enough to report. */
const sqliteBusyTimeoutMs = 5_000;

interface Target {
  dialect: Dialect;
  product: string;
  kyselyDialect: KyselyDialect;
  /** Where the data lives, for messages: never contains the password. */
  location: string;
  whatToCheck: string;
}

function invalidUrl(url: string, why: string): CatdogError {
  return new CatdogError(
    'invalid_database_url',
    `Database URL ${redact(url)} ${why}. Use sqlite:/absolute/path.db, sqlite::memory:, postgres://user@host:5432/db or mysql://user@host:3306/db.`,
    400,
    { url: redact(url) },
  );
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

function parseServerUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidUrl(url, 'is not a valid URL');
  }
  if (!parsed.hostname) throw invalidUrl(url, 'names no host');
  return parsed;
}

function serverLocation(parsed: URL, defaultPort: number): string {
  return `${parsed.hostname}:${parsed.port || defaultPort}${parsed.pathname}`;
}

function unavailable(target: Pick<Target, 'dialect' | 'product' | 'location' | 'whatToCheck'>, cause: unknown): CatdogError {
  const reason = cause instanceof Error ? cause.message || (cause as { code?: string }).code || cause.name : String(cause);
  return new CatdogError(
    'database_unavailable',
    `Cannot reach the ${target.product} database at ${target.location} (${reason}). ${target.whatToCheck}`,
    503,
    { dialect: target.dialect, location: target.location, reason },
  );
}

function sqliteTarget(url: string): Target {
  const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (rest === '') throw invalidUrl(url, 'names no file');
  const memory = rest === ':memory:';
  const file = memory ? rest : path.resolve(rest);
  const location = memory ? 'memory' : file;
  const whatToCheck = 'Check that the folder exists or can be created and that this user may write to it.';
  let database: BetterSqlite3.Database;
  try {
    if (!memory) fs.mkdirSync(path.dirname(file), { recursive: true });
    database = new BetterSqlite3(file);
    if (!memory) database.pragma('journal_mode = WAL');
    database.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
    database.pragma('foreign_keys = ON');
  } catch (error) {
    throw unavailable({ dialect: 'sqlite', product: 'SQLite', location, whatToCheck }, error);
  }
  return { dialect: 'sqlite', product: 'SQLite', kyselyDialect: new SqliteDialect({ database }), location, whatToCheck };
}

function postgresTarget(url: string): Target {
  const parsed = parseServerUrl(url);
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  // An idle connection dropped by a server restart must not crash the process; the pool reconnects on demand.
  pool.on('error', () => {});
  // Nor may one cut while lent out: pg reports it on the client as well as to the query in flight (which answers
  // database_unavailable), and the pool listens to idle clients only. The broken client is dropped on release.
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    dialect: 'postgres',
    product: 'PostgreSQL',
    kyselyDialect: new PostgresDialect({ pool }),
    location: serverLocation(parsed, 5432),
    whatToCheck:
      'Check that PostgreSQL is running and reachable from here, and that the URL (CATDOG_DATABASE_URL) has the right host, port, user, password and database.',
  };
}

function mysqlTarget(url: string): Target {
  const parsed = parseServerUrl(url);
  const pool = createMysqlPool({ uri: url, connectTimeout: connectTimeoutMs });
  return {
    dialect: 'mysql',
    product: 'MySQL/MariaDB',
    kyselyDialect: new MysqlDialect({ pool }),
    location: serverLocation(parsed, 3306),
    whatToCheck:
      'Check that MySQL/MariaDB is running and reachable from here, and that the URL (CATDOG_DATABASE_URL) has the right host, port, user, password and database.',
  };
}

function targetFor(url: string): Target {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite':
      return sqliteTarget(url);
    case 'postgres':
    case 'postgresql':
      return postgresTarget(url);
    case 'mysql':
      return mysqlTarget(url);
    default:
      throw invalidUrl(url, scheme ? `has the unsupported scheme "${scheme}:"` : 'has no scheme');
  }
}

const versionQuery = {
  sqlite: sql<{ version: string }>`select sqlite_version() as version`,
  postgres: sql<{ version: string }>`select current_setting('server_version') as version`,
  mysql: sql<{ version: string }>`select version() as version`,
} satisfies Record<Dialect, unknown>;

/**
 * Opens `sqlite:/abs/path.db`, `sqlite::memory:`, `postgres://…`/`postgresql://…` or `mysql://…` (MySQL and
 * MariaDB) and proves the connection with one query, so a wrong URL fails here rather than at first use.
 */
export async function openDatabase(url: string): Promise<Database> {
  const target = targetFor(url);
  const { dialect } = target;
  const kysely = new Kysely<Schema>({ dialect: target.kyselyDialect });

  async function check(): Promise<DatabaseCheck> {
    const started = performance.now();
    try {
      const { rows } = await versionQuery[dialect].execute(kysely);
      return { ok: true, dialect, version: String(rows[0]?.version), latencyMs: performance.now() - started };
    } catch (error) {
      throw unavailable(target, error);
    }
  }

  try {
    await check();
  } catch (error) {
    await kysely.destroy().catch(() => {});
    throw error;
  }

  return {
    kysely,
    dialect,
    check,
    async migrate() {
      const migrator = new Migrator({ db: kysely, provider: { getMigrations: async () => migrations(dialect) } });
      const { error, results = [] } = await migrator.migrateToLatest();
      if (error) {
        const failed = results.find((result) => result.status === 'Error')?.migrationName ?? 'the migration table';
        const reason = error instanceof Error ? error.message : String(error);
        throw new CatdogError('database_migration_failed', `Migrating ${target.location} failed at ${failed}: ${reason}`, 500, {
          migration: failed,
        });
      }
      return results.filter((result) => result.status === 'Success').map((result) => result.migrationName);
    },
    close: () => kysely.destroy(),
    images: imagesRepository(kysely, dialect),
    datasets: datasetsRepository(kysely),
    runs: runsRepository(kysely, dialect),
    models: modelsRepository(kysely),
    predictions: predictionsRepository(kysely, dialect),
    tokens: tokensRepository(kysely),
    jobs: jobsRepository(kysely, dialect),
  };
}
