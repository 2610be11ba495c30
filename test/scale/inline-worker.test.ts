import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtCli, cliEnv } from '../support/cli.js';
import { skipWithoutShared } from '../support/shared.js';

/** `catdog worker` on embedded defaults: the process `catdog serve` starts to run its jobs. */
describe.skipIf(skipWithoutShared)('catdog worker on the in-process queue', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-inline-worker-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('keeps running while it waits for jobs, and stops cleanly on SIGTERM', async () => {
    const worker = spawn(process.execPath, [builtCli, 'worker'], { cwd: home, env: cliEnv(home, { CATDOG_LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    let output = '';
    // Its log (pino) goes to stderr.
    worker.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await expect.poll(() => output, { timeout: 60_000 }).toContain('"worker ready"');
    // An idle worker has nothing but its look for new jobs to do: that look must hold the process open.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(worker.exitCode, output).toBeNull();
    worker.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('stops when the catdog serve that started it is killed with SIGKILL', async () => {
    const serve = spawn(process.execPath, [builtCli, 'serve', '--port', '0'], { cwd: home, env: cliEnv(home, { CATDOG_LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    // Both processes log to stderr: the worker inherits the server's.
    serve.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await expect.poll(() => output, { timeout: 60_000 }).toContain('"worker ready"');
      const started = /"workerPid":(\d+)/.exec(output);
      expect(started, output).not.toBeNull();
      const workerPid = Number(started![1]);
      const isAlive = () => {
        try {
          process.kill(workerPid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(isAlive()).toBe(true);
      serve.kill('SIGKILL');
      await expect.poll(isAlive, { timeout: 30_000 }).toBe(false);
      expect(output).toContain('the server that started this worker has gone');
    } finally {
      serve.kill('SIGKILL');
    }
  }, 90_000);
});
