import { openApp, type AppContext } from '../app/context.js';
import { loadConfig, type CatdogConfig } from '../config/index.js';
import { createProgress } from './progress.js';

export interface GlobalOptions {
  config?: string;
  verbose?: boolean;
}

/**
 * Opens the app for one command and always closes it, so a command never leaves the database open. Backbones load
 * unchecked: a backbone that kills TensorFlow kills only this foreground command, which the user sees, while the
 * child-process check (`checkBackbones`) would cost every fresh home a second TensorFlow start; `serve` and
 * `worker`, which other users depend on, check.
 */
export async function withApp<T>(options: GlobalOptions, run: (app: AppContext) => Promise<T>, adjust?: (config: CatdogConfig) => CatdogConfig): Promise<T> {
  const loaded = loadConfig({ file: options.config });
  if (adjust) loaded.config = adjust(loaded.config);
  const progress = createProgress();
  let downloading = false;
  const app = await openApp(loaded, {
    onBackboneDownload: (received, total) => {
      if (!downloading) {
        progress.start('downloading backbone', total ?? 0);
        downloading = true;
      }
      progress.update(received);
      if (total !== undefined && received >= total) progress.stop();
    },
  });
  try {
    return await run(app);
  } finally {
    await app.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Any rows of plain fields: the columns are the first row's own keys. */
export function printTable<Row extends object>(rows: readonly Row[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const columns = Object.keys(rows[0]!);
  const cell = (value: unknown) => (value === null || value === undefined ? '' : String(value));
  const cells = rows.map((row) => {
    const fields = new Map(Object.entries(row));
    return columns.map((column) => cell(fields.get(column)));
  });
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((values) => values[i]!.length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const values of cells) process.stdout.write(`${line(values)}\n`);
}

export const percent = (value: number): string => `${(value * 100).toFixed(1)}%`;
