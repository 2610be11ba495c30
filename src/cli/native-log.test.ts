import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtCli, cliEnv, execFileAsync } from '../../test/support/cli.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';

const ABSL_PREAMBLE = 'All log messages before absl::InitializeLog() is called are written to STDERR';
const ONEDNN_NOTICE = 'oneDNN custom operations are on';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const stderrGateBuilt = fs.existsSync(path.join(repoRoot, 'native', 'stderr-gate', 'build', 'Release', 'stderr_gate.node'));
if (!stderrGateBuilt) console.warn('native/stderr-gate is not built (node scripts/build-native.mjs): its cases are skipped');

describe.skipIf(skipWithoutShared)("native TensorFlow's start-up lines on the built CLI's stderr", () => {
  let home: string;
  // The user's own TF_CPP_MIN_LOG_LEVEL (none here) is what decides: this process may have set one for itself.
  let env: NodeJS.ProcessEnv;
  /**
   * stderr through a real pipe (into `cat`), as a terminal user's `2>&1 | less` or a container runtime gives it (node's
   * own child pipes are sockets: the case below).
   */
  const run = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const stderrFile = path.join(home, 'stderr.txt');
    const { stdout } = await execFileAsync('/bin/sh', ['-c', '{ "$@" 2>&1 1>&3 | cat > "$STDERR_FILE"; } 3>&1', 'sh', process.execPath, builtCli, ...args], {
      cwd: home,
      env: { ...env, ...extraEnv, STDERR_FILE: stderrFile },
    });
    return { stdout, stderr: fs.readFileSync(stderrFile, 'utf8') };
  };

  beforeAll(() => {
    expect(fs.existsSync(builtCli), `${builtCli} is missing: run npm run build`).toBe(true);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-native-log-'));
    env = cliEnv(home);
    delete env.TF_CPP_MIN_LOG_LEVEL;
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('doctor and predict print only catdog output by default, on a pipe and into a file of its own', async () => {
    const doctor = await run(['doctor']);
    expect(doctor.stdout).toMatch(/^backend\s+tensorflow$/m);
    expect(doctor.stderr).not.toContain(ABSL_PREAMBLE);
    expect(doctor.stderr).not.toContain(ONEDNN_NOTICE);

    const [cat] = kaggleFiles('cat', 1, 42);
    const predict = await run(['predict', cat!]);
    expect(predict.stdout).toMatch(new RegExp(`${path.basename(cat!)}: \\d+\\.\\d% (cat|dog)`));
    expect(predict.stderr).not.toContain(ABSL_PREAMBLE);
    expect(predict.stderr).not.toContain(ONEDNN_NOTICE);

    const logFile = path.join(home, 'stderr.log');
    const log = fs.openSync(logFile, 'w');
    try {
      const toFile = spawnSync(process.execPath, [builtCli, 'doctor'], { cwd: home, env, stdio: ['ignore', 'pipe', log] });
      expect(toFile.status).toBe(0);
      expect(toFile.stdout.toString()).toMatch(/^backend\s+tensorflow$/m);
    } finally {
      fs.closeSync(log);
    }
    expect(fs.readFileSync(logFile, 'utf8')).not.toContain(ABSL_PREAMBLE);
  });

  it.skipIf(!stderrGateBuilt)('with native/stderr-gate built, also when stderr is a socket or the file stdout goes to', async () => {
    const socket = await execFileAsync(process.execPath, [builtCli, 'doctor'], { cwd: home, env });
    expect(socket.stdout).toMatch(/^backend\s+tensorflow$/m);
    expect(socket.stderr).not.toContain(ABSL_PREAMBLE);
    expect(socket.stderr).not.toContain(ONEDNN_NOTICE);

    const both = await execFileAsync('/bin/sh', ['-c', '"$@" > both.log 2>&1', 'sh', process.execPath, builtCli, 'doctor'], { cwd: home, env });
    expect(both.stderr).toBe('');
    const log = fs.readFileSync(path.join(home, 'both.log'), 'utf8');
    expect(log).toMatch(/^version\s+catdog@/);
    expect(log).not.toContain(ABSL_PREAMBLE);
  });

  it('--verbose shows them, before the command output as TensorFlow writes them', async () => {
    const doctor = await run(['--verbose', 'doctor']);
    expect(doctor.stdout).toMatch(/^backend\s+tensorflow$/m);
    expect(doctor.stderr).toContain(ABSL_PREAMBLE);
    expect(doctor.stderr).toContain(ONEDNN_NOTICE);
  });

  it('a level the user set is kept: TF_CPP_MIN_LOG_LEVEL=0 shows them without --verbose', async () => {
    const doctor = await run(['doctor'], { TF_CPP_MIN_LOG_LEVEL: '0' });
    expect(doctor.stderr).toContain(ONEDNN_NOTICE);
  });
});
