/**
 * requestWebGpuDevice: a real adapter in Node, the errors when there is none or the package is
 * missing (each in a child process, since Dawn reads its environment once per process), and the
 * garbage-collection hazard of Dawn's entry point.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { InvalidArgumentError } from '../../../src/base/errors.js';
import { describeAdapter, navigatorGpu, requestWebGpuDevice } from '../../../src/device/webgpu/webgpu-adapter.js';
import { webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const run = promisify(execFile);
const ADAPTER = new URL('../../../src/device/webgpu/webgpu-adapter.ts', import.meta.url).pathname;
const DEVICE = new URL('../../../src/device/webgpu/webgpu-device.ts', import.meta.url).pathname;

/** Runs `code` (an ES module) in a child Node with tsx; returns its stdout, stderr and exit code. */
async function child(
  code: string,
  env: Record<string, string | undefined>,
  nodeArgs: string[] = [],
): Promise<{ stdout: string; stderr: string; code: number | null; signal: string | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'dmabuf-webgpu-'));
  const file = join(dir, 'child.mts');
  writeFileSync(file, code);
  try {
    const { stdout, stderr } = await run(process.execPath, [...nodeArgs, '--import', 'tsx', file], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { stdout, stderr, code: 0, signal: null };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number; signal?: string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? null, signal: e.signal ?? null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('requestWebGpuDevice', { skip }, () => {
  it('sanity: an adapter and a device in Node, named after the adapter', async () => {
    assert.equal(navigatorGpu(), undefined, 'no navigator.gpu in Node');
    const handle = await requestWebGpuDevice();
    assert.match(handle.adapterName, /\S/, 'named');
    assert.equal(describeAdapter(handle.adapter), handle.adapterName, 'describeAdapter agrees');
    assert.ok(handle.keepAlive !== null, 'Dawn’s entry point is kept');
    assert.ok(handle.device.limits.maxBufferSize >= 1 << 20, 'limits are readable');
    handle.device.destroy();
    await handle.device.lost;
    handle.release();
  });

  it('takes a gpu passed in and does not keep it alive itself', async () => {
    const first = await requestWebGpuDevice();
    const second = await requestWebGpuDevice({ gpu: first.gpu });
    assert.equal(second.gpu, first.gpu, 'the same entry point');
    assert.equal(second.keepAlive, null, 'the caller keeps it');
    for (const h of [second, first]) {
      h.device.destroy();
      await h.device.lost;
      h.release();
    }
  });

  it('refuses bad options with a typed error', async () => {
    await assert.rejects(requestWebGpuDevice(null as never), InvalidArgumentError);
    await assert.rejects(requestWebGpuDevice({ dawnFlags: 'x' as never }), InvalidArgumentError);
  });

  it('without a usable Vulkan driver: ENODEV saying how to get one', async () => {
    const out = await child(
      `import { requestWebGpuDevice } from ${JSON.stringify(ADAPTER)};
       try { await requestWebGpuDevice(); console.log('unexpected: got a device'); process.exit(0); }
       catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); process.exit(0); }`,
      { VK_ICD_FILENAMES: '/nonexistent/icd.json' },
    );
    assert.equal(out.code, 0, `child exited cleanly: ${out.stderr.slice(-400)}`);
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as { code: string; message: string };
    assert.equal(result.code, 'ENODEV', 'ENODEV');
    assert.match(result.message, /VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/, 'says how');
  });

  it('without the webgpu package: EOPNOTSUPP saying to install it', async () => {
    // A resolve hook that makes the package unresolvable, as on a machine without it.
    const hooks = `data:text/javascript,${encodeURIComponent(
      `export async function resolve(specifier, context, next) {
         if (specifier === 'webgpu') {
           const e = new Error("Cannot find package 'webgpu'");
           e.code = 'ERR_MODULE_NOT_FOUND';
           throw e;
         }
         return next(specifier, context);
       }`,
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(
      `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`,
    )}`;
    const out = await child(
      `import { WebGpuDevice } from ${JSON.stringify(DEVICE)};
       try { await WebGpuDevice.create({ budgetBytes: 4096 }); console.log('unexpected'); }
       catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
      {},
      ['--import', register],
    );
    assert.equal(out.code, 0, `child exited cleanly: ${out.stderr.slice(-400)}`);
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as { code: string; message: string };
    assert.equal(result.code, 'EOPNOTSUPP', 'EOPNOTSUPP');
    assert.match(result.message, /npm install webgpu/, 'says how to install it');
  });

  it('keeps Dawn’s entry point alive through garbage collections while the device is used', async () => {
    const out = await child(
      `import { WebGpuDevice } from ${JSON.stringify(DEVICE)};
       const gpu = await WebGpuDevice.create({ budgetBytes: 1 << 20, quiet: true });
       const bo = await gpu.createBuffer({ size: 4096 });
       for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
       await gpu.write(bo, new Uint8Array(4096).fill(7));
       for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
       const bytes = await gpu.read(bo);
       bo.put();
       await gpu.destroy();
       globalThis.gc();
       console.log('read', bytes[4095]);`,
      {},
      ['--expose-gc'],
    );
    assert.equal(out.signal, null, `no crash (signal ${out.signal}): ${out.stderr.slice(-400)}`);
    assert.equal(out.code, 0, `exit 0: ${out.stderr.slice(-400)}`);
    assert.match(out.stdout, /read 7/, 'the bytes survived');
  });
});
