/**
 * Debian's Chromium through playwright-core, for tests that need a real browser.
 *
 * Locally a missing browser skips the test with a message saying how to get it; with CI=true it
 * fails. Nothing is ever downloaded: playwright-core gets the executable path.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser test cannot run here, or null when it can (throws under CI=true instead). */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const why = `${CHROMIUM} is missing; install Debian's chromium (apt-get install chromium) to run the browser tests`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true: ${why}`);
  return why;
}

/** A headless Chromium; close it when done. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
