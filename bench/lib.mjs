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

/** The venv's python with the peers' extra packages (OpenCV, Pillow, Flask, PyTorch, matplotlib). */
export function peersPython() {
  const out = execFileSync('bash', [path.join(repoRoot, 'bench', 'setup-peers.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').at(-1);
}

/** 1, 5 and 15 minute load averages: the figures are only comparable with the load they were taken under. */
export function loadAverage() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/**
 * Runs a command that prints one JSON object as its last stdout line, under `/usr/bin/time` for its peak RSS.
 * Returns the JSON with `peakRssMiB` added.
 */
export function runMeasured(command, args, options = {}) {
  const marker = 'BENCH_PEAK_RSS_KB=';
  const result = spawnSync('/usr/bin/time', ['-f', `${marker}%M`, command, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...options.env },
    cwd: options.cwd ?? repoRoot,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  }
  const rssLine = result.stderr.split('\n').find((line) => line.startsWith(marker));
  return { ...lastJson(result.stdout), peakRssMiB: rssLine ? Number(rssLine.slice(marker.length)) / 1024 : null };
}

/** The whole output when it is one (pretty-printed) JSON document, else its last line. */
function lastJson(stdout) {
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.split('\n').at(-1));
  }
}

/**
 * Runs every contender `rounds` times, interleaved (A B A B …) so each sees the same background load, and keeps
 * each contender's best run (highest `value`, or lowest with `lowerIsBetter`): on a shared machine the best run is
 * the one least disturbed by other work. `contenders` maps a name to a function returning `{ value, … }`.
 */
export function interleaved(contenders, rounds, { lowerIsBetter = false } = {}) {
  const runs = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) runs[name].push(run());
  }
  return Object.fromEntries(
    Object.entries(runs).map(([name, list]) => {
      const best = [...list].sort((a, b) => (lowerIsBetter ? a.value - b.value : b.value - a.value))[0];
      return [name, { ...best, values: list.map((run) => run.value), peakRssMiB: Math.max(...list.map((run) => run.peakRssMiB ?? 0)) }];
    }),
  );
}

/** The one JSON line every figure script prints. */
export function report(figure, fields) {
  console.log(JSON.stringify({ figure, machine: machine(), ...fields }));
}

/** `--name value` command-line options with defaults. */
export function options(defaults) {
  const parsed = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '');
    if (!key || !(key in defaults)) throw new Error(`unknown option ${argv[i]}; known: ${Object.keys(defaults).join(', ')}`);
    parsed[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return parsed;
}

/** `interleaved` for asynchronous contenders; returns every run of each contender, in order. */
export async function interleavedAsync(contenders, rounds) {
  const runs = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) runs[name].push(await run());
  }
  return runs;
}
