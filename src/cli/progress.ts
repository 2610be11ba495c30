import cliProgress from 'cli-progress';

export interface ProgressReporter {
  start(label: string, total: number): void;
  update(done: number, fields?: Record<string, string>): void;
  stop(): void;
}

/**
 * A bar on a terminal; on CI or when piped, one line every 10% so logs stay readable. Always on stderr, so
 * `--json` output on stdout is never mixed with progress.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (stream.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      start(label, total) {
        bar?.stop();
        bar = new cliProgress.SingleBar(
          { stream, format: `${label.padEnd(18)} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} {info}`, hideCursor: true, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0, { info: '' });
      },
      update(done, fields) {
        bar?.update(done, { info: fields ? Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ') : '' });
      },
      stop() {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  let current = { label: '', total: 0, lastDecile: -1 };
  return {
    start(label, total) {
      current = { label, total, lastDecile: -1 };
    },
    update(done, fields) {
      const decile = current.total > 0 ? Math.floor((done / current.total) * 10) : 10;
      if (decile === current.lastDecile && !fields) return;
      current.lastDecile = decile;
      const extra = fields ? ` ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ')}` : '';
      stream.write(`${current.label}: ${done}/${current.total}${extra}\n`);
    },
    stop() {},
  };
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}
