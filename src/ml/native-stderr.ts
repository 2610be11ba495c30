import fs from 'node:fs';

const STDOUT = 1;
const STDERR = 2;

/** Whether fd 2 can be reopened through /proc/self/fd and keep writing where it would have written. */
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

/**
 * Runs `load` (synchronous) with file descriptor 2 pointed at /dev/null, then points it back at what it was.
 *
 * libtensorflow logs through absl, which writes every line logged before `absl::InitializeLog()` straight to fd 2
 * while the library loads (its static initialisers run inside `dlopen`), whatever TF_CPP_MIN_LOG_LEVEL says. Node
 * has no dup2, so the original target is reopened through /proc/self/fd (appending): exact for a terminal, a pipe
 * or a file of its own, and wrong for a file stdout writes too (`> log 2>&1`: the two descriptions' offsets would
 * overwrite each other's lines), so that case, a socket or a system without /proc gets the lines, as before.
 */
export function withStderrMuted<T>(load: () => T): T {
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
