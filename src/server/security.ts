import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
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
}

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

/**
 * A token bucket per client: `burst` requests at once, refilled at `requestsPerMinute`. Over the limit the
 * answer is 429 `rate_limited` with Retry-After in whole seconds.
 */
export function rateLimiter(limit: RateLimit, keyOf: (c: Context) => string = clientKey, now: () => number = Date.now): MiddlewareHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = limit.requestsPerMinute / 60_000;
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
      const retryAfter = Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
      c.header('Retry-After', String(retryAfter));
      return errorJson(c, 429, 'rate_limited', `too many requests: at most ${limit.requestsPerMinute} per minute (bursts of ${limit.burst}); retry in ${retryAfter} s`);
    }
    buckets.set(key, { tokens: tokens - 1, at: time });
    if (buckets.size > MAX_TRACKED_CLIENTS) buckets.delete(buckets.keys().next().value!);
    return next();
  };
}
