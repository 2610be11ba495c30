import fs from 'node:fs';
import { createRequire } from 'node:module';

const STDOUT = 1;
const STDERR = 2;

/** native/stderr-gate, built at install time by scripts/build-native.mjs: dup/dup2, which node lacks. */
interface StderrGateAddon {
  /** Points fd 2 at /dev/null; returns a duplicate of the original to restore, or -1 when fd 2 was left alone. */
  mute(): number;
  restore(saved: number): void;
}

/** From src/ml or dist/ml alike: both are two levels below the repository root. */
const ADDON_PATH = '../../native/stderr-gate/build/Release/stderr_gate.node';

function loadAddon(): StderrGateAddon | undefined {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as StderrGateAddon;
  } catch {
    return undefined;
  }
}

/**
 * Without the addon, the original target is reopened through /proc/self/fd (appending): exact for a terminal, a pipe
 * or a file of its own, and wrong for a file stdout writes too (`> log 2>&1`: the two descriptions' offsets would
 * overwrite each other's lines); that case, a socket (node's own child pipes) or a system without /proc keeps the lines.
 */
function reopenable(): boolean {
  try {
    const stderr = fs.fstatSync(STDERR);
    if (stderr.isCharacterDevice() || stderr.isFIFO()) return true;
    if (!stderr.isFile()) return false;
    const stdout = fs.fstatSync(STDOUT);
    return stdout.dev !== stderr.dev || stdout.ino !== stderr.ino;
  } catch {
    return false;
  }
}

function withStderrReopened<T>(load: () => T): T {
  if (!reopenable()) return load();
  let original: number;
  try {
    original = fs.openSync(`/proc/self/fd/${STDERR}`, 'a');
  } catch {
    return load();
  }
  try {
    fs.closeSync(STDERR);
    // The lowest free descriptor is 2 (node keeps 0 and 1 open): /dev/null takes its place.
    const devNull = fs.openSync('/dev/null', 'w');
    if (devNull !== STDERR) fs.closeSync(devNull);
    try {
      return load();
    } finally {
      if (devNull === STDERR) fs.closeSync(STDERR);
    }
  } finally {
    const restored = fs.openSync(`/proc/self/fd/${original}`, 'a');
    fs.closeSync(original);
    if (restored !== STDERR) throw new Error(`could not give stderr back its descriptor (got ${restored})`);
  }
}

/**
 * Runs `load` (synchronous) with file descriptor 2 pointed at /dev/null, then points it back at what it was.
 *
 * libtensorflow logs through absl, which writes every line logged before `absl::InitializeLog()` straight to fd 2
 * while the library loads (its static initialisers run inside `dlopen`), whatever TF_CPP_MIN_LOG_LEVEL says.
 */
export function withStderrMuted<T>(load: () => T): T {
  const addon = loadAddon();
  if (!addon) return withStderrReopened(load);
  const saved = addon.mute();
  if (saved < 0) return load();
  try {
    return load();
  } finally {
    addon.restore(saved);
  }
}
