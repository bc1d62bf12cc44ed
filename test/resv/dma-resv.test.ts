/**
 * Executable specification of reservation objects (src/resv/dma-resv.ts) under the lock: the
 * st-dma-resv kernel self-test port, usages, slot replacement, reservations and capacity,
 * getSingleton, replaceFences, describe, locking, bad input and dispose. Unlocked readers (walks
 * and restarts, copyFences, wait, setDeadline) and the coverage property are in
 * dma-resv-unlocked.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { AlreadyLockedError, BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { fenceContextAlloc, type DmaFence } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { WwAcquireCtx, WwClass } from '../../src/locking/ww-mutex.js';
import { DmaResv, DmaResvUsage, reservationWwClass } from '../../src/resv/dma-resv.js';
import { mockFence } from '../helpers/mock-fence.js';
import { entries, lockedWith } from '../helpers/resv-objects.js';

const USAGES = [
  ['kernel', DmaResvUsage.Kernel],
  ['write', DmaResvUsage.Write],
  ['read', DmaResvUsage.Read],
  ['bookkeep', DmaResvUsage.Bookkeep],
] as const;

/** The kernel self-test's setup: a lock held without context, one enabled mock fence added with `usage`. */
async function stSetup(usage: DmaResvUsage): Promise<{ resv: DmaResv; f: DmaFence }> {
  const resv = new DmaResv();
  const f = mockFence(0, 0);
  f.enableSwSignaling();
  await resv.lock(null);
  resv.reserveFences(1);
  resv.addFence(f, usage);
  return { resv, f };
}

describe('st-dma-resv', () => {
  it('test_sanitycheck', async () => {
    const f = mockFence(0, 0);
    f.enableSwSignaling();
    f.signal();
    const resv = new DmaResv();
    await resv.lock(null);
    assert.equal(resv.isLocked, true);
    resv.unlock();
    assert.equal(resv.isLocked, false);
    resv[Symbol.dispose]();
  });

  for (const [name, usage] of USAGES) {
    it(`test_signaling (${name})`, async () => {
      const { resv, f } = await stSetup(usage);
      assert.equal(resv.testSignaled(usage), false, 'Resv unexpectedly signaled');
      f.signal();
      assert.equal(resv.testSignaled(usage), true, 'Resv not reporting signaled');
      resv.unlock();
      resv[Symbol.dispose]();
    });

    it(`test_for_each (${name})`, async () => {
      const { resv, f } = await stSetup(usage);
      let found = 0;
      for (const entry of resv.fences(usage)) {
        assert.equal(found, 0, 'More than one fence found');
        assert.equal(entry.fence, f, 'Unexpected fence');
        assert.equal(entry.usage, usage, 'Unexpected fence usage');
        found++;
      }
      assert.equal(found, 1, 'No fence found');
      resv.unlock();
      f.signal();
      resv[Symbol.dispose]();
    });

    it(`test_for_each_unlocked (${name})`, async () => {
      const { resv, f } = await stSetup(usage);
      resv.unlock();
      let yields = 0;
      for (const entry of resv.fencesUnlocked(usage)) {
        yields++;
        assert.ok(yields <= 2, 'More than one fence found');
        assert.equal(entry.restarted, true, 'No fence found');
        assert.equal(entry.fence, f, 'Unexpected fence');
        assert.equal(entry.usage, usage, 'Unexpected fence usage');
        if (yields === 1) {
          // Force a restart: a writer reallocates the list (1 + 4 slots exceed the capacity of 4)
          // while the walk is suspended.
          assert.equal(resv.tryLock(), true);
          resv.reserveFences(4);
          assert.equal(resv.maxFences, 8, 'the reservation reallocated the list');
          resv.unlock();
        }
      }
      assert.equal(yields, 2, 'expected the fence once, then again after the restart');
      f.signal();
      resv[Symbol.dispose]();
    });

    it(`test_get_fences (${name})`, async () => {
      const { resv, f } = await stSetup(usage);
      resv.unlock();
      const fences = resv.getFences(usage);
      assert.equal(fences.length, 1);
      assert.equal(fences[0], f);
      f.signal();
      resv[Symbol.dispose]();
    });
  }
});

describe('DmaResv', () => {
  it('sanity: a write fence added under the lock is seen and awaited without it', async () => {
    const f = mockFence();
    const resv = new DmaResv({ name: 'bo' });
    await resv.lock();
    resv.reserveFences(1);
    resv.addFence(f, DmaResvUsage.Write);
    resv.unlock();
    assert.equal(resv.numFences, 1);
    assert.equal(resv.mutex.name, 'bo');
    assert.equal(resv.mutex.wwClass, reservationWwClass);
    assert.equal(reservationWwClass.isWaitDie, true);
    assert.equal(resv.testSignaled(DmaResvUsage.Write), false);
    const done = resv.wait();
    f.signal();
    assert.equal(await done, true);
    assert.equal(resv.testSignaled(DmaResvUsage.Bookkeep), true);
  });

  it('orders usages Kernel < Write < Read < Bookkeep, and usageRw maps write to Read and read to Write', () => {
    assert.deepEqual([DmaResvUsage.Kernel, DmaResvUsage.Write, DmaResvUsage.Read, DmaResvUsage.Bookkeep], [0, 1, 2, 3]);
    assert.equal(DmaResv.usageRw(true), DmaResvUsage.Read);
    assert.equal(DmaResv.usageRw(false), DmaResvUsage.Write);
    assert.throws(() => DmaResv.usageRw(1 as unknown as boolean), InvalidArgumentError);
  });

  it('asking for a usage returns every fence of that usage or a lower one, locked and unlocked', () => {
    const [k, w, r, b] = [mockFence(), mockFence(), mockFence(), mockFence()];
    const resv = lockedWith(
      [b, DmaResvUsage.Bookkeep],
      [r, DmaResvUsage.Read],
      [w, DmaResvUsage.Write],
      [k, DmaResvUsage.Kernel],
    );
    assert.deepEqual(resv.getFences(DmaResvUsage.Kernel), [k]);
    assert.deepEqual(resv.getFences(DmaResvUsage.Write), [w, k]);
    assert.deepEqual(resv.getFences(DmaResvUsage.Read), [r, w, k]);
    assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), [b, r, w, k]);
    assert.deepEqual(entries(resv.fences(DmaResvUsage.Write)), [
      [w, DmaResvUsage.Write],
      [k, DmaResvUsage.Kernel],
    ]);
    assert.equal(resv.testSignaled(DmaResvUsage.Read), false);
    for (const f of [r, w, k]) f.signal();
    assert.equal(resv.testSignaled(DmaResvUsage.Read), true, 'only the bookkeep fence is left');
    assert.equal(resv.testSignaled(DmaResvUsage.Bookkeep), false);
  });

  it('locked iteration includes signaled fences; unlocked iteration skips them', () => {
    const [a, b] = [mockFence(), mockFence()];
    const resv = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Write]);
    a.signal();
    assert.deepEqual(entries(resv.fences(DmaResvUsage.Write)), [
      [a, DmaResvUsage.Write],
      [b, DmaResvUsage.Write],
    ]);
    assert.deepEqual(entries(resv.fencesUnlocked(DmaResvUsage.Write)), [[b, DmaResvUsage.Write]]);
    const it = resv.fences(DmaResvUsage.Write);
    it.next();
    resv.unlock();
    assert.throws(() => it.next(), BugError, 'a step of a locked walk after unlock');
  });

  describe('slot replacement', () => {
    it('a later fence of the same context replaces the older one in place', () => {
      const ctx = fenceContextAlloc();
      const [f1, f2] = [mockFence(ctx, 1), mockFence(ctx, 2)];
      const resv = lockedWith([f1, DmaResvUsage.Write]);
      resv.reserveFences(1);
      resv.addFence(f2, DmaResvUsage.Write);
      assert.equal(resv.numFences, 1);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [[f2, DmaResvUsage.Write]]);
    });

    it('a stronger usage of the same context also replaces (Read slot taken by a later Write)', () => {
      const ctx = fenceContextAlloc();
      const [f1, f2] = [mockFence(ctx, 1), mockFence(ctx, 2)];
      const resv = lockedWith([f1, DmaResvUsage.Read], [f2, DmaResvUsage.Write]);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [[f2, DmaResvUsage.Write]]);
    });

    it('an earlier fence of the same context does not replace: it is appended', () => {
      const ctx = fenceContextAlloc();
      const [f1, f2] = [mockFence(ctx, 1), mockFence(ctx, 2)];
      const resv = lockedWith([f2, DmaResvUsage.Write], [f1, DmaResvUsage.Write]);
      assert.deepEqual(resv.getFences(DmaResvUsage.Write), [f2, f1]);
    });

    it('a weaker usage is appended beside the old slot, never merged into it', () => {
      const ctx = fenceContextAlloc();
      const [f1, f2] = [mockFence(ctx, 1), mockFence(ctx, 2)];
      const resv = lockedWith([f1, DmaResvUsage.Write], [f2, DmaResvUsage.Read]);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
        [f1, DmaResvUsage.Write],
        [f2, DmaResvUsage.Read],
      ]);
      assert.deepEqual(resv.getFences(DmaResvUsage.Write), [f1], 'writers still only see the write');
    });

    it('late: a weaker usage takes the old slot once the old fence has signaled', () => {
      const ctx = fenceContextAlloc();
      const [f1, f2] = [mockFence(ctx, 1), mockFence(ctx, 2)];
      const resv = lockedWith([f1, DmaResvUsage.Write]);
      f1.signal();
      resv.reserveFences(1);
      resv.addFence(f2, DmaResvUsage.Read);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [[f2, DmaResvUsage.Read]]);
    });

    it('signaled slots are recycled by any context, the first one first', () => {
      const [a, b, c] = [mockFence(), mockFence(), mockFence()];
      const resv = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Read]);
      b.signal();
      a.signal();
      resv.reserveFences(1);
      resv.addFence(c, DmaResvUsage.Bookkeep);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
        [c, DmaResvUsage.Bookkeep],
        [b, DmaResvUsage.Read],
      ]);
    });

    it('promotion: Bookkeep becomes Read by adding the same fence again with Read', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Bookkeep]);
      assert.deepEqual(resv.getFences(DmaResvUsage.Read), []);
      resv.reserveFences(1);
      resv.addFence(f, DmaResvUsage.Read);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [[f, DmaResvUsage.Read]]);
      assert.deepEqual(resv.getFences(DmaResvUsage.Read), [f]);
    });

    it('no degradation: adding a Read fence again as Bookkeep keeps the Read entry', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Read], [f, DmaResvUsage.Bookkeep]);
      assert.deepEqual(resv.getFences(DmaResvUsage.Read), [f]);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
        [f, DmaResvUsage.Read],
        [f, DmaResvUsage.Bookkeep],
      ]);
    });

    it('replacing a slot needs no reservation (kernel parity: only appends consume one)', () => {
      const ctx = fenceContextAlloc();
      const resv = lockedWith([mockFence(ctx, 1), DmaResvUsage.Write]);
      resv.unlock();
      assert.equal(resv.tryLock(), true);
      resv.addFence(mockFence(ctx, 2), DmaResvUsage.Write);
      assert.equal(resv.numFences, 1);
    });
  });

  describe('reservations', () => {
    it('are lost at unlock: addFence after unlock and relock without reserving is a BugError', () => {
      const resv = lockedWith([mockFence(), DmaResvUsage.Write]);
      resv.reserveFences(2);
      resv.unlock();
      assert.equal(resv.maxFences, 1, 'unlock trims the allowance to the used slots');
      assert.equal(resv.tryLock(), true);
      assert.throws(
        () => resv.addFence(mockFence(), DmaResvUsage.Write),
        (err: unknown) => err instanceof BugError && /reserveFences\(n\)/.test(err.message),
      );
      assert.equal(resv.numFences, 1, 'unchanged');
      resv.reserveFences(1);
      resv.addFence(mockFence(), DmaResvUsage.Write);
      assert.equal(resv.numFences, 2);
    });

    it('adding more fences than reserved fails at the first slot beyond the capacity', () => {
      const resv = new DmaResv();
      assert.throws(() => resv.reserveFences(1), BugError, 'needs the lock');
      assert.equal(resv.tryLock(), true);
      assert.throws(() => resv.addFence(mockFence(), DmaResvUsage.Write), BugError, 'nothing reserved yet');
      resv.reserveFences(1);
      for (let i = 0; i < 4; i++) resv.addFence(mockFence(), DmaResvUsage.Read); // the fresh list rounds up to 4
      assert.throws(() => resv.addFence(mockFence(), DmaResvUsage.Read), BugError);
      assert.equal(resv.numFences, 4);
    });

    it('capacity: fresh lists get max(4, next power of two); growth takes max(num + n, 2 * max)', () => {
      const caps = (n: number): number => {
        const resv = new DmaResv();
        resv.tryLock();
        resv.reserveFences(n);
        return resv.maxFences;
      };
      assert.deepEqual([1, 3, 4, 5, 9, 64, 65].map(caps), [4, 4, 4, 8, 16, 64, 128]);
      const resv = new DmaResv();
      resv.tryLock();
      resv.reserveFences(4);
      for (let i = 0; i < 4; i++) resv.addFence(mockFence(), DmaResvUsage.Write);
      resv.reserveFences(1);
      assert.equal(resv.maxFences, 8, '2 * 4 beats 4 + 1');
      for (let i = 0; i < 4; i++) resv.addFence(mockFence(), DmaResvUsage.Write);
      resv.reserveFences(10);
      assert.equal(resv.maxFences, 18, '8 + 10 beats 2 * 8');
      resv.reserveFences(10);
      assert.equal(resv.maxFences, 18, 'already room: nothing changes');
    });

    it('a reservation that fits keeps the list, so unlocked walks do not restart, also after unlock', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Write]);
      const walk = resv.fencesUnlocked(DmaResvUsage.Write);
      assert.equal(walk.next().value?.restarted, true);
      resv.unlock();
      assert.equal(resv.tryLock(), true);
      resv.reserveFences(3); // 1 + 3 fits the capacity of 4 kept across the unlock
      assert.equal(resv.maxFences, 4);
      resv.addFence(mockFence(), DmaResvUsage.Write); // appended in place: not seen by this walk
      assert.equal(walk.next().done, true);
    });

    it('late: reallocation drops signaled fences and keeps the others in order with their usages', () => {
      const [a, b, c, d] = [mockFence(), mockFence(), mockFence(), mockFence()];
      const resv = lockedWith(
        [a, DmaResvUsage.Kernel],
        [b, DmaResvUsage.Read],
        [c, DmaResvUsage.Bookkeep],
        [d, DmaResvUsage.Write],
      );
      b.signal();
      resv.reserveFences(1);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
        [a, DmaResvUsage.Kernel],
        [c, DmaResvUsage.Bookkeep],
        [d, DmaResvUsage.Write],
      ]);
      assert.equal(resv.maxFences, 8);
    });
  });

  describe('getSingleton', () => {
    it('returns null for no fence, the fence itself for one, an array on a fresh context for more', () => {
      const resv = lockedWith();
      assert.equal(resv.getSingleton(DmaResvUsage.Bookkeep), null);
      const [a, b] = [mockFence(), mockFence()];
      resv.reserveFences(2);
      resv.addFence(a, DmaResvUsage.Write);
      assert.equal(resv.getSingleton(DmaResvUsage.Write), a);
      resv.addFence(b, DmaResvUsage.Read);
      assert.equal(resv.getSingleton(DmaResvUsage.Write), a, 'the read is not asked for');
      const single = resv.getSingleton(DmaResvUsage.Read);
      assert.ok(single instanceof DmaFenceArray);
      assert.deepEqual(single.fences, [a, b]);
      assert.notEqual(single.context, a.context);
      assert.equal(single.seqno, 1);
      assert.throws(() => resv.addFence(single, DmaResvUsage.Read), BugError, 'the array must not go back in');
    });

    it('late: signaled fences are left out (one left: the fence; none: null)', () => {
      const [a, b] = [mockFence(), mockFence()];
      const resv = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Write]);
      a.signal();
      assert.equal(resv.getSingleton(DmaResvUsage.Write), b);
      b.signal();
      assert.equal(resv.getSingleton(DmaResvUsage.Write), null);
    });
  });

  describe('replaceFences', () => {
    it('replaces every slot of the context with the replacement and usage, leaving others', () => {
      const ctx = fenceContextAlloc();
      const [p1, p2, other, repl] = [mockFence(ctx, 1), mockFence(ctx, 0), mockFence(), mockFence()];
      const resv = lockedWith([p1, DmaResvUsage.Bookkeep], [other, DmaResvUsage.Write], [p2, DmaResvUsage.Bookkeep]);
      resv.replaceFences(ctx, repl, DmaResvUsage.Kernel);
      assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
        [repl, DmaResvUsage.Kernel],
        [other, DmaResvUsage.Write],
        [repl, DmaResvUsage.Kernel],
      ]);
      resv.replaceFences(fenceContextAlloc(), mockFence(), DmaResvUsage.Read);
      assert.equal(resv.numFences, 3, 'an unknown context changes nothing');
    });

    it('bad input: no lock, a container, a bad context or usage are rejected and change nothing', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Write]);
      const array = new DmaFenceArray([mockFence(), mockFence()], fenceContextAlloc(), 1);
      assert.throws(() => resv.replaceFences(f.context, array, DmaResvUsage.Write), BugError);
      assert.throws(() => resv.replaceFences(-1, mockFence(), DmaResvUsage.Write), InvalidArgumentError);
      assert.throws(() => resv.replaceFences(f.context, mockFence(), 7 as DmaResvUsage), InvalidArgumentError);
      resv.unlock();
      assert.throws(() => resv.replaceFences(f.context, mockFence(), DmaResvUsage.Write), BugError);
      assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), [f]);
    });
  });

  it('describe: one line per fence up to Read, signaled ones included, bookkeep left out', () => {
    const [k, w, r, b] = [mockFence(), mockFence(), mockFence(), mockFence()];
    const resv = lockedWith(
      [k, DmaResvUsage.Kernel],
      [w, DmaResvUsage.Write],
      [r, DmaResvUsage.Read],
      [b, DmaResvUsage.Bookkeep],
    );
    w.signal();
    assert.equal(
      resv.describe(),
      [`\tkernel fence: ${k.describe()}`, `\twrite fence: ${w.describe()}`, `\tread fence: ${r.describe()}`].join('\n'),
    );
    assert.match(resv.describe(), /\twrite fence: \d+:1 signaled/);
    assert.equal(new DmaResv().describe(), '');
  });

  describe('locking', () => {
    it('delegates to a ww mutex: lockingCtx, tryLock, EALREADY, hand-off on unlock', async () => {
      const resv = new DmaResv();
      using ctx = new WwAcquireCtx(reservationWwClass);
      await resv.lock(ctx);
      assert.equal(resv.lockingCtx, ctx);
      assert.equal(resv.tryLock(), false);
      await assert.rejects(resv.lock(ctx), AlreadyLockedError);
      let second = false;
      const waiting = resv.lock().then(() => (second = true));
      resv.unlock();
      await waiting;
      assert.equal(second, true);
      assert.equal(resv.lockingCtx, null, 'held without a context');
      resv.unlock();
      assert.equal(resv.isLocked, false);
    });

    it('uses the given lock class', () => {
      const wwClass = new WwClass('test_class', 'wound-wait');
      assert.equal(new DmaResv({ wwClass }).mutex.wwClass, wwClass);
      assert.throws(() => new DmaResv({ wwClass: {} as WwClass }), InvalidArgumentError);
    });

    it('every locked operation names itself and says to lock first', () => {
      const resv = new DmaResv();
      const f = mockFence();
      const ops: [string, () => unknown][] = [
        ['unlock', () => resv.unlock()],
        ['reserveFences', () => resv.reserveFences(1)],
        ['addFence', () => resv.addFence(f, DmaResvUsage.Write)],
        ['replaceFences', () => resv.replaceFences(f.context, f, DmaResvUsage.Write)],
        ['copyFences', () => resv.copyFences(new DmaResv())],
        ['fences', () => resv.fences(DmaResvUsage.Write)],
      ];
      for (const [name, op] of ops) {
        assert.throws(
          op,
          (err: unknown) =>
            err instanceof BugError &&
            err.message.startsWith(
              `DmaResv.${name}: the reservation lock is not held; lock it first with resv.lock(ctx)`,
            ),
          name,
        );
      }
    });
  });

  describe('front door (issue 10)', () => {
    it('usages by name mean the ordered numbers', async () => {
      const [w, r] = [mockFence(), mockFence()];
      const resv = new DmaResv();
      {
        using _guard = await resv.acquire();
        resv.reserveFences(2);
        resv.addFence(w, 'write');
        resv.addFence(r, 'read');
        assert.deepEqual(
          [...resv.fences('bookkeep')].map((e) => e.usage),
          [DmaResvUsage.Write, DmaResvUsage.Read],
        );
      }
      assert.equal(resv.isLocked, false, 'the guard unlocked at the end of the block');
      assert.deepEqual(resv.getFences('write'), [w]);
      assert.equal(resv.testSignaled('kernel'), true);
      w.signal();
      r.signal();
      assert.equal(await resv.wait({ usage: 'read', timeout: 0 }), true);
    });

    it('an unknown usage name is an InvalidArgumentError listing both forms', () => {
      assert.throws(() => new DmaResv().getFences('writes' as never), /'kernel', 'write', 'read', 'bookkeep'/);
    });

    it('late: a guard unlocks the reservation, forgetting its reserved slots as unlock() does', async () => {
      const resv = new DmaResv();
      {
        using _guard = await resv.acquire();
        resv.reserveFences(3);
        assert.ok(resv.maxFences >= 3);
      }
      assert.equal(resv.maxFences, 0, 'unused reservations were forgotten');
      await assert.rejects(resv.acquire(null, { signal: new AbortController() as never }), InvalidArgumentError);
    });

    it('acquire with a context holds the lock in that context', async () => {
      const resv = new DmaResv();
      using ctx = new WwAcquireCtx(reservationWwClass);
      const guard = await resv.acquire(ctx);
      assert.equal(resv.lockingCtx, ctx);
      guard[Symbol.dispose]();
      assert.equal(resv.isLocked, false);
    });
  });

  describe('bad input', () => {
    it('each contract violation throws and leaves the object usable', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Write]);
      const chain = new DmaFenceChain(null, mockFence(), 1);
      const array = new DmaFenceArray([mockFence(), mockFence()], fenceContextAlloc(), 1);
      resv.reserveFences(1);
      assert.throws(
        () => resv.reserveFences(0),
        (err: unknown) => err instanceof BugError && /miscounted/.test(err.message),
      );
      for (const n of [-1, 1.5, NaN, '2'])
        assert.throws(() => resv.reserveFences(n as number), InvalidArgumentError, String(n));
      assert.throws(
        () => resv.addFence(array, DmaResvUsage.Write),
        (err: unknown) =>
          err instanceof BugError && /add each fence individually; unwrap arrays and chains first/.test(err.message),
      );
      assert.throws(() => resv.addFence(chain, DmaResvUsage.Write), BugError);
      assert.throws(() => resv.addFence({} as DmaFence, DmaResvUsage.Write), InvalidArgumentError);
      for (const u of [-1, 4, 1.5, '1', undefined]) {
        assert.throws(() => resv.addFence(mockFence(), u as DmaResvUsage), InvalidArgumentError, String(u));
        assert.throws(() => resv.getFences(u as DmaResvUsage), InvalidArgumentError);
        assert.throws(() => resv.fencesUnlocked(u as DmaResvUsage), InvalidArgumentError);
        assert.throws(() => resv.fences(u as DmaResvUsage), InvalidArgumentError);
        assert.throws(() => resv.testSignaled(u as DmaResvUsage), InvalidArgumentError);
        assert.throws(() => resv.getSingleton(u as DmaResvUsage), InvalidArgumentError);
        assert.throws(() => resv.setDeadline(u as DmaResvUsage, 1), InvalidArgumentError);
      }
      assert.equal(resv.numFences, 1, 'nothing changed');
      const g = mockFence();
      resv.addFence(g, DmaResvUsage.Read);
      assert.deepEqual(resv.getFences(DmaResvUsage.Read), [f, g]);
    });
  });

  describe('dispose', () => {
    it('drops the fences and refuses locking afterwards; idempotent', async () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Write]);
      resv.unlock();
      const walk = resv.fencesUnlocked(DmaResvUsage.Write);
      assert.equal(walk.next().value?.fence, f);
      resv[Symbol.dispose]();
      assert.equal(resv.numFences, 0);
      assert.equal(resv.testSignaled(DmaResvUsage.Bookkeep), true);
      assert.equal(walk.next().done, true, 'readers restart and find nothing');
      resv[Symbol.dispose]();
      await assert.rejects(resv.lock(), BugError);
      assert.throws(() => resv.tryLock(), BugError);
    });

    it('while locked is a BugError and leaves the object usable', () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Write]);
      assert.throws(
        () => resv[Symbol.dispose](),
        (err: unknown) => err instanceof BugError && /unlock it before disposing/.test(err.message),
      );
      assert.deepEqual(resv.getFences(DmaResvUsage.Write), [f]);
      resv.unlock();
      {
        using scoped = resv;
        assert.equal(scoped.numFences, 1);
      }
      assert.equal(resv.numFences, 0);
    });
  });
});
