/**
 * Executable specification of delayed delete (seed 004, kernel-locking-mm §3.6 and §6.2): a
 * buffer object released while its reservation is busy (or locked) becomes a zombie that keeps
 * its memory until the last fence signals, then a work item on the device's bounded workqueue
 * (`'per-object'`, Linux 6.3+; or `'per-object-idle'`, queued only once idle) or the device's
 * 10 ms scanner (`'periodic-scan'`, the older design) frees it. Idle buffers free at once;
 * eviction may free a zombie early; device teardown drains every pending delete and then names
 * what is still referenced.
 *
 * Every case installs a VirtualClock, so the scanner only runs when a test ticks it; the
 * per-object worker needs no timer. "Settle" means: let every queued promise reaction run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { VirtualClock, settle, useClock } from '../../src/base/clock.js';
import { BugError } from '../../src/base/errors.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { TtmBufferObject } from '../../src/ttm/ttm-bo.js';
import { TtmMemType, TtmOperationCtx } from '../../src/ttm/ttm-placement.js';
import { TtmDevice, type TtmDeviceOptions } from '../../src/ttm/ttm-device.js';
import {
  TtmPerObjectDelete,
  TtmPerObjectIdleDelete,
  TtmPeriodicScanDelete,
} from '../../src/ttm/ttm-bo-delayed-delete.js';
import { mockFence } from '../helpers/mock-fence.js';
import { asOtherTask } from '../helpers/other-task.js';
import { settleWithin, watch } from '../helpers/completion.js';
import { checksum, fillRandom, placement, signalLeftovers, trackFence } from '../helpers/ttm-kunit.js';

const KiB = 1024;
const SIZE = 16 * KiB;
const VRAM = placement(TtmMemType.VRAM);
const MODES = ['per-object', 'per-object-idle', 'periodic-scan'] as const;
type Mode = (typeof MODES)[number];

/** Adds unsignaled fences to `bo`'s reservation (reserve/add/unreserve). */
async function makeBusy(bo: TtmBufferObject, count = 1, usage: DmaResvUsage = DmaResvUsage.Write): Promise<DmaFence[]> {
  const fences = Array.from({ length: count }, () => trackFence(mockFence()));
  await bo.reserve();
  bo.resv.reserveFences(count);
  for (const f of fences) bo.resv.addFence(f, usage);
  bo.unreserve();
  return fences;
}

/** A device with a VRAM arena, in `mode`, with the reclaim events recorded. */
function device(mode: Mode, options?: TtmDeviceOptions): { dev: TtmDevice; reclaimed: TtmBufferObject[] } {
  const dev = new TtmDevice({ name: `dd-${mode}`, vramBytes: 256 * KiB, delayedDelete: mode, ...options });
  const reclaimed: TtmBufferObject[] = [];
  dev.onReclaim((bo) => reclaimed.push(bo));
  return { dev, reclaimed };
}

/** What it takes for the mode's reaper to run once nothing blocks it. */
async function reap(clock: VirtualClock, dev: TtmDevice, mode: Mode): Promise<void> {
  if (mode === 'periodic-scan') await clock.tick(10);
  else await dev.wq.drain();
  await settle();
}

describe('ttm delayed delete', () => {
  for (const mode of MODES) {
    describe(mode, () => {
      it('sanity: an idle buffer is freed at its last put, with no work queued', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev, reclaimed } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
        const man = dev.manager(TtmMemType.VRAM)!;
        assert.equal(man.usage, SIZE);
        bo.put();
        assert.equal(bo.released, true);
        assert.equal(bo.deleted, false, 'never a zombie');
        assert.equal(man.usage, 0);
        const s = dev.stats();
        assert.equal(s.zombies, 0);
        assert.equal(s.boCount, 0);
        assert.equal(s.delayedDeleteQueued, 0);
        assert.equal(reclaimed.length, 0, 'onReclaim reports zombies only');
      });

      it('a busy buffer becomes a zombie holding its memory, freed only when the last fence signals', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev, reclaimed } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const man = dev.manager(TtmMemType.VRAM)!;
        const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM, name: 'busy-bo' });
        const [f1, f2] = (await makeBusy(bo, 2)) as [DmaFence, DmaFence];
        bo.put();
        assert.equal(bo.deleted, true);
        assert.equal(bo.released, false);
        assert.equal(dev.stats().zombies, 1);
        assert.equal(man.usage, SIZE, 'usage unchanged: the zombie keeps its memory');
        f1.signal();
        await settle();
        await clock.tick(30); // several scan periods: still busy on f2
        assert.equal(man.usage, SIZE, 'one fence of two signaled: still held');
        assert.equal(dev.stats().zombies, 1);
        assert.equal(reclaimed.length, 0);
        const times: number[] = [];
        using _listen = dev.onReclaim((_bo, atMs) => times.push(atMs));
        const at = clock.now();
        f2.signal();
        await settle();
        if (mode === 'periodic-scan') {
          assert.equal(man.usage, SIZE, 'periodic-scan: nothing is freed before the next scan tick');
          await clock.tick(10);
          assert.ok(
            times.length === 1 && times[0]! > at && times[0]! <= at + 10,
            `freed at the next tick: ${times.join()} (signal at ${at})`,
          );
        } else {
          await dev.wq.drain();
          assert.deepEqual(times, [at], 'per-object: freed when the last fence signaled, no timer involved');
        }
        assert.equal(man.usage, 0, 'late: freed once the last fence signaled');
        assert.equal(bo.released, true);
        const s = dev.stats();
        assert.equal(s.zombies, 0);
        assert.equal(s.boCount, 0);
        assert.equal(s.delayedDeleteDone, 1);
        assert.deepEqual(reclaimed, [bo]);
      });

      it('a buffer whose fences signaled before the last put is freed at once (late case)', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
        for (const f of await makeBusy(bo, 2)) f.signal();
        bo.put();
        assert.equal(bo.released, true);
        assert.equal(dev.stats().zombies, 0);
        assert.equal(dev.manager(TtmMemType.VRAM)!.usage, 0);
      });

      it('an idle imported (sg) buffer is still deleted by the delayed path', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev } = device(mode);
        await using _dev = dev;
        const man = dev.manager(TtmMemType.VRAM)!;
        const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM, type: 'sg' });
        bo.put();
        assert.equal(bo.deleted, true, 'sg buffers always take the delayed path (ttm_bo_release)');
        assert.equal(man.usage, SIZE);
        await reap(clock, dev, mode);
        assert.equal(man.usage, 0);
        assert.equal(bo.released, true);
      });

      it('a buffer whose lock is held at the last put is freed after the unlock', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const man = dev.manager(TtmMemType.VRAM)!;
        const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
        await asOtherTask(() => bo.resv.lock()); // someone else (an evictor, a CPU reader) holds it
        bo.put();
        assert.equal(bo.deleted, true, 'not trylockable: a zombie');
        await clock.tick(30);
        await settle();
        assert.equal(man.usage, SIZE, 'still held while the lock is');
        bo.resv.unlock();
        await reap(clock, dev, mode);
        assert.equal(man.usage, 0);
        assert.equal(bo.released, true);
      });

      it('a buffer on a shared reservation waits for the fences present at release, not later ones', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const man = dev.manager(TtmMemType.VRAM)!;
        const shared = new DmaResv({ name: 'vm' });
        await shared.lock();
        const bo = await TtmBufferObject.initReserved(dev, { size: SIZE, placement: VRAM, resv: shared });
        const before = trackFence(mockFence());
        shared.reserveFences(1);
        shared.addFence(before, DmaResvUsage.Bookkeep);
        shared.unlock();
        bo.put();
        assert.equal(bo.deleted, true);
        assert.equal(bo.resv, bo.ownResv, 'individualized at release');
        const after = trackFence(mockFence());
        await shared.lock();
        shared.reserveFences(1);
        shared.addFence(after, DmaResvUsage.Bookkeep);
        shared.unlock();
        before.signal();
        await reap(clock, dev, mode);
        assert.equal(man.usage, 0, 'the later fence on the shared object does not keep it');
        assert.equal(bo.released, true);
        after.signal();
      });

      it('device.fini() with busy buffers waits for them and then reports nothing', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev } = device(mode);
        const fences: DmaFence[] = [];
        for (let i = 0; i < 4; i++) {
          const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
          fences.push(...(await makeBusy(bo)));
          bo.put();
        }
        assert.equal(dev.stats().zombies, 4);
        const fini = dev.fini();
        const outcome = watch(fini);
        await clock.tick(50);
        assert.equal(outcome().state, 'pending', 'fini drains: it waits for the busy zombies');
        for (const f of fences) f.signal();
        for (let i = 0; i < 10 && outcome().state === 'pending'; i++) await clock.tick(10);
        assert.equal(outcome().state, 'fulfilled', `fini resolved: ${JSON.stringify(outcome())}`);
        assert.equal(dev.stats().boCount, 0);
        assert.equal(dev.stats().zombies, 0);
        await dev.fini(); // idempotent
      });

      it(
        'device.fini() with a buffer still referenced rejects with a BugError naming it, ' + 'after draining the rest',
        async () => {
          const clock = new VirtualClock();
          using _clock = useClock(clock);
          const { dev } = device(mode);
          const leaky = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM, name: 'leaky-bo' });
          const other = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
          const [fence] = (await makeBusy(other)) as [DmaFence];
          other.put();
          const fini = dev.fini();
          const outcome = watch(fini);
          await clock.tick(20);
          assert.equal(outcome().state, 'pending');
          fence.signal();
          for (let i = 0; i < 10 && outcome().state === 'pending'; i++) await clock.tick(10);
          const o = outcome();
          assert.ok(o.state === 'rejected', `fini rejected: ${o.state}`);
          assert.ok(o.reason instanceof BugError, `a BugError: ${String(o.reason)}`);
          assert.match(o.reason.message, /leaky-bo/);
          assert.ok(!o.reason.message.includes(other.name), 'only what is still referenced is named');
          assert.equal(other.released, true, 'the busy one was drained first');
          await assert.rejects(dev.fini(), BugError, 'fini is idempotent: the same outcome');
          leaky.put(); // a late put after teardown frees quietly
          assert.equal(leaky.released, true);
        },
      );

      it('a zombie is evicted by a validate that needs its space (ttm_bo_validate_deleted_evict, busy)', async () => {
        const clock = new VirtualClock();
        using _clock = useClock(clock);
        const { dev, reclaimed } = device(mode);
        await using _dev = dev;
        using _leftovers = signalLeftovers();
        const man = dev.manager(TtmMemType.VRAM)!;
        const big = await TtmBufferObject.initValidate(dev, {
          size: man.size - 4 * KiB,
          placement: VRAM,
          name: 'zombie-bo',
        });
        const [fence] = (await makeBusy(big)) as [DmaFence];
        big.put();
        assert.equal(big.deleted, true);
        const small = new TtmBufferObject(dev, { size: 8 * KiB });
        await small.reserve();
        const validating = small.validate(VRAM, new TtmOperationCtx());
        const early = await settleWithin(validating, 20);
        assert.equal(early.state, 'pending', 'the evictor waits for the zombie to idle');
        fence.signal();
        await validating;
        small.unreserve();
        assert.equal(small.resource?.memType, TtmMemType.VRAM);
        assert.equal(man.usage, 8 * KiB, 'the zombie memory went to the evictor');
        assert.equal(big.resource, null);
        assert.equal(big.tt, null);
        assert.deepEqual(reclaimed, [big]);
        small.put();
        await reap(clock, dev, mode);
        assert.equal(dev.stats().zombies, 0);
      });

      it(
        'a second put() of a buffer released while busy is a BugError at the call; ' +
          'the zombie is still freed when idle',
        async () => {
          const clock = new VirtualClock();
          using _clock = useClock(clock);
          const { dev } = device(mode, { quiet: true });
          await using _dev = dev;
          using _leftovers = signalLeftovers();
          const man = dev.manager(TtmMemType.VRAM)!;
          const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM, name: 'twice-bo' });
          const [fence] = (await makeBusy(bo)) as [DmaFence];
          bo.put();
          assert.throws(
            () => bo.put(),
            (err) => err instanceof BugError && /twice-bo/.test(err.message),
            'the owner has no reference left',
          );
          assert.equal(bo.released, false, 'still a zombie');
          assert.equal(man.usage, SIZE);
          fence.signal();
          await reap(clock, dev, mode);
          assert.equal(man.usage, 0);
          assert.equal(bo.released, true);
          assert.deepEqual(dev.failures, [], 'no failure in the delayed delete');
        },
      );
    });
  }

  it('per-object: the workqueue never runs more than maxActive releases at once (100 busy buffers)', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const { dev } = device('per-object', { maxActive: 4, vramBytes: 512 * KiB });
    await using _dev = dev;
    using _leftovers = signalLeftovers();
    assert.equal(dev.wq.maxActive, 4);
    const fences: DmaFence[] = [];
    for (let i = 0; i < 100; i++) {
      const bo = await TtmBufferObject.initValidate(dev, { size: 4 * KiB, placement: placement(TtmMemType.System) });
      fences.push(...(await makeBusy(bo)));
      bo.put();
    }
    await settle();
    assert.equal(dev.stats().zombies, 100);
    assert.equal(dev.stats().delayedDeleteQueued, 100);
    assert.equal(dev.wq.active, 4, 'four sleep on their fences');
    assert.equal(dev.wq.pending, 96, 'the rest wait their turn');
    for (const f of fences.reverse()) f.signal(); // last queued first: order does not matter
    await dev.wq.drain();
    assert.ok(dev.wq.peakActive <= dev.wq.maxActive, `peakActive ${dev.wq.peakActive} <= ${dev.wq.maxActive}`);
    assert.equal(dev.wq.peakActive, 4);
    assert.equal(dev.stats().zombies, 0);
    assert.equal(dev.stats().delayedDeleteDone, 100);
    assert.equal(dev.manager(TtmMemType.System)!.usage, 0);
  });

  for (const mode of MODES) {
    it(`${mode}: a failing delete notification is reported, and the memory is still freed`, async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      const boom = new Error('deleteMemNotify failed');
      const dev = new TtmDevice({
        vramBytes: 64 * KiB,
        delayedDelete: mode,
        quiet: true,
        funcs: {
          deleteMemNotify: (bo) => {
            if (bo.name === 'cursed-bo') throw boom;
          },
        },
      });
      const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM, name: 'cursed-bo' });
      const [fence] = (await makeBusy(bo)) as [DmaFence];
      bo.put();
      fence.signal();
      await reap(clock, dev, mode);
      const reported = dev.failures.map((f) => f.error);
      assert.ok(reported.includes(boom), `reported in device.failures: ${dev.failures.map((f) => f.what).join('; ')}`);
      assert.ok(
        dev.warnings.some((w) => w.includes('deleteMemNotify failed')),
        'and warned about',
      );
      assert.equal(dev.manager(TtmMemType.VRAM)!.usage, 0, 'the memory is freed anyway');
      assert.equal(dev.stats().zombies, 0);
      assert.equal(bo.released, true, 'the zombie reference is dropped anyway');
      await dev.fini();
    });
  }

  it('a failing releaseNotify is reported, and the buffer is still released', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const boom = new Error('releaseNotify failed');
    const dev = new TtmDevice({
      vramBytes: 64 * KiB,
      quiet: true,
      funcs: {
        releaseNotify: () => {
          throw boom;
        },
      },
    });
    const bo = await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM });
    bo.put();
    assert.equal(bo.released, true);
    assert.equal(dev.manager(TtmMemType.VRAM)!.usage, 0);
    assert.deepEqual(
      dev.failures.map((f) => f.error),
      [boom],
      'reported in device.failures, not swallowed',
    );
    await dev.fini();
  });

  it('contents of a zombie stay intact until it is freed (nothing reuses its memory early)', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const { dev } = device('per-object', { vramBytes: 64 * KiB });
    await using _dev = dev;
    using _leftovers = signalLeftovers();
    const zombie = await TtmBufferObject.initValidate(dev, { size: 32 * KiB, placement: VRAM });
    await zombie.reserve();
    fillRandom(zombie.kmap(), 99);
    const sum = checksum(zombie.kmap());
    const start = zombie.resource!.start;
    zombie.unreserve();
    const [fence] = (await makeBusy(zombie)) as [DmaFence];
    zombie.put();
    // Fill the rest of VRAM with no-wait validates: they must not take the zombie's range.
    const ctx = new TtmOperationCtx({ noWaitGpu: true });
    const other = new TtmBufferObject(dev, { size: 32 * KiB });
    await other.reserve();
    await other.validate(VRAM, ctx);
    assert.ok(other.resource!.start !== start, 'the zombie range is still taken');
    other.kmap().fill(0xff);
    other.unreserve();
    const view = dev.vram!.subarray(start * 4096, start * 4096 + 32 * KiB);
    assert.equal(checksum(view), sum, 'the zombie bytes are untouched');
    const otherStart = other.resource!.start;
    // A third buffer may only get space by evicting `other` (idle), never the busy zombie.
    const third = new TtmBufferObject(dev, { size: 32 * KiB });
    await third.reserve();
    await third.validate(VRAM, new TtmOperationCtx({ noWaitGpu: true }));
    assert.equal(third.resource?.memType, TtmMemType.VRAM);
    assert.equal(third.resource?.start, otherStart, 'it took the evicted buffer range');
    third.unreserve();
    assert.equal(checksum(view), sum, 'the zombie bytes are still untouched');
    await other.reserve();
    assert.equal(other.resource?.memType, TtmMemType.System);
    assert.ok(
      other.kmap().every((b) => b === 0xff),
      'the evicted buffer kept its contents',
    );
    other.unreserve();
    fence.signal();
    await dev.wq.drain();
    for (const b of [other, third]) b.put();
  });
});

describe('delayed-delete strategies', () => {
  const KINDS = {
    'per-object': TtmPerObjectDelete,
    'per-object-idle': TtmPerObjectIdleDelete,
    'periodic-scan': TtmPeriodicScanDelete,
  } as const;

  it('sanity: a device uses the strategy object of its mode (per-object by default)', async () => {
    await using plain = new TtmDevice();
    assert.ok(plain.delayedDelete instanceof TtmPerObjectDelete, 'the default is per-object');
    for (const mode of MODES) {
      await using dev = new TtmDevice({ delayedDelete: mode, scanIntervalMs: 25 });
      assert.ok(dev.delayedDelete instanceof KINDS[mode], `${mode}: ${dev.delayedDelete.constructor.name}`);
      assert.equal(dev.delayedDelete.mode, mode);
      assert.equal(dev.delayedDeleteMode, mode);
    }
    await using scan = new TtmDevice({ delayedDelete: 'periodic-scan', scanIntervalMs: 25 });
    assert.equal((scan.delayedDelete as TtmPeriodicScanDelete).intervalMs, 25);
  });

  for (const mode of MODES) {
    it(`${mode}: counts each zombie queued, pending until freed, then done; drain frees what is left`, async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      const { dev } = device(mode);
      await using _dev = dev;
      using _leftovers = signalLeftovers();
      const strategy = dev.delayedDelete;
      const bos = [];
      for (let i = 0; i < 3; i++) bos.push(await TtmBufferObject.initValidate(dev, { size: SIZE, placement: VRAM }));
      const fences = [];
      for (const bo of bos) fences.push(...(await makeBusy(bo)));
      for (const bo of bos) bo.put();
      assert.deepEqual([strategy.queued, strategy.pending, strategy.done], [3, 3, 0]);
      fences[1]!.signal();
      if (mode === 'periodic-scan') await clock.tick(10);
      await settle();
      assert.deepEqual([strategy.pending, strategy.done], [2, 1], 'the idle one is freed; the others wait');
      assert.equal(bos[1]!.released, true);
      assert.equal(bos[0]!.released, false, 'a busy zombie is never freed');
      fences[0]!.signal();
      fences[2]!.signal();
      await strategy.drain();
      assert.deepEqual([strategy.queued, strategy.pending, strategy.done], [3, 0, 3]);
      assert.ok(
        bos.every((bo) => bo.released),
        'drain resolves once every zombie is freed',
      );
      assert.equal(dev.stats().zombies, 0);
      assert.equal(dev.manager(TtmMemType.VRAM)!.usage, 0);
    });
  }
});
