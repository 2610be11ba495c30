import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured logs to stderr, so stdout stays clean for `--json` output and progress bars. */
export function createLogger(level = process.env.CATDOG_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}
