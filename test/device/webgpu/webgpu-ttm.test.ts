/**
 * The WebGPU device's TTM moves: eviction to System through staging, restore with writeBuffer,
 * LRU order, pinning, and waits for other timelines, on real GPUBuffers under a tight budget.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DmaBufError } from '../../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../../src/fence/dma-fence.js';
import { DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { WebGpuVramResource } from '../../../src/device/webgpu/webgpu-vram-mgr.js';
import type { TtmBufferObject } from '../../../src/ttm/ttm-bo.js';
import { TtmOperationCtx } from '../../../src/ttm/ttm-placement.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import { firstDifference, makeDevice, pattern, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;
const VRAM = [{ memType: TtmMemType.VRAM }];
const SYSTEM = [{ memType: TtmMemType.System }];
const ops = { getDriverName: () => 'test', getTimelineName: () => 'cpu' };

function where(bo: TtmBufferObject): string {
  return bo.resource === null ? 'none' : bo.resource.memType === TtmMemType.VRAM ? 'VRAM' : 'System';
}

describe('webGpuTtmFuncs', { skip }, () => {
  it('sanity: System -> VRAM -> System keeps the bytes', async () => {
    await using gpu = await makeDevice(256 * KiB);
    const bo = await gpu.createBuffer({ size: 64 * KiB, placement: SYSTEM });
    const data = pattern(64 * KiB, 7);
    await bo.reserve();
    bo.kmap().set(data);
    await bo.validate(VRAM);
    assert.ok(bo.resource instanceof WebGpuVramResource, 'in VRAM');
    assert.equal(bo.tt, null, 'the tt was freed after the upload');
    await bo.validate(SYSTEM);
    assert.equal(where(bo), 'System', 'back in System');
    assert.equal(firstDifference(bo.kmap(), data), -1, 'same bytes after the round trip');
    bo.unreserve();
    bo.put();
  });

  it('a new buffer placed in VRAM reads as zeros; a purged one comes back as zeros', async () => {
    await using gpu = await makeDevice(256 * KiB);
    const bo = await gpu.createBuffer({ size: 8 * KiB });
    assert.equal(where(bo), 'VRAM', 'placed in VRAM');
    assert.ok(
      (await gpu.read(bo)).every((b) => b === 0),
      'zeros',
    );
    await gpu.write(bo, new Uint8Array(8 * KiB).fill(5));
    await bo.reserve();
    await bo.validate([]); // purge
    await bo.validate(VRAM);
    bo.unreserve();
    assert.ok(
      (await gpu.read(bo)).every((b) => b === 0),
      'zeros after purge + restore',
    );
    bo.put();
  });

  it('placing a buffer over budget evicts the least recently used one to System, bytes intact', async () => {
    await using gpu = await makeDevice(192 * KiB);
    const a = await gpu.createBuffer({ size: 64 * KiB, name: 'a' });
    const b = await gpu.createBuffer({ size: 64 * KiB, name: 'b' });
    const c = await gpu.createBuffer({ size: 64 * KiB, name: 'c' });
    const data = [pattern(64 * KiB, 1), pattern(64 * KiB, 2), pattern(64 * KiB, 3)];
    await gpu.write(a, data[0]!);
    await gpu.write(b, data[1]!);
    await gpu.write(c, data[2]!); // write order = LRU order: a is the oldest
    const d = await gpu.createBuffer({ size: 64 * KiB, name: 'd' });
    assert.deepEqual([a, b, c, d].map(where), ['System', 'VRAM', 'VRAM', 'VRAM'], 'a was evicted');
    assert.ok(gpu.vram.usage <= gpu.budgetBytes, 'budget kept');
    assert.equal(gpu.ttm.stats().evictions, 1, 'one eviction');
    // Using a again restores it and evicts the next least recently used buffer, b.
    await gpu.submit([{ bo: a }], () => {});
    assert.deepEqual([a, b, c, d].map(where), ['VRAM', 'System', 'VRAM', 'VRAM'], 'a back, b out');
    for (const [i, bo] of [a, b, c].entries())
      assert.equal(firstDifference(await gpu.read(bo), data[i]!), -1, `${bo.name} intact`);
    assert.ok(
      (await gpu.read(d)).every((x) => x === 0),
      'd reads as zeros',
    );
    for (const bo of [a, b, c, d]) bo.put();
  });

  it('pinned buffers never move; with only pinned buffers in VRAM a new one gets ENOMEM', async () => {
    await using gpu = await makeDevice(128 * KiB);
    const pinned = await gpu.createBuffer({ size: 64 * KiB, name: 'pinned' });
    const other = await gpu.createBuffer({ size: 64 * KiB, name: 'other' });
    await pinned.reserve();
    pinned.pin();
    const buffer = (pinned.resource as WebGpuVramResource).buffer;
    pinned.unreserve();
    const next = await gpu.createBuffer({ size: 64 * KiB, name: 'next' });
    assert.equal(where(other), 'System', 'the unpinned one was evicted');
    for (const bo of [other, next]) {
      await bo.reserve();
      bo.pin(); // other in System, next in VRAM
      bo.unreserve();
    }
    await assert.rejects(gpu.createBuffer({ size: 64 * KiB }), (e: unknown) => {
      assert.ok(
        e instanceof DmaBufError && e.code === 'ENOMEM',
        `ENOMEM with VRAM full of pinned buffers, got ${String(e)}`,
      );
      return true;
    });
    await assert.rejects(
      gpu.submit([{ bo: other }], () => {}),
      /pinned/,
      'a pinned System buffer cannot be used',
    );
    assert.equal((pinned.resource as WebGpuVramResource).buffer, buffer, 'the pinned buffer kept its GPUBuffer');
    for (const bo of [pinned, other, next]) {
      await bo.reserve();
      bo.unpin();
      bo.unreserve();
    }
    for (const bo of [pinned, other, next]) bo.put();
  });

  it('eviction waits for fences of other timelines, and refuses with EBUSY under noWaitGpu', async () => {
    await using gpu = await makeDevice(128 * KiB);
    const bo = await gpu.createBuffer({ size: 64 * KiB });
    await gpu.write(bo, pattern(64 * KiB, 9));
    const cpuWrite = new DmaFence(ops, fenceContextAlloc(), 1);
    await bo.reserve();
    bo.resv.reserveFences(1);
    bo.resv.addFence(cpuWrite, DmaResvUsage.Write);
    await assert.rejects(bo.validate(SYSTEM, new TtmOperationCtx({ noWaitGpu: true })), (e: unknown) => {
      assert.ok(e instanceof DmaBufError && e.code === 'EBUSY', `EBUSY, got ${String(e)}`);
      return true;
    });
    assert.equal(where(bo), 'VRAM', 'nothing moved');
    let moved = false;
    const move = bo.validate(SYSTEM).then(() => (moved = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(moved, false, 'the move waits for the CPU fence');
    cpuWrite.signal();
    await move;
    assert.equal(where(bo), 'System', 'moved once it signalled');
    assert.equal(firstDifference(bo.kmap(), pattern(64 * KiB, 9)), -1, 'bytes intact');
    bo.unreserve();
    bo.put();
  });

  it('a failed eviction copy leaves the buffer where it was', async () => {
    await using gpu = await makeDevice(128 * KiB);
    const bo = await gpu.createBuffer({ size: 64 * KiB });
    await bo.reserve();
    // Sabotage: destroy the GPUBuffer behind TTM's back, so the copy out is rejected.
    (bo.resource as WebGpuVramResource).buffer.destroy();
    await assert.rejects(bo.validate(SYSTEM), /rejected by WebGPU/);
    assert.equal(where(bo), 'VRAM', 'still in VRAM');
    assert.equal(bo.tt, null, 'no tt left behind');
    assert.equal(gpu.ttm.manager(TtmMemType.System)!.usage, 0, 'no System resource left behind');
    bo.unreserve();
    bo.put();
  });
});
