import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { smallBackbone } from '../support/shared.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const builtCli = path.join(repoRoot, 'dist', 'cli', 'main.js');
/** `npm test` builds first; a plain `vitest run` of these files needs `npm run build` once. */
export const skipWithoutBuild = fs.existsSync(builtCli) ? '' : `${builtCli} is missing: run npm run build`;

export interface OpenApiOperation {
  method: string;
  path: string;
  role: string;
  operation: Record<string, unknown>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Record<string, unknown>>>;
}

export function operationsOf(document: OpenApiDocument): OpenApiOperation[] {
  return Object.entries(document.paths).flatMap(([route, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ method: method.toUpperCase(), path: route, role: String(operation['x-catdog-role']), operation })),
  );
}

/** A concrete URL path for a template: every `{param}` becomes `value`. */
export const fillPath = (template: string, value = '1'): string => template.replace(/\{[^}]+\}/g, value);

/** The environment of a CLI child process working on `home` with the small shared backbone. */
export const cliEnv = (home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  CATDOG_HOME: home,
  CATDOG_BACKBONE_URL: smallBackbone,
  CATDOG_LOG_LEVEL: 'warn',
  ...extra,
});

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function collect(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function runNode(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Finished> {
  return collect(spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

export interface ErrorJson {
  error: { code: string; message: string; file?: string };
}
