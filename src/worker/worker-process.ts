import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../app/logger.js';

/** How to start `catdog worker` as a child of the server: the CLI that started the server, with its config. */
export interface WorkerCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A worker that keeps dying is started again after a pause that doubles each time, up to this. */
const MAX_RESTART_DELAY_MS = 30_000;
const FIRST_RESTART_DELAY_MS = 1_000;
/** A worker that ran this long before it died counts as healthy: its next restart waits the first delay again. */
const HEALTHY_RUN_MS = 60_000;
/** SIGTERM lets a running job finish for the queue's close timeout (10 s, twice at most) and go back to waiting; then it is killed. */
const STOP_GRACE_MS = 25_000;

/**
 * The server's own job worker on embedded defaults: `catdog worker` in a child process, so training and imports run
 * on another event loop and in another heap than the one answering requests. Both processes share the database,
 * where the in-process queue keeps its jobs. Restarted when it dies; stopped with the server.
 */
export class WorkerProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartDelayMs = FIRST_RESTART_DELAY_MS;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly spec: WorkerCommand,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopping) return;
    const startedAt = Date.now();
    // The IPC channel is how the worker knows the server is gone: it closes when the server dies, SIGKILL included.
    const child = spawn(this.spec.command, this.spec.args, { env: this.spec.env, cwd: this.spec.cwd, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    this.logger.info({ workerPid: child.pid }, 'job worker process started');
    child.once('error', (error) => this.logger.error({ err: error }, 'the job worker process could not be started'));
    child.once('exit', (code, signal) => {
      this.child = undefined;
      if (this.stopping) return;
      if (Date.now() - startedAt > HEALTHY_RUN_MS) this.restartDelayMs = FIRST_RESTART_DELAY_MS;
      this.logger.warn({ code, signal, restartInMs: this.restartDelayMs }, 'the job worker process stopped; starting it again (its running job goes back to the queue)');
      this.restartTimer = setTimeout(() => this.start(), this.restartDelayMs);
      this.restartTimer.unref();
      this.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, this.restartDelayMs * 2);
    });
  }

  /** Asks the worker to stop (its running job goes back to the queue) and waits for it; kills it if it hangs. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(killer);
  }
}
