/**
 * webGpuCs: lock, validate, implicit sync as scheduler dependencies, arm, fence, push; failures
 * leave nothing behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError } from '../../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../../src/fence/dma-fence.js';
import { DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import { makeDevice, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;
const ops = { getDriverName: () => 'test', getTimelineName: () => 'cpu' };

describe('webGpuCs', { skip }, () => {
  it('sanity: a submission fences every buffer with the right usage', async () => {
    await using gpu = await makeDevice(256 * KiB);
    const src = await gpu.createBuffer({ size: 4 * KiB });
    const dst = await gpu.createBuffer({ size: 4 * KiB });
    const fence = await gpu.submit([{ bo: src }, { bo: dst, write: true }], (encoder, binding) =>
      encoder.copyBufferToBuffer(binding(src).buffer, 0, binding(dst).buffer, 0, 4 * KiB),
    );
    assert.notEqual(fence.context, gpu.ring.context, "the job's finished fence, not the ring's");
    assert.equal(fence.timelineName, gpu.sched.name, "on the queue's scheduler timeline");
    assert.deepEqual(dst.resv.getFences(DmaResvUsage.Write), [fence], 'dst: a write fence');
    assert.deepEqual(src.resv.getFences(DmaResvUsage.Write), [], 'src: no write fence');
    assert.deepEqual(src.resv.getFences(DmaResvUsage.Read), [fence], 'src: a read fence');
    assert.equal(src.resv.isLocked || dst.resv.isLocked, false, 'unlocked afterwards');
    await fence.wait();
    for (const bo of [src, dst]) bo.put();
  });

  it('a reader waits for a writer on another timeline; the result is the writer’s', async () => {
    await using gpu = await makeDevice(256 * KiB);
    const bo = await gpu.createBuffer({ size: 4 * KiB, placement: [{ memType: TtmMemType.System }] });
    const out = await gpu.createBuffer({ size: 4 * KiB });
    const cpuWrite = new DmaFence(ops, fenceContextAlloc(), 1);
    await bo.reserve();
    const mapped = bo.kmap(); // the CPU job's mapping: it writes without the lock, under its fence
    bo.resv.reserveFences(1);
    bo.resv.addFence(cpuWrite, DmaResvUsage.Write);
    bo.unreserve();
    const seqno = gpu.ring.lastSeqno;
    // bo is in System: placing it in VRAM waits for the CPU writer first (moves are not
    // pipelined here); the job itself would wait for it in the scheduler.
    const submitted = gpu.submit([{ bo }, { bo: out, write: true }], (encoder, binding) =>
      encoder.copyBufferToBuffer(binding(bo).buffer, 0, binding(out).buffer, 0, 4 * KiB),
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(gpu.ring.lastSeqno, seqno, 'held back by the CPU write: nothing on the queue');
    // The CPU job writes the bytes, then signals: the submission must see them.
    mapped.fill(0x5a);
    cpuWrite.signal();
    await (await submitted).wait();
    assert.equal(gpu.ring.lastSeqno, seqno + 1, 'then submitted once');
    assert.ok(
      (await gpu.read(out)).every((b) => b === 0x5a),
      'the copy saw the CPU write',
    );
    for (const b of [bo, out]) b.put();
  });

  it('an explicit dependency holds the job back until it signals, even on an idle buffer', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const a = await gpu.createBuffer({ size: 4 * KiB });
    const gate = new DmaFence(ops, fenceContextAlloc(), 1);
    const finished = await gpu.submit([{ bo: a, write: true }], () => {}, { dependencies: [gate] });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(finished.isSignaled(), false, 'waiting for the gate');
    gate.signal();
    await finished.wait();
    assert.equal(finished.error, undefined, 'finished without error');
    await assert.rejects(
      gpu.submit([], () => {}, { dependencies: 'x' as never }),
      InvalidArgumentError,
    );
    a.put();
  });

  it('device loss: a job still waiting in the scheduler and one on the queue finish with ENODEV', async () => {
    const gpu = await makeDevice(64 * KiB);
    const a = await gpu.createBuffer({ size: 4 * KiB });
    const gate = new DmaFence(ops, fenceContextAlloc(), 1);
    const waiting = await gpu.submit([{ bo: a, write: true }], () => {}, { dependencies: [gate] });
    gpu.gpu.destroy();
    await gpu.lost;
    gate.signal();
    await waiting.wait();
    assert.equal((waiting.error as { code?: string } | undefined)?.code, 'ENODEV', `ENODEV, got ${waiting.error}`);
    await assert.rejects(
      gpu.submit([{ bo: a }], () => {}),
      (e: unknown) => (e as { code?: string }).code === 'ENODEV',
    );
    a.put();
    await gpu.destroy();
  });

  it('refuses a buffer of another device before locking anything', async () => {
    await using gpu = await makeDevice(64 * KiB);
    await using other = await makeDevice(64 * KiB);
    const mine = await gpu.createBuffer({ size: 4 * KiB });
    const theirs = await other.createBuffer({ size: 4 * KiB });
    await assert.rejects(
      gpu.submit([{ bo: mine }, { bo: theirs }], () => {}),
      (e: unknown) => e instanceof InvalidArgumentError && /belongs to another device/.test(e.message),
    );
    await assert.rejects(gpu.read(theirs), InvalidArgumentError);
    await assert.rejects(gpu.write(theirs, new Uint8Array(4)), InvalidArgumentError);
    assert.equal(mine.resv.isLocked, false, 'nothing left locked');
    mine.put();
    theirs.put();
  });

  it('an encode that throws or binds an unlisted buffer submits nothing and fences nothing', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const a = await gpu.createBuffer({ size: 4 * KiB });
    const b = await gpu.createBuffer({ size: 4 * KiB });
    const seqno = gpu.ring.lastSeqno;
    await assert.rejects(
      gpu.submit([{ bo: a, write: true }], () => {
        throw new Error('encode failed');
      }),
      /encode failed/,
    );
    await assert.rejects(
      gpu.submit([{ bo: a, write: true }], (_encoder, binding) => binding(b)),
      /not in this submission's buffer list/,
    );
    assert.equal(gpu.ring.lastSeqno, seqno, 'no submission');
    assert.deepEqual(a.resv.getFences(DmaResvUsage.Bookkeep), [], 'no fence added');
    assert.equal(a.resv.isLocked, false, 'unlocked');
    a.put();
    b.put();
  });

  it('a buffer listed twice counts once, as a writer if either entry writes', async () => {
    await using gpu = await makeDevice(64 * KiB);
    const a = await gpu.createBuffer({ size: 4 * KiB });
    const fence = await gpu.submit([{ bo: a }, { bo: a, write: true }], () => {});
    assert.deepEqual(a.resv.getFences(DmaResvUsage.Write), [fence], 'one write fence');
    await assert.rejects(
      gpu.submit('x' as never, () => {}),
      InvalidArgumentError,
    );
    await assert.rejects(
      gpu.submit([{ bo: {} as never }], () => {}),
      InvalidArgumentError,
    );
    await assert.rejects(gpu.submit([], 'x' as never), InvalidArgumentError);
    a.put();
  });
});
