import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { createLogger } from './logger.js';
import { openApp } from './context.js';

describe('start-up', () => {
  it('removes the temporary blob files a killed writer left more than an hour ago, and keeps a fresh one', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-startup-'));
    try {
      // A real writer killed between writing and renaming (SIGKILL: no clean-up runs), as `dataset import` can be.
      const folder = path.join(home, 'blobs', 'images', 'ab');
      fs.mkdirSync(folder, { recursive: true });
      const stale = path.join(folder, `${'ab'.repeat(32)}.tmp-0123456789ab`);
      const writer = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(stale)}, 'x'.repeat(1e6)); setInterval(() => {}, 1000)`]);
      while (!fs.existsSync(stale) || fs.statSync(stale).size < 1e6) await new Promise((resolve) => setTimeout(resolve, 20));
      writer.kill('SIGKILL');
      await new Promise((resolve) => writer.once('exit', resolve));
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
      fs.utimesSync(stale, twoHoursAgo, twoHoursAgo);
      const fresh = path.join(folder, `${'cd'.repeat(32)}.tmp-ba9876543210`);
      fs.writeFileSync(fresh, 'being written by another process');

      const app = await openApp(loadConfig({ env: { CATDOG_HOME: home }, cwd: home }), { logger: createLogger('silent') });
      await app.close();
      expect(fs.readdirSync(folder)).toEqual([path.basename(fresh)]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
