/**
 * Executable specification of buffer objects (src/ttm/ttm-bo.ts) outside validation: the KUnit
 * suite `ttm_bo_test.c` (reserve, unreserve and the LRU, put, pin and bulk moves), then bad
 * input: impossible placements, sizes no manager can hold, unpinning an unpinned buffer, using a
 * released buffer, validating without the lock. Each failure must be a clear error that leaves
 * the buffer as it was. Then waits: waitIdle (noWaitGpu, the 15 s limit), kmap while a move
 * fence is pending, pipelined moves, and an aborted validate.
 *
 * Where the kernel test sets `bo->resource = res` by hand, the port gets the resource from a
 * validate into System (there is no setter); extra "dummy" resources come from
 * `ttmResourceAlloc()` as in the kernel.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  AlreadyLockedError,
  BugError,
  DmaBufError,
  InvalidArgumentError,
  WwDeadlockError,
} from '../../src/base/errors.js';
import { WwAcquireCtx } from '../../src/locking/ww-mutex.js';
import { DmaResv, DmaResvUsage, reservationWwClass } from '../../src/resv/dma-resv.js';
import { PAGE_SIZE } from '../../src/heap/page-pool.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { TtmBufferObject } from '../../src/ttm/ttm-bo.js';
import { TtmMemType, TtmOperationCtx } from '../../src/ttm/ttm-placement.js';
import { TtmDevice } from '../../src/ttm/ttm-device.js';
import { ttmBoMoveMemcpy } from '../../src/ttm/ttm-bo-util.js';
import { ttmResourceAlloc, ttmResourceFree } from '../../src/ttm/ttm-resource.js';
import { TTM_MAX_BO_PRIORITY, TtmLruBulkMove } from '../../src/ttm/ttm-lru.js';
import { mockFence } from '../helpers/mock-fence.js';
import { asOtherTask } from '../helpers/other-task.js';
import { settleWithin, watch } from '../helpers/completion.js';
import {
  checksum,
  fillRandom,
  isLast,
  kunitBo,
  kunitDevice,
  placement,
  signalLeftovers,
  trackFence,
} from '../helpers/ttm-kunit.js';

const BO_SIZE = 8 * 1024;
const SYSTEM = placement(TtmMemType.System);

/** A kunit BO that got a System resource through validate (the port of `bo->resource = res`). */
async function boInSystem(device: TtmDevice, init?: Parameters<typeof kunitBo>[2]): Promise<TtmBufferObject> {
  const bo = kunitBo(device, BO_SIZE, init);
  await bo.reserve();
  await bo.validate(SYSTEM);
  bo.unreserve();
  return bo;
}

describe('ttm_bo', () => {
  const reserveCases = [
    { description: 'Cannot be interrupted and sleeps', interruptible: false, noWait: false },
    { description: 'Cannot be interrupted, locks straight away', interruptible: false, noWait: true },
    { description: 'Can be interrupted, sleeps', interruptible: true, noWait: false },
  ];
  for (const params of reserveCases) {
    it(`ttm_bo_reserve_optimistic_no_ticket (${params.description})`, async () => {
      await using device = kunitDevice();
      const bo = kunitBo(device, BO_SIZE);
      await bo.reserve({ interruptible: params.interruptible, noWait: params.noWait });
      assert.equal(bo.resv.isLocked, true);
      bo.resv.unlock();
      bo.put();
    });
  }

  it('ttm_bo_reserve_locked_no_sleep', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    await asOtherTask(() => bo.resv.lock()); // locked beforehand by someone else
    await assert.rejects(bo.reserve({ interruptible: false, noWait: true }), { code: 'EBUSY' });
    bo.resv.unlock();
    bo.put();
  });

  it('ttm_bo_reserve_no_wait_ticket', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    const ctx = new WwAcquireCtx(reservationWwClass);
    // The kernel WARNs and returns -EBUSY: no_wait with a ticket is a caller mistake.
    await assert.rejects(bo.reserve({ interruptible: false, noWait: true, ticket: ctx }), { code: 'EBUSY' });
    assert.equal(bo.resv.isLocked, false);
    ctx.fini();
    bo.put();
  });

  it('ttm_bo_reserve_double_resv', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    const ctx = new WwAcquireCtx(reservationWwClass);
    await bo.reserve({ ticket: ctx });
    await assert.rejects(
      bo.reserve({ ticket: ctx }),
      (err) => err instanceof AlreadyLockedError && err.code === 'EALREADY',
    );
    bo.resv.unlock();
    ctx.fini();
    bo.put();
  });

  // ttm_bo_reserve_interrupted: the kernel sends SIGTERM to a task sleeping in an interruptible
  // reserve and expects -ERESTARTSYS. Here interruption is an AbortSignal, and an aborted wait
  // rejects with the signal's reason (DESIGN.md: cancellation keeps the caller's reason).
  it('ttm_bo_reserve_interrupted', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    await asOtherTask(() => bo.resv.lock()); // so the reserve has to wait
    const controller = new AbortController();
    const reason = new Error('SIGTERM');
    const ctx = new WwAcquireCtx(reservationWwClass);
    const reserving = asOtherTask(() => bo.reserve({ interruptible: true, ticket: ctx, signal: controller.signal }));
    const early = await settleWithin(reserving, 5);
    assert.equal(early.state, 'pending', 'reserve sleeps while the lock is held');
    controller.abort(reason);
    await assert.rejects(reserving, (err) => err === reason);
    assert.equal(bo.resv.mutex.waiters, 0, 'the aborted waiter left the queue');
    ctx.fini();
    bo.resv.unlock();
    bo.put();
  });

  // Issue 10 defect 7: `interruptible` was read nowhere. It now means what DrmExec's does: the
  // waits honour the signal; false promises they cannot be interrupted, so a signal with it is
  // refused instead of silently ignored (a wait that cannot be stopped must not look stoppable).
  it('interruptible: false together with a signal is refused, by reserve() and by TtmOperationCtx', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    const signal = new AbortController().signal;
    await assert.rejects(bo.reserve({ interruptible: false, signal }), InvalidArgumentError);
    assert.equal(bo.resv.isLocked, false, 'nothing was locked');
    assert.throws(() => new TtmOperationCtx({ interruptible: false, signal }), InvalidArgumentError);
    assert.equal(new TtmOperationCtx({ signal }).interruptible, true, 'a signal makes the operation interruptible');
    await bo.reserve({ interruptible: false });
    bo.unreserve();
    bo.put();
  });

  it('ttm_bo_reserve_deadlock', async () => {
    await using device = kunitDevice();
    const bo1 = kunitBo(device, BO_SIZE);
    const bo2 = kunitBo(device, BO_SIZE);
    // The kernel forges the holder's stamp to be older; here the older ticket is simply made first.
    const ctx2 = new WwAcquireCtx(reservationWwClass);
    const ctx1 = new WwAcquireCtx(reservationWwClass);
    await asOtherTask(() => bo2.reserve({ ticket: ctx2 }));
    await bo1.reserve({ ticket: ctx1 });
    await assert.rejects(
      bo2.reserve({ ticket: ctx1 }),
      (err) => err instanceof WwDeadlockError && err.code === 'EDEADLK',
    );
    bo1.resv.unlock();
    ctx1.fini();
    bo2.resv.unlock();
    ctx2.fini();
    bo1.put();
    bo2.put();
  });

  it('ttm_bo_unreserve_basic', async () => {
    await using device = kunitDevice();
    const prio = TTM_MAX_BO_PRIORITY - 1;
    const bo = await boInSystem(device, { priority: prio });
    const res1 = bo.resource;
    assert.ok(res1 !== null);
    const man = device.manager(TtmMemType.System)!;
    // A dummy resource to populate the LRU behind res1.
    const res2 = ttmResourceAlloc(bo, { memType: TtmMemType.System }, man);
    assert.ok(typeof res2 !== 'string', `dummy resource: ${String(res2)}`);
    assert.equal(isLast(man.lru[prio]!, res2), true, 'the dummy is last before the unreserve');
    await bo.reserve();
    bo.unreserve();
    assert.equal(isLast(man.lru[prio]!, res1), true, 'unreserve moves the resource to the LRU tail');
    ttmResourceFree(bo, res2);
    bo.put();
  });

  it('ttm_bo_unreserve_pinned', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    const other = await boInSystem(device);
    const res1 = bo.resource!;
    await bo.reserve();
    bo.pin();
    bo.unreserve();
    // The port's "dummy on the pinned list": a second pinned buffer, whose resource goes behind res1.
    await other.reserve();
    other.pin();
    other.unreserve();
    assert.equal(isLast(device.unevictable, other.resource), true);
    await bo.reserve();
    bo.unreserve();
    assert.equal(
      isLast(device.unevictable, res1),
      true,
      'unreserve moves a pinned resource to the tail of the unevictable list',
    );
    for (const b of [bo, other]) {
      await b.reserve();
      b.unpin();
      b.unreserve();
      b.put();
    }
  });

  it('ttm_bo_unreserve_bulk', async () => {
    await using device = kunitDevice();
    const bulk = new TtmLruBulkMove();
    const resv = new DmaResv();
    const bo1 = kunitBo(device, BO_SIZE, { resv });
    const bo2 = kunitBo(device, BO_SIZE, { resv });
    await resv.lock();
    bo1.setBulkMove(bulk);
    await bo1.validate(SYSTEM);
    bo2.setBulkMove(bulk);
    await bo2.validate(SYSTEM);
    resv.unlock();
    const res1 = bo1.resource!;
    assert.equal(bulk.range(TtmMemType.System, 0).last, bo2.resource);
    await bo1.reserve();
    bo1.unreserve();
    assert.equal(bulk.range(TtmMemType.System, 0).last, res1);
    await resv.lock();
    bo1.setBulkMove(null);
    bo2.setBulkMove(null);
    resv.unlock();
    bo1.put();
    bo2.put();
    bulk.fini();
  });

  it('ttm_bo_put_basic', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device, { type: 'device' });
    assert.ok(bo.tt !== null, 'a System BO has a tt');
    const man = device.manager(TtmMemType.System)!;
    assert.equal(man.usage, BO_SIZE);
    bo.put();
    assert.equal(bo.released, true);
    assert.equal(man.usage, 0);
    assert.equal(device.boCount, 0);
  });

  it('ttm_bo_put_shared_resv', async () => {
    await using device = kunitDevice();
    const external = new DmaResv();
    const fence = mockFence();
    await external.lock();
    external.reserveFences(1);
    external.addFence(fence, DmaResvUsage.Bookkeep);
    external.unlock();
    fence.signal();
    const bo = kunitBo(device, BO_SIZE, { type: 'device', resv: external });
    assert.equal(bo.resv, external);
    assert.notEqual(bo.ownResv, external);
    bo.put();
    assert.equal(bo.released, true, 'idle on its shared resv: freed at once');
    assert.equal(device.stats().zombies, 0);
  });

  it('ttm_bo_pin_basic', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    const noPins = 3;
    for (let i = 0; i < noPins; i++) {
      await bo.reserve();
      bo.pin();
      bo.unreserve();
    }
    assert.equal(bo.pinCount, noPins);
    await bo.reserve();
    for (let i = 0; i < noPins; i++) bo.unpin();
    bo.unreserve();
    bo.put();
  });

  it('ttm_bo_pin_unpin_resource', async () => {
    await using device = kunitDevice();
    const bulk = new TtmLruBulkMove();
    const bo = await boInSystem(device);
    const res = bo.resource!;
    await bo.reserve();
    bo.setBulkMove(bulk);
    bo.pin();
    bo.unreserve();
    const pos = (): ReturnType<TtmLruBulkMove['range']> => bulk.range(TtmMemType.System, 0);
    assert.equal(bo.pinCount, 1);
    assert.equal(pos().first, null);
    assert.equal(pos().last, null);
    await bo.reserve();
    bo.unpin();
    bo.unreserve();
    assert.equal(pos().last, res);
    assert.equal(bo.pinCount, 0);
    await bo.reserve();
    bo.setBulkMove(null);
    bo.unreserve();
    bo.put();
    bulk.fini();
  });

  it('ttm_bo_multiple_pin_one_unpin', async () => {
    await using device = kunitDevice();
    const bulk = new TtmLruBulkMove();
    const bo = await boInSystem(device);
    await bo.reserve();
    bo.setBulkMove(bulk);
    bo.pin();
    bo.pin();
    bo.unreserve();
    const pos = (): ReturnType<TtmLruBulkMove['range']> => bulk.range(TtmMemType.System, 0);
    assert.equal(bo.pinCount, 2);
    assert.equal(pos().first, null);
    assert.equal(pos().last, null);
    await bo.reserve();
    bo.unpin();
    bo.unreserve();
    assert.equal(bo.pinCount, 1);
    assert.equal(pos().first, null);
    assert.equal(pos().last, null);
    await bo.reserve();
    bo.unpin();
    bo.setBulkMove(null);
    bo.unreserve();
    bo.put();
    bulk.fini();
  });
});

describe('TtmBufferObject', () => {
  it('starts with one reference, no resource, no tt, unlocked, and rounds its size up to pages', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, 5000, { name: 'odd-size' });
    assert.equal(bo.size, 2 * PAGE_SIZE);
    assert.equal(bo.refcount, 1);
    assert.equal(bo.resource, null);
    assert.equal(bo.tt, null);
    assert.equal(bo.resv.isLocked, false);
    assert.equal(bo.resv, bo.ownResv);
    assert.equal(bo.deleted, false);
    assert.equal(bo.released, false);
    assert.equal(bo.name, 'odd-size');
    assert.equal(device.boCount, 1);
    assert.match(bo.describe(), /odd-size/);
    bo.put();
    assert.equal(device.boCount, 0);
  });

  it('get() adds a reference: the buffer lives until the last put()', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    assert.equal(bo.get(), bo);
    assert.equal(bo.refcount, 2);
    bo.put();
    assert.equal(bo.released, false);
    assert.equal(device.manager(TtmMemType.System)!.usage, BO_SIZE);
    bo.put();
    assert.equal(bo.released, true);
    assert.equal(device.manager(TtmMemType.System)!.usage, 0);
    assert.equal(bo.getUnlessZero(), false, 'a released buffer cannot be revived');
  });

  it('initValidate returns an unlocked buffer with a resource where asked', async () => {
    await using device = kunitDevice();
    const bo = await TtmBufferObject.initValidate(device, { size: BO_SIZE, placement: SYSTEM });
    assert.equal(bo.resv.isLocked, false);
    assert.equal(bo.resource?.memType, TtmMemType.System);
    bo.put();
  });

  it('kmap shows the contents, which survive an unreserve and a later kmap', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    await bo.reserve();
    const view = bo.kmap();
    assert.equal(view.byteLength, BO_SIZE);
    assert.ok(
      view.every((b) => b === 0),
      'a new buffer reads as zeros',
    );
    fillRandom(view, 7);
    const sum = checksum(view);
    bo.unreserve();
    await bo.reserve();
    assert.equal(checksum(bo.kmap()), sum);
    bo.unreserve();
    bo.put();
  });
});

describe('TtmBufferObject bad input', () => {
  it('rejects a size that is not a positive integer', async () => {
    await using device = kunitDevice();
    for (const size of [0, -4096, Number.NaN, Infinity]) {
      assert.throws(() => new TtmBufferObject(device, { size }), InvalidArgumentError, `size ${size}`);
    }
    assert.equal(device.boCount, 0, 'nothing was counted for refused buffers');
  });

  it(
    'validate into a type without a manager fails with ENOMEM naming the buffer; ' + 'the buffer is unchanged',
    async () => {
      await using device = kunitDevice();
      const bo = await boInSystem(device, { name: 'lonely-bo' });
      await bo.reserve();
      fillRandom(bo.kmap(), 3);
      const sum = checksum(bo.kmap());
      const res = bo.resource;
      const err = await bo.validate(placement(TtmMemType.VRAM)).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof DmaBufError, `rejects with a DmaBufError, got ${String(err)}`);
      assert.equal(err.code, 'ENOMEM');
      assert.match(err.message, /lonely-bo/, 'the message names the buffer');
      assert.equal(bo.resource, res, 'still where it was');
      assert.equal(checksum(bo.kmap()), sum, 'contents intact');
      bo.unreserve();
      bo.put();
      await assert.rejects(
        TtmBufferObject.initValidate(device, { size: BO_SIZE, placement: placement(TtmMemType.VRAM) }),
        { code: 'ENOMEM' },
      );
      assert.equal(device.boCount, 0, 'a failed init releases the new buffer');
    },
  );

  it('releasing a pinned buffer warns (a kernel WARN) and still frees it', async () => {
    await using device = kunitDevice({ quiet: true });
    const bo = await boInSystem(device, { name: 'pinned-bo' });
    await bo.reserve();
    bo.pin();
    bo.unreserve();
    bo.put();
    assert.equal(bo.released, true);
    assert.equal(device.manager(TtmMemType.System)!.usage, 0);
    assert.ok(
      device.warnings.some((w) => w.includes('pinned-bo') && /pinned/.test(w)),
      device.warnings.join('; '),
    );
  });

  it('a malformed placement is an InvalidArgumentError and leaves the buffer where it was', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    await bo.reserve();
    const res = bo.resource;
    for (const bad of [
      [{ memType: 99 }],
      [{ memType: -1 }],
      [{ memType: 1.5 }],
      [{ memType: TtmMemType.System, fpfn: 8, lpfn: 4 }],
      [null],
      'System',
    ]) {
      await assert.rejects(bo.validate(bad as never), InvalidArgumentError, JSON.stringify(bad));
      assert.equal(bo.resource, res);
    }
    bo.unreserve();
    bo.put();
  });

  it('a size no manager can hold fails with ENOMEM (ENOSPC with propagateEnospc) and corrupts nothing', async () => {
    for (const propagate of [false, true]) {
      await using device = new TtmDevice({ vramBytes: 64 * 1024, propagateEnospc: propagate });
      const small = await TtmBufferObject.initValidate(device, {
        size: 16 * 1024,
        placement: placement(TtmMemType.VRAM),
      });
      const huge = await TtmBufferObject.initValidate(device, { size: 128 * 1024, placement: SYSTEM, name: 'huge-bo' });
      await small.reserve();
      fillRandom(small.kmap(), 11);
      const sum = checksum(small.kmap());
      small.unreserve();
      await huge.reserve();
      const err = await huge.validate(placement(TtmMemType.VRAM)).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof DmaBufError, `rejects with a DmaBufError, got ${String(err)}`);
      assert.equal(err.code, propagate ? 'ENOSPC' : 'ENOMEM');
      assert.match(err.message, /huge-bo/);
      assert.equal(huge.resource?.memType, TtmMemType.System, 'the big buffer stays in System');
      huge.unreserve();
      await small.reserve();
      assert.equal(checksum(small.kmap()), sum, 'the VRAM buffer kept its contents (evicted or not)');
      small.unreserve();
      assert.equal(device.manager(TtmMemType.VRAM)!.usage, small.resource?.memType === TtmMemType.VRAM ? 16 * 1024 : 0);
      small.put();
      huge.put();
    }
  });

  it('validate of a pinned buffer that would have to move fails with EINVAL', async () => {
    await using device = new TtmDevice({ vramBytes: 64 * 1024 });
    const bo = await boInSystem(device);
    await bo.reserve();
    bo.pin();
    await assert.rejects(bo.validate(placement(TtmMemType.VRAM)), { code: 'EINVAL' });
    assert.equal(bo.resource?.memType, TtmMemType.System);
    await bo.validate(SYSTEM); // compatible: nothing to move, so no error
    bo.unpin();
    bo.unreserve();
    bo.put();
  });

  it('an empty placement purges the buffer: no resource, contents gone, no error', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    await bo.reserve();
    fillRandom(bo.kmap(), 5);
    await bo.validate([]);
    assert.equal(bo.resource, null);
    assert.equal(device.manager(TtmMemType.System)!.usage, 0);
    await bo.validate(SYSTEM);
    assert.ok(
      bo.kmap().every((b) => b === 0),
      'purged contents read as zeros',
    );
    bo.unreserve();
    bo.put();
  });

  it('unpinning an unpinned buffer is a BugError and changes nothing', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    await bo.reserve();
    assert.throws(() => bo.unpin(), BugError);
    assert.equal(bo.pinCount, 0);
    assert.equal(bo.resource?.lruList, device.manager(TtmMemType.System)!.lru[0], 'still on its LRU');
    bo.pin();
    bo.unpin();
    assert.throws(() => bo.unpin(), BugError, 'late: after a balanced pin/unpin');
    assert.equal(bo.pinCount, 0);
    bo.unreserve();
    bo.put();
  });

  it('validate, pin and kmap without holding the reservation are BugErrors', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device);
    await assert.rejects(bo.validate(SYSTEM), BugError);
    assert.throws(() => bo.pin(), BugError);
    assert.throws(() => bo.kmap(), BugError);
    assert.equal(bo.pinCount, 0);
    bo.put();
  });

  it('using a released buffer is a BugError naming it', async () => {
    await using device = kunitDevice();
    const bo = await boInSystem(device, { name: 'gone-bo' });
    bo.put();
    assert.equal(bo.released, true);
    assert.throws(
      () => bo.put(),
      (err) => err instanceof BugError && /gone-bo/.test(err.message),
      'double put',
    );
    assert.throws(() => bo.get(), BugError);
    await assert.rejects(bo.reserve(), (err) => err instanceof BugError && /gone-bo/.test(err.message));
    await assert.rejects(bo.validate(SYSTEM), BugError);
    assert.throws(() => bo.kmap(), BugError);
    assert.equal(device.boCount, 0);
    assert.equal(device.manager(TtmMemType.System)!.usage, 0, 'nothing re-allocated by the refused calls');
  });
});

describe('TtmBufferObject waits', () => {
  /** Adds an unsignaled fence of `usage` to the (held) reservation of `bo`. */
  function addFence(bo: TtmBufferObject, usage: DmaResvUsage): ReturnType<typeof mockFence> {
    const fence = trackFence(mockFence());
    bo.resv.reserveFences(1);
    bo.resv.addFence(fence, usage);
    return fence;
  }

  it('waitIdle waits for every fence; with noWaitGpu a busy buffer is EBUSY at once', async () => {
    await using device = kunitDevice();
    using _leftovers = signalLeftovers();
    const bo = await boInSystem(device);
    await bo.waitIdle(); // idle: resolves
    await bo.reserve();
    const fence = addFence(bo, DmaResvUsage.Bookkeep);
    bo.unreserve();
    await assert.rejects(bo.waitIdle(new TtmOperationCtx({ noWaitGpu: true })), { code: 'EBUSY' });
    const waiting = bo.waitIdle();
    assert.equal((await settleWithin(waiting, 10)).state, 'pending');
    fence.signal();
    await waiting; // late: resolves after the signal
    await bo.waitIdle(new TtmOperationCtx({ noWaitGpu: true }));
    bo.put();
  });

  it('waitIdle gives up with EBUSY after 15 s', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    await using device = kunitDevice();
    using _leftovers = signalLeftovers();
    const bo = await boInSystem(device);
    await bo.reserve();
    addFence(bo, DmaResvUsage.Write);
    bo.unreserve();
    const waiting = bo.waitIdle();
    const outcome = watch(waiting);
    await clock.tick(14_999);
    assert.equal(outcome().state, 'pending');
    await clock.tick(1);
    await assert.rejects(waiting, { code: 'EBUSY' });
    bo.put();
  });

  it('kmap is EBUSY while a kernel (move) fence is pending, and works after it signals', async () => {
    await using device = kunitDevice();
    using _leftovers = signalLeftovers();
    const bo = await boInSystem(device);
    await bo.reserve();
    const write = addFence(bo, DmaResvUsage.Write);
    assert.equal(bo.kmap().byteLength, BO_SIZE, 'a pending write fence does not block the CPU map');
    const move = addFence(bo, DmaResvUsage.Kernel);
    assert.throws(
      () => bo.kmap(),
      (err) => err instanceof DmaBufError && err.code === 'EBUSY',
    );
    move.signal();
    assert.equal(bo.kmap().byteLength, BO_SIZE);
    write.signal();
    bo.unreserve();
    bo.put();
  });

  it(
    'with a copy engine, a move is pipelined: ' + 'kmap right after validate is EBUSY, the bytes arrive once idle',
    async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      await using device = new TtmDevice({ vramBytes: 64 * 1024, copyEngine: true });
      const bo = await boInSystem(device);
      await bo.reserve();
      fillRandom(bo.kmap(), 21);
      const sum = checksum(bo.kmap());
      await bo.validate(placement(TtmMemType.VRAM));
      assert.equal(bo.resource?.memType, TtmMemType.VRAM);
      assert.throws(() => bo.kmap(), { code: 'EBUSY' }, 'the copy has not run yet');
      const idle = bo.waitIdle();
      await clock.tick(1);
      await idle;
      assert.equal(checksum(bo.kmap()), sum);
      bo.unreserve();
      bo.put();
      await clock.runAll();
    },
  );

  it('an aborted validate rejects with the reason and moves nothing', async () => {
    await using device = new TtmDevice({ vramBytes: 32 * 1024 });
    using _leftovers = signalLeftovers();
    const victim = await TtmBufferObject.initReserved(device, {
      size: 32 * 1024,
      placement: placement(TtmMemType.VRAM),
    });
    fillRandom(victim.kmap(), 8);
    const sum = checksum(victim.kmap());
    const busy = addFence(victim, DmaResvUsage.Write); // evicting it means waiting
    victim.unreserve();
    const bo = await boInSystem(device);
    const controller = new AbortController();
    const reason = new Error('user gave up');
    await bo.reserve();
    const validating = bo.validate(
      placement(TtmMemType.VRAM),
      new TtmOperationCtx({ interruptible: true, signal: controller.signal }),
    );
    assert.equal((await settleWithin(validating, 10)).state, 'pending', 'waits for the busy victim');
    controller.abort(reason);
    await assert.rejects(validating, (err) => err === reason);
    assert.equal(bo.resource?.memType, TtmMemType.System, 'the evictor stayed where it was');
    bo.unreserve();
    assert.equal(victim.resource?.memType, TtmMemType.VRAM, 'the victim was not moved');
    busy.signal();
    await victim.reserve();
    assert.equal(checksum(victim.kmap()), sum);
    victim.unreserve();
    bo.put();
    victim.put();
  });
});

describe('TtmBufferObject: work that needs no wait costs no microtask turn', () => {
  /** Whether `promise` was already settled when handed over: its reaction runs before one turn of ours. */
  async function settledAtOnce(promise: Promise<unknown>): Promise<boolean> {
    let settled = false;
    const mark = (): void => {
      settled = true;
    };
    promise.then(mark, mark);
    await Promise.resolve();
    return settled;
  }

  it('reserve() of a free lock hands back a settled promise; a taken lock still makes it wait', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE);
    assert.equal(await settledAtOnce(bo.reserve()), true);
    assert.equal(bo.resv.isLocked, true);
    const second = bo.reserve();
    assert.equal((await settleWithin(second, 5)).state, 'pending', 'the lock is held: the second reserve waits');
    bo.unreserve();
    await second;
    bo.unreserve();
    bo.put();
  });

  it('evicting an idle buffer with the default move is done (moved, counted) when evict() returns', async () => {
    await using device = new TtmDevice({ vramBytes: 64 * 1024 });
    const bo = await TtmBufferObject.initReserved(device, { size: BO_SIZE, placement: placement(TtmMemType.VRAM) });
    fillRandom(bo.kmap(), 11);
    const sum = checksum(bo.kmap());
    const before = device.stats();
    const evicting = bo.evict();
    assert.equal(device.stats().evictions, before.evictions + 1, 'counted before evict() returned');
    assert.equal(device.stats().bytesMoved, before.bytesMoved + BO_SIZE);
    assert.equal(await settledAtOnce(evicting), true);
    assert.equal(bo.resource?.memType, TtmMemType.System);
    assert.equal(checksum(bo.kmap()), sum);
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0, 'the VRAM range was freed');
    // validate() takes the same path back.
    assert.equal(await settledAtOnce(bo.validate(placement(TtmMemType.VRAM))), true);
    assert.equal(bo.resource?.memType, TtmMemType.VRAM);
    assert.equal(checksum(bo.kmap()), sum);
    bo.unreserve();
    bo.put();
  });

  it('a busy buffer still waits for its fences before the default move copies it', async () => {
    await using device = new TtmDevice({ vramBytes: 64 * 1024 });
    using _leftovers = signalLeftovers();
    const bo = await TtmBufferObject.initReserved(device, { size: BO_SIZE, placement: placement(TtmMemType.VRAM) });
    fillRandom(bo.kmap(), 12);
    const sum = checksum(bo.kmap());
    const fence = trackFence(mockFence());
    bo.resv.reserveFences(1);
    bo.resv.addFence(fence, DmaResvUsage.Write);
    const evictions = device.stats().evictions;
    const evicting = bo.evict();
    assert.equal((await settleWithin(evicting, 5)).state, 'pending');
    assert.equal(bo.resource?.memType, TtmMemType.VRAM, 'nothing copied while the fence is pending');
    assert.equal(device.stats().evictions, evictions);
    fence.signal();
    await evicting;
    assert.equal(bo.resource?.memType, TtmMemType.System);
    assert.equal(device.stats().evictions, evictions + 1);
    assert.equal(checksum(bo.kmap()), sum);
    bo.unreserve();
    bo.put();
  });

  it("a driver's move that returns a promise is waited for, and a failing one frees the new resource", async () => {
    let release!: () => void;
    let gate = Promise.resolve();
    let fail = false;
    await using device = new TtmDevice({
      vramBytes: 64 * 1024,
      funcs: {
        async move(bo, _evict, ctx, newRes) {
          await gate;
          if (fail) throw new DmaBufError('EIO', 'the copy failed');
          await ttmBoMoveMemcpy(bo, ctx, newRes);
        },
      },
    });
    const bo = await TtmBufferObject.initReserved(device, { size: BO_SIZE, placement: placement(TtmMemType.VRAM) });
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const evicting = bo.evict();
    assert.equal((await settleWithin(evicting, 5)).state, 'pending');
    assert.equal(bo.resource?.memType, TtmMemType.VRAM, 'nothing moved while the driver works');
    release();
    await evicting;
    assert.equal(bo.resource?.memType, TtmMemType.System);
    fail = true;
    await assert.rejects(bo.validate(placement(TtmMemType.VRAM)), { code: 'EIO' });
    assert.equal(bo.resource?.memType, TtmMemType.System, 'a failed move leaves the buffer where it was');
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0, 'the resource allocated for the move was freed');
    bo.unreserve();
    bo.put();
  });
});
