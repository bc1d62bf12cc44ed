/**
 * Executable specification of src/ttm/ttm-device-funcs.ts: the driver functions a device uses
 * where its driver gives none (eviction test, eviction placement, move), and how a driver's own
 * members take their place.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { TtmBufferObject } from '../../src/ttm/ttm-bo.js';
import { TtmDevice } from '../../src/ttm/ttm-device.js';
import {
  ttmBoEvictFlags,
  ttmBoEvictionValuable,
  ttmBoMoveDefault,
  ttmDeviceFuncsResolve,
} from '../../src/ttm/ttm-device-funcs.js';
import { TtmMemType, TtmOperationCtx, TtmPlaceFlags } from '../../src/ttm/ttm-placement.js';
import { checksum, fillRandom, placement } from '../helpers/ttm-kunit.js';

const KiB = 1024;
const PAGE = 4 * KiB;

describe('ttmDeviceFuncsResolve', () => {
  it('sanity: an empty table gets every default; the notifications do nothing', () => {
    const funcs = ttmDeviceFuncsResolve({});
    assert.equal(funcs.evictionValuable, ttmBoEvictionValuable);
    assert.equal(funcs.evictFlags, ttmBoEvictFlags);
    assert.equal(funcs.move, ttmBoMoveDefault);
    assert.equal(typeof funcs.releaseNotify, 'function');
    assert.equal(typeof funcs.deleteMemNotify, 'function');
  });

  it("a driver's members win and run with the driver's object as this", async () => {
    const calls: string[] = [];
    const driver = {
      label: 'drv',
      evictFlags(this: { label: string }) {
        calls.push(`${this.label}.evictFlags`);
        return [{ memType: TtmMemType.System }];
      },
      releaseNotify(this: { label: string }) {
        calls.push(`${this.label}.releaseNotify`);
      },
    };
    await using device = new TtmDevice({ vramBytes: 16 * KiB, funcs: driver });
    assert.equal(device.funcs.move, ttmBoMoveDefault, 'missing members keep the defaults');
    const bo = await TtmBufferObject.initReserved(device, { size: PAGE, placement: placement(TtmMemType.VRAM) });
    await bo.evict();
    bo.unreserve();
    bo.put();
    assert.deepEqual(calls, ['drv.evictFlags', 'drv.releaseNotify']);
  });
});

describe('ttmBoEvictionValuable', () => {
  it('sanity: evicting a System buffer always helps; a buffer without a resource never', async () => {
    await using device = new TtmDevice();
    const none = new TtmBufferObject(device, { size: PAGE });
    assert.equal(ttmBoEvictionValuable(none, { memType: TtmMemType.System }), false);
    const sys = await TtmBufferObject.initValidate(device, { size: PAGE, placement: placement(TtmMemType.System) });
    assert.equal(ttmBoEvictionValuable(sys, { memType: TtmMemType.VRAM, fpfn: 100, lpfn: 200 }), true);
    none.put();
    sys.put();
  });

  it("a VRAM buffer helps only a request whose page window overlaps its range (the manager's intersects)", async () => {
    await using device = new TtmDevice({ vramBytes: 16 * PAGE });
    const bo = await TtmBufferObject.initValidate(device, {
      size: 2 * PAGE,
      placement: [{ memType: TtmMemType.VRAM, fpfn: 4, lpfn: 8 }],
    });
    assert.equal(bo.resource?.start, 4);
    assert.equal(ttmBoEvictionValuable(bo, { memType: TtmMemType.VRAM }), true, 'no window: the whole range');
    assert.equal(ttmBoEvictionValuable(bo, { memType: TtmMemType.VRAM, fpfn: 5, lpfn: 6 }), true, 'overlap');
    assert.equal(ttmBoEvictionValuable(bo, { memType: TtmMemType.VRAM, fpfn: 8, lpfn: 16 }), false, 'after');
    assert.equal(ttmBoEvictionValuable(bo, { memType: TtmMemType.VRAM, fpfn: 0, lpfn: 4 }), false, 'before');
    bo.put();
  });
});

describe('ttmBoEvictFlags', () => {
  it('sanity: VRAM goes to TT with System as fallback when the device has a TT manager', async () => {
    await using device = new TtmDevice({ vramBytes: 16 * KiB, ttBytes: 64 * KiB });
    const bo = await TtmBufferObject.initValidate(device, { size: PAGE, placement: placement(TtmMemType.VRAM) });
    assert.deepEqual(ttmBoEvictFlags(bo), [
      { memType: TtmMemType.TT },
      { memType: TtmMemType.System, flags: TtmPlaceFlags.Fallback },
    ]);
    await bo.reserve();
    await bo.evict();
    assert.equal(bo.resource?.memType, TtmMemType.TT, 'evict() follows it');
    assert.deepEqual(ttmBoEvictFlags(bo), [{ memType: TtmMemType.System }], 'TT goes to System');
    bo.unreserve();
    bo.put();
  });

  it('without a TT manager VRAM goes straight to System', async () => {
    await using device = new TtmDevice({ vramBytes: 16 * KiB });
    const bo = await TtmBufferObject.initValidate(device, { size: PAGE, placement: placement(TtmMemType.VRAM) });
    assert.deepEqual(ttmBoEvictFlags(bo), [{ memType: TtmMemType.System }]);
    bo.put();
  });
});

describe('ttmBoMoveDefault', () => {
  it('sanity: between two types that use a tt it is a null move: the same pages, no copy', async () => {
    await using device = new TtmDevice({ ttBytes: 64 * KiB });
    const bo = await TtmBufferObject.initReserved(device, { size: PAGE, placement: placement(TtmMemType.System) });
    fillRandom(bo.kmap(), 3);
    const pages = bo.tt!.buf;
    const sum = checksum(bo.kmap());
    await bo.validate(placement(TtmMemType.TT));
    assert.equal(bo.resource?.memType, TtmMemType.TT);
    assert.equal(bo.tt!.buf, pages, 'the pages stayed with the buffer');
    assert.equal(checksum(bo.kmap()), sum);
    bo.unreserve();
    bo.put();
  });

  it('without a copy engine VRAM -> System copies on the CPU at once; the VRAM range is freed', async () => {
    await using device = new TtmDevice({ vramBytes: 16 * KiB });
    const bo = await TtmBufferObject.initReserved(device, { size: PAGE, placement: placement(TtmMemType.VRAM) });
    fillRandom(bo.kmap(), 5);
    const sum = checksum(bo.kmap());
    const ctx = new TtmOperationCtx();
    await bo.validate(placement(TtmMemType.System), ctx);
    assert.equal(bo.resource?.memType, TtmMemType.System);
    assert.equal(checksum(bo.kmap()), sum, 'kmap works at once: no move fence');
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0);
    assert.equal(ctx.bytesMoved, PAGE);
    bo.unreserve();
    bo.put();
  });

  it('called directly it stays async: a promise even when the move is done, rejections for bad input', async () => {
    await using device = new TtmDevice({ ttBytes: 64 * KiB });
    const bo = await TtmBufferObject.initReserved(device, { size: PAGE, placement: placement(TtmMemType.System) });
    fillRandom(bo.kmap(), 9);
    const sum = checksum(bo.kmap());
    const ctx = new TtmOperationCtx();
    const res = await bo.memSpace(placement(TtmMemType.TT), ctx);
    assert.ok(res !== 'ENOSPC');
    const bad = ttmBoMoveDefault(bo, 'yes' as unknown as boolean, ctx, res);
    assert.ok(bad instanceof Promise, 'bad input is a rejection, not a throw');
    await assert.rejects(bad, { name: 'InvalidArgumentError' });
    const moving = ttmBoMoveDefault(bo, false, ctx, res);
    assert.ok(moving instanceof Promise);
    assert.equal(bo.resource, res, 'the null move was made before the call returned');
    await moving;
    assert.equal(checksum(bo.kmap()), sum);
    bo.unreserve();
    bo.put();
  });

  it(
    'with a copy engine a VRAM eviction is pipelined: ' + 'the range is freed at once, the manager keeps the fence',
    async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      await using device = new TtmDevice({ vramBytes: 16 * KiB, copyEngine: true });
      const vram = device.manager(TtmMemType.VRAM)!;
      const bo = await TtmBufferObject.initReserved(device, { size: PAGE, placement: placement(TtmMemType.VRAM) });
      const cleared = bo.waitIdle(); // the first placement clears the range on the engine too
      await clock.tick(1);
      await cleared;
      fillRandom(bo.kmap(), 7);
      const sum = checksum(bo.kmap());
      await bo.evict();
      assert.equal(bo.resource?.memType, TtmMemType.System);
      assert.equal(vram.usage, 0, 'the VRAM range was freed without waiting for the copy');
      const parked = vram.evictionFences.filter((f) => f !== null && !f.isSignaled());
      assert.equal(parked.length, 1, 'the copy fence waits in the manager for the next allocation there');
      assert.equal(device.stats().ghostCount, 0, 'no ghost: nothing else holds the old range');
      assert.equal(bo.resv.testSignaled(DmaResvUsage.Kernel), false, 'the bytes are guarded until the copy ran');
      const idle = bo.waitIdle();
      await clock.tick(1);
      await idle;
      assert.equal(checksum(bo.kmap()), sum);
      bo.unreserve();
      bo.put();
      await clock.runAll();
    },
  );
});
