/**
 * Errors that mean "the database is not answering right now" rather than "this query is wrong": the API
 * answers them 503 `database_unavailable` (retry later) instead of 500, and the pools reconnect by themselves.
 */
const UNAVAILABLE_CODES = new Set([
  // PostgreSQL: connection exceptions (class 08), operator intervention (57P01 admin_shutdown when a backend is
  // terminated, 57P02 crash_shutdown, 57P03 cannot_connect_now), too many connections.
  '08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300',
  // MySQL/MariaDB client and server.
  'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ECONNRESET',
  // Sockets, any dialect.
  'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  // SQLite: another process holds the write lock beyond busy_timeout, or the file went away.
  'SQLITE_BUSY', 'SQLITE_CANTOPEN',
]);

/** What drivers throw without a code when the connection is gone or was closed at shutdown. */
const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /not queryable/i,
  /timeout exceeded when trying to connect/i,
  /is not currently accepting connections/i,
  /driver has already been destroyed/i,
  /the database connection is not open/i,
];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}
