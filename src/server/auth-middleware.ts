import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { allows, authenticateSecret, closeSession, openSession, SESSION_COOKIE, sessionPrincipal, type Access, type Principal } from '../auth/index.js';
import { isRole, type Role } from '../auth/roles.js';
import { CatdogError } from '../errors.js';
import { CANCEL_JOB_ROLE } from '../jobs/cancel.js';
import { errorJson } from './errors.js';
import { clientAddress, isLoopbackAddress, rateLimiter, socketAddress, type RateLimit } from './security.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who makes the request; undefined until identified, or for an anonymous caller. */
    principal: Principal | undefined;
    /** A credential that was sent but is unusable; refused by `authorize` unless the route is public. */
    credentialProblem: CatdogError | undefined;
  }
}

/** The OpenAPI extension each API operation declares its minimum role in (`createRoute({ 'x-catdog-role': … })`). */
export const ROLE_EXTENSION = 'x-catdog-role';

export interface AccessRule {
  method: string;
  /** OpenAPI-style template: `{param}` matches one segment, a trailing `*` anything below. */
  path: string;
  access: Access;
  /** For the docs; API operations have their OpenAPI summary instead. */
  what?: string;
}

/** Routes outside the OpenAPI document: the web UI, its assets, Prometheus, the API document itself. */
export const NON_API_RULES: readonly AccessRule[] = [
  { method: 'GET', path: '/static/*', access: 'public', what: 'stylesheets, scripts, icons of the UI' },
  { method: 'GET', path: '/signin', access: 'public', what: 'sign-in page' },
  { method: 'POST', path: '/signin', access: 'public', what: 'sign in with a token (opens a session)' },
  { method: 'POST', path: '/signout', access: 'public', what: 'sign out (ends the session)' },
  { method: 'GET', path: '/api/openapi.json', access: 'public', what: 'the OpenAPI document' },
  { method: 'GET', path: '/api/docs', access: 'public', what: 'API reference page' },
  { method: 'GET', path: '/metrics', access: 'viewer', what: 'Prometheus metrics' },
  { method: 'POST', path: '/dataset/versions', access: 'curator', what: 'build a dataset version from the Dataset page' },
  { method: 'POST', path: '/models/{id}/promote', access: 'admin', what: 'promote from the Models page' },
  { method: 'POST', path: '/models/compare', access: 'curator', what: 'score models on a dataset version from the Models page comparison' },
  { method: 'POST', path: '/jobs/{id}/cancel', access: CANCEL_JOB_ROLE, what: 'cancel a waiting or active job from the Jobs page' },
];
/** Every other web page (`/`, `/review`, `/dataset`, …) and fragment is a read: viewer (the fallback below). */

/** Anything not declared: reading needs an account, changing needs the highest role (a forgotten route fails closed). */
const fallbackAccess = (method: string): Access => (SAFE_METHODS.has(method) ? 'viewer' : 'admin');
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface CompiledRule extends AccessRule {
  pattern: RegExp;
}

const compile = (rule: AccessRule): CompiledRule => {
  const escaped = rule.path
    .split(/(\{[^}]+\}|\*$)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return { ...rule, pattern: new RegExp(`^${escaped}$`) };
};

/**
 * Every API operation with its declared role. One that declares none gets the fail-closed fallback (and
 * test/security/access.test.ts names it), so a route added without thinking about access is never open.
 */
export function apiAccessRules(server: OpenAPIHono): AccessRule[] {
  const rules: AccessRule[] = [];
  for (const definition of server.openAPIRegistry.definitions) {
    if (definition.type !== 'route') continue;
    const method = definition.route.method.toUpperCase();
    const declared = (definition.route as Record<string, unknown>)[ROLE_EXTENSION];
    rules.push({ method, path: definition.route.path, access: declared === 'public' || isRole(declared) ? declared : fallbackAccess(method) });
  }
  return rules;
}

/** Every declared route, API and web: the one table the middleware enforces and docs/security.md shows. */
export const accessRules = (server: OpenAPIHono): AccessRule[] => [...apiAccessRules(server), ...NON_API_RULES];

export type AccessResolver = (method: string, path: string) => Access;

export function accessResolver(server: OpenAPIHono): AccessResolver {
  let compiled: CompiledRule[] | undefined;
  return (method, path) => {
    // Routes are registered after the middleware, so the table is built at the first request.
    compiled ??= accessRules(server).map(compile);
    const lookup = method === 'HEAD' ? 'GET' : method;
    // Literal segments outrank parameters (`/review/next` vs `/predictions/{id}`): try rules without one first.
    const rule =
      compiled.find((candidate) => candidate.method === lookup && !candidate.path.includes('{') && candidate.pattern.test(path)) ??
      compiled.find((candidate) => candidate.method === lookup && candidate.pattern.test(path));
    return rule?.access ?? fallbackAccess(lookup);
  };
}

/** `role`: the one the request needs, so the hint creates a token that will work (viewer when not known yet). */
const unauthenticated = (why: string, role: Role = 'viewer') =>
  new CatdogError(
    'unauthenticated',
    `${why}: send "Authorization: Bearer <token>" (an admin creates tokens with: catdog token create --role ${role}), or sign in at /signin`,
    401,
  );

function bearerSecret(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+)$/i.exec(header.trim());
  if (!match) throw unauthenticated('the Authorization header is not "Bearer <token>"');
  return match[1]!;
}

/**
 * Browsers attach the session cookie to any request to this host, whoever's page triggered it; a state change
 * is accepted only when the browser says the page was ours (Origin, else Referer). SameSite=Strict already stops
 * most of this; the check also covers browsers and sibling subdomains it does not.
 */
export function assertSameOrigin(c: Context): void {
  // Set by the browser itself (pages cannot forge it); older browsers fall back to Origin / Referer.
  const fetchSite = c.req.header('sec-fetch-site');
  if (fetchSite === 'same-origin') return;
  if (fetchSite !== undefined && fetchSite !== 'none') throw crossSite();
  const claimed = c.req.header('origin') ?? c.req.header('referer');
  let host: string | undefined;
  try {
    host = claimed && claimed !== 'null' ? new URL(claimed).host : undefined;
  } catch {
    host = undefined;
  }
  const ownHost = c.req.header('x-forwarded-host') ?? c.req.header('host');
  if (!host || host !== ownHost) throw crossSite();
}

const crossSite = () => new CatdogError('csrf_rejected', 'refused a cross-site request: state changes from the web UI must come from its own pages', 403);

const wantsPage = (c: Context): boolean =>
  !c.req.path.startsWith('/api/') && c.req.header('hx-request') === undefined && (c.req.header('accept') ?? '').includes('text/html');

export interface AccessOptions {
  db: Parameters<typeof authenticateSecret>[0];
  anonymousViewer: boolean;
  /** Token-less requests from this machine act as viewer (only meaningful while bound to loopback). */
  localViewer: boolean;
}

export const isLoopbackHost = (host: string): boolean => host === 'localhost' || isLoopbackAddress(host);

/** Headers a reverse proxy adds: a request carrying one came through a proxy, whatever its socket says. */
const isProxyHeader = (name: string): boolean => name === 'forwarded' || name === 'via' || name === 'x-real-ip' || name.startsWith('x-forwarded-');

/**
 * A local, token-less caller (curl on the same machine) — but not a web page from another site that the user's
 * browser is visiting: browsers mark those requests with Sec-Fetch-Site or an Origin of another host. Nor a
 * caller that a reverse proxy on this machine passes on: its socket is loopback too, but it adds Forwarded,
 * X-Forwarded-* or Via (the recipe in docs/security.md sets X-Forwarded-For).
 */
function isLocalCaller(c: Context): boolean {
  const address = socketAddress(c);
  if (!address || !isLoopbackAddress(address)) return false;
  if (Object.keys(c.req.header()).some(isProxyHeader)) return false;
  const fetchSite = c.req.header('sec-fetch-site');
  if (fetchSite && fetchSite !== 'same-origin' && fetchSite !== 'none') return false;
  const origin = c.req.header('origin');
  if (origin && origin !== 'null') {
    try {
      return new URL(origin).host === c.req.header('host');
    } catch {
      return false;
    }
  }
  return origin !== 'null';
}

/**
 * Works out who is calling (bearer token, else session cookie) without refusing anyone yet, so the rate limiter
 * that runs next can key on the caller. An unusable credential is remembered and refused by `authorize`.
 */
export function identify(accessFor: AccessResolver, { db }: AccessOptions): MiddlewareHandler {
  return async (c, next) => {
    let principal: Principal | undefined;
    let problem: CatdogError | undefined;
    // Public routes (health probes, static files) need nobody's identity: no database lookup, so they answer
    // even while the database is down.
    if (accessFor(c.req.method, c.req.path) === 'public') {
      c.set('principal', undefined);
      c.set('credentialProblem', undefined);
      return next();
    }
    try {
      const secret = bearerSecret(c);
      if (secret !== undefined) {
        principal = await authenticateSecret(db, secret);
        if (!principal) problem = unauthenticated('the token is unknown or revoked');
      } else {
        const cookie = getCookie(c, SESSION_COOKIE);
        // An expired session is simply no session: the page sends the visitor to sign in again.
        if (cookie) principal = await sessionPrincipal(db, cookie);
      }
    } catch (error) {
      if (!(error instanceof CatdogError) || error.code !== 'unauthenticated') throw error;
      problem = error;
    }
    c.set('principal', principal);
    c.set('credentialProblem', problem);
    await next();
  };
}

/** Refuses what the caller's role does not cover: 401 without a usable credential, 403 naming the role needed. */
export function authorize(accessFor: AccessResolver, { anonymousViewer, localViewer }: AccessOptions): MiddlewareHandler {
  return async (c, next) => {
    const { method, path } = c.req;
    const needed = accessFor(method, path);
    let principal = c.get('principal');
    if (needed !== 'public') {
      const problem = c.get('credentialProblem');
      if (problem) throw problem;
      const anonymousAllowed = (anonymousViewer && SAFE_METHODS.has(method)) || (localViewer && isLocalCaller(c));
      if (!principal && needed === 'viewer' && anonymousAllowed) {
        principal = { tokenId: null, name: 'anonymous', role: 'viewer', via: 'anonymous' };
        c.set('principal', principal);
      }
      if (!principal) {
        if (wantsPage(c) && SAFE_METHODS.has(method)) return c.redirect(`/signin?next=${encodeURIComponent(c.req.url.slice(new URL(c.req.url).origin.length))}`, 303);
        throw unauthenticated(`${method} ${path} needs the ${needed} role`, needed);
      }
      if (!allows(principal.role, needed)) {
        throw new CatdogError('forbidden', `${method} ${path} needs the ${needed} role; ${principal.name} has the ${principal.role} role`, 403, {
          needed,
          role: principal.role,
        });
      }
    }
    if (principal?.via === 'session' && !SAFE_METHODS.has(method)) assertSameOrigin(c);
    await next();
  };
}

const REDIRECT_BASE = 'http://catdog.invalid';

/**
 * Only local paths: an open redirect after sign-in would hand the freshly signed-in visitor to another site.
 * Browsers drop tabs and newlines from a Location and read `\` as `/`, so `/\t/evil.example` arrives as
 * `//evil.example`: a path with either is refused, and what remains must still resolve to this server.
 */
function localPath(next: string | undefined): string {
  if (!next || !next.startsWith('/') || /[\u0000-\u0020\u007f\\]/.test(next)) return '/';
  const resolved = new URL(next, REDIRECT_BASE);
  return resolved.origin === REDIRECT_BASE && !next.startsWith('//') ? next : '/';
}

const isHttps = (c: Context): boolean => new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';

/** A token and a local path, form-encoded, fit many times over; a larger body is refused before it is read. */
export const SIGN_IN_MAX_BYTES = 8 * 1024;

export interface SessionRouteOptions extends AccessOptions {
  sessionHours: number;
  /** Attempts per client address (`server.signInRateLimit`). */
  signInRateLimit: RateLimit;
  /** The sign-in page, with an error to show when the last attempt failed. */
  renderSignIn: (options: { next: string; error?: string }) => string;
}

/** GET/POST /signin (a token pasted into a form opens an httpOnly, SameSite=Strict session) and POST /signout. */
export function registerSessionRoutes(server: OpenAPIHono, options: SessionRouteOptions): void {
  const { db } = options;
  server.get('/signin', (c) => c.html(options.renderSignIn({ next: localPath(c.req.query('next')) })));

  const signInLimit = rateLimiter(options.signInRateLimit, (c) => `ip:${clientAddress(c)}`);
  const signInBodyLimit = bodyLimit({
    maxSize: SIGN_IN_MAX_BYTES,
    onError: (c) => errorJson(c, 413, 'payload_too_large', `a sign-in form is at most ${SIGN_IN_MAX_BYTES} bytes: send the token and nothing else`),
  });
  server.post('/signin', signInLimit, signInBodyLimit, async (c) => {
    // Sign-in CSRF would log a victim into the attacker's account: same check as any state change.
    assertSameOrigin(c);
    const form = await c.req.parseBody();
    const next = localPath(typeof form.next === 'string' ? form.next : undefined);
    const secret = typeof form.token === 'string' ? form.token.trim() : '';
    const principal = secret ? await authenticateSecret(db, secret) : undefined;
    if (!principal) return c.html(options.renderSignIn({ next, error: 'That token is unknown or revoked.' }), 401);
    const session = await openSession(db, principal, options.sessionHours);
    setCookie(c, SESSION_COOKIE, session.cookieValue, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: isHttps(c),
      path: '/',
      expires: session.expiresAt,
    });
    return c.redirect(next, 303);
  });

  server.post('/signout', async (c) => {
    const cookie = getCookie(c, SESSION_COOKIE);
    if (cookie) {
      assertSameOrigin(c);
      await closeSession(db, cookie);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    return c.redirect('/signin', 303);
  });
}
