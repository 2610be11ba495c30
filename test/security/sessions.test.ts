import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSession, createToken, openSession, revokeToken, sessionPrincipal } from '../../src/auth/index.js';
import { authenticateSecret } from '../../src/auth/tokens.js';
import { createTestApp, type TestApp } from '../support/app.js';

describe('tokens and sessions on the database', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await app?.dispose();
  });

  const sessionRows = async () => Number((await app.db.kysely.withTables<{ sessions: { id_hash: string } }>().selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  it('a session expires, is swept at the next sign-in, and dies with its revoked token', async () => {
    const { token, secret } = await createToken(app.db, 'curator', 'sessions');
    const principal = (await authenticateSecret(app.db, secret))!;
    expect(principal).toMatchObject({ tokenId: token.id, role: 'curator', via: 'token' });

    const shortLived = await openSession(app.db, principal, 0.5 / 3600);
    expect(await sessionPrincipal(app.db, shortLived.cookieValue)).toMatchObject({ tokenId: token.id, via: 'session' });
    await sleep(700);
    expect(await sessionPrincipal(app.db, shortLived.cookieValue)).toBeUndefined();
    expect(await sessionRows()).toBe(1);

    const lasting = await openSession(app.db, principal, 1);
    expect(await sessionRows()).toBe(1);
    expect(await sessionPrincipal(app.db, lasting.cookieValue)).toBeDefined();
    const other = await openSession(app.db, principal, 1);
    await closeSession(app.db, other.cookieValue);
    expect(await sessionPrincipal(app.db, other.cookieValue)).toBeUndefined();

    await revokeToken(app.db, token.id);
    expect(await sessionPrincipal(app.db, lasting.cookieValue)).toBeUndefined();
    expect(await authenticateSecret(app.db, secret)).toBeUndefined();
    await expect(revokeToken(app.db, token.id)).rejects.toMatchObject({ code: 'not_found' });
  });
});
