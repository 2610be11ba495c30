import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { allows } from '../auth/index.js';
import { errorJson } from './errors.js';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** On every response, errors and static files included: the UI never needs inline code, so nothing may run inline. */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  c.res.headers.set('X-Content-Type-Options', 'nosniff');
  c.res.headers.set('X-Frame-Options', 'DENY');
  // Not no-referrer: browsers then send `Origin: null` on the UI's own POSTs, which the CSRF check must refuse.
  c.res.headers.set('Referrer-Policy', 'same-origin');
};

export interface RateLimit {
  /** Sustained rate; 0 turns limiting off. */
  requestsPerMinute: number;
  burst: number;
  /**
   * Tokens each photo the request had refused (`image_*` errors: a scan bomb, a corrupt or oversized file) takes
   * besides the request's own one; 0 or absent: none. A refused photo costs the server work a client can make it
   * repeat at will, so a client sending nothing else runs dry after a few and then waits.
   */
  refusedImageCost?: number;
}

declare module 'hono' {
  interface ContextVariableMap {
    /** Photos of this request refused as unusable, set by the upload routes for the rate limiter's penalty. */
    refusedImages: number | undefined;
  }
}

/** Tells the rate limiter that `count` photos of this request were refused (see `RateLimit.refusedImageCost`). */
export const countRefusedImages = (c: Context, count: number): void => {
  c.set('refusedImages', (c.get('refusedImages') ?? 0) + count);
};

/** Beyond this many clients the oldest buckets are forgotten: a flood of new addresses cannot exhaust memory. */
const MAX_TRACKED_CLIENTS = 10_000;

/** The peer address of the connection (behind a reverse proxy on this machine: a loopback address). */
export function socketAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
}

export const isLoopbackAddress = (address: string): boolean => address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');

/**
 * The client's address, for limits. A request that arrives over loopback with X-Forwarded-For came through a
 * reverse proxy on this machine (the recipe in docs/security.md): the last address in it is the one the proxy
 * saw, so callers behind the proxy do not share one bucket. From any other peer the header is ignored: a remote
 * caller could write anything there.
 */
export function clientAddress(c: Context): string {
  const socket = socketAddress(c) ?? 'unknown';
  if (!isLoopbackAddress(socket)) return socket;
  const forwarded = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
  return forwarded || socket;
}

/** A signed-in caller is limited per token (wherever it connects from), anyone else per address. */
export const clientKey = (c: Context): string => {
  const principal = c.get('principal');
  return principal?.tokenId ? `token:${principal.tokenId}` : `ip:${clientAddress(c)}`;
};

/** How long a 429 is held back at most: a client that must wait anyway loses nothing by hearing it later. */
export const RATE_LIMITED_HOLD_MS = 1_000;

/**
 * A token bucket per client: `burst` requests at once, refilled at `requestsPerMinute`. Over the limit the
 * answer is 429 `rate_limited`, held back for `holdMs` (or until a token is due, if sooner) and then sent with the
 * rest of the wait in Retry-After (whole seconds, 0 when none is left) and the connection closed: the request's
 * body is left unread, where keeping the connection would mean reading it to its end. A client that ignores
 * Retry-After (an attack loop posting hundreds of KB) thus gets about one answer per request in flight per second,
 * instead of making the server read and refuse hundreds a second. Refused photos
 * sent by a viewer or an anonymous caller take `refusedImageCost` tokens each on top, down to at most `burst` tokens in debt, so a client that sends only
 * refused photos waits at most (burst + 1) / rate for its next request, while one bad photo among good ones only
 * spends part of the burst.
 */
export function rateLimiter(
  limit: RateLimit,
  keyOf: (c: Context) => string = clientKey,
  now: () => number = Date.now,
  holdMs = RATE_LIMITED_HOLD_MS,
): MiddlewareHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = limit.requestsPerMinute / 60_000;
  const refusedImageCost = limit.refusedImageCost ?? 0;
  return async (c, next) => {
    if (limit.requestsPerMinute === 0) return next();
    const key = keyOf(c);
    const time = now();
    const previous = buckets.get(key);
    const tokens = previous ? Math.min(limit.burst, previous.tokens + (time - previous.at) * perMs) : limit.burst;
    // Re-inserting keeps the map in least-recently-seen order, so the eviction below drops idle clients.
    buckets.delete(key);
    if (tokens < 1) {
      buckets.set(key, { tokens, at: time });
      const waitMs = (1 - tokens) / perMs;
      const heldMs = Math.min(holdMs, waitMs);
      if (heldMs > 0) await sleep(heldMs);
      const retryAfter = Math.ceil((waitMs - heldMs) / 1000);
      c.header('Retry-After', String(retryAfter));
      c.header('Connection', 'close');
      return errorJson(c, 429, 'rate_limited', `too many requests: at most ${limit.requestsPerMinute} per minute (bursts of ${limit.burst}, refused photos count more); retry in ${retryAfter} s`);
    }
    buckets.set(key, { tokens: tokens - 1, at: time });
    if (buckets.size > MAX_TRACKED_CLIENTS) buckets.delete(buckets.keys().next().value!);
    await next();
    // Curators and admins label photos for a living, refused files included (a folder with a few broken ones): the
    // penalty is for the clients an attack comes from, viewers and anonymous callers.
    const trusted = allows(c.get('principal')?.role, 'curator');
    const penalty = trusted ? 0 : (c.get('refusedImages') ?? 0) * refusedImageCost;
    // The bucket as it is now: other requests of the same client may have spent from it meanwhile.
    const bucket = buckets.get(key);
    if (penalty > 0 && bucket) bucket.tokens = Math.max(-limit.burst, bucket.tokens - penalty);
  };
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** A host name or address without port, brackets, trailing dot or case: `[::1]:8080` → `::1`. */
export function bareHostName(host: string): string {
  const trimmed = host.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(trimmed);
  if (bracketed) return bracketed[1]!;
  const withoutPort = trimmed.split(':').length === 2 ? trimmed.slice(0, trimmed.lastIndexOf(':')) : trimmed;
  return withoutPort.replace(/\.$/, '');
}

/**
 * The names a request's Host may carry: this machine's loopback names, the address the server binds, and
 * `configured` (`server.allowedHosts`, e.g. the public name a reverse proxy passes on). Bound to every interface
 * (0.0.0.0, ::), the machine's host name and its interface addresses too, so it answers when reached directly
 * by address or name; a DNS name pointing at it (DNS rebinding) still has to be listed. `*` allows any.
 */
export function allowedHostNames(boundHost: string, configured: readonly string[]): ReadonlySet<string> | 'any' {
  if (configured.includes('*')) return 'any';
  const names = [...LOOPBACK_NAMES, boundHost, ...configured];
  if (WILDCARD_HOSTS.has(bareHostName(boundHost))) {
    names.push(os.hostname());
    for (const addresses of Object.values(os.networkInterfaces())) names.push(...(addresses ?? []).map((address) => address.address));
  }
  return new Set(names.map(bareHostName));
}

/**
 * Refuses a request whose Host (or X-Forwarded-Host) is not an allowed name with 421 `host_not_allowed`: a web
 * page whose DNS name was rebound to this machine reaches the server with its own name in Host, and would
 * otherwise read answers meant for local callers.
 */
export function hostGuard(allowed: ReadonlySet<string> | 'any'): MiddlewareHandler {
  return async (c, next) => {
    if (allowed === 'any') return next();
    for (const header of ['host', 'x-forwarded-host']) {
      const value = c.req.header(header);
      if (value === undefined && header === 'x-forwarded-host') continue;
      if (value === undefined || !allowed.has(bareHostName(value))) {
        return errorJson(
          c,
          421,
          'host_not_allowed',
          `this server does not answer to ${header === 'host' ? 'Host' : 'X-Forwarded-Host'} ${JSON.stringify(value ?? '')}: add the name to server.allowedHosts if it is meant to reach catdog`,
        );
      }
    }
    return next();
  };
}
