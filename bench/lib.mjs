// Shared plumbing for the benchmark scripts: peers run as child processes, one at a time, on the same machine.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = path.resolve(process.env.CATDOG_SHARED ?? path.join(repoRoot, '..', 'shared'));

export function requireShared() {
  if (!fs.existsSync(path.join(sharedDir, 'README.md'))) {
    console.error(`bench: ../shared not found at ${sharedDir}; set CATDOG_SHARED`);
    process.exit(2);
  }
}

/** The venv that scripts/setup-python-venv.sh makes (tensorflow-cpu 2.21, keras 3.15). */
export function peerPython() {
  const venv = process.env.CATDOG_PY_VENV ?? path.join(os.homedir(), '.cache', 'catdog', 'py-venv');
  const python = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(python)) {
    execFileSync('bash', [path.join(repoRoot, 'scripts', 'setup-python-venv.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return python;
}

/** Runs a command that prints one JSON object as its last stdout line, and returns it. */
export function runJson(command, args, options = {}) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...options.env },
    cwd: options.cwd ?? repoRoot,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  }
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

export const ratio = (ours, theirs) => (theirs === 0 ? Infinity : ours / theirs);
