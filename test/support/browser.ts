import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { skipWithoutShared, smallBackbone } from './shared.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const chromiumPath = '/usr/bin/chromium';
/** Why the browser tests cannot run here, or '' when they can. */
export const browserSkipReason =
  skipWithoutShared || (fs.existsSync(chromiumPath) ? '' : `${chromiumPath} is missing: apt-get install -y chromium (CI installs it)`);

// Debian's Chromium in a closed network: without the networking switches it stalls on background requests.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `catdog serve` exactly as users start it, from the TypeScript sources, on a random port; `env` adds CATDOG_* settings. */
export function startCli(home: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const hooks = pathToFileURL(path.join(repoRoot, 'src', 'ml', 'typescript-hooks.mjs')).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  const child = spawn(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--port', '0'],
    {
      cwd: home,
      env: {
        ...process.env,
        CATDOG_HOME: home,
        CATDOG_BACKBONE_URL: smallBackbone,
        CATDOG_LOG_LEVEL: 'warn',
        // The browser runs on this machine: without this it would be a token-less local viewer and never sign in.
        CATDOG_SERVER__LOCAL_VIEWER: 'false',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /catdog listening on (http:\/\/\S+)/.exec(stdout);
      if (match) resolve({ child, url: match[1]! });
    });
    child.once('exit', (code) => reject(new Error(`catdog serve exited with ${code}: ${stderr}`)));
  });
}

/** Stops a server started by startCli and waits until it has exited. */
export async function stopCli(server: { child: ChildProcess } | undefined): Promise<void> {
  if (server?.child.exitCode !== null || !server) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}
