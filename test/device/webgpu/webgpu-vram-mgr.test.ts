/**
 * WebGpuVramManager: a GPUBuffer per resource under a byte budget.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError } from '../../../src/base/errors.js';
import { requestWebGpuDevice, type WebGpuHandle } from '../../../src/device/webgpu/webgpu-adapter.js';
import { WebGpuRing } from '../../../src/device/webgpu/webgpu-ring.js';
import { VRAM_USAGE, WebGpuVramManager, WebGpuVramResource } from '../../../src/device/webgpu/webgpu-vram-mgr.js';
import { DmaResv } from '../../../src/resv/dma-resv.js';
import { TtmLruList } from '../../../src/ttm/ttm-lru.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import type { TtmResourceOwner } from '../../../src/ttm/ttm-resource.js';
import { webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;

function owner(size: number): TtmResourceOwner {
  return { size, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv: new DmaResv() };
}

describe('WebGpuVramManager', { skip }, () => {
  let handle: WebGpuHandle;
  let device: GPUDevice;
  before(async () => {
    handle = await requestWebGpuDevice();
    device = handle.device;
  });
  after(async () => {
    device.destroy();
    await device.lost;
    handle.release();
  });

  const place = { memType: TtmMemType.VRAM };

  it('sanity: a resource is one GPUBuffer of the owner size, counted in usage', () => {
    const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 64 * KiB });
    const res = vram.alloc(owner(16 * KiB), place);
    assert.ok(res instanceof WebGpuVramResource, 'a VRAM resource');
    assert.equal(res.buffer.size, 16 * KiB, 'buffer size = owner size');
    assert.equal(res.buffer.usage, VRAM_USAGE, 'storage + copy usage');
    assert.deepEqual(res.binding(), { buffer: res.buffer, offset: 0, size: 16 * KiB }, 'whole-buffer binding');
    assert.equal(vram.usage, 16 * KiB, 'usage');
    assert.equal(vram.useTt, false, 'VRAM keeps no tt');
    vram.free(res);
    assert.equal(vram.usage, 0, 'usage back to 0');
  });

  it('answers ENOSPC at the budget and never goes past it', () => {
    const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 64 * KiB });
    const live = [];
    for (let i = 0; i < 4; i++) {
      const res = vram.alloc(owner(16 * KiB), place);
      assert.ok(res instanceof WebGpuVramResource, `allocation ${i} fits`);
      live.push(res);
    }
    assert.equal(vram.alloc(owner(4 * KiB), place), 'ENOSPC', 'full');
    assert.equal(vram.usage, 64 * KiB, 'exactly the budget');
    vram.free(live.pop()!);
    assert.ok(vram.alloc(owner(16 * KiB), place) instanceof WebGpuVramResource, 'fits again after a free');
    assert.equal(vram.stats().created, 5, 'five buffers created');
    assert.equal(vram.stats().destroyed, 1, 'one destroyed');
    assert.equal(vram.stats().peakBytes, 64 * KiB, 'peak');
  });

  it('never fits a buffer larger than the budget or than maxBufferSize', () => {
    const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 64 * KiB });
    assert.equal(vram.alloc(owner(68 * KiB), place), 'ENOSPC', 'larger than the budget');
    const huge = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, {
      size: device.limits.maxBufferSize * 2,
    });
    assert.equal(huge.alloc(owner(device.limits.maxBufferSize + 4096), place), 'ENOSPC', 'larger than maxBufferSize');
    assert.equal(huge.stats().created, 0, 'no buffer was created');
  });

  it('free destroys the buffer: a later submission using it fails', async () => {
    const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 64 * KiB });
    const res = vram.alloc(owner(4 * KiB), place) as WebGpuVramResource;
    const encoder = device.createCommandEncoder();
    encoder.clearBuffer(res.buffer);
    const commands = encoder.finish();
    vram.free(res);
    const ring = new WebGpuRing(device);
    const fence = ring.submit([commands]);
    await fence.wait();
    assert.match(String(fence.error), /destroyed/, 'the submission saw a destroyed buffer');
  });

  it(
    'with recycle, a freed buffer serves the next resource of its size; ' + 'live + idle bytes stay within the budget',
    () => {
      const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 64 * KiB, recycle: true });
      const a = vram.alloc(owner(16 * KiB), place) as WebGpuVramResource;
      const b = vram.alloc(owner(32 * KiB), place) as WebGpuVramResource;
      assert.equal(a.recycled, false, 'a first buffer is new');
      const buffer = a.buffer;
      vram.free(a);
      assert.equal(vram.stats().idleBytes, 16 * KiB, 'the freed buffer is kept idle');
      const again = vram.alloc(owner(16 * KiB), place) as WebGpuVramResource;
      assert.equal(again.buffer, buffer, 'the same GPUBuffer serves the next 16 KiB resource');
      assert.equal(again.recycled, true, 'marked recycled (not zeroed)');
      vram.free(again);
      vram.free(b);
      assert.equal(vram.stats().idleBytes, 48 * KiB, 'both idle');
      const big = vram.alloc(owner(64 * KiB), place);
      assert.ok(big instanceof WebGpuVramResource && !big.recycled, 'a new 64 KiB buffer');
      assert.equal(vram.stats().idleBytes, 0, 'idle buffers were destroyed to make room: live + idle <= budget');
      assert.equal(vram.stats().destroyed, 2, 'both idle buffers destroyed');
      big.destroyOnFree = true;
      vram.free(big);
      assert.equal(vram.stats().idleBytes, 0, 'destroyOnFree: destroyed, not kept');
      const c = vram.alloc(owner(4 * KiB), place) as WebGpuVramResource;
      vram.free(c);
      vram.trim();
      assert.equal(vram.stats().idleBytes, 0, 'trim destroys every idle buffer');
      assert.equal(vram.stats().created, vram.stats().destroyed, 'nothing held');
    },
  );

  it('refuses a bad budget or device', () => {
    const host = { unevictable: new TtmLruList() };
    assert.throws(() => new WebGpuVramManager(host, device, { size: 1000 }), InvalidArgumentError);
    assert.throws(() => new WebGpuVramManager(host, device, { size: 0 }), /positive multiple of 4096/);
    assert.throws(() => new WebGpuVramManager(host, {} as GPUDevice, { size: 4096 }), InvalidArgumentError);
  });
});
