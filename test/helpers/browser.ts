/**
 * Real Chromium for tests: Debian's `/usr/bin/chromium` driven by playwright-core, pages served
 * from a local static server, and what a page printed, threw and fetched.
 *
 * Contract:
 * - Never downloads a browser: playwright-core only ever starts {@link CHROMIUM_PATH}.
 * - {@link browserSkip} is the `skip` option for a browser test: a message saying how to enable
 *   the test when Chromium is absent locally, and `false` (run, and fail at launch) when it is
 *   absent with `CI=true`, where a missing browser is a failure.
 * - The server listens on 127.0.0.1 only and serves files under its root, nothing else.
 * - {@link PageLog} records every console message, uncaught page error, failed request, and any
 *   request that left the local server (a test page must not reach the network).
 *
 * @example
 * ```ts
 * import { browserSkip, launchChromium, openPage, serveStatic } from '../helpers/browser.js';
 * it('runs in Chromium', { skip: browserSkip() }, async () => {
 *   await using server = await serveStatic(dir, { crossOriginIsolated: true });
 *   await using browser = await launchChromium();
 *   const { page, log } = await openPage(browser, `${server.url}/index.html`);
 *   await page.waitForFunction(() => (globalThis as { done?: boolean }).done === true);
 *   log.assertClean();
 * });
 * ```
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { type Browser, type LaunchOptions, type Page, chromium } from 'playwright-core';

/** Debian's chromium package (`apt-get install chromium`, which `.ci/run` does). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a headless Chromium as root on a machine without a GPU or a network: no sandbox
 * (root), no GPU process, and none of the background traffic that a closed network refuses.
 */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]);

const inCi = (): boolean => process.env['CI'] === 'true';

/** The `skip` option for a test that needs Chromium (see the module contract). */
export function browserSkip(): string | false {
  if (fs.existsSync(CHROMIUM_PATH) || inCi()) return false;
  return (
    `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` to run this test ` +
    '(with CI=true it fails instead)'
  );
}

/** A launched browser that `await using` closes. */
export type DisposableBrowser = Browser & AsyncDisposable;

/**
 * Starts Chromium with {@link CHROMIUM_ARGS} (or `options.args`, e.g. adding
 * `--enable-unsafe-webgpu` and dropping `--disable-gpu`) in a fresh temporary profile.
 * @throws with the install command when the executable is missing.
 */
export async function launchChromium(options: Omit<LaunchOptions, 'executablePath'> = {}): Promise<DisposableBrowser> {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}${inCi() ? ' and CI=true requires it' : ''}: ` +
        "install Debian's package with `apt-get install chromium` (.ci/run does)",
    );
  }
  const browser = await chromium.launch({
    ...options,
    executablePath: CHROMIUM_PATH,
    args: [...(options.args ?? CHROMIUM_ARGS)],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** A running static server. */
export interface StaticServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  readonly url: string;
  /** Paths requested so far, in order. */
  readonly requested: readonly string[];
  close(): Promise<void>;
}

export interface StaticServerOptions {
  /**
   * Send `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
   * require-corp`, which make the page cross-origin isolated (`SharedArrayBuffer`, precise timers).
   */
  readonly crossOriginIsolated?: boolean;
  /** Extra headers on every response. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Serves the files under `root` on 127.0.0.1, on a free port. */
export async function serveStatic(root: string, options: StaticServerOptions = {}): Promise<StaticServer> {
  const base = path.resolve(root);
  const requested: string[] = [];
  const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...options.headers };
  if (options.crossOriginIsolated === true) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    requested.push(pathname);
    const file = path.join(base, pathname.endsWith('/') ? `${pathname}index.html` : pathname);
    const inside = file === base || file.startsWith(base + path.sep);
    if (!inside || req.method !== 'GET' || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, headers).end(`not found: ${pathname}`);
      return;
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { ...headers, 'Content-Type': type });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url: `http://127.0.0.1:${port}`, requested, close, [Symbol.asyncDispose]: close };
}

/** One console message of a page. */
export interface ConsoleEntry {
  readonly type: string;
  readonly text: string;
}

/** What a page printed, threw and fetched. */
export interface PageLog {
  readonly console: readonly ConsoleEntry[];
  /** Uncaught exceptions and unhandled rejections, with their stacks. */
  readonly errors: readonly string[];
  readonly failedRequests: readonly string[];
  /** Requests to anything but the page's own origin (a test page must make none). */
  readonly externalRequests: readonly string[];
  /** The text of every `console.log` (and info), in order. */
  lines(): string[];
  /** Asserts no console error, page error, failed or external request. */
  assertClean(): void;
}

/** Starts recording `page` (before it navigates, so nothing is missed). */
export function recordPage(page: Page, origin: string): PageLog {
  const console: ConsoleEntry[] = [];
  const errors: string[] = [];
  const failedRequests: string[] = [];
  const externalRequests: string[] = [];
  page.on('console', (msg) => console.push({ type: msg.type(), text: msg.text() }));
  page.on('pageerror', (err) => errors.push(err.stack ?? String(err)));
  page.on('requestfailed', (req) => failedRequests.push(`${req.url()}: ${req.failure()?.errorText ?? 'failed'}`));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:') && !url.startsWith('blob:'))
      externalRequests.push(url);
  });
  return {
    console,
    errors,
    failedRequests,
    externalRequests,
    lines: () => console.filter((c) => c.type === 'log' || c.type === 'info').map((c) => c.text),
    assertClean() {
      const consoleErrors = console.filter((c) => c.type === 'error').map((c) => c.text);
      assert.deepEqual(consoleErrors, [], `console errors:\n${consoleErrors.join('\n')}`);
      assert.deepEqual(errors, [], `page errors:\n${errors.join('\n')}`);
      assert.deepEqual(failedRequests, [], `failed requests:\n${failedRequests.join('\n')}`);
      assert.deepEqual(externalRequests, [], `requests that left the local server:\n${externalRequests.join('\n')}`);
    },
  };
}

/** Opens a new page of `browser` on `url`, recording it from the start. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; log: PageLog }> {
  const page = await browser.newPage();
  const log = recordPage(page, new URL(url).origin);
  await page.goto(url);
  return { page, log };
}
