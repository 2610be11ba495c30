import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticFile {
  body: Uint8Array;
  contentType: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// The same folder from src/web (tsx, vitest) and dist/web (npm start): tsc does not copy non-TypeScript files.
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const staticFolder = path.join(packageRoot, 'src', 'web', 'static');
const require = createRequire(import.meta.url);

/** Vendor scripts come from the installed packages: no build step, no CDN (the UI must work offline). */
const VENDOR_FILES: Record<string, string> = {
  'htmx.min.js': path.join(path.dirname(require.resolve('htmx.org')), 'htmx.min.js'),
  'chart.umd.min.js': path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
};

const read = (file: string): StaticFile => ({
  body: fs.readFileSync(file),
  contentType: CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
});

/**
 * Every file the UI may load, read once at start-up into a fixed table: a request can only name an entry,
 * never a path, so there is nothing to traverse.
 */
export function loadStaticFiles(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of fs.readdirSync(staticFolder)) files.set(name, read(path.join(staticFolder, name)));
  for (const [name, file] of Object.entries(VENDOR_FILES)) files.set(`vendor/${name}`, read(file));
  return files;
}
