import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openApp, type AppContext } from '../../src/app/context.js';
import { createLogger } from '../../src/app/logger.js';
import { loadConfig } from '../../src/config/index.js';
import { smallBackbone } from './shared.js';

export interface TestApp extends AppContext {
  home: string;
  /** Closes the app and deletes its home folder. */
  dispose(): Promise<void>;
}

/**
 * A real app on embedded defaults (SQLite file, local blob folder) in a fresh temporary CATDOG_HOME, with the small
 * shared backbone so training tests take seconds. `env` adds CATDOG_* overrides.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-test-'));
  const loaded = loadConfig({ env: { CATDOG_HOME: home, CATDOG_BACKBONE_URL: smallBackbone, ...env }, cwd: home });
  const app = await openApp(loaded, { logger: createLogger('warn') });
  return {
    ...app,
    home,
    async dispose() {
      await app.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
