// The installed package in a browser: esbuild bundles the smoke program from the tarball (ESM,
// IIFE, minified IIFE) for the browser platform, and Debian's Chromium runs each page; the page
// must print exactly the smoke program's lines, throw nothing and fetch nothing but its bundle.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, type Format } from 'esbuild';
import {
  type DisposableBrowser,
  type StaticServer,
  browserSkip,
  launchChromium,
  openPage,
  serveStatic,
} from '../helpers/browser.js';
import { type PackedPackage, packedPackage, scratchDir } from '../helpers/packed.js';
import { SMOKE_EXPECTED } from './smoke-program.js';

const SMOKE_SOURCE = fs.readFileSync(new URL('./smoke-program.ts', import.meta.url), 'utf8');

const MAIN = `import * as dmabuf from 'dmabuf';
import { smoke } from './smoke-program.ts';

smoke(dmabuf, (line) => console.log(line)).then(
  () => { globalThis.smokeDone = true; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); globalThis.smokeDone = true; },
);
`;

interface Bundle {
  readonly name: string;
  readonly format: Format;
  readonly minify: boolean;
}

const BUNDLES: readonly Bundle[] = [
  { name: 'esm', format: 'esm', minify: false },
  { name: 'iife', format: 'iife', minify: false },
  { name: 'iife-min', format: 'iife', minify: true },
];

let pkg: PackedPackage;
let dir: string;

/** Bundles `entry` (in `dir`) for browsers. @returns the code and esbuild's errors and warnings. */
async function bundle(
  entry: string,
  outfile: string,
  format: Format,
  minify: boolean,
): Promise<{ code: string; messages: string[] }> {
  const result = await build({
    entryPoints: [path.join(dir, entry)],
    absWorkingDir: dir,
    bundle: true,
    platform: 'browser',
    format,
    minify,
    outfile: path.join(dir, outfile),
    logLevel: 'silent',
  });
  const messages = [...result.errors, ...result.warnings].map((m) => m.text);
  return { code: fs.readFileSync(path.join(dir, outfile), 'utf8'), messages };
}

const built = new Map<string, { code: string; messages: string[] }>();

describe('the package bundled for browsers', () => {
  before(async () => {
    pkg = await packedPackage();
    dir = scratchDir(pkg, 'browser-check');
    fs.writeFileSync(path.join(dir, 'smoke-program.ts'), SMOKE_SOURCE);
    fs.writeFileSync(path.join(dir, 'main.mjs'), MAIN);
    for (const b of BUNDLES) {
      built.set(b.name, await bundle('main.mjs', `${b.name}.js`, b.format, b.minify));
      const script =
        b.format === 'esm'
          ? `<script type="module" src="${b.name}.js"></script>`
          : `<script src="${b.name}.js"></script>`;
      fs.writeFileSync(
        path.join(dir, `${b.name}.html`),
        `<!doctype html>\n<title>${b.name}</title>\n<link rel="icon" href="data:,">\n${script}\n`,
      );
    }
  });

  it('sanity: esbuild bundles the smoke program as ESM, IIFE and minified IIFE without a warning', () => {
    for (const b of BUNDLES) {
      const { code, messages } = built.get(b.name)!;
      assert.deepEqual(messages, [], `esbuild ${b.name}`);
      assert.ok(code.length > 10_000, `${b.name}: ${code.length} bytes`);
      assert.ok(!/\bimport\.meta\b/.test(code), `${b.name}: no import.meta left in a browser bundle`);
    }
  });

  it(
    'sideEffects lets a bundle keep only what it imports: ' + 'a fence-only bundle has no TTM, heap or validator',
    async () => {
      fs.writeFileSync(
        path.join(dir, 'fence-only.mjs'),
        "import { DmaFence } from 'dmabuf';\nconsole.log(DmaFence.getStub().isSignaled());\n",
      );
      const { code, messages } = await bundle('fence-only.mjs', 'fence-only.js', 'esm', false);
      assert.deepEqual(messages, []);
      // esbuild names a class `var Name = class _Name`.
      for (const absent of ['TtmDevice', 'DmaHeap', 'WwMutex', 'enableLockdep'])
        assert.ok(!new RegExp(`\\b${absent}\\b`).test(code), `the fence-only bundle contains ${absent}`);
      assert.match(code, /\bvar DmaFence = class\b/);
      const full = built.get('esm')!.code.length;
      assert.ok(code.length * 5 < full, `fence-only ${code.length} bytes vs everything ${full} bytes`);
    },
  );

  describe('in Chromium', { skip: browserSkip() }, () => {
    let server: StaticServer;
    let browser: DisposableBrowser;

    before(async () => {
      server = await serveStatic(dir);
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await server?.close();
    });

    for (const b of BUNDLES) {
      it(`the ${b.name} bundle prints the smoke program's lines and nothing goes wrong`, async () => {
        const { page, log } = await openPage(browser, `${server.url}/${b.name}.html`);
        try {
          await page
            .waitForFunction(() => (globalThis as { smokeDone?: boolean }).smokeDone === true, null, {
              timeout: 30_000,
            })
            .catch((err: unknown) => {
              // Say how far the program got: a timeout alone does not tell which step hangs.
              const printed = log.console.map((c) => `${c.type}: ${c.text}`);
              const seen = [...printed, ...log.errors.map((e) => `page error: ${e}`), ...log.failedRequests];
              throw new Error(`${String(err)}\nthe page printed:\n${seen.join('\n')}`);
            });
          log.assertClean();
          assert.deepEqual(log.lines(), SMOKE_EXPECTED);
        } finally {
          await page.close();
        }
      });
    }
  });
});
