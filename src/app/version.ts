import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `catdog@0.1.0+<git sha>` in a checkout, the package version alone in an installed copy. */
export function codeVersion(): string {
  const { version } = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    return `catdog@${version}+${sha}`;
  } catch {
    return `catdog@${version}`;
  }
}
