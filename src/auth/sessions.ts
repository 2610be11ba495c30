import { randomBytes } from 'node:crypto';
import type { Database } from '../db/index.js';
import { noteUse, principalOf, sha256Hex, type Principal } from './tokens.js';

export const SESSION_COOKIE = 'catdog_session';
const SESSION_ID_BYTES = 32;

/** Opens a web session for a signed-in token; the cookie value is returned, only its sha256 is stored. */
export async function openSession(db: Pick<Database, 'tokens'>, principal: Principal, ttlHours: number): Promise<{ cookieValue: string; expiresAt: Date }> {
  if (!principal.tokenId) throw new TypeError('only a token can open a session');
  // Sign-ins are rare, so they also sweep sessions that expired unused (no timer to run).
  await db.tokens.deleteExpiredSessions();
  const cookieValue = randomBytes(SESSION_ID_BYTES).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlHours * 3_600_000);
  await db.tokens.createSession({ idHash: sha256Hex(cookieValue), tokenId: principal.tokenId, expiresAt: expiresAt.toISOString() });
  return { cookieValue, expiresAt };
}

export async function sessionPrincipal(db: Pick<Database, 'tokens'>, cookieValue: string): Promise<Principal | undefined> {
  const token = await db.tokens.findSessionToken(sha256Hex(cookieValue));
  if (!token) return undefined;
  noteUse(db, token);
  return principalOf(token, 'session');
}

export async function closeSession(db: Pick<Database, 'tokens'>, cookieValue: string): Promise<void> {
  await db.tokens.deleteSession(sha256Hex(cookieValue));
}
