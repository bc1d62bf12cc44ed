/**
 * WebGpuJob and the queue's scheduler: jobs reach the queue through runJob, in dependency order;
 * a dead ring fails them with ENODEV; delayed delete of busy buffers and the awaitable free.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError } from '../../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../../src/fence/dma-fence.js';
import { DrmSchedEntity } from '../../../src/sched/sched-entity.js';
import { createWebGpuScheduler, WebGpuJob } from '../../../src/device/webgpu/webgpu-sched.js';
import { WebGpuRing } from '../../../src/device/webgpu/webgpu-ring.js';
import { requestWebGpuDevice } from '../../../src/device/webgpu/webgpu-adapter.js';
import { makeDevice, pattern, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;
const ops = { getDriverName: () => 'test', getTimelineName: () => 'cpu' };
const tick = () => new Promise((r) => setTimeout(r, 10));

describe('createWebGpuScheduler', { skip }, () => {
  it('sanity: a pushed job runs on the ring; finished follows the hardware fence', async () => {
    const handle = await requestWebGpuDevice();
    const ring = new WebGpuRing(handle.device);
    const sched = createWebGpuScheduler(ring);
    const entity = new DrmSchedEntity({ schedulers: [sched], name: 'client' });
    const job = new WebGpuJob(entity, [handle.device.createCommandEncoder().finish()]);
    job.arm();
    job.push();
    await job.finished.wait();
    assert.equal(job.finished.error, undefined, 'no error');
    assert.equal(ring.lastSeqno, 1, 'one submission on the ring');
    await entity.destroy();
    sched.fini();
    handle.device.destroy();
    await handle.device.lost;
    handle.release();
  });

  it('a job waits for its dependency before reaching the queue; a dead ring fails it with ENODEV', async () => {
    const handle = await requestWebGpuDevice();
    const ring = new WebGpuRing(handle.device);
    const sched = createWebGpuScheduler(ring);
    const entity = new DrmSchedEntity({ schedulers: [sched] });
    const gate = new DmaFence(ops, fenceContextAlloc(), 1);
    const job = new WebGpuJob(entity, [handle.device.createCommandEncoder().finish()]);
    job.addDependency(gate);
    job.arm();
    job.push();
    await tick();
    assert.equal(ring.lastSeqno, 0, 'held back');
    ring.forceCompletion(Object.assign(new Error('gone'), { code: 'ENODEV' }));
    gate.signal();
    await job.finished.wait();
    assert.match(String(job.finished.error), /gone/, 'the ring’s loss error');
    assert.equal(ring.lastSeqno, 0, 'never submitted');
    assert.throws(() => new WebGpuJob(entity, 'x' as never), InvalidArgumentError);
    await entity.destroy();
    sched.fini();
    handle.device.destroy();
    await handle.device.lost;
    handle.release();
  });
});

describe('WebGpuDevice.free: delayed delete with an awaitable end', { skip }, () => {
  it('sanity: an idle buffer is freed at once', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const bo = await gpu.createBuffer({ size: 16 * KiB });
    assert.equal(gpu.vram.usage, 16 * KiB, 'in VRAM');
    await gpu.free(bo);
    assert.equal(bo.released, true, 'destroyed');
    assert.equal(gpu.vram.usage, 0, 'its GPUBuffer is gone');
  });

  it('a busy buffer stays until its job is done, and the reader still sees its bytes', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const src = await gpu.createBuffer({ size: 16 * KiB });
    const dst = await gpu.createBuffer({ size: 16 * KiB });
    const bytes = pattern(16 * KiB, 7);
    await gpu.write(src, bytes);
    const gate = new DmaFence(ops, fenceContextAlloc(), 1);
    const copy = await gpu.submit(
      [{ bo: src }, { bo: dst, write: true }],
      (encoder, binding) => encoder.copyBufferToBuffer(binding(src).buffer, 0, binding(dst).buffer, 0, 16 * KiB),
      { dependencies: [gate] },
    );
    let freed = false;
    const done = gpu.free(src).then(() => {
      freed = true;
    });
    await tick();
    assert.equal(freed, false, 'not freed while its job waits');
    assert.equal(src.released, false, 'a zombie');
    assert.equal(gpu.ttm.stats().zombies, 1, 'one zombie');
    assert.equal(gpu.vram.usage, 32 * KiB, 'its GPUBuffer is still there');
    gate.signal();
    await done;
    assert.ok(copy.isSignaled(), 'freed only after the job finished');
    assert.equal(gpu.vram.usage, 16 * KiB, 'the GPUBuffer went');
    assert.deepEqual(await gpu.read(dst), bytes, 'the copy read the bytes before the free');
    assert.throws(() => gpu.free({} as never), InvalidArgumentError);
    await gpu.free(dst);
  });

  it('with another reference held, free resolves at the last put', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    bo.get();
    let freed = false;
    const done = gpu.free(bo).then(() => {
      freed = true;
    });
    await tick();
    assert.equal(freed, false, 'still referenced');
    bo.put();
    await done;
    assert.equal(bo.released, true, 'destroyed at the last put');
  });
});
