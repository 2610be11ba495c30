import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { smallBackbone } from './shared.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI exactly as a user or a pipeline container runs it (`npm run build` first; `npm test` does). */
export const builtCli = path.join(repoRoot, 'dist', 'cli', 'main.js');
export const execFileAsync = promisify(execFile);

/** The environment of a CLI child process working on `home` with the small shared backbone. */
export const cliEnv = (home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  CATDOG_HOME: home,
  CATDOG_BACKBONE_URL: smallBackbone,
  // The small backbone alone, at its own size, as before presets: the default preset adds backbones at 288 px.
  CATDOG_TRAINING__PRESET: 'fast',
  CATDOG_LOG_LEVEL: 'warn',
  ...extra,
});

/** `catdog …` from the built CLI in `home` (its CATDOG_HOME too), training on the small shared backbone. */
export async function catdog(home: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [builtCli, ...args], {
      cwd: home,
      env: cliEnv(home, env),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}
