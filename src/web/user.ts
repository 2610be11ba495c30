import type { Context } from 'hono';
import { allows, type Access, type Role } from '../auth/index.js';
import type { AccessResolver } from '../server/auth-middleware.js';

/** Who a page is rendered for, and what the server will let them do: pages offer only that. */
export interface WebUser {
  /** The token's name; undefined for an anonymous viewer (`server.localViewer`, `server.anonymousViewer`). */
  name: string | undefined;
  role: Role;
  /** Signed in through the sign-in page: a session that Sign out ends. */
  session: boolean;
  /** The role a request needs, from the same table the server enforces, so a page never guesses. */
  needs(method: string, path: string): Access;
}

/** Only requests the middleware let through reach a page, so a principal is always set there. */
export function webUser(c: Context, accessFor: AccessResolver): WebUser {
  const principal = c.get('principal');
  return {
    name: principal && principal.via !== 'anonymous' ? principal.name : undefined,
    role: principal?.role ?? 'viewer',
    session: principal?.via === 'session',
    needs: accessFor,
  };
}

export const may = (user: WebUser, method: string, path: string): boolean => allows(user.role, user.needs(method, path));
