/**
 * Executable specification of validation and eviction (src/ttm/ttm-bo.ts): the KUnit suite
 * `ttm_bo_validate_test.c`, case by case and parameter by parameter, on the mock device and
 * managers of test/helpers/ttm-kunit.ts (BO_SIZE 4 KiB, MANAGER_SIZE 1 MiB).
 *
 * Ported differences:
 * - vma nodes, `page_alignment`, `destroy` callbacks and the resv fence array have no
 *   counterpart, so those expectations are dropped.
 * - `TTM_TT_FLAG_PRIV_POPULATED` is `tt.populated`.
 * - The kernel's kthreads that signal a fence "later" are fence signals after the call started
 *   (the move-fence case uses a VirtualClock timer at 20 ms).
 * - `man->move` is the manager's eviction-fence slots (`addEvictionFence`).
 * - ttm_bo_validate_deleted_evict sets `bo->deleted` by hand in the kernel; here the buffer is
 *   released while busy (a real zombie), made idle, and found by the evictor before the
 *   periodic scan (VirtualClock, never ticked) gets to it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { WwAcquireCtx } from '../../src/locking/ww-mutex.js';
import { DmaResv, DmaResvUsage, reservationWwClass } from '../../src/resv/dma-resv.js';
import { TtmBufferObject, type TtmBoInit } from '../../src/ttm/ttm-bo.js';
import { TtmMemType, TtmOperationCtx, TtmPlaceFlags, type TtmPlacement } from '../../src/ttm/ttm-placement.js';
import { TtmDevice } from '../../src/ttm/ttm-device.js';
import { TtmTtFlags } from '../../src/ttm/ttm-tt.js';
import { mockFence } from '../helpers/mock-fence.js';
import { settleWithin, watch } from '../helpers/completion.js';
import { asOtherTask } from '../helpers/other-task.js';
import {
  TTM_PL_MOCK1,
  TTM_PL_MOCK2,
  badManagerInit,
  busyManagerInit,
  kunitBo,
  kunitDevice,
  mockManagerFini,
  mockManagerInit,
  moveLog,
  placement,
  signalLeftovers,
  trackFence,
} from '../helpers/ttm-kunit.js';

const KiB = 1024;
const BO_SIZE = 4 * KiB;
const MANAGER_SIZE = 1024 * KiB;

type BoType = NonNullable<TtmBoInit['type']>;
const BO_TYPES: readonly { description: string; type: BoType }[] = [
  { description: 'Buffer object for userspace', type: 'device' },
  { description: 'Kernel buffer object', type: 'kernel' },
  { description: 'Shared buffer object', type: 'sg' },
];

/** `ttm_bo_init_reserved()` + `dma_resv_unlock()` as the kernel tests do it. */
async function initUnlocked(
  device: TtmDevice,
  size: number,
  where: TtmPlacement,
  init?: Partial<TtmBoInit>,
): Promise<TtmBufferObject> {
  const bo = await TtmBufferObject.initReserved(device, { size, placement: where, ...init }, new TtmOperationCtx());
  bo.resv.unlock();
  return bo;
}

/** A busy Bookkeep fence on `resv` (`dma_resv_kunit_active_fence_init()`). */
async function activeFence(resv: DmaResv, usage: DmaResvUsage = DmaResvUsage.Bookkeep): Promise<DmaFence> {
  const fence = trackFence(mockFence());
  fence.enableSwSignaling();
  await resv.lock();
  resv.reserveFences(1);
  resv.addFence(fence, usage);
  resv.unlock();
  return fence;
}

describe('ttm_bo_validate', () => {
  for (const params of BO_TYPES) {
    it(`ttm_bo_init_reserved_sys_man (${params.description})`, async () => {
      await using device = kunitDevice();
      const ctx = new TtmOperationCtx();
      const bo = await TtmBufferObject.initReserved(
        device,
        { size: BO_SIZE, type: params.type, placement: placement(TtmMemType.System) },
        ctx,
      );
      assert.equal(bo.resv.isLocked, true, 'returned locked');
      bo.resv.unlock();
      assert.equal(bo.refcount, 1);
      assert.equal(bo.device, device);
      assert.equal(bo.type, params.type);
      assert.equal(bo.pinCount, 0);
      assert.equal(bo.bulkMove, null);
      assert.ok(bo.tt !== null, 'a System buffer has a tt');
      assert.equal(bo.tt.populated, false, 'but no pages until someone needs them');
      assert.equal(ctx.bytesMoved, BO_SIZE);
      assert.equal(bo.resource?.memType, TtmMemType.System);
      bo.put();
    });
  }

  for (const params of BO_TYPES) {
    it(`ttm_bo_init_reserved_mock_man (${params.description})`, async () => {
      await using device = kunitDevice();
      mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
      const ctx = new TtmOperationCtx();
      const bo = await TtmBufferObject.initReserved(
        device,
        { size: BO_SIZE, type: params.type, placement: placement(TtmMemType.VRAM) },
        ctx,
      );
      bo.resv.unlock();
      assert.equal(bo.refcount, 1);
      assert.equal(bo.device, device);
      assert.equal(bo.type, params.type);
      assert.equal(ctx.bytesMoved, BO_SIZE);
      assert.equal(bo.resource?.memType, TtmMemType.VRAM);
      assert.equal(device.manager(TtmMemType.VRAM)!.usage, BO_SIZE);
      bo.put();
    });
  }

  it('ttm_bo_init_reserved_resv', async () => {
    await using device = kunitDevice();
    const resv = new DmaResv();
    await resv.lock();
    const bo = await TtmBufferObject.initReserved(
      device,
      { size: BO_SIZE, type: 'device', resv, placement: placement(TtmMemType.System) },
      new TtmOperationCtx(),
    );
    assert.equal(bo.resv, resv, 'the external reservation is kept');
    assert.equal(resv.isLocked, true, 'still held by the caller');
    resv.unlock();
    bo.put();
  });

  for (const params of BO_TYPES) {
    it(`ttm_bo_validate_basic (${params.description})`, async () => {
      await using device = kunitDevice();
      mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
      const size = 8 * KiB;
      const bo = await TtmBufferObject.initReserved(
        device,
        { size, type: params.type, placement: placement(TtmMemType.System) },
        new TtmOperationCtx(),
      );
      const ctxVal = new TtmOperationCtx();
      await bo.validate(placement(TtmMemType.VRAM, TtmPlaceFlags.TopDown), ctxVal);
      bo.resv.unlock();
      assert.equal(ctxVal.bytesMoved, bo.size);
      assert.ok(bo.tt !== null);
      assert.equal(bo.tt.populated, true, 'a useTt destination gets pages');
      assert.equal(bo.resource?.memType, TtmMemType.VRAM);
      assert.equal(bo.resource?.placement, TtmPlaceFlags.TopDown);
      assert.equal(bo.resource?.start, (MANAGER_SIZE - size) / 4096, 'top-down: the last pages');
      bo.put();
    });
  }

  it('ttm_bo_validate_invalid_placement', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    await bo.reserve();
    await assert.rejects(bo.validate(placement(TtmMemType.Priv + 1), new TtmOperationCtx()), { code: 'ENOMEM' });
    bo.resv.unlock();
    assert.equal(bo.resource, null);
    bo.put();
  });

  for (const params of [
    { description: 'System manager', memType: TtmMemType.System },
    { description: 'VRAM manager', memType: TtmMemType.VRAM },
  ]) {
    it(`ttm_bo_validate_same_placement (${params.description})`, async () => {
      await using device = kunitDevice();
      if (params.memType !== TtmMemType.System) mockManagerInit(device, params.memType, MANAGER_SIZE);
      const where = placement(params.memType);
      const bo = await TtmBufferObject.initReserved(device, { size: BO_SIZE, placement: where }, new TtmOperationCtx());
      const res = bo.resource;
      const ctxVal = new TtmOperationCtx();
      await bo.validate(where, ctxVal);
      bo.resv.unlock();
      assert.equal(ctxVal.bytesMoved, 0);
      assert.equal(bo.resource, res, 'the same resource');
      bo.put();
    });
  }

  it('ttm_bo_validate_failed_alloc', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    badManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    await bo.reserve();
    await assert.rejects(bo.validate(placement(TtmMemType.VRAM), new TtmOperationCtx()), { code: 'ENOMEM' });
    bo.resv.unlock();
    assert.equal(bo.resource, null);
    bo.put();
  });

  it('ttm_bo_validate_pinned', async () => {
    await using device = kunitDevice();
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    await bo.reserve();
    bo.pin();
    await assert.rejects(bo.validate(placement(TtmMemType.System), new TtmOperationCtx()), { code: 'EINVAL' });
    bo.resv.unlock();
    await bo.reserve();
    bo.unpin();
    bo.resv.unlock();
    bo.put();
  });

  it('ttm_bo_validate_busy_placement', async () => {
    await using device = kunitDevice();
    const fstMem = TtmMemType.VRAM;
    const sndMem = TtmMemType.VRAM + 1;
    badManagerInit(device, fstMem, MANAGER_SIZE);
    const man = mockManagerInit(device, sndMem, MANAGER_SIZE);
    const bo = await TtmBufferObject.initReserved(
      device,
      { size: BO_SIZE, type: 'device', placement: placement(TtmMemType.System) },
      new TtmOperationCtx(),
    );
    const ctxVal = new TtmOperationCtx();
    await bo.validate(
      [
        { memType: fstMem, flags: TtmPlaceFlags.Desired },
        { memType: sndMem, flags: TtmPlaceFlags.Fallback },
      ],
      ctxVal,
    );
    bo.resv.unlock();
    assert.equal(ctxVal.bytesMoved, bo.size);
    assert.equal(bo.resource?.memType, sndMem);
    assert.equal(man.lru[bo.priority]!.isSingular(), true);
    bo.put();
  });

  for (const params of BO_TYPES) {
    it(`ttm_bo_validate_multihop (${params.description})`, async () => {
      await using device = kunitDevice();
      mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
      const tmp = mockManagerInit(device, TtmMemType.TT, MANAGER_SIZE);
      const bo = await TtmBufferObject.initReserved(
        device,
        { size: BO_SIZE, type: params.type, placement: placement(TtmMemType.VRAM) },
        new TtmOperationCtx(),
      );
      const ctxVal = new TtmOperationCtx();
      await bo.validate(placement(TtmMemType.System), ctxVal);
      bo.resv.unlock();
      assert.equal(ctxVal.bytesMoved, BO_SIZE * 2);
      assert.equal(bo.resource?.memType, TtmMemType.System);
      assert.equal(moveLog(device).multihop, 1, 'the driver asked for one hop');
      assert.equal(tmp.usage, 0, 'the temporary TT resource is gone');
      bo.put();
    });
  }

  for (const params of [
    { description: 'Buffer object in system domain, no page vector', withTtm: false },
    { description: 'Buffer object in system domain with an existing page vector', withTtm: true },
  ]) {
    it(`ttm_bo_validate_no_placement_signaled (${params.description})`, async () => {
      await using device = kunitDevice();
      const man = device.manager(TtmMemType.System)!;
      const bo = kunitBo(device, BO_SIZE, { type: 'device' });
      await bo.reserve();
      // The kernel allocates the resource (and, with_ttm, a populated tt) by hand.
      await bo.validate(placement(TtmMemType.System));
      if (params.withTtm) bo.kmap().fill(0x5a);
      const oldTt = bo.tt;
      assert.equal(man.usage, BO_SIZE);
      const ctx = new TtmOperationCtx();
      await bo.validate([], ctx);
      bo.unreserve();
      assert.equal(man.usage, 0);
      assert.ok(bo.tt !== null);
      assert.equal(ctx.bytesMoved, 0);
      assert.equal(bo.resource, null);
      if (params.withTtm) {
        assert.equal(bo.tt, oldTt, 'the same page vector');
        assert.equal(bo.tt.populated, false, 'unpopulated');
        assert.ok(bo.tt.flags & TtmTtFlags.ZeroAlloc, 'marked for clearing');
      }
      bo.put();
    });
  }

  for (const params of BO_TYPES) {
    it(`ttm_bo_validate_no_placement_not_signaled (${params.description})`, async () => {
      await using device = kunitDevice();
      using _leftovers = signalLeftovers();
      const man = device.manager(TtmMemType.System)!;
      const bo = kunitBo(device, BO_SIZE, { type: params.type });
      await bo.reserve();
      await bo.validate(placement(TtmMemType.System));
      bo.unreserve();
      const fence = await activeFence(bo.resv, DmaResvUsage.Bookkeep);
      const ctx = new TtmOperationCtx();
      await bo.reserve();
      await bo.validate([], ctx); // busy: the old resource goes to a ghost
      bo.unreserve();
      assert.ok(bo.tt !== null);
      assert.equal(bo.resource, null);
      assert.equal(bo.bulkMove, null);
      assert.equal(ctx.bytesMoved, 0);
      if (params.type !== 'sg') assert.equal(bo.resv, bo.ownResv);
      assert.equal(man.usage, BO_SIZE, 'the ghost keeps the old pages while the fence is pending');
      assert.equal(device.stats().ghostCount, 1);
      fence.signal(); // the kernel's signalling kthread
      assert.equal(await bo.resv.wait({ usage: DmaResvUsage.Bookkeep }), true);
      await device.wq.drain();
      assert.equal(man.usage, 0, 'late: freed once the fence signaled');
      assert.equal(device.stats().ghostCount, 0);
      bo.put();
    });
  }

  it('ttm_bo_validate_move_fence_signaled', async () => {
    await using device = kunitDevice();
    const man = device.manager(TtmMemType.System)!;
    assert.equal(man.addEvictionFence(DmaFence.getStub()), true);
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    const ctx = new TtmOperationCtx();
    await bo.reserve();
    await bo.validate(placement(TtmMemType.System), ctx);
    bo.unreserve();
    assert.equal(bo.resource?.memType, TtmMemType.System);
    assert.equal(ctx.bytesMoved, BO_SIZE);
    bo.put();
  });

  for (const params of [
    { description: 'Waits for GPU', noGpuWait: false },
    { description: 'Tries to lock straight away', noGpuWait: true },
  ]) {
    it(`ttm_bo_validate_move_fence_not_signaled (${params.description})`, async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      await using device = kunitDevice();
      using _leftovers = signalLeftovers();
      const fstMem = TtmMemType.VRAM;
      const sndMem = TtmMemType.VRAM + 1;
      const bo = await TtmBufferObject.initReserved(
        device,
        { size: BO_SIZE, type: 'device', placement: placement(TtmMemType.System) },
        new TtmOperationCtx(),
      );
      const man = mockManagerInit(device, fstMem, MANAGER_SIZE);
      mockManagerInit(device, sndMem, MANAGER_SIZE);
      const move = trackFence(mockFence());
      assert.equal(man.addEvictionFence(move), true);
      clock.setTimer(20, () => move.signal()); // the kernel's kthread: msleep(20), signal
      const ctxVal = new TtmOperationCtx({ noWaitGpu: params.noGpuWait });
      const validating = bo.validate(
        [
          { memType: fstMem, flags: TtmPlaceFlags.Desired },
          { memType: sndMem, flags: TtmPlaceFlags.Fallback },
        ],
        ctxVal,
      );
      const outcome = watch(validating);
      await settleWithin(validating, 50);
      if (params.noGpuWait)
        assert.equal(outcome().state, 'fulfilled', 'no_wait_gpu: done before the move fence signals');
      else assert.equal(outcome().state, 'pending', 'the copy into the desired manager waits for its move fence');
      await clock.tick(20);
      await validating;
      bo.resv.unlock();
      assert.equal(move.isSignaled(), true);
      assert.equal(ctxVal.bytesMoved, BO_SIZE);
      assert.equal(bo.resource?.memType, params.noGpuWait ? sndMem : fstMem);
      bo.put();
    });
  }

  it('ttm_bo_validate_happy_evict', async () => {
    await using device = kunitDevice();
    mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    mockManagerInit(device, TtmMemType.TT, MANAGER_SIZE);
    const where = placement(TtmMemType.VRAM);
    const small = 8 * KiB;
    const medium = 512 * KiB;
    const big = MANAGER_SIZE - (small + medium);
    const bos: TtmBufferObject[] = [];
    for (const size of [small, medium, big]) bos.push(await initUnlocked(device, size, where, { type: 'device' }));
    const boVal = kunitBo(device, BO_SIZE, { type: 'device' });
    const ctxVal = new TtmOperationCtx();
    await boVal.reserve();
    await boVal.validate(where, ctxVal);
    boVal.unreserve();
    const [first, second] = bos as [TtmBufferObject, TtmBufferObject];
    assert.equal(first.resource?.memType, TtmMemType.System, 'the LRU head was evicted to System');
    assert.ok(first.tt !== null);
    assert.ok(first.tt.flags & TtmTtFlags.ZeroAlloc);
    assert.equal(first.tt.populated, true);
    assert.equal(ctxVal.bytesMoved, small * 2 + BO_SIZE);
    assert.equal(second.resource?.memType, TtmMemType.VRAM);
    assert.equal(boVal.resource?.memType, TtmMemType.VRAM);
    for (const bo of bos) bo.put();
    boVal.put();
  });

  it('ttm_bo_validate_all_pinned_evict', async () => {
    await using device = kunitDevice();
    mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    mockManagerInit(device, TtmMemType.TT, MANAGER_SIZE);
    const where = placement(TtmMemType.VRAM);
    const boBig = await TtmBufferObject.initReserved(
      device,
      { size: MANAGER_SIZE, type: 'device', placement: where },
      new TtmOperationCtx(),
    );
    boBig.pin();
    boBig.resv.unlock();
    const boSmall = kunitBo(device, BO_SIZE, { type: 'device' });
    await boSmall.reserve();
    await assert.rejects(boSmall.validate(where, new TtmOperationCtx()), { code: 'ENOMEM' });
    boSmall.unreserve();
    assert.equal(boBig.resource?.memType, TtmMemType.VRAM);
    boSmall.put();
    await boBig.reserve();
    boBig.unpin();
    boBig.resv.unlock();
    boBig.put();
  });

  it('ttm_bo_validate_allowed_only_evict', async () => {
    await using device = kunitDevice();
    mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    mockManagerInit(device, TtmMemType.TT, MANAGER_SIZE);
    const where = placement(TtmMemType.VRAM);
    const size = 512 * KiB;
    const boPinned = await TtmBufferObject.initReserved(
      device,
      { size, type: 'device', placement: where },
      new TtmOperationCtx(),
    );
    boPinned.pin();
    boPinned.resv.unlock();
    const boEvictable = await initUnlocked(device, size, where, { type: 'device' });
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    const ctxVal = new TtmOperationCtx();
    await bo.reserve();
    await bo.validate(where, ctxVal);
    bo.unreserve();
    assert.equal(bo.resource?.memType, TtmMemType.VRAM);
    assert.equal(boPinned.resource?.memType, TtmMemType.VRAM);
    assert.equal(boEvictable.resource?.memType, TtmMemType.System);
    assert.equal(ctxVal.bytesMoved, size * 2 + BO_SIZE);
    bo.put();
    boEvictable.put();
    await boPinned.reserve();
    boPinned.unpin();
    boPinned.resv.unlock();
    boPinned.put();
  });

  it('ttm_bo_validate_deleted_evict', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    await using device = kunitDevice({ delayedDelete: 'periodic-scan' });
    using _leftovers = signalLeftovers();
    const man = mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    const where = placement(TtmMemType.VRAM);
    const small = 8 * KiB;
    const big = MANAGER_SIZE - BO_SIZE;
    const boBig = await initUnlocked(device, big, where, { type: 'device' });
    assert.equal(man.usage, big);
    // Make it a zombie: released while busy, then idle, with the scan not yet run.
    const fence = await activeFence(boBig.resv);
    boBig.put();
    assert.equal(boBig.deleted, true);
    fence.signal();
    const boSmall = kunitBo(device, small, { type: 'device' });
    const ctxVal = new TtmOperationCtx();
    await boSmall.reserve();
    await boSmall.validate(where, ctxVal);
    boSmall.unreserve();
    assert.equal(boSmall.resource?.memType, TtmMemType.VRAM);
    assert.equal(man.usage, small);
    assert.equal(boBig.tt, null);
    assert.equal(boBig.resource, null);
    boSmall.put();
    await clock.tick(10); // the scan drops the emptied zombie
    assert.equal(device.stats().zombies, 0);
  });

  it('ttm_bo_validate_busy_domain_evict', async () => {
    await using device = kunitDevice({ badEvict: true });
    mockManagerInit(device, TtmMemType.VRAM, MANAGER_SIZE);
    busyManagerInit(device, TTM_PL_MOCK1, MANAGER_SIZE);
    const where = placement(TtmMemType.VRAM);
    const boInit = await initUnlocked(device, MANAGER_SIZE, where, { type: 'device' });
    const boVal = kunitBo(device, BO_SIZE, { type: 'device' });
    await boVal.reserve();
    await assert.rejects(boVal.validate(where, new TtmOperationCtx()), { code: 'ENOMEM' });
    boVal.unreserve();
    assert.equal(boInit.resource?.memType, TtmMemType.VRAM);
    assert.equal(boVal.resource, null);
    boInit.put();
    boVal.put();
  });

  it('ttm_bo_validate_evict_gutting', async () => {
    await using device = kunitDevice();
    mockManagerInit(device, TTM_PL_MOCK1, MANAGER_SIZE);
    const where = placement(TTM_PL_MOCK1);
    const boEvict = await initUnlocked(device, MANAGER_SIZE, where, { type: 'device' });
    const bo = kunitBo(device, BO_SIZE, { type: 'device' });
    await bo.reserve();
    await bo.validate(where, new TtmOperationCtx());
    bo.unreserve();
    assert.equal(bo.resource?.memType, TTM_PL_MOCK1);
    assert.equal(boEvict.resource, null, 'evicting from MOCK1 purges');
    assert.ok(boEvict.tt !== null);
    assert.ok(boEvict.tt.flags & TtmTtFlags.ZeroAlloc);
    boEvict.put();
    bo.put();
  });

  it('ttm_bo_validate_recrusive_evict', async () => {
    await using device = kunitDevice();
    mockManagerInit(device, TtmMemType.TT, MANAGER_SIZE);
    mockManagerInit(device, TTM_PL_MOCK2, MANAGER_SIZE);
    const placementTt = placement(TtmMemType.TT);
    const boTt = await initUnlocked(device, MANAGER_SIZE, placementTt, { type: 'device' });
    const boMock = await initUnlocked(device, MANAGER_SIZE, placement(TTM_PL_MOCK2), { type: 'device' });
    const boVal = kunitBo(device, BO_SIZE, { type: 'device' });
    await boVal.reserve();
    await boVal.validate(placementTt, new TtmOperationCtx());
    boVal.unreserve();
    assert.equal(boVal.resource?.memType, TtmMemType.TT);
    assert.equal(boTt.resource?.memType, TTM_PL_MOCK2, 'the TT buffer went to MOCK2');
    assert.equal(boMock.resource, null, 'which purged its previous tenant');
    // The kernel finishes the managers first: evict everything (recursively), then unregister.
    await mockManagerFini(device, TtmMemType.TT);
    await mockManagerFini(device, TTM_PL_MOCK2);
    for (const bo of [boVal, boTt, boMock])
      assert.equal(bo.resource, null, `${bo.name} purged by the manager teardown`);
    boVal.put();
    boTt.put();
    boMock.put();
  });
});

describe('TtmBufferObject.validate eviction', () => {
  const VRAM = placement(TtmMemType.VRAM);
  const HALF = 32 * KiB;

  /** A device with 64 KiB of VRAM holding two 32 KiB buffers made in order, with priorities. */
  async function twoInVram(
    priorities: [number, number],
  ): Promise<{ device: TtmDevice; a: TtmBufferObject; b: TtmBufferObject }> {
    const device = new TtmDevice({ vramBytes: 2 * HALF });
    const a = await TtmBufferObject.initValidate(device, {
      size: HALF,
      placement: VRAM,
      priority: priorities[0],
      name: 'a',
    });
    const b = await TtmBufferObject.initValidate(device, {
      size: HALF,
      placement: VRAM,
      priority: priorities[1],
      name: 'b',
    });
    return { device, a, b };
  }

  async function validateNew(device: TtmDevice, ctx = new TtmOperationCtx()): Promise<TtmBufferObject> {
    const c = new TtmBufferObject(device, { size: HALF, name: 'c' });
    await c.reserve();
    try {
      await c.validate(VRAM, ctx);
    } finally {
      c.unreserve();
    }
    return c;
  }

  it('lower priorities are evicted first, whatever the LRU order', async () => {
    const { device, a, b } = await twoInVram([1, 0]);
    await using _device = device;
    const c = await validateNew(device);
    assert.equal(b.resource?.memType, TtmMemType.System, 'priority 0 went');
    assert.equal(a.resource?.memType, TtmMemType.VRAM, 'the older priority-1 buffer stayed');
    for (const bo of [a, b, c]) bo.put();
  });

  it('within a priority the least recently used goes first; unreserve marks a buffer used', async () => {
    const { device, a, b } = await twoInVram([0, 0]);
    await using _device = device;
    await a.reserve();
    a.unreserve(); // a is now the most recently used
    const c = await validateNew(device);
    assert.equal(b.resource?.memType, TtmMemType.System);
    assert.equal(a.resource?.memType, TtmMemType.VRAM);
    for (const bo of [a, b, c]) bo.put();
  });

  it('buffers sharing the evictor reservation are evicted only with allowResEvict', async () => {
    await using device = new TtmDevice({ vramBytes: 2 * HALF });
    const vm = new DmaResv({ name: 'vm' });
    await vm.lock();
    const a = await TtmBufferObject.initReserved(device, { size: 2 * HALF, placement: VRAM, resv: vm, name: 'a' });
    const b = new TtmBufferObject(device, { size: HALF, resv: vm, name: 'b' });
    await assert.rejects(b.validate(VRAM, new TtmOperationCtx()), { code: 'ENOMEM' });
    assert.equal(a.resource?.memType, TtmMemType.VRAM);
    await b.validate(VRAM, new TtmOperationCtx({ allowResEvict: true, resv: vm }));
    assert.equal(b.resource?.memType, TtmMemType.VRAM);
    assert.equal(a.resource?.memType, TtmMemType.System);
    assert.equal(vm.isLocked, true, 'the shared lock is still ours');
    vm.unlock();
    a.put();
    b.put();
  });

  it('noWaitGpu skips busy victims (ENOMEM); without it validate waits for them (late case)', async () => {
    await using device = new TtmDevice({ vramBytes: 2 * HALF });
    using _leftovers = signalLeftovers();
    const a = await TtmBufferObject.initReserved(device, { size: 2 * HALF, placement: VRAM, name: 'a' });
    a.kmap().fill(0xa5);
    const fence = trackFence(mockFence());
    a.resv.reserveFences(1);
    a.resv.addFence(fence, DmaResvUsage.Write);
    a.unreserve();
    const c = new TtmBufferObject(device, { size: HALF, name: 'c' });
    await c.reserve();
    await assert.rejects(c.validate(VRAM, new TtmOperationCtx({ noWaitGpu: true })), { code: 'ENOMEM' });
    assert.equal(a.resource?.memType, TtmMemType.VRAM);
    const waiting = c.validate(VRAM, new TtmOperationCtx());
    assert.equal((await settleWithin(waiting, 10)).state, 'pending');
    fence.signal();
    await waiting;
    c.unreserve();
    assert.equal(c.resource?.memType, TtmMemType.VRAM);
    await a.reserve();
    assert.equal(a.resource?.memType, TtmMemType.System);
    assert.ok(
      a.kmap().every((x) => x === 0xa5),
      'evicted with its contents',
    );
    a.unreserve();
    a.put();
    c.put();
  });

  it('a victim locked by an older transaction is skipped: ENOMEM, never EDEADLK', async () => {
    await using device = new TtmDevice({ vramBytes: 2 * HALF });
    const older = new WwAcquireCtx(reservationWwClass);
    const younger = new WwAcquireCtx(reservationWwClass);
    const a = await TtmBufferObject.initValidate(device, { size: 2 * HALF, placement: VRAM, name: 'a' });
    await asOtherTask(() => a.reserve({ ticket: older }));
    const c = new TtmBufferObject(device, { size: HALF, name: 'c' });
    await c.reserve({ ticket: younger });
    await assert.rejects(c.validate(VRAM, new TtmOperationCtx()), { code: 'ENOMEM' });
    c.resv.unlock();
    younger.fini();
    a.resv.unlock();
    older.fini();
    assert.equal(a.resource?.memType, TtmMemType.VRAM);
    a.put();
    c.put();
  });

  it('an older evictor sleeps on a victim held by a younger transaction, then evicts it', async () => {
    await using device = new TtmDevice({ vramBytes: 2 * HALF });
    const older = new WwAcquireCtx(reservationWwClass);
    const younger = new WwAcquireCtx(reservationWwClass);
    const a = await TtmBufferObject.initValidate(device, { size: 2 * HALF, placement: VRAM, name: 'a' });
    await asOtherTask(() => a.reserve({ ticket: younger }));
    const c = new TtmBufferObject(device, { size: HALF, name: 'c' });
    await c.reserve({ ticket: older });
    const validating = c.validate(VRAM, new TtmOperationCtx());
    assert.equal((await settleWithin(validating, 10)).state, 'pending', 'sleeps on the victim lock');
    a.resv.unlock();
    younger.fini();
    await validating;
    assert.equal(c.resource?.memType, TtmMemType.VRAM);
    assert.equal(a.resource?.memType, TtmMemType.System);
    assert.equal(a.resv.isLocked, false, 'the evictor unlocked the victim');
    c.resv.unlock();
    older.fini();
    a.put();
    c.put();
  });
});
