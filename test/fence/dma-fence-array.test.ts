import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { BugError, type DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { mockFence } from '../helpers/mock-fence.js';

function fences(n: number): DmaFence[] {
  return Array.from({ length: n }, () => mockFence());
}

function makeArray(members: DmaFence[], signalOnAny = false): DmaFenceArray {
  return new DmaFenceArray(members, fenceContextAlloc(), 1, { signalOnAny });
}

/** A fence whose ops record every deadline passed to it. */
function deadlineFence(log: number[]): DmaFence {
  const ops: DmaFenceOps = {
    getDriverName: () => 'deadline',
    getTimelineName: () => 'deadline',
    setDeadline: (_f, deadline) => void log.push(deadline),
  };
  return new DmaFence(ops, fenceContextAlloc(), 1);
}

describe('DmaFenceArray', () => {
  it('sanity: an array of two signals after both members signal', () => {
    const [a, b] = fences(2) as [DmaFence, DmaFence];
    const array = makeArray([a, b]);
    array.enableSwSignaling();
    a.signal();
    b.signal();
    assert.equal(array.signaledFlag, true);
    assert.equal(array.status, 'signaled');
  });

  it('describes itself as a dma_fence_array on the unbound timeline, and is a container', () => {
    const array = makeArray(fences(3));
    assert.equal(array.driverName, 'dma_fence_array');
    assert.equal(array.timelineName, 'unbound');
    assert.equal(array.isContainer, true);
    assert.equal(array.numFences, 3);
    assert.equal(array.signalOnAny, false);
    assert.equal(array.isSeqno64, false);
  });

  it('copies and freezes the member list', () => {
    const members = fences(2);
    const array = makeArray(members);
    members.push(mockFence());
    assert.equal(array.numFences, 2);
    assert.ok(Object.isFrozen(array.fences));
    assert.throws(() => (array.fences as DmaFence[]).push(mockFence()), TypeError);
  });

  it('all mode: stays pending until the last member signals, then runs its callbacks inside that signal', () => {
    const clock = new VirtualClock(10);
    using _c = useClock(clock);
    const members = fences(3);
    const array = makeArray(members);
    const seen: string[] = [];
    assert.equal(
      array.addCallback(() => seen.push('array')),
      true,
    );
    members[2]!.signal();
    members[0]!.signal();
    assert.equal(array.signaledFlag, false);
    clock.advance(5);
    members[1]!.addCallback(() => seen.push('member-before'));
    members[1]!.signal();
    assert.deepEqual(seen, ['array', 'member-before'], 'the array callback was added first, so it runs first');
    assert.equal(array.timestamp, 15);
    for (const m of members) assert.equal(m.pendingCallbacks, 0);
  });

  it('any mode: signals with the first member and takes its callbacks off the others', () => {
    const members = fences(4);
    const array = makeArray(members, true);
    array.enableSwSignaling();
    for (const m of members) assert.equal(m.pendingCallbacks, 1);
    members[2]!.signal();
    assert.equal(array.signaledFlag, true);
    for (const m of members) assert.equal(m.pendingCallbacks, 0, 'no callback left behind');
  });

  it('late (any mode): members signaling after the array, with or without errors, change nothing', () => {
    const [a, b, c] = fences(3) as [DmaFence, DmaFence, DmaFence];
    const array = makeArray([a, b, c], true);
    array.enableSwSignaling();
    a.signal();
    b.setError('EIO');
    b.signal();
    c.signal();
    assert.equal(array.status, 'signaled');
    assert.equal(array.error, undefined);
  });

  it('takes the error of the first member to fail, in signal order', () => {
    const [a, b, c] = fences(3) as [DmaFence, DmaFence, DmaFence];
    const array = makeArray([a, b, c]);
    array.enableSwSignaling();
    a.signal();
    c.setError('ETIME');
    c.signal();
    b.setError('EIO');
    b.signal();
    assert.equal(array.status, 'error');
    assert.equal(array.error, c.error, 'the same Error object as the first failing member');
    assert.equal((array.error as DmaBufError).code, 'ETIME');
  });

  it('never overwrites the first error with a later one', () => {
    const [a, b] = fences(2) as [DmaFence, DmaFence];
    const first = new Error('first');
    const array = makeArray([a, b]);
    array.enableSwSignaling();
    a.setError(first);
    a.signal();
    b.setError(new Error('second'));
    b.signal();
    assert.equal(array.error, first);
  });

  it('counts members that signaled before enabling at once, when signaling is enabled', () => {
    const members = fences(3);
    members[0]!.signal();
    members[2]!.signal();
    const array = makeArray(members);
    array.enableSwSignaling();
    assert.equal(array.signaledFlag, false);
    assert.equal(members[0]!.pendingCallbacks + members[2]!.pendingCallbacks, 0, 'no callback on signaled members');
    assert.equal(members[1]!.pendingCallbacks, 1);
    members[1]!.signal();
    assert.equal(array.signaledFlag, true);
  });

  it('late: an array whose members all signaled already signals while being enabled', () => {
    const members = fences(2);
    for (const m of members) m.signal();
    const array = makeArray(members);
    let called = false;
    assert.equal(
      array.addCallback(() => (called = true)),
      false,
      'addCallback reports "already signaled"',
    );
    assert.equal(called, false);
    assert.equal(array.signaledFlag, true);
  });

  it('any mode: a member signaled before enabling completes the array at enable time', () => {
    const members = fences(3);
    members[1]!.signal();
    const array = makeArray(members, true);
    array.enableSwSignaling();
    assert.equal(array.signaledFlag, true);
    for (const m of members) assert.equal(m.pendingCallbacks, 0, 'the callback on member 0 was taken off again');
  });

  it('carries the error of a member that had already failed when the array was built', () => {
    const [bad, good] = fences(2) as [DmaFence, DmaFence];
    bad.setError('ECANCELED');
    bad.signal();
    const array = makeArray([bad, good]);
    array.enableSwSignaling();
    assert.equal(array.status, 'active', 'the error is held until the array signals');
    good.signal();
    assert.equal(array.status, 'error');
    assert.equal(array.error, bad.error);
  });

  it('signals once for a member listed twice, after that member signals', () => {
    const f = mockFence();
    const array = makeArray([f, f]);
    let runs = 0;
    array.addCallback(() => runs++);
    assert.equal(f.pendingCallbacks, 2);
    f.signal();
    assert.equal(array.signaledFlag, true);
    assert.equal(runs, 1);
  });

  it("signals inside enabling when a member's own enabling signals an earlier member (any mode)", () => {
    const a = mockFence();
    const b = new DmaFence(
      { getDriverName: () => 'x', getTimelineName: () => 'x', enableSignaling: () => (a.signal(), true) },
      fenceContextAlloc(),
      1,
    );
    const array = makeArray([a, b], true);
    array.enableSwSignaling();
    assert.equal(array.signaledFlag, true);
    assert.equal(b.signaledFlag, false);
    assert.equal(b.pendingCallbacks, 0, 'the callback added to b after the array signaled was removed');
  });

  it('rejects an empty member list with an InvalidArgumentError, as waitAny does', () => {
    assert.throws(
      () => makeArray([]),
      (err: unknown) => err instanceof InvalidArgumentError && /non-empty array/.test(err.message),
    );
  });

  it('rejects a nested array or chain with a BugError telling to flatten, and creates nothing', () => {
    const inner = makeArray(fences(2));
    const chain = new DmaFenceChain(null, mockFence(), 1);
    const plain = mockFence();
    for (const container of [inner, chain]) {
      let made: DmaFenceArray | undefined;
      assert.throws(
        () => {
          made = new DmaFenceArray([plain, container], fenceContextAlloc(), 1);
        },
        (err: unknown) =>
          err instanceof BugError && /member 1/.test(err.message) && /unwrap\(\) or unwrapMerge\(\)/.test(err.message),
      );
      assert.equal(made, undefined);
      assert.equal(plain.signalingEnabled, false, 'members untouched');
      assert.equal(container.signalingEnabled, false);
    }
  });

  it('rejects members that are not fences and bad options', () => {
    assert.throws(() => new DmaFenceArray('ab' as unknown as DmaFence[], 1, 1), InvalidArgumentError);
    assert.throws(() => new DmaFenceArray([mockFence(), {} as DmaFence], 1, 1), /fences\[1\] must be a DmaFence/);
    assert.throws(() => new DmaFenceArray([mockFence()], -1, 1), InvalidArgumentError);
    assert.throws(() => new DmaFenceArray([mockFence()], 1, 1.5), InvalidArgumentError);
    assert.throws(
      () => new DmaFenceArray([mockFence()], 1, 1, { signalOnAny: 'yes' as unknown as boolean }),
      /options.signalOnAny must be a boolean/,
    );
  });

  it('forwards a deadline to every member', () => {
    const logs: number[][] = [[], [], []];
    const array = makeArray(logs.map(deadlineFence));
    array.setDeadline(42);
    assert.deepEqual(logs, [[42], [42], [42]]);
  });

  it('late: skips members that signaled, and the whole array once it signaled', () => {
    const logs: number[][] = [[], []];
    const members = logs.map(deadlineFence);
    const array = makeArray(members);
    members[0]!.signal();
    array.setDeadline(7);
    assert.deepEqual(logs, [[], [7]]);
    members[1]!.signal();
    array.setDeadline(8);
    assert.deepEqual(logs, [[], [7]]);
  });

  it('polling without enabling counts members and arms nothing', () => {
    const members = fences(3);
    const array = makeArray(members);
    members[0]!.signal();
    members[1]!.signal();
    assert.equal(array.isSignaled(), false);
    assert.equal(array.signalingEnabled, false);
    for (const m of members) assert.equal(m.pendingCallbacks, 0);
    // The poll used a local count: enabling now still waits for the last member.
    array.enableSwSignaling();
    assert.equal(array.signaledFlag, false);
    members[2]!.signal();
    assert.equal(array.signaledFlag, true);
  });

  it('late: polling once every member signaled signals the array, with the first error in member order', () => {
    const members = fences(3);
    members[2]!.setError('EIO');
    members[2]!.signal();
    members[1]!.setError('ETIME');
    members[1]!.signal();
    members[0]!.signal();
    const array = makeArray(members);
    assert.equal(array.isSignaled(), true);
    assert.equal(array.signalingEnabled, false);
    assert.equal(array.error, members[1]!.error);
  });

  it('any mode: polling finds the first signaled member', () => {
    const members = fences(3);
    const array = makeArray(members, true);
    assert.equal(array.isSignaled(), false);
    members[2]!.signal();
    assert.equal(array.isSignaled(), true);
  });

  it('wait resolves when the members signal and times out on the virtual clock otherwise', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const members = fences(2);
    const array = makeArray(members);
    const timedOut = array.wait({ timeout: 10 });
    await clock.tick(10);
    assert.equal(await timedOut, false);
    const waiting = array.wait();
    members[0]!.signal();
    members[1]!.signal();
    assert.equal(await waiting, true);
  });

  it('signals 10,000 members one by one without deep recursion', () => {
    const members = fences(10_000);
    const array = makeArray(members);
    array.enableSwSignaling();
    for (const m of members) m.signal();
    assert.equal(array.signaledFlag, true);
  });

  it('toArray tells arrays from other fences', () => {
    const array = makeArray(fences(1));
    assert.equal(DmaFenceArray.toArray(array), array);
    assert.equal(DmaFenceArray.toArray(mockFence()), null);
    assert.equal(DmaFenceArray.toArray(null), null);
  });

  it('matchContext: a plain fence by its context, an array only when every member matches', () => {
    const ctx = fenceContextAlloc();
    const same = makeArray([mockFence(ctx, 1), mockFence(ctx, 2)]);
    const mixed = makeArray([mockFence(ctx, 1), mockFence()]);
    assert.equal(DmaFenceArray.matchContext(same, ctx), true);
    assert.equal(DmaFenceArray.matchContext(same, same.context), false, "the array's own context does not count");
    assert.equal(DmaFenceArray.matchContext(mixed, ctx), false);
    assert.equal(DmaFenceArray.matchContext(mockFence(ctx, 3), ctx), true);
    assert.equal(DmaFenceArray.matchContext(mockFence(), ctx), false);
  });

  it("members yields an array's members, or a plain fence once", () => {
    const members = fences(3);
    assert.deepEqual([...DmaFenceArray.members(makeArray(members))], members);
    const plain = mockFence();
    assert.deepEqual([...DmaFenceArray.members(plain)], [plain]);
  });

  it('property: signaled exactly when the model says, with an error from a failed member', () => {
    type Step = { kind: 'signal'; member: number; fail: boolean } | { kind: 'enable' } | { kind: 'poll' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('signal' as const), member: fc.nat(5), fail: fc.boolean() }),
      fc.constant({ kind: 'enable' as const }),
      fc.constant({ kind: 'poll' as const }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.array(step, { maxLength: 20 }), (n, any, steps) => {
        const members = fences(n);
        const array = makeArray(members, any);
        let enabledOrPolled = false;
        let errorAtSignal: Error | undefined;
        let wasSignaled = false;
        for (const s of steps) {
          if (s.kind === 'enable') {
            array.enableSwSignaling();
            enabledOrPolled = true;
          } else if (s.kind === 'poll') {
            array.isSignaled();
            enabledOrPolled = true;
          } else {
            const m = members[s.member % n]!;
            if (!m.signaledFlag) {
              if (s.fail) m.setError(new Error(`member ${s.member % n}`));
              m.signal();
            }
          }
          const done = members.filter((m) => m.signaledFlag);
          const complete = any ? done.length > 0 : done.length === n;
          if (array.signaledFlag) {
            assert.ok(complete, 'signaled before its members were done');
            if (wasSignaled) assert.equal(array.error, errorAtSignal, 'the error changed after signal');
            wasSignaled = true;
            errorAtSignal = array.error;
            if (array.error !== undefined)
              assert.ok(
                done.some((m) => m.error === array.error),
                'error from a signaled member',
              );
            else if (!any)
              assert.ok(
                done.every((m) => m.error === undefined),
                'lost an error',
              );
          } else if (array.signalingEnabled) {
            assert.ok(!complete, 'enabled and complete but not signaled');
          }
          if (s.kind === 'poll' && complete) assert.ok(array.signaledFlag, 'a poll of a complete array signals it');
        }
        if (!enabledOrPolled) assert.equal(array.signaledFlag, false, 'nobody asked, so nothing signaled the array');
      }),
    );
  });
});
