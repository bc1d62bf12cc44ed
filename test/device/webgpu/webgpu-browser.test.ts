/**
 * The WebGPU device in a real browser: Debian's Chromium (headless, `--enable-unsafe-webgpu`),
 * driven by playwright-core, runs an esbuild ESM bundle of `src/webgpu.ts` from a local static
 * server and does the smoke test there: buffer objects over a budget (so TTM evicts to System
 * and restores), saxpy through implicit-sync submissions, results checked against the
 * JavaScript reference, fences in seqno order, teardown.
 *
 * Locally without Chromium the suite skips with a message; with `CI=true` it runs and fails
 * (`test/helpers/browser.ts` launches Chromium and serves the bundle).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import {
  browserSkip,
  CHROMIUM_ARGS,
  type DisposableBrowser,
  launchChromium,
  openPage,
  type StaticServer,
  serveStatic,
} from '../../helpers/browser.js';

/**
 * The helper's flags with WebGPU on SwiftShader: `--disable-gpu` hides `navigator.gpu`, so it goes
 * (see README, "A real GPU underneath").
 */
const CHROMIUM_WEBGPU_FLAGS = [
  ...CHROMIUM_ARGS.filter((flag) => flag !== '--disable-gpu'),
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
];

const ENTRY = new URL('../../../src/webgpu.ts', import.meta.url).pathname;

const SMOKE = `
import { WebGpuDevice, saxpyReference, TtmMemType } from ${JSON.stringify(ENTRY)};
globalThis.runSmoke = async () => {
  const gpu = await WebGpuDevice.create({ budgetBytes: 64 * 1024, quiet: true });
  const n = 8192; // 32 KiB vectors: four of them do not fit 64 KiB
  const pairs = [];
  for (let p = 0; p < 2; p++) {
    const x = new Float32Array(n).map((_, i) => (i * (p + 3)) % 11);
    const y = new Float32Array(n).map((_, i) => (i + p) % 7);
    const bx = await gpu.createBuffer({ size: n * 4, name: 'x' + p });
    const by = await gpu.createBuffer({ size: n * 4, name: 'y' + p });
    await gpu.write(bx, x);
    await gpu.write(by, y);
    pairs.push({ x, y, bx, by, a: p + 2 });
  }
  const fences = [];
  for (const { bx, by, a } of pairs) {
    fences.push(await gpu.submit([{ bo: bx }, { bo: by, write: true }], (encoder, binding) =>
      gpu.kernels.saxpy(encoder, { a, x: binding(bx), y: binding(by), n })));
  }
  const order = [];
  for (const f of fences) f.addCallback(() => order.push(f.seqno));
  await Promise.all(fences.map((f) => f.wait()));
  let wrong = 0;
  for (const { x, y, by, a } of pairs) {
    const got = new Float32Array((await gpu.read(by)).buffer);
    const want = saxpyReference(a, x, y);
    for (let i = 0; i < n; i++) if (got[i] !== want[i]) wrong++;
  }
  const stats = gpu.ttm.stats();
  const result = {
    adapter: gpu.adapterName,
    navigatorGpu: typeof navigator.gpu === 'object',
    evictions: stats.evictions,
    peak: gpu.vram.stats().peakBytes,
    budget: gpu.budgetBytes,
    wrong,
    fenceErrors: fences.filter((f) => f.error !== undefined).length,
    seqnos: fences.map((f) => f.seqno),
    inVram: pairs.map(({ by }) => by.resource?.memType === TtmMemType.VRAM),
  };
  for (const { bx, by } of pairs) { bx.put(); by.put(); }
  await gpu.destroy();
  result.lost = gpu.isLost;
  return result;
};
`;

describe('WebGpuDevice in Chromium', { skip: browserSkip() }, () => {
  let dir: string;
  let server: StaticServer;
  let browser: DisposableBrowser;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dmabuf-webgpu-browser-'));
    writeFileSync(join(dir, 'smoke.ts'), SMOKE);
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><title>dmabuf webgpu</title>' +
        '<script type="module" src="/smoke.js"></script>',
    );
    await build({
      entryPoints: [join(dir, 'smoke.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      outfile: join(dir, 'smoke.js'),
      logLevel: 'error',
    });
    server = await serveStatic(dir);
    url = `${server.url}/index.html`;
    browser = await launchChromium({ args: CHROMIUM_WEBGPU_FLAGS });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('sanity: navigator.gpu gives an adapter in headless Chromium', async () => {
    const { page, log } = await openPage(browser, url);
    const adapter = await page.evaluate(async () => {
      const gpu = (globalThis as unknown as { navigator: { gpu?: GPU } }).navigator.gpu;
      return gpu === undefined ? 'no navigator.gpu' : (await gpu.requestAdapter()) === null ? 'null' : 'adapter';
    });
    assert.equal(adapter, 'adapter', `an adapter with ${CHROMIUM_WEBGPU_FLAGS.join(' ')}`);
    assert.deepEqual(log.errors, [], 'no page errors');
    await page.close();
  });

  it('runs the smoke test: eviction under the budget, saxpy right, fences in order, teardown', async () => {
    const { page, log } = await openPage(browser, url);
    await page.waitForFunction(() => typeof (globalThis as { runSmoke?: unknown }).runSmoke === 'function');
    const result = (await page.evaluate(() =>
      (globalThis as unknown as { runSmoke(): Promise<unknown> }).runSmoke(),
    )) as Record<string, unknown>;
    assert.deepEqual(log.errors, [], 'no page errors');
    assert.deepEqual(log.externalRequests, [], 'the page stayed on the local server');
    assert.equal(result['navigatorGpu'], true, 'navigator.gpu was used');
    assert.equal(result['wrong'], 0, `every saxpy result matches the reference (${JSON.stringify(result)})`);
    assert.equal(result['fenceErrors'], 0, 'no fence failed');
    assert.ok((result['evictions'] as number) > 0, `TTM evicted under the budget (${JSON.stringify(result)})`);
    assert.ok((result['peak'] as number) <= (result['budget'] as number), 'the budget was never exceeded');
    const seqnos = result['seqnos'] as number[];
    assert.ok(
      seqnos.every((s, i) => i === 0 || s > seqnos[i - 1]!),
      'seqnos increase',
    );
    assert.equal(result['lost'], true, 'the requested device was destroyed with the WebGpuDevice');
    await page.close();
  });
});
