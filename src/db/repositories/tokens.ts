import type { Kysely, Selectable } from 'kysely';
import type { Schema } from '../schema.js';
import { nowIso } from '../support.js';

/**
 * API tokens and the web sessions signed in with them. Only sha256 digests of secrets are stored, so reading
 * the database (a backup, a replica) never yields a usable credential.
 */
export interface AccessTokensTable {
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface SessionsTable {
  id_hash: string;
  token_id: string;
  created_at: string;
  expires_at: string;
}

type AccessSchema = {
  access_tokens: AccessTokensTable;
  sessions: SessionsTable;
};

export interface TokenRow {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface NewToken {
  id: string;
  name: string;
  role: string;
  secretHash: string;
}

const toToken = (row: Selectable<AccessTokensTable>): TokenRow => ({
  id: row.id,
  name: row.name,
  role: row.role,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at,
});

export function tokensRepository(schemaDb: Kysely<Schema>) {
  const db = schemaDb.withTables<AccessSchema>();

  return {
    async create(token: NewToken): Promise<TokenRow> {
      const row = {
        id: token.id,
        name: token.name,
        role: token.role,
        secret_hash: token.secretHash,
        created_at: nowIso(),
        last_used_at: null,
        revoked_at: null,
      };
      await db.insertInto('access_tokens').values(row).execute();
      return toToken(row);
    },

    /** Oldest first, revoked ones included (they stay for the audit trail). */
    async list(): Promise<TokenRow[]> {
      const rows = await db.selectFrom('access_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toToken);
    },

    /** The live (not revoked) token whose secret hashes to `secretHash`. */
    async findActiveBySecretHash(secretHash: string): Promise<TokenRow | undefined> {
      const row = await db
        .selectFrom('access_tokens')
        .selectAll()
        .where('secret_hash', '=', secretHash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return row && toToken(row);
    },

    async touch(id: string, at: string = nowIso()): Promise<void> {
      await db.updateTable('access_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
    },

    /** Returns false when there is no such live token; its sessions end with it. */
    async revoke(id: string): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const result = await trx.updateTable('access_tokens').set({ revoked_at: nowIso() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
        await trx.deleteFrom('sessions').where('token_id', '=', id).execute();
        return Number(result.numUpdatedRows) > 0;
      });
    },

    async createSession(session: { idHash: string; tokenId: string; expiresAt: string }): Promise<void> {
      await db
        .insertInto('sessions')
        .values({ id_hash: session.idHash, token_id: session.tokenId, created_at: nowIso(), expires_at: session.expiresAt })
        .execute();
    },

    /** The token behind a live session: not expired, and its token not revoked. */
    async findSessionToken(idHash: string, now: string = nowIso()): Promise<TokenRow | undefined> {
      const row = await db
        .selectFrom('sessions')
        .innerJoin('access_tokens', 'access_tokens.id', 'sessions.token_id')
        .selectAll('access_tokens')
        .where('sessions.id_hash', '=', idHash)
        .where('sessions.expires_at', '>', now)
        .where('access_tokens.revoked_at', 'is', null)
        .executeTakeFirst();
      return row && toToken(row);
    },

    async deleteSession(idHash: string): Promise<void> {
      await db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
    },

    async deleteExpiredSessions(now: string = nowIso()): Promise<number> {
      const result = await db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type TokensRepository = ReturnType<typeof tokensRepository>;
