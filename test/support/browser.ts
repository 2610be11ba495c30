import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { skipWithoutShared, smallBackbone } from './shared.js';

const chromiumPath = '/usr/bin/chromium';
/** Why browser tests cannot run here ('' when they can). */
export const skipBrowser = skipWithoutShared || (fs.existsSync(chromiumPath) ? '' : `${chromiumPath} is missing: apt-get install -y chromium (CI installs it)`);

// Debian's Chromium in a closed network: without the networking switches it stalls on background requests.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Chromium's own test camera, showing `videoFile` (.y4m) and granting every camera request without asking. */
export const fakeCameraArgs = (videoFile: string): string[] => [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  `--use-file-for-fake-video-capture=${videoFile}`,
];

export const launchChromium = (extraArgs: string[] = []): Promise<Browser> =>
  chromium.launch({ executablePath: chromiumPath, args: [...CHROMIUM_ARGS, ...extraArgs] });

/** The viewports of the pages' own browser tests (src/web/*-page.test.ts): the issue's 1366 px laptop and a phone. */
export const VIEWPORTS = {
  desktop: { width: 1366, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

/** True when nothing on the page is wider than the window: no sideways scrolling (on a phone above all). */
export const fitsViewportWidth = (page: Page): Promise<boolean> => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');

/** The two screens every UI feature is driven at, as browser contexts. */
export const SCREENS = {
  desktop: { viewport: { width: 1100, height: 900 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
} satisfies Record<string, BrowserContextOptions>;
export type Screen = keyof typeof SCREENS;

/** Signs in on the UI's own form with a token, as a user does, and waits for the page it leads to. */
export async function signIn(page: Page, origin: string, token: string, next = '/'): Promise<void> {
  await page.goto(`${origin}/signin?next=${encodeURIComponent(next)}`);
  await page.fill('input[name="token"]', token);
  await page.click('form.signin button[type="submit"]');
  await page.waitForURL(`${origin}${next}`);
}

/** Console errors and uncaught exceptions of a page (CSP violations show up here too). */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(path.join(path.dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/**
 * axe-core's WCAG 2.x A/AA rules and its best practices over the page as it is now. axe is evaluated through the
 * DevTools protocol, which the page's CSP (no inline scripts) does not apply to, so the page is tested unchanged.
 */
export async function expectNoAxeViolations(page: Page, where: string): Promise<void> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return result.violations.map(({ id, impact, help, nodes }) => ({ id, impact, help, nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })) }));
  });
  const report = violations.map((violation) => `${violation.id} (${violation.impact}): ${violation.help}\n${violation.nodes.map((node) => `  ${JSON.stringify(node.target)} ${node.failureSummary ?? ''}`).join('\n')}`);
  expect.soft(report, `axe on ${where}`).toEqual([]);
}

/**
 * A YUV4MPEG2 video (what Chromium's fake camera plays) of one frame: `photo` squashed to `width`×`height`, in
 * 4:2:0 with the JPEG (full range) BT.601 matrix, which the `C420jpeg` header names.
 */
export async function photoAsY4m(photo: string, file: string, width = 640, height = 480): Promise<void> {
  const rgb = await sharp(photo).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  const luma = Buffer.alloc(width * height);
  const chromaWidth = width / 2;
  const cb = Buffer.alloc(chromaWidth * (height / 2));
  const cr = Buffer.alloc(cb.length);
  const clamp = (value: number) => Math.max(0, Math.min(255, Math.round(value)));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      luma[y * width + x] = clamp(0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!);
    }
  }
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
        const i = ((y + dy) * width + x + dx) * 3;
        r += rgb[i]! / 4;
        g += rgb[i + 1]! / 4;
        b += rgb[i + 2]! / 4;
      }
      const c = (y / 2) * chromaWidth + x / 2;
      cb[c] = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
      cr[c] = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
    }
  }
  fs.writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\nFRAME\n`), luma, cb, cr]));
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A `catdog` command exactly as users start it, from the TypeScript sources; `ready` says when it has started. */
export function startCatdog(home: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const hooks = pathToFileURL(path.join(repoRoot, 'test', 'support', 'typescript-hooks.mjs')).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], {
    cwd: home,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // `serve` announces itself on stdout; the log (where `worker` says it is ready) goes to stderr.
  let output = '';
  return new Promise((resolve, reject) => {
    const look = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) resolve({ child, match });
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`catdog ${args[0]} exited with ${code}: ${output}`)));
  });
}

/** SIGTERM, then the exit code once it has exited. */
export async function stopProcess(child: ChildProcess | undefined): Promise<number | null> {
  if (child === undefined || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

/** `catdog serve` on embedded defaults in `home` with the small shared backbone, on a random port; `env` adds CATDOG_* settings. */
export async function startCli(home: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const settings = {
    CATDOG_HOME: home,
    CATDOG_BACKBONE_URL: smallBackbone,
    CATDOG_LOG_LEVEL: 'warn',
    // The browser runs on this machine: without this it would be a token-less local viewer and never sign in.
    CATDOG_SERVER__LOCAL_VIEWER: 'false',
    ...env,
  };
  const { child, match } = await startCatdog(home, ['serve', '--port', '0'], settings, /catdog listening on (http:\/\/\S+)/);
  return { child, url: match[1]! };
}
