import { createHash, randomBytes } from 'node:crypto';
import type { Database, TokenRow } from '../db/index.js';
import { CatdogError } from '../errors.js';
import { isRole, ROLES, type Role } from './roles.js';

const TOKEN_PREFIX = 'catdog_';
const SECRET_BYTES = 32;
/** A token used again within this window does not rewrite its last-used time: no database write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Who is making a request, and through what. */
export interface Principal {
  tokenId: string | null;
  name: string;
  role: Role;
  via: 'token' | 'session' | 'anonymous';
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** `catdog_` + base64url of 32 random bytes: greppable in leaked logs, and unguessable. */
export const newSecret = (): string => `${TOKEN_PREFIX}${randomBytes(SECRET_BYTES).toString('base64url')}`;

export function parseRole(value: string): Role {
  if (!isRole(value)) throw new CatdogError('invalid_role', `unknown role "${value}": use one of ${ROLES.join(', ')}`, 400, { role: value });
  return value;
}

/** Creates a token; the secret is returned only here and never stored (only its sha256 is). */
export async function createToken(db: Pick<Database, 'tokens'>, role: Role, name?: string): Promise<{ token: TokenRow; secret: string }> {
  const secret = newSecret();
  const id = `tok_${randomBytes(8).toString('hex')}`;
  const token = await db.tokens.create({ id, name: name?.trim() || `${role} token`, role, secretHash: sha256Hex(secret) });
  return { token, secret };
}

export async function revokeToken(db: Pick<Database, 'tokens'>, id: string): Promise<void> {
  if (!(await db.tokens.revoke(id))) {
    throw new CatdogError('not_found', `no live token ${id}: see catdog token list (revoked tokens stay listed)`, 404, { id });
  }
}

export function principalOf(token: TokenRow, via: Principal['via']): Principal {
  // A row with a role this version does not know (written by a newer one) gets no rights rather than guessed ones.
  if (!isRole(token.role)) throw new CatdogError('forbidden', `token ${token.id} has the unknown role "${token.role}"`, 403);
  return { tokenId: token.id, name: token.name, role: token.role, via };
}

/** The principal behind a bearer secret, or undefined when it is unknown or revoked. */
export async function authenticateSecret(db: Pick<Database, 'tokens'>, secret: string): Promise<Principal | undefined> {
  if (!secret.startsWith(TOKEN_PREFIX)) return undefined;
  const token = await db.tokens.findActiveBySecretHash(sha256Hex(secret));
  if (!token) return undefined;
  noteUse(db, token);
  return principalOf(token, 'token');
}

export function noteUse(db: Pick<Database, 'tokens'>, token: TokenRow): void {
  const last = token.lastUsedAt ? Date.parse(token.lastUsedAt) : 0;
  if (Date.now() - last < LAST_USED_RESOLUTION_MS) return;
  // Bookkeeping only: a failed write must neither fail nor delay the request.
  db.tokens.touch(token.id).catch(() => undefined);
}
