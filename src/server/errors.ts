import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import type { Logger } from '../app/logger.js';
import { isDatabaseUnavailable } from '../db/index.js';
import { CatdogError } from '../errors.js';

export interface ErrorBody {
  error: { code: string; message: string; file?: string };
}

/** Statuses hono itself raises (body limit, media-type gate, malformed bodies) under our stable codes. */
const HTTP_EXCEPTION_CODES: Record<number, string> = {
  400: 'invalid_request',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

export function errorJson(c: Context, status: ContentfulStatusCode, code: string, message: string, file?: string): Response {
  const body: ErrorBody = { error: file === undefined ? { code, message } : { code, message, file } };
  return c.json(body, status);
}

/** `field: problem` for each issue, so a client knows exactly which input to fix. */
export function describeZodError(error: ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`).join('; ');
}

export function validationHook(result: { success: boolean; error?: unknown }, c: Context): Response | undefined {
  if (result.success) return undefined;
  return errorJson(c, 400, 'invalid_request', describeZodError(result.error as ZodError));
}

export function errorHandler(logger: Logger) {
  return (error: Error, c: Context): Response => {
    if (error instanceof CatdogError) {
      const file = typeof error.details?.file === 'string' ? error.details.file : undefined;
      return errorJson(c, error.httpStatus as ContentfulStatusCode, error.code, error.message, file);
    }
    if (error instanceof HTTPException) {
      const code = HTTP_EXCEPTION_CODES[error.status] ?? (error.status >= 500 ? 'internal' : 'http_error');
      return errorJson(c, error.status, code, error.message || code.replaceAll('_', ' '));
    }
    if (isDatabaseUnavailable(error)) {
      logger.warn({ err: error, method: c.req.method, path: c.req.path }, 'the database did not answer');
      return errorJson(c, 503, 'database_unavailable', 'the database is not answering right now; retry in a few seconds');
    }
    logger.error({ err: error, method: c.req.method, path: c.req.path }, 'unhandled error while serving a request');
    return errorJson(c, 500, 'internal', 'internal error: the server logged the details');
  };
}

export const notFoundHandler = (c: Context): Response => errorJson(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`);
