/**
 * Executable specification of reading reservation objects without their lock
 * (src/resv/dma-resv.ts): unlocked walks and their restarts when a writer replaces the list,
 * getFences snapshots and addFence rescans across such replacements, copyFences, wait with
 * timeouts and abort, setDeadline, and the property that every unsignaled fence stays covered by
 * getFences. The locked core and the st-dma-resv port are in dma-resv.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { spyFence } from '../helpers/fence-spies.js';
import { mockFence, testSeed } from '../helpers/mock-fence.js';
import { entries, lockedWith } from '../helpers/resv-objects.js';

/** A writer that reallocates `resv`'s list (asks for more than its capacity). */
const reallocate = (resv: DmaResv) => (): void => resv.reserveFences(resv.maxFences);

/**
 * A fence whose poll, once armed, runs `action` (a writer replacing a list mid-walk) and which
 * reports `finished()` as its signaled state.
 */
function pollingFence(action: () => void, finished: () => boolean = () => false) {
  const state = { armed: false, fired: false };
  const ops: DmaFenceOps = {
    getDriverName: () => 'poll',
    getTimelineName: () => 'poll',
    signaled: () => {
      if (state.armed) {
        state.armed = false; // before acting: the writer's reallocation polls this fence again
        state.fired = true;
        action();
      }
      return finished();
    },
  };
  return { fence: new DmaFence(ops, fenceContextAlloc(), 1), state };
}

describe('DmaResv', () => {
  it('unlocked walks flag only the first entry after a (re)start and restart on every reallocation', () => {
    const [a, b] = [mockFence(), mockFence()];
    const resv = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Write]);
    const walk = resv.fencesUnlocked(DmaResvUsage.Write);
    const seen: [DmaFence, boolean][] = [];
    for (const e of walk) {
      seen.push([e.fence, e.restarted]);
      if (seen.length === 2) {
        a.signal();
        resv.reserveFences(4); // 2 + 4 > 4: reallocates, dropping a
      }
    }
    assert.deepEqual(seen, [
      [a, true],
      [b, false],
      [b, true],
    ]);
    assert.equal(walk.next().done, true, 'a finished walk stays finished');
  });

  it('getFences starts over when polling a fence replaces the list, and keeps only the final walk', () => {
    const resv = lockedWith();
    resv.reserveFences(4);
    const { fence: b, state } = pollingFence(reallocate(resv));
    const a = mockFence();
    resv.addFence(a, DmaResvUsage.Write);
    resv.addFence(b, DmaResvUsage.Write);
    state.armed = true;
    const restarts = [...resv.fencesUnlocked(DmaResvUsage.Write)].map((e) => e.restarted);
    assert.deepEqual(restarts, [true, true, false], 'a, then the restarted walk a, b');
    state.armed = true;
    const maxBefore = resv.maxFences;
    assert.deepEqual(resv.getFences(DmaResvUsage.Write), [a, b]);
    assert.ok(resv.maxFences > maxBefore, 'the list was reallocated during the snapshot');
  });

  it('addFence rescans when polling an old fence reallocates the list, so the new fence is not lost', () => {
    const resv = lockedWith();
    resv.reserveFences(2);
    const { fence: a, state } = pollingFence(reallocate(resv));
    resv.addFence(a, DmaResvUsage.Read);
    const b = mockFence();
    state.armed = true;
    resv.addFence(b, DmaResvUsage.Write);
    assert.equal(state.fired, true);
    assert.deepEqual(entries(resv.fences(DmaResvUsage.Bookkeep)), [
      [a, DmaResvUsage.Read],
      [b, DmaResvUsage.Write],
    ]);
  });

  describe('copyFences', () => {
    it("replaces this object's fences with the source's unsignaled ones, usages kept", () => {
      const [a, b, c, d] = [mockFence(), mockFence(), mockFence(), mockFence()];
      const src = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Bookkeep], [c, DmaResvUsage.Read]);
      src.unlock();
      c.signal();
      const dst = lockedWith([d, DmaResvUsage.Kernel]);
      const walk = dst.fencesUnlocked(DmaResvUsage.Bookkeep);
      assert.equal(walk.next().value?.fence, d);
      dst.copyFences(src);
      assert.deepEqual(entries(dst.fences(DmaResvUsage.Bookkeep)), [
        [a, DmaResvUsage.Write],
        [b, DmaResvUsage.Bookkeep],
      ]);
      assert.equal(dst.maxFences, 3, 'sized like the source list');
      assert.deepEqual(
        [...walk].map((e) => [e.fence, e.restarted]),
        [
          [a, true],
          [b, false],
        ],
        'readers of dst restart',
      );
      assert.equal(src.numFences, 3, 'the source is untouched');
    });

    it('late: copying a source whose fences all signaled leaves this object empty', () => {
      const a = mockFence();
      const src = lockedWith([a, DmaResvUsage.Write]);
      a.signal();
      const dst = lockedWith([mockFence(), DmaResvUsage.Write]);
      dst.copyFences(src);
      assert.equal(dst.numFences, 0);
      assert.equal(dst.maxFences, 0);
      assert.throws(() => dst.addFence(mockFence(), DmaResvUsage.Write), BugError, 'the copy reserved nothing');
    });

    it('starts over when the source list is replaced during the copy', () => {
      const src = lockedWith();
      src.reserveFences(4);
      const { fence: a, state } = pollingFence(reallocate(src));
      const b = mockFence();
      src.addFence(a, DmaResvUsage.Read);
      src.addFence(b, DmaResvUsage.Kernel);
      const dst = lockedWith();
      state.armed = true;
      dst.copyFences(src);
      assert.equal(state.fired, true, 'the reallocation ran during the copy');
      assert.deepEqual(entries(dst.fences(DmaResvUsage.Bookkeep)), [
        [a, DmaResvUsage.Read],
        [b, DmaResvUsage.Kernel],
      ]);
      assert.equal(dst.maxFences, 2, 'sized like the reallocated source list');
    });

    it('late: a restart that finds nothing unsignaled copies nothing, and getFences returns nothing', () => {
      // Everything finishes while the walk is between x and a, and a writer compacts the list.
      for (const reader of ['copyFences', 'getFences'] as const) {
        const x = mockFence();
        const src = lockedWith([x, DmaResvUsage.Write]);
        src.reserveFences(1);
        const { fence: a, state } = pollingFence(
          () => (x.signal(), reallocate(src)()),
          () => x.signaledFlag,
        );
        src.addFence(a, DmaResvUsage.Write);
        state.armed = true;
        if (reader === 'copyFences') {
          const dst = lockedWith([mockFence(), DmaResvUsage.Write]);
          dst.copyFences(src);
          assert.equal(dst.numFences, 0, 'x was collected before the restart but has signaled since');
        } else {
          assert.deepEqual(src.getFences(DmaResvUsage.Write), []);
        }
        assert.equal(state.fired, true, reader);
        assert.equal(src.numFences, 0);
      }
    });

    it('needs this object locked, not the source', () => {
      const src = lockedWith([mockFence(), DmaResvUsage.Write]);
      const dst = new DmaResv();
      assert.throws(() => dst.copyFences(src), /DmaResv\.copyFences: the reservation lock is not held; lock it first/);
      assert.throws(() => lockedWith().copyFences({} as DmaResv), InvalidArgumentError);
    });
  });

  describe('wait', () => {
    it('resolves true at once with nothing to wait for, and for the asked usages only', async () => {
      assert.equal(await new DmaResv().wait({ timeout: 0 }), true);
      const [w, b] = [mockFence(), mockFence()];
      const resv = lockedWith([w, DmaResvUsage.Write], [b, DmaResvUsage.Bookkeep]);
      resv.unlock();
      const read = resv.wait({ usage: DmaResvUsage.Read });
      const all = resv.wait();
      let allDone = false;
      void all.then(() => (allDone = true));
      w.signal();
      assert.equal(await read, true);
      assert.equal(allDone, false, 'the default usage (Bookkeep) also waits for the bookkeep fence');
      b.signal();
      assert.equal(await all, true);
    });

    it('timeout is one budget for all fences, measured on the clock', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const [a, b] = [mockFence(), mockFence()];
      const resv = lockedWith([a, DmaResvUsage.Write], [b, DmaResvUsage.Write]);
      let result: boolean | undefined;
      void resv.wait({ timeout: 100 }).then((r) => (result = r));
      await clock.tick(60);
      a.signal();
      await clock.tick(39);
      assert.equal(result, undefined, 'still within the budget at 99 ms');
      await clock.tick(1);
      assert.equal(result, false, 'timed out at 100 ms in total, not 60 + 100');
      assert.equal(b.pendingCallbacks, 0);
      assert.equal(clock.pendingTimers, 0);
    });

    it('timeout 0 polls: false while a fence is pending; late: true once all signaled', async () => {
      const f = mockFence();
      const resv = lockedWith([f, DmaResvUsage.Kernel]);
      assert.equal(await resv.wait({ timeout: 0 }), false);
      f.signal();
      assert.equal(await resv.wait({ timeout: 0 }), true);
    });

    it(
      'abort rejects with the reason and leaves no callback behind; late: ' +
        'an already signaled set still resolves true',
      async () => {
        const f = mockFence();
        const resv = lockedWith([f, DmaResvUsage.Write]);
        const controller = new AbortController();
        const waiting = resv.wait({ signal: controller.signal });
        const reason = new Error('stop');
        controller.abort(reason);
        await assert.rejects(waiting, (err) => err === reason);
        assert.equal(f.pendingCallbacks, 0);
        await assert.rejects(resv.wait({ signal: controller.signal }), (err) => err === reason, 'pre-aborted');
        f.signal();
        assert.equal(await resv.wait({ signal: controller.signal }), true);
      },
    );

    it('bad options reject with InvalidArgumentError', async () => {
      const resv = new DmaResv();
      await assert.rejects(resv.wait({ timeout: -1 }), InvalidArgumentError);
      await assert.rejects(resv.wait({ usage: 4 as DmaResvUsage }), InvalidArgumentError);
    });
  });

  it('setDeadline reaches only the unsignaled fences of the asked usages', () => {
    const [{ spy: logW, f: w }, { spy: logB, f: b }, { spy: logS, f: s }] = [spyFence(), spyFence(), spyFence()];
    const resv = lockedWith([w, DmaResvUsage.Write], [b, DmaResvUsage.Bookkeep], [s, DmaResvUsage.Kernel]);
    s.signal();
    resv.unlock();
    resv.setDeadline(DmaResvUsage.Read, 50);
    assert.deepEqual([logW.deadlines, logB.deadlines, logS.deadlines], [[50], [], []]);
    assert.throws(() => resv.setDeadline(DmaResvUsage.Read, NaN), InvalidArgumentError);
  });

  it('property: every unsignaled fence added with usage U stays covered by getFences(U)', () => {
    const seed = testSeed();
    const contexts = [fenceContextAlloc(), fenceContextAlloc(), fenceContextAlloc(), fenceContextAlloc()];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        ctx: fc.nat(3),
        jump: fc.integer({ min: -1, max: 2 }),
        usage: fc.nat(3),
      }),
      fc.record({ kind: fc.constant('signal' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('cycle' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const resv = new DmaResv();
        resv.tryLock();
        const seqnos = [10, 10, 10, 10];
        const added: [DmaFence, DmaResvUsage][] = [];
        for (const o of ops) {
          if (o.kind === 'add') {
            seqnos[o.ctx] = Math.max(0, seqnos[o.ctx]! + o.jump);
            const f = mockFence(contexts[o.ctx]!, seqnos[o.ctx]!);
            resv.reserveFences(1);
            resv.addFence(f, o.usage as DmaResvUsage);
            added.push([f, o.usage as DmaResvUsage]);
          } else if (o.kind === 'signal') {
            // Timelines signal in order: the picked fence and everything before it on its context.
            if (added.length === 0) continue;
            const picked = added[o.pick % added.length]![0];
            for (const [f] of added) if (f.context === picked.context && f.seqno <= picked.seqno) f.signal();
          } else {
            resv.unlock();
            resv.tryLock();
          }
          assert.ok(resv.numFences <= resv.maxFences);
        }
        for (const [f, u] of added) {
          if (f.signaledFlag) continue;
          const covered = resv.getFences(u).some((g) => g.context === f.context && DmaFence.isLaterOrSame(g, f));
          assert.ok(covered, `${f.describe()} with usage ${u} lost (seed ${seed})`);
        }
      }),
      { seed, numRuns: 200 },
    );
  });
});
