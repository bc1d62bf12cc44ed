/**
 * WebGpuRing: hardware fences from real queue submissions on Dawn (SwiftShader).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DmaBufError, InvalidArgumentError } from '../../../src/base/errors.js';
import type { DmaFence } from '../../../src/fence/dma-fence.js';
import { requestWebGpuDevice, type WebGpuHandle } from '../../../src/device/webgpu/webgpu-adapter.js';
import { WebGpuRing } from '../../../src/device/webgpu/webgpu-ring.js';
import { GpuBufferUsage } from '../../../src/device/webgpu/webgpu-vram-mgr.js';
import { WebGpuKernels } from '../../../src/device/webgpu/webgpu-compute.js';
import { webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const STORAGE = GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_SRC | GpuBufferUsage.COPY_DST;

describe('WebGpuRing', { skip }, () => {
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

  it('sanity: a submission returns a fence that signals without error', async () => {
    const ring = new WebGpuRing(device, { name: 'sanity' });
    const fence = ring.submit([device.createCommandEncoder().finish()]);
    assert.equal(fence.seqno, 1, 'first seqno is 1');
    assert.equal(fence.context, ring.context, 'the fence is on the ring context');
    assert.equal(fence.timelineName, 'sanity', 'timeline name is the ring name');
    assert.equal(await fence.wait({ timeout: 10_000 }), true, 'the fence signals');
    assert.equal(fence.error, undefined, 'without error');
    assert.equal(ring.completedSeqno, 1, 'completed seqno advanced');
    assert.equal(ring.pendingCount, 0, 'nothing pending');
  });

  it('gives each submission the next seqno and never signals inside submit()', () => {
    const ring = new WebGpuRing(device);
    const fences = [ring.submit([]), ring.emit(), ring.submit([])];
    assert.deepEqual(
      fences.map((f) => f.seqno),
      [1, 2, 3],
      'seqnos 1, 2, 3',
    );
    assert.ok(
      fences.every((f) => !f.signaledFlag),
      'no fence signalled synchronously',
    );
    assert.equal(ring.lastSeqno, 3, 'lastSeqno');
    return ring.idle();
  });

  it('signals fences in seqno order, each no earlier than onSubmittedWorkDone for its submission', async () => {
    const ring = new WebGpuRing(device, { name: 'order' });
    const events: string[] = [];
    const fences = [];
    const done = [];
    for (let i = 1; i <= 50; i++) {
      const fence = ring.submit([device.createCommandEncoder().finish()]);
      fence.addCallback(() => events.push(`fence ${i}`));
      fences.push(fence);
      done.push(device.queue.onSubmittedWorkDone().then(() => events.push(`done ${i}`)));
    }
    await Promise.all(done);
    await ring.idle();
    const fenceOrder = events.filter((e) => e.startsWith('fence')).map((e) => Number(e.split(' ')[1]));
    assert.deepEqual(
      fenceOrder,
      Array.from({ length: 50 }, (_, i) => i + 1),
      'fences signal in seqno order',
    );
    for (let i = 1; i <= 50; i++) {
      const doneAt = events.indexOf(`done ${i}`);
      const fenceAt = events.indexOf(`fence ${i}`);
      // A fence signals once the queue reported submission i done: the ring's own
      // onSubmittedWorkDone for i was called before the test's, and they settle in call order.
      assert.ok(
        fenceAt >= 0 && (fenceAt < doneAt || fences[i - 1]!.signaledFlag),
        `fence ${i} signalled (events ${events.slice(0, 8).join(', ')}...)`,
      );
    }
    const timestamps = fences.map((f) => f.timestamp!);
    assert.ok(
      timestamps.every((t, i) => i === 0 || t >= timestamps[i - 1]!),
      'timestamps never go backwards',
    );
  });

  it('signals only after the GPU work of its submission is done (results are visible)', async () => {
    const ring = new WebGpuRing(device);
    const kernels = new WebGpuKernels(device);
    const n = 1 << 16;
    const x = device.createBuffer({ size: n * 4, usage: STORAGE });
    const y = device.createBuffer({ size: n * 4, usage: STORAGE });
    device.queue.writeBuffer(x, 0, new Float32Array(n).fill(2));
    device.queue.writeBuffer(y, 0, new Float32Array(n).fill(1));
    const encoder = device.createCommandEncoder();
    kernels.saxpy(encoder, { a: 3, x: { buffer: x }, y: { buffer: y }, n });
    const staging = device.createBuffer({ size: n * 4, usage: GpuBufferUsage.MAP_READ | GpuBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(y, 0, staging, 0, n * 4);
    const fence = ring.submit([encoder.finish()]);
    await fence.wait();
    // The copy is done, so mapping needs no further GPU work; the values are the kernel's.
    await staging.mapAsync(1);
    const out = new Float32Array(staging.getMappedRange());
    assert.equal(out[0], 7, 'y[0] = 3 * 2 + 1');
    assert.equal(out[n - 1], 7, 'y[n-1] = 7');
    staging.unmap();
    for (const b of [x, y, staging]) b.destroy();
  });

  it('gives a submission WebGPU rejects its own error; its neighbours succeed', async () => {
    const ring = new WebGpuRing(device, { name: 'errors' });
    const src = device.createBuffer({ size: 256, usage: STORAGE });
    const dst = device.createBuffer({ size: 256, usage: STORAGE });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(src, 0, dst, 0, 256);
    const bad = encoder.finish();
    src.destroy();
    const before = ring.submit([]);
    const failed = ring.submit([bad]);
    const afterIt = ring.submit([]);
    await afterIt.wait();
    assert.equal(before.error, undefined, 'the earlier submission succeeded');
    assert.ok(failed.error instanceof DmaBufError, `the rejected one failed: ${String(failed.error)}`);
    assert.equal((failed.error as DmaBufError).code, 'EIO', 'a validation error is EIO');
    assert.match(failed.error!.message, /errors submission 2 was rejected by WebGPU: .*destroyed/);
    assert.equal(afterIt.error, undefined, 'the later submission succeeded');
    dst.destroy();
  });

  it('without error scopes, an uncaptured error fails every pending fence and nothing else', async () => {
    const ring = new WebGpuRing(device, { name: 'unscoped', errorScopes: false });
    const done = ring.submit([]);
    await done.wait();
    const pending = [ring.submit([]), ring.submit([])];
    const error = new DmaBufError('EIO', 'test: uncaptured');
    assert.equal(ring.uncapturedError(error), 2, 'two pending fences got it');
    await ring.idle();
    assert.equal(done.error, undefined, 'the signalled fence keeps its success');
    assert.ok(
      pending.every((f) => f.error === error),
      'both pending fences failed',
    );
    assert.equal(new WebGpuRing(device).uncapturedError(error), 0, 'a scoped ring ignores it');
  });

  it('without error scopes, an error raised inside queue.submit() (Dawn) fails that submission only', async () => {
    const ring = new WebGpuRing(device, { name: 'attributed', errorScopes: false });
    const other = new WebGpuRing(device, { name: 'bystander', errorScopes: false });
    const forward = (event: Event): void => {
      const error = (event as GPUUncapturedErrorEvent).error;
      const wrapped = new DmaBufError('EIO', `uncaptured: ${error.message}`, { cause: error });
      ring.uncapturedError(wrapped);
      other.uncapturedError(wrapped);
    };
    device.addEventListener('uncapturederror', forward);
    try {
      const src = device.createBuffer({ size: 256, usage: STORAGE });
      const dst = device.createBuffer({ size: 256, usage: STORAGE });
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(src, 0, dst, 0, 256);
      const bad = encoder.finish();
      src.destroy();
      const bystander = other.submit([]);
      const before = ring.submit([]);
      const failed = ring.submit([bad]);
      const afterIt = ring.submit([]);
      await Promise.all([afterIt.wait(), bystander.wait()]);
      assert.equal(before.error, undefined, 'the earlier submission succeeded');
      assert.match(String(failed.error), /attributed submission 2 was rejected by WebGPU: .*destroyed/);
      assert.equal(afterIt.error, undefined, 'the later submission succeeded');
      assert.equal(bystander.error, undefined, "another ring's pending fence is not blamed");
      dst.destroy();
    } finally {
      device.removeEventListener('uncapturederror', forward);
    }
  });

  it('one onSubmittedWorkDone() at a time completes every submission before it', async () => {
    const ring = new WebGpuRing(device, { name: 'batched', errorScopes: false });
    const fences = Array.from({ length: 32 }, () => ring.submit([device.createCommandEncoder().finish()]));
    await fences.at(-1)!.wait();
    assert.ok(
      fences.every((f) => f.signaledFlag && f.error === undefined),
      'all 32 signalled without error',
    );
    assert.equal(ring.completedSeqno, 32, 'completed seqno is the last');
  });

  it('refuses a non-array argument before submitting anything', () => {
    const ring = new WebGpuRing(device);
    assert.throws(() => ring.submit('nope' as never), InvalidArgumentError);
    assert.equal(ring.lastSeqno, 0, 'no seqno consumed');
  });

  it(
    'forceCompletion signals every pending fence with the error, in order, ' + 'and refuses later submissions',
    async () => {
      const ring = new WebGpuRing(device, { name: 'forced' });
      const fences = [ring.submit([]), ring.submit([]), ring.submit([])];
      const order: number[] = [];
      for (const f of fences) f.addCallback(() => order.push(f.seqno));
      const lostError = new DmaBufError('ENODEV', 'test: device lost');
      ring.forceCompletion(lostError);
      assert.ok(
        fences.every((f) => f.signaledFlag && f.error === lostError),
        'every pending fence signalled with the loss',
      );
      assert.deepEqual(order, [1, 2, 3], 'in seqno order');
      assert.throws(
        () => ring.submit([]),
        (e: unknown) => e === lostError,
        'submit after loss throws the loss',
      );
      ring.forceCompletion(new DmaBufError('EIO', 'second'));
      assert.equal(ring.deadError, lostError, 'the first error stays');
      await device.queue.onSubmittedWorkDone(); // the late completions find nothing to do
      assert.equal(ring.pendingCount, 0, 'nothing pending');
    },
  );

  it('a real device loss mid-work: fences pending at the loss signal with ENODEV, every fence settles', async () => {
    const own = await requestWebGpuDevice();
    const gpu = own.device;
    const ring = new WebGpuRing(gpu, { name: 'lossy' });
    const fences: DmaFence[] = [];
    let pendingAtLoss: DmaFence[] = [];
    gpu.lost.then(() => {
      pendingAtLoss = fences.filter((f) => !f.signaledFlag);
      ring.forceCompletion(new DmaBufError('ENODEV', 'lost'));
    });
    const kernels = new WebGpuKernels(gpu);
    const m = 64;
    const a = gpu.createBuffer({ size: m * m * 4, usage: STORAGE });
    const c = gpu.createBuffer({ size: m * m * 4, usage: STORAGE });
    for (let i = 0; i < 6; i++) {
      const encoder = gpu.createCommandEncoder();
      kernels.matmul(encoder, { a: { buffer: a }, b: { buffer: a }, c: { buffer: c }, m, n: m, k: m });
      fences.push(ring.submit([encoder.finish()]));
    }
    gpu.destroy();
    await gpu.lost;
    const settled = await Promise.all(fences.map((f) => f.wait({ timeout: 30_000 })));
    assert.ok(
      settled.every((s) => s),
      'every fence signalled',
    );
    const outcome = fences.map((f) => (f.error as DmaBufError | undefined)?.code ?? 'ok').join(', ');
    assert.ok(pendingAtLoss.length > 0, `six matmuls were still running when the loss was reported (${outcome})`);
    for (const f of fences) {
      const expected = pendingAtLoss.includes(f) ? 'ENODEV' : undefined;
      assert.equal((f.error as DmaBufError | undefined)?.code, expected, `fence ${f.seqno}: ${outcome}`);
    }
    assert.throws(() => ring.submit([]), DmaBufError, 'the dead ring refuses submissions');
    own.release();
  });
});
