/**
 * WebGpuDevice: the whole stack on Dawn (SwiftShader): budget, compute through submissions,
 * bad input, a destroyed device, device loss mid-work, uncaptured errors, teardown.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DmaBufError, InvalidArgumentError } from '../../../src/base/errors.js';
import { requestWebGpuDevice } from '../../../src/device/webgpu/webgpu-adapter.js';
import { REDUCE_OUTPUT_BYTES, saxpyReference } from '../../../src/device/webgpu/webgpu-compute.js';
import { WebGpuDevice } from '../../../src/device/webgpu/webgpu-device.js';
import type { TtmBufferObject } from '../../../src/ttm/ttm-bo.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import { firstDifference, makeDevice, pattern, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;

function floats(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

describe('WebGpuDevice', { skip }, () => {
  it('sanity: create, saxpy through a submission, read back, destroy', async () => {
    const gpu = await makeDevice(256 * KiB, { name: 'sanity' });
    assert.match(gpu.adapterName, /\S/, 'the adapter has a name');
    assert.equal(gpu.budgetBytes, 256 * KiB, 'budget');
    const x = await gpu.createBuffer({ size: 16, name: 'x' });
    const y = await gpu.createBuffer({ size: 16, name: 'y' });
    assert.equal(x.size, 4096, 'sizes round up to pages');
    await gpu.write(x, new Float32Array([1, 2, 3, 4]));
    await gpu.write(y, new Float32Array([1, 1, 1, 1]));
    const fence = await gpu.submit([{ bo: x }, { bo: y, write: true }], (encoder, binding) =>
      gpu.kernels.saxpy(encoder, { a: 2, x: binding(x), y: binding(y), n: 4 }),
    );
    assert.equal(await fence.wait({ timeout: 10_000 }), true, 'the fence signals');
    assert.deepEqual([...floats(await gpu.read(y, 0, 16))], [3, 5, 7, 9], 'y = 2x + 1');
    x.put();
    y.put();
    await gpu.destroy();
    assert.equal(gpu.isLost, true, 'a device it requested is destroyed with it');
    await gpu.destroy(); // idempotent
  });

  it('compute over a working set twice the budget: every result right, the budget never exceeded', async () => {
    await using gpu = await makeDevice(128 * KiB);
    const n = (16 * KiB) / 4; // 16 KiB vectors
    const xs: TtmBufferObject[] = [];
    const ys: TtmBufferObject[] = [];
    const expected: Float32Array[] = [];
    for (let i = 0; i < 8; i++) {
      const x = new Float32Array(n).map((_, j) => (i * 7 + j) % 13);
      const y = new Float32Array(n).map((_, j) => (i + j) % 5);
      const bx = await gpu.createBuffer({ size: n * 4, name: `x${i}` });
      const by = await gpu.createBuffer({ size: n * 4, name: `y${i}` });
      await gpu.write(bx, x);
      await gpu.write(by, y);
      xs.push(bx);
      ys.push(by);
      expected.push(saxpyReference(i + 1, x, y));
    }
    assert.ok(gpu.ttm.stats().evictions > 0, 'creating 256 KiB under a 128 KiB budget evicted');
    let peak = 0;
    for (let i = 0; i < 8; i++) {
      await gpu.submit([{ bo: xs[i]! }, { bo: ys[i]!, write: true }], (encoder, binding) =>
        gpu.kernels.saxpy(encoder, { a: i + 1, x: binding(xs[i]!), y: binding(ys[i]!), n }),
      );
      peak = Math.max(peak, gpu.vram.usage);
    }
    assert.ok(peak <= gpu.budgetBytes && gpu.vram.stats().peakBytes <= gpu.budgetBytes, 'budget kept');
    for (let i = 0; i < 8; i++) {
      const got = floats(await gpu.read(ys[i]!));
      const bad = got.findIndex((v, j) => v !== expected[i]![j]);
      assert.equal(bad, -1, `y${i}[${bad}] = ${got[bad]}, want ${expected[i]![bad]}`);
    }
    for (const bo of [...xs, ...ys]) bo.put();
  });

  it('a reduction of a buffer that was evicted and restored', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const n = 8 * KiB;
    const data = new Float32Array(n).map((_, i) => (i % 7) - 3);
    const input = await gpu.createBuffer({ size: n * 4, name: 'input' });
    const out = await gpu.createBuffer({ size: REDUCE_OUTPUT_BYTES, name: 'out' });
    await gpu.write(input, data);
    await gpu.evictAll();
    assert.equal(input.resource?.memType, TtmMemType.System, 'evicted');
    await gpu.submit([{ bo: input }, { bo: out, write: true }], (encoder, binding) =>
      gpu.kernels.reduceSum(encoder, { input: binding(input), output: binding(out), n }),
    );
    const sum = data.reduce((s, v) => s + v, 0);
    assert.equal(floats(await gpu.read(out, 0, 4))[0], sum, 'exact integer sum');
    input.put();
    out.put();
  });

  it('recycled VRAM buffers: a new buffer object reads as zeros; free() destroys its GPUBuffer', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const first = await gpu.createBuffer({ size: 16 * KiB, name: 'first' });
    await gpu.write(first, new Uint8Array(16 * KiB).fill(0xab));
    first.put();
    assert.equal(gpu.vram.stats().idleBytes, 16 * KiB, 'its buffer is idle');
    const second = await gpu.createBuffer({ size: 16 * KiB, name: 'second' });
    assert.equal(gpu.vram.stats().recycled, 1, 'the idle buffer was recycled');
    const bytes = await gpu.read(second);
    assert.ok(
      bytes.every((b) => b === 0),
      'a new buffer object reads as zeros on a recycled buffer',
    );
    const destroyedBefore = gpu.vram.stats().destroyed;
    await gpu.free(second);
    assert.equal(gpu.vram.stats().destroyed, destroyedBefore + 1, 'free() really destroyed the GPUBuffer');
    assert.equal(gpu.vram.stats().idleBytes, 0, 'nothing kept idle for it');
  });

  it('a buffer larger than the budget: ENOMEM, and nothing else moves or is lost', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const keep = await gpu.createBuffer({ size: 32 * KiB });
    await gpu.write(keep, pattern(32 * KiB, 4));
    await assert.rejects(gpu.createBuffer({ size: 128 * KiB }), (e: unknown) => {
      assert.ok(e instanceof DmaBufError && e.code === 'ENOMEM', `ENOMEM, got ${String(e)}`);
      assert.match((e as Error).message, /never fit/, 'the message says it never fits');
      return true;
    });
    assert.equal(keep.resource?.memType, TtmMemType.VRAM, 'the other buffer stayed');
    assert.equal(gpu.ttm.stats().evictions, 0, 'nothing was evicted for it');
    assert.equal(firstDifference(await gpu.read(keep), pattern(32 * KiB, 4)), -1, 'its bytes are intact');
    assert.equal(gpu.ttm.boCount, 1, 'the failed buffer is gone');
    keep.put();
  });

  it('bad options and arguments are typed errors', async () => {
    await assert.rejects(WebGpuDevice.create({ budgetBytes: 1000 }), InvalidArgumentError);
    await assert.rejects(WebGpuDevice.create({ budgetBytes: 4096, nope: 1 } as never), /unknown option 'nope'/);
    await assert.rejects(WebGpuDevice.create({ budgetBytes: 4096, device: {} as never }), InvalidArgumentError);
    await using gpu = await makeDevice(64 * KiB);
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    await assert.rejects(gpu.write(bo, new Uint8Array(4), 2), /offset must be a non-negative multiple of 4/);
    await assert.rejects(gpu.write(bo, new Uint8Array(8 * KiB)), /do not fit/);
    await assert.rejects(gpu.read(bo, 0, 3), InvalidArgumentError);
    await assert.rejects(gpu.read({} as never), InvalidArgumentError);
    await assert.rejects(gpu.createBuffer(null as never), InvalidArgumentError);
    bo.put();
  });

  it('uses a GPUDevice passed in without destroying it', async () => {
    const handle = await requestWebGpuDevice();
    const gpu = await WebGpuDevice.create({ budgetBytes: 64 * KiB, device: handle.device, quiet: true });
    assert.equal(gpu.adapterName, 'external device', 'named as external');
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    bo.put();
    await gpu.destroy();
    assert.equal(gpu.isLost, false, 'the caller’s device is still alive');
    assert.ok(handle.device.createBuffer({ size: 16, usage: 0x8 }), 'and usable');
    handle.device.destroy();
    await handle.device.lost;
    handle.release();
  });

  it('a destroyed device: every entry point rejects with ENODEV, nothing hangs', async () => {
    const gpu = await makeDevice(64 * KiB);
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    gpu.gpu.destroy();
    const loss = await gpu.lost;
    assert.equal(loss.reason, 'destroyed', 'lost because destroyed');
    assert.equal(loss.error.code, 'ENODEV', 'ENODEV');
    const isLoss = (e: unknown): boolean => e === loss.error;
    await assert.rejects(gpu.createBuffer({ size: 4 * KiB }), isLoss);
    await assert.rejects(
      gpu.submit([{ bo }], () => {}),
      isLoss,
    );
    await assert.rejects(gpu.read(bo), isLoss);
    await assert.rejects(gpu.write(bo, new Uint8Array(4)), isLoss);
    await assert.rejects(gpu.evictAll(), isLoss);
    bo.put();
    await gpu.destroy();
    assert.equal(gpu.ttm.boCount, 0, 'torn down');
  });

  it(
    'device loss mid-work: ' + 'pending fences signal with ENODEV, a busy buffer put meanwhile is still freed',
    async () => {
      const gpu = await makeDevice(512 * KiB);
      const m = 64;
      const a = await gpu.createBuffer({ size: m * m * 4, name: 'a' });
      const c = await gpu.createBuffer({ size: m * m * 4, name: 'c' });
      const fences = [];
      for (let i = 0; i < 6; i++) {
        fences.push(
          await gpu.submit([{ bo: a }, { bo: c, write: true }], (encoder, binding) =>
            gpu.kernels.matmul(encoder, { a: binding(a), b: binding(a), c: binding(c), m, n: m, k: m }),
          ),
        );
      }
      c.put(); // busy: a zombie until its fences signal
      const pendingBefore = fences.filter((f) => !f.signaledFlag).length;
      gpu.gpu.destroy();
      await gpu.lost;
      assert.ok(pendingBefore > 0, 'work was pending at the loss');
      assert.ok(
        fences.every((f) => f.signaledFlag),
        'every fence signalled',
      );
      const codes = fences.map((f) => (f.error as DmaBufError | undefined)?.code ?? 'ok');
      assert.ok(codes.includes('ENODEV'), `some fences report the loss: ${codes.join(', ')}`);
      await assert.rejects(gpu.read(a), (e: unknown) => (e as DmaBufError).code === 'ENODEV');
      a.put();
      await gpu.destroy();
      assert.equal(gpu.ttm.stats().zombies, 0, 'the zombie was freed');
      assert.equal(gpu.vram.usage, 0, 'all VRAM returned');
    },
  );

  it('collects errors raised outside its scopes; a command buffer they spoiled fails its own fence', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    const fence = await gpu.submit([{ bo, write: true }], (encoder, binding) => {
      encoder.clearBuffer(binding(bo).buffer, 2); // offset not a multiple of 4: an encoder error
    });
    await fence.wait();
    assert.ok(fence.error instanceof DmaBufError, `the submission failed: ${String(fence.error)}`);
    for (let i = 0; i < 50 && gpu.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(gpu.errors.length > 0, 'the encoder error was collected');
    assert.match(gpu.errors[0]!.message, /uncaptured WebGPU error/);
    const next = await gpu.submit([{ bo }], () => {});
    await next.wait();
    assert.equal(next.error, undefined, 'the next submission is fine');
    bo.put();
  });
});
