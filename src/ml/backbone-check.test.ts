import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kaggleFiles, skipWithoutShared, smallBackbone } from '../../test/support/shared.js';
import { BackboneProvider } from './backbone-provider.js';
import { BackboneCrashedError, checkBackboneInChildProcess } from './backbone-check.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const checkProcess = path.join(repoRoot, 'dist', 'ml', 'backbone-check-process.js');
const skipReason = skipWithoutShared || (fs.existsSync(checkProcess) ? '' : `${checkProcess} not built: run npm run build`);
/** A child process that starts TensorFlow and loads a backbone, on a shared two-core machine. */
const CHILD_MS = 120_000;

/** The environment of a check process that dies of `signal` before it answers (test/support/raise-signal.mjs). */
const crashingEnv = (extra: NodeJS.ProcessEnv = {}, signal = 'SIGFPE'): NodeJS.ProcessEnv => ({
  ...process.env,
  ...extra,
  RAISE_SIGNAL: signal,
  NODE_OPTIONS: `--import=${path.join(repoRoot, 'test', 'support', 'raise-signal.mjs')}`,
});

describe.skipIf(skipReason)('checking a backbone in a child process before loading it', () => {
  let cacheDir: string;
  const photoPath = kaggleFiles('cat', 1, 700)[0]!;

  beforeAll(() => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-backbone-check-'));
  });
  afterAll(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  const verdicts = () => fs.readdirSync(path.join(cacheDir, 'backbone-checks')).filter((file) => file.endsWith('.json'));

  it(
    'passes a backbone that loads and runs a real photo, once: the verdict is kept per backbone content',
    async () => {
      await checkBackboneInChildProcess(smallBackbone, {}, { cacheDir, photoPath });
      expect(verdicts()).toHaveLength(1);
      // A second check would die here if it started a process: the kept verdict answers instead.
      await checkBackboneInChildProcess(smallBackbone, {}, { cacheDir, photoPath, env: crashingEnv() });
      expect(verdicts()).toHaveLength(1);
    },
    CHILD_MS,
  );

  it(
    'refuses a backbone whose check process dies of SIGFPE with a typed error naming it, the signal and the oneDNN switch; this process lives on',
    async () => {
      const otherSize = { inputSize: 160 };
      const crash = checkBackboneInChildProcess(smallBackbone, otherSize, { cacheDir, photoPath, env: crashingEnv() });
      await expect(crash).rejects.toBeInstanceOf(BackboneCrashedError);
      await expect(crash).rejects.toMatchObject({
        code: 'backbone_crashed',
        httpStatus: 422,
        details: { source: smallBackbone, signal: 'SIGFPE' },
        message: expect.stringMatching(new RegExp(`backbone ${smallBackbone.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} crashed TensorFlow \\(SIGFPE\\).*TF_ENABLE_ONEDNN_OPTS=0`)),
      });
      expect(process.kill(process.pid, 0)).toBe(true);
      // The crash is remembered: without any crashing process, the same backbone at that size is refused at once.
      const started = performance.now();
      await expect(checkBackboneInChildProcess(smallBackbone, otherSize, { cacheDir, photoPath })).rejects.toMatchObject({ code: 'backbone_crashed' });
      expect(performance.now() - started).toBeLessThan(5_000);
      // With oneDNN switched off as the message says, the backbone is checked again, and passes.
      await checkBackboneInChildProcess(smallBackbone, otherSize, { cacheDir, photoPath, env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: '0' } });
    },
    CHILD_MS,
  );

  it(
    'does not hold a check stopped from outside (SIGTERM) against the backbone: no verdict is kept, the next check runs',
    async () => {
      const stopped = { inputSize: 96 };
      const before = verdicts().length;
      await expect(checkBackboneInChildProcess(smallBackbone, stopped, { cacheDir, photoPath, env: crashingEnv({}, 'SIGTERM') })).rejects.toMatchObject({
        code: 'backbone_check_interrupted',
        details: { source: smallBackbone, signal: 'SIGTERM' },
      });
      expect(verdicts()).toHaveLength(before);
      await checkBackboneInChildProcess(smallBackbone, stopped, { cacheDir, photoPath });
      expect(verdicts()).toHaveLength(before + 1);
    },
    CHILD_MS,
  );

  it(
    'the provider checks before it loads: a crashing backbone is refused, a sound one loaded at the size asked',
    async () => {
      const crashing = new BackboneProvider({ cacheDir: fs.mkdtempSync(path.join(cacheDir, 'crashing-')), check: { photoPath, env: crashingEnv() } });
      await expect(crashing.get(smallBackbone)).rejects.toMatchObject({ code: 'backbone_crashed' });
      const healthy = new BackboneProvider({ cacheDir: fs.mkdtempSync(path.join(cacheDir, 'healthy-')), check: { photoPath } });
      const backbone = await healthy.get(smallBackbone, 192);
      try {
        expect(backbone.inputSize).toBe(192);
        expect(backbone.featureSize).toBe(256);
      } finally {
        backbone.dispose();
      }
    },
    CHILD_MS,
  );
});
