import type { Logger } from '../app/logger.js';
import type { JobLock } from './job-queue.js';

/** How a queue's store keeps one held lock: renewing says whether this holder still has it. */
export interface LockHandle {
  renew(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * The named locks one queue holds: each renewed every third of its ttl until released, all released when the queue
 * closes (a clean restart must not wait out a ttl), and a lock found lost (it lapsed and another process took it)
 * said so in the log and no longer renewed, since two holders would mean the work it guards now overlaps.
 */
export class HeldLocks {
  private readonly held = new Map<LockHandle, NodeJS.Timeout>();

  constructor(private readonly logger: Pick<Logger, 'warn'> | undefined) {}

  hold(name: string, ttlMs: number, handle: LockHandle): JobLock {
    const renewal = setInterval(() => {
      handle.renew().then(
        (stillHeld) => {
          if (stillHeld) return;
          this.forget(handle);
          this.logger?.warn({ lock: name }, 'a job lock lapsed and another process took it: the work it guards may now run twice');
        },
        (error: unknown) => this.logger?.warn({ err: error, lock: name }, 'could not renew a job lock; trying again'),
      );
    }, Math.max(1, Math.floor(ttlMs / 3)));
    renewal.unref();
    this.held.set(handle, renewal);
    return {
      release: async () => {
        if (!this.forget(handle)) return;
        await handle.release();
      },
    };
  }

  async releaseAll(): Promise<void> {
    const handles = [...this.held.keys()];
    for (const handle of handles) this.forget(handle);
    await Promise.allSettled(handles.map((handle) => handle.release()));
  }

  /** Stops renewing without releasing: for a queue closing while a handler that ignored its signal still runs. */
  stopRenewing(): void {
    for (const handle of [...this.held.keys()]) this.forget(handle);
  }

  private forget(handle: LockHandle): boolean {
    const renewal = this.held.get(handle);
    if (renewal === undefined) return false;
    clearInterval(renewal);
    this.held.delete(handle);
    return true;
  }
}
