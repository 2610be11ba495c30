import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { skipWithoutShared } from './shared.js';

export const chromiumPath = '/usr/bin/chromium';

/** Why browser tests cannot run here ('' when they can): they need ../shared and Debian's Chromium. */
export const browserSkipReason =
  skipWithoutShared || (fs.existsSync(chromiumPath) ? '' : `${chromiumPath} is missing: apt-get install -y chromium (CI installs it)`);

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

export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });

/** The viewports every new UI feature is driven at. */
export const VIEWPORTS = {
  desktop: { width: 1366, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

/** Signs in through the sign-in page as a person does, landing on `next`. */
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

/** True when nothing on the page is wider than the window: no sideways scrolling (on a phone above all). */
export const fitsViewportWidth = (page: Page): Promise<boolean> => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
