import os from 'node:os';

/** Identifies this process as the holder of a training run: `host:pid`. */
export const thisProcessOwner = (): string => `${os.hostname()}:${process.pid}`;

/**
 * A run's owner is gone when it was this machine's process and that process no longer exists. Runs held on other
 * machines are left to their own workers (a queue re-runs a dead worker's job as a new run).
 */
export function ownerIsGone(owner: string | null): boolean {
  if (owner === null) return true;
  const separator = owner.lastIndexOf(':');
  const host = owner.slice(0, separator);
  const pid = Number(owner.slice(separator + 1));
  if (host !== os.hostname() || !Number.isInteger(pid)) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
