// The soft device as users get it: from the built and packed package (compiled worker entries,
// no TypeScript runner), in plain Node through dmabuf/node, and in Debian's Chromium on Web
// Workers from a cross-origin isolated page. Both run test/device/soft/packaged/soft-smoke.mjs.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { browserSkip, launchChromium, openPage, serveStatic } from '../../helpers/browser.js';
import { type PackedPackage, cleanEnv, packedPackage, runTool, scratchDir } from '../../helpers/packed.js';
// @ts-expect-error: a plain JavaScript module shared with the browser page, without declarations
import { SOFT_SMOKE_EXPECTED } from './packaged/soft-smoke.mjs';
// @ts-expect-error: the same
import { SHARING_EXPECTED } from './packaged/sharing-smoke.mjs';

const FILES = ['soft-smoke.mjs', 'kernels.mjs', 'sharing-smoke.mjs', 'sharing-worker.mjs'];

let pkg: PackedPackage;
let dir: string;

describe('the soft device from the packed package', () => {
  before(async () => {
    pkg = await packedPackage();
    dir = scratchDir(pkg, 'soft-device');
    for (const file of FILES) fs.copyFileSync(new URL(`./packaged/${file}`, import.meta.url), path.join(dir, file));
    fs.writeFileSync(
      path.join(dir, 'main.mjs'),
      "import * as m from 'dmabuf/node';\nimport { softSmoke } from './soft-smoke.mjs';\n" +
        "await softSmoke(m, new URL('./kernels.mjs', import.meta.url), (line) => console.log(line));\n",
    );
    fs.writeFileSync(
      path.join(dir, 'index.html'),
      `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>soft device</title>
<script type="module">
import * as core from '../node_modules/dmabuf/dist/index.js';
import * as soft from '../node_modules/dmabuf/dist/soft.js';
import { softSmoke } from './soft-smoke.mjs';
import { sharingSmoke } from './sharing-smoke.mjs';
console.log('isolated: ' + globalThis.crossOriginIsolated);
const print = (line) => console.log(line);
softSmoke({ ...core, ...soft }, new URL('./kernels.mjs', location.href), print)
  .then(() => sharingSmoke(core, new URL('./sharing-worker.mjs', location.href), print))
  .then(
  () => { globalThis.done = true; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); globalThis.done = true; },
);
</script>
`,
    );
  });

  it('sanity: the compiled worker entries run in plain Node, and the process exits after destroy', async () => {
    const { stdout, stderr } = await runTool(process.execPath, ['main.mjs'], dir, { env: cleanEnv(), timeout: 60_000 });
    assert.deepEqual(stdout.trim().split('\n'), SOFT_SMOKE_EXPECTED);
    assert.equal(stderr, '');
  });

  it('runs on Web Workers in Chromium from a cross-origin isolated page, and shares fences and buffers with one', {
    skip: browserSkip(),
  }, async () => {
    // The consumer project is the site: the page in its directory, the package in node_modules.
    await using server = await serveStatic(pkg.consumer, { crossOriginIsolated: true });
    await using browser = await launchChromium();
    const { page, log } = await openPage(browser, `${server.url}/${path.basename(dir)}/index.html`);
    try {
      await page.waitForFunction(() => (globalThis as { done?: boolean }).done === true, undefined, {
        timeout: 60_000,
      });
    } catch (err) {
      const seen = log.console.map((c) => `${c.type}: ${c.text}`).join('\n');
      assert.fail(`the page did not finish: ${err}\nconsole:\n${seen}\nerrors:\n${log.errors.join('\n')}`);
    }
    log.assertClean();
    const lines = log.lines();
    assert.deepEqual(lines.slice(0, SOFT_SMOKE_EXPECTED.length + 1), ['isolated: true', ...SOFT_SMOKE_EXPECTED]);
    assert.deepEqual(
      new Set(lines.slice(SOFT_SMOKE_EXPECTED.length + 1)),
      new Set(SHARING_EXPECTED),
      'a fence, a timeline and a moving buffer shared with a Web Worker',
    );
    assert.ok(
      server.requested.some((p) => p.endsWith('/dist/device/soft/soft-worker-web-boot.js')),
      'the workers booted from the package',
    );
  });
});
