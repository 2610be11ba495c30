/**
 * Every error a user can act on is a CatdogError: a stable machine-readable `code`, a message that says
 * what to do, and the HTTP status the API answers with. Anything else reaching the surface is a bug (500).
 */
export class CatdogError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: number = 400,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CatdogError';
  }
}

export class NotFoundError extends CatdogError {
  constructor(what: string, id: string | number) {
    super('not_found', `${what} ${id} does not exist`, 404, { what, id });
  }
}
