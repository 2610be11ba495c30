import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ownerIsGone, thisProcessOwner } from './process-owner.js';

describe('run ownership across processes', () => {
  it('keeps runs of live processes and of other machines, releases runs of dead local processes', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const childOwner = `${os.hostname()}:${child.pid}`;
    expect(ownerIsGone(childOwner)).toBe(false);
    expect(ownerIsGone(thisProcessOwner())).toBe(false);
    expect(ownerIsGone(`another-machine:${child.pid}`)).toBe(false);

    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(ownerIsGone(childOwner)).toBe(true);
    // Runs recorded before owners existed are taken as abandoned at start-up.
    expect(ownerIsGone(null)).toBe(true);
  });
});
