import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BugError,
  DmaBufError,
  FenceTimeoutError,
  InvalidArgumentError,
  NotSubmittedError,
} from '../../src/base/errors.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { unwrap } from '../../src/fence/dma-fence-unwrap.js';
import { SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT, Syncobj } from '../../src/fence/syncobj.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

/** A timeline with points 1..count, each with its own pending mock payload. */
function timeline(
  count: number,
  init?: ConstructorParameters<typeof Syncobj>[0],
): { syncobj: Syncobj; payloads: DmaFence[] } {
  const syncobj = new Syncobj(init);
  const payloads: DmaFence[] = [];
  for (let i = 1; i <= count; i++) {
    const payload = mockFence();
    payloads.push(payload);
    syncobj.addPoint(payload, i);
  }
  return { syncobj, payloads };
}

/** Whether a promise has settled, without waiting for it. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  const marker = Symbol('pending');
  const later = new Promise((resolve) => setImmediate(() => resolve(marker)));
  return Promise.race([promise, later]).then(
    (value) => (value === marker ? 'pending' : 'fulfilled'),
    () => 'rejected',
  );
}

describe('Syncobj', () => {
  it('sanity: an empty syncobj has no fence, reports 0 and can be signaled', () => {
    using syncobj = new Syncobj();
    assert.equal(syncobj.fence, null);
    assert.equal(syncobj.query(), 0);
    assert.equal(syncobj.query({ lastSubmitted: true }), 0);
    assert.equal(syncobj.findFenceNow(0), undefined);
    assert.match(syncobj.describe(), /empty/);
    syncobj.signal();
    assert.ok(syncobj.findFenceNow(0)?.isSignaled());
  });

  describe('binary', () => {
    it('replaceFence installs the fence that point 0 returns', async () => {
      const fence = mockFence();
      using syncobj = new Syncobj();
      syncobj.replaceFence(fence);
      assert.equal(syncobj.fence, fence);
      assert.equal(syncobj.findFenceNow(0), fence);
      assert.equal(await syncobj.findFence(0), fence);
      assert.match(syncobj.describe(), /binary/);
    });

    it('late: a signaled fence is still returned as it is', async () => {
      const fence = mockFence();
      fence.signal();
      using syncobj = new Syncobj({ fence });
      assert.equal(await syncobj.findFence(0), fence);
    });

    it('reset drops the fence, so point 0 is not submitted', async () => {
      using syncobj = new Syncobj({ fence: mockFence() });
      syncobj.reset();
      assert.equal(syncobj.fence, null);
      await assert.rejects(
        syncobj.findFence(0),
        (err: unknown) => err instanceof NotSubmittedError && err.code === 'EINVAL' && /has no fence/.test(err.message),
      );
    });

    it('signal installs a fresh signaled stub, timestamped now', () => {
      const clock = new VirtualClock(1000);
      using _c = useClock(clock);
      using syncobj = new Syncobj({ fence: mockFence() });
      syncobj.signal();
      const fence = syncobj.fence!;
      assert.ok(fence.signaledFlag);
      assert.notEqual(
        fence,
        DmaFence.getStub(),
        'binary signal allocates a private stub, like drm_syncobj_assign_null_handle',
      );
      assert.equal(fence.timestamp, 1000);
    });

    it('a binary fence is not a timeline: points > 0 are not submitted and query reports 0', async () => {
      using syncobj = new Syncobj({ fence: mockFence() });
      assert.equal(syncobj.findFenceNow(1), undefined);
      await assert.rejects(
        syncobj.findFence(1),
        (err: unknown) => err instanceof NotSubmittedError && /binary fence/.test(err.message),
      );
      assert.equal(syncobj.query(), 0);
      assert.equal(syncobj.query({ lastSubmitted: true }), 0);
    });

    it('rejects arguments that are not fences', () => {
      using syncobj = new Syncobj();
      assert.throws(() => syncobj.replaceFence({} as DmaFence), InvalidArgumentError);
      assert.throws(() => new Syncobj({ gc: 'never' as 'walk' }), InvalidArgumentError);
    });
  });

  describe('created signaled (DRM_SYNCOBJ_CREATE_SIGNALED)', () => {
    it('starts with a signaled fence', async () => {
      const syncobj = new Syncobj({ signaled: true });
      assert.equal(syncobj.fence?.signaledFlag, true);
      assert.equal(await Syncobj.wait([{ syncobj }], { timeout: 0 }), 0);
    });

    it('signaled together with a fence is refused', () => {
      assert.throws(() => new Syncobj({ signaled: true, fence: mockFence() }), InvalidArgumentError);
    });
  });

  describe('timeline add and find', () => {
    it('addPoint publishes a chain node holding the payload at that point', async () => {
      const { syncobj, payloads } = timeline(3);
      const head = DmaFenceChain.toChain(syncobj.fence);
      assert.ok(head);
      assert.equal(head.seqno, 3);
      assert.equal(head.fence, payloads[2]);
      for (let p = 1; p <= 3; p++) {
        const found = DmaFenceChain.toChain(syncobj.findFenceNow(p));
        assert.equal(found?.fence, payloads[p - 1], `point ${p}`);
        assert.equal(await syncobj.findFence(p), found);
      }
      assert.equal(syncobj.findFenceNow(0), head, 'point 0 is the head itself');
      assert.match(syncobj.describe(), /timeline, last submitted point 3/);
    });

    it('a gap resolves to the next submitted point', () => {
      using syncobj = new Syncobj();
      const two = mockFence();
      const four = mockFence();
      syncobj.addPoint(two, 2);
      syncobj.addPoint(four, 4);
      assert.equal(DmaFenceChain.toChain(syncobj.findFenceNow(3))?.fence, four);
      assert.equal(DmaFenceChain.toChain(syncobj.findFenceNow(1))?.fence, two);
    });

    it('late: a point that signaled and was collected resolves to the signaled stub', async () => {
      const { syncobj, payloads } = timeline(2);
      payloads[0]!.signal();
      assert.equal(syncobj.findFenceNow(1), DmaFence.getStub());
      assert.equal(await syncobj.findFence(1), DmaFence.getStub());
    });

    it('a point beyond the head is not submitted: undefined, or NotSubmittedError naming both points', async () => {
      const { syncobj } = timeline(2);
      assert.equal(syncobj.findFenceNow(3), undefined);
      await assert.rejects(syncobj.findFence(3), (err: unknown) => {
        assert.ok(err instanceof NotSubmittedError);
        assert.equal(err.code, 'EINVAL');
        assert.match(err.message, /point 3 has not been submitted/);
        assert.match(err.message, /last submitted point is 2/);
        return true;
      });
    });

    it('addPoint refuses point 0, non-integers and chain payloads, leaving the syncobj unchanged', () => {
      const { syncobj } = timeline(1);
      const head = syncobj.fence;
      for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
        assert.throws(() => syncobj.addPoint(mockFence(), bad), InvalidArgumentError, `point ${bad}`);
      }
      const chain = new DmaFenceChain(null, mockFence(), 1);
      assert.throws(
        () => syncobj.addPoint(chain, 5),
        (err: unknown) => err instanceof BugError && /unwrapMerge/.test(err.message) && /point 5/.test(err.message),
      );
      assert.equal(syncobj.fence, head);
      assert.equal(syncobj.query({ lastSubmitted: true }), 1);
    });

    it('signal(point) adds the shared stub as that point', () => {
      const { syncobj } = timeline(1);
      syncobj.signal(2);
      assert.equal(DmaFenceChain.toChain(syncobj.fence)?.fence, DmaFence.getStub());
      assert.equal(syncobj.query({ lastSubmitted: true }), 2);
    });
  });

  describe('out-of-order points', () => {
    it('are accepted, reported and counted; the head keeps the highest seqno on a new context', () => {
      const { syncobj } = timeline(3);
      const oldHead = syncobj.fence!;
      assert.deepEqual(syncobj.addPoint(mockFence(), 4), { outOfOrder: false });
      assert.equal(syncobj.outOfOrderPoints, 0);
      const late = mockFence();
      assert.deepEqual(syncobj.addPoint(late, 2), { outOfOrder: true });
      assert.deepEqual(
        syncobj.addPoint(mockFence(), 4),
        { outOfOrder: true },
        'the same point again is out of order too',
      );
      assert.equal(syncobj.outOfOrderPoints, 2);
      const head = DmaFenceChain.toChain(syncobj.fence)!;
      assert.equal(head.seqno, 4, 'the kernel raises the seqno to the predecessor’s');
      assert.notEqual(head.context, oldHead.context);
      assert.equal(head.prevSeqno, 0);
      assert.match(syncobj.describe(), /2 out-of-order point/);
    });

    it('make every earlier point resolve to the new head, as the kernel does', () => {
      const { syncobj, payloads } = timeline(3);
      const late = mockFence();
      syncobj.addPoint(late, 2);
      for (let p = 1; p <= 3; p++) assert.equal(syncobj.findFenceNow(p), syncobj.fence, `point ${p}`);
      for (const payload of payloads) payload.signal();
      assert.equal(syncobj.findFenceNow(1)?.isSignaled(), false, 'point 1 now also waits for the out-of-order payload');
      assert.equal(syncobj.query(), 0, 'a new context without predecessors in it reports 0, the kernel’s known quirk');
      assert.equal(syncobj.query({ lastSubmitted: true }), 3);
      late.signal();
      assert.equal(syncobj.findFenceNow(2)?.isSignaled(), true);
      assert.equal(syncobj.query(), 3);
    });

    it('later in-order points continue on the new context and are found normally', () => {
      const { syncobj, payloads } = timeline(3);
      const late = mockFence();
      syncobj.addPoint(late, 1);
      const five = mockFence();
      assert.deepEqual(syncobj.addPoint(five, 5), { outOfOrder: false });
      assert.equal(DmaFenceChain.toChain(syncobj.findFenceNow(5))?.fence, five);
      assert.equal(DmaFenceChain.toChain(syncobj.findFenceNow(4))?.fence, five, 'a gap resolves forward');
      assert.equal(
        DmaFenceChain.toChain(syncobj.findFenceNow(2))?.fence,
        late,
        'earlier points resolve to the out-of-order node',
      );
      late.signal();
      // The out-of-order node's payload is done: the walk goes past it to the old context.
      assert.equal(DmaFenceChain.toChain(syncobj.findFenceNow(2))?.fence, payloads[2]);
    });
  });

  describe('garbage collection', () => {
    it('the walk after each add collects signaled links behind the previous head', () => {
      const { syncobj, payloads } = timeline(10);
      for (const payload of payloads.slice(0, 9)) payload.signal();
      const before = DmaFenceChain.reachableStats(syncobj.fence!);
      assert.deepEqual(before, { nodes: 10, signaledNodes: 9 });
      syncobj.addPoint(mockFence(), 11);
      const after = DmaFenceChain.reachableStats(syncobj.fence!);
      assert.deepEqual(after, { nodes: 2, signaledNodes: 0 });
    });

    it('control: the same chain built without a syncobj keeps its signaled links', () => {
      let head: DmaFence | null = null;
      const payloads: DmaFence[] = [];
      for (let i = 1; i <= 10; i++) {
        payloads.push(mockFence());
        head = new DmaFenceChain(head, payloads[i - 1]!, i);
      }
      for (const payload of payloads.slice(0, 9)) payload.signal();
      head = new DmaFenceChain(head, mockFence(), 11);
      assert.equal(DmaFenceChain.reachableStats(head).signaledNodes, 9);
    });

    it('passes its gc policy to every chain node it creates', () => {
      const before = DmaFenceChain.gcQueueLength;
      using walked = new Syncobj();
      walked.addPoint(mockFence(), 1);
      walked.addPoint(mockFence(), 2);
      assert.equal(DmaFenceChain.gcQueueLength, before, "'walk' nodes never join the queue");
      using queued = new Syncobj({ gc: 'queue' });
      queued.addPoint(mockFence(), 1);
      queued.addPoint(mockFence(), 2);
      queued.signal(3);
      assert.equal(DmaFenceChain.gcQueueLength, before + 3);
    });
  });

  describe('query', () => {
    const N = 64;

    it('forward signalling: the last signaled point follows each signal', () => {
      const { syncobj, payloads } = timeline(N);
      for (let i = 0; i < N; i++) {
        payloads[i]!.signal();
        assert.equal(syncobj.query(), i + 1);
        assert.equal(syncobj.query({ lastSubmitted: true }), N);
      }
    });

    it('backward signalling: nothing counts until point 1 signals, then everything', () => {
      const { syncobj, payloads } = timeline(N);
      for (let i = N - 1; i > 0; i--) {
        payloads[i]!.signal();
        assert.equal(syncobj.query(), 0, `after signalling point ${i + 1}`);
      }
      payloads[0]!.signal();
      assert.equal(syncobj.query(), N);
    });

    it('random signalling: the longest fully signaled prefix', () => {
      const seed = testSeed();
      const { syncobj, payloads } = timeline(N);
      const order = shuffle([...payloads.keys()], seededRandom(seed));
      const done = new Array<boolean>(N).fill(false);
      for (const i of order) {
        payloads[i]!.signal();
        done[i] = true;
        let prefix = 0;
        while (prefix < N && done[prefix]) prefix++;
        assert.equal(syncobj.query(), prefix, `seed ${seed}: after signalling point ${i + 1}`);
      }
    });

    it('with gaps, reports submitted points only', () => {
      using syncobj = new Syncobj();
      const two = mockFence();
      syncobj.addPoint(two, 2);
      syncobj.addPoint(mockFence(), 4);
      assert.equal(syncobj.query(), 0);
      two.signal();
      assert.equal(syncobj.query(), 2);
    });
  });

  describe('waiting for submission', () => {
    it('findFence resolves on the later add that makes the point resolvable', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const { syncobj } = timeline(1);
      const controller = new AbortController();
      const pending = syncobj.findFence(3, { waitForSubmit: true, signal: controller.signal });
      assert.equal(syncobj.pendingSubmitWaiters, 1);
      assert.equal(clock.pendingTimers, 1);
      syncobj.addPoint(mockFence(), 2);
      assert.equal(await state(pending), 'pending');
      const five = mockFence();
      syncobj.addPoint(five, 5);
      assert.equal(DmaFenceChain.toChain(await pending)?.fence, five, 'a gap resolves forward');
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0, 'the timeout timer went with the waiter');
      controller.abort(new Error('too late'));
      await clock.tick(SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT);
    });

    it('late: resolves at once, registering nothing, when the point exists', async () => {
      const { syncobj } = timeline(2);
      const pending = syncobj.findFence(2, { waitForSubmit: true });
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(DmaFenceChain.toChain(await pending)?.seqno, 2);
    });

    it('point 0 waits for any fence; a reset does not wake it', async () => {
      using _c = useClock(new VirtualClock());
      using syncobj = new Syncobj();
      const pending = syncobj.findFence(0, { waitForSubmit: true });
      syncobj.reset();
      assert.equal(await state(pending), 'pending');
      const fence = mockFence();
      syncobj.replaceFence(fence);
      assert.equal(await pending, fence);
      assert.equal(syncobj.pendingSubmitWaiters, 0);
    });

    it('times out after 5000 ms by default with FenceTimeoutError (ETIME)', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const { syncobj } = timeline(1);
      const pending = syncobj.findFence(2, { waitForSubmit: true });
      const outcome = assert.rejects(
        pending,
        (err: unknown) =>
          err instanceof FenceTimeoutError &&
          err.code === 'ETIME' &&
          /point 2 was not submitted within 5000 ms/.test(err.message),
      );
      await clock.tick(SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT - 1);
      assert.equal(await state(pending), 'pending');
      await clock.tick(1);
      await outcome;
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0);
    });

    it('honours a custom timeout, and 0 fails at once', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const { syncobj } = timeline(1);
      await assert.rejects(syncobj.findFence(2, { waitForSubmit: true, timeout: 0 }), FenceTimeoutError);
      const pending = syncobj.findFence(2, { waitForSubmit: true, timeout: 10 });
      const outcome = assert.rejects(pending, FenceTimeoutError);
      await clock.tick(10);
      await outcome;
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0);
    });

    it('aborts with the signal’s reason, leaving no waiter, timer or listener', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const { syncobj } = timeline(1);
      const controller = new AbortController();
      const reason = new Error('user cancelled');
      const pending = syncobj.findFence(2, { waitForSubmit: true, signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(pending, (err: unknown) => err === reason);
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0);
      await assert.rejects(
        syncobj.findFence(2, { waitForSubmit: true, signal: controller.signal }),
        (err: unknown) => err === reason,
      );
      assert.ok(
        await syncobj.findFence(1, { waitForSubmit: true, signal: controller.signal }),
        'an existing point needs no waiting',
      );
      syncobj.addPoint(mockFence(), 2);
    });

    it('validates the timeout even when nothing would wait', async () => {
      const { syncobj } = timeline(1);
      await assert.rejects(syncobj.findFence(1, { timeout: -1 }), InvalidArgumentError);
      await assert.rejects(syncobj.findFence(-1), InvalidArgumentError);
    });
  });

  describe('wait', () => {
    it('resolves 0 at once for no entries', async () => {
      assert.equal(await Syncobj.wait([]), 0);
    });

    it('any: resolves with the first entry to signal and removes its callbacks', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const a = timeline(2);
      const b = timeline(2);
      const waitedOn = a.syncobj.findFenceNow(2)!;
      const pending = Syncobj.wait(
        [
          { syncobj: a.syncobj, point: 2 },
          { syncobj: b.syncobj, point: 1 },
        ],
        { timeout: 100 },
      );
      assert.equal(waitedOn.pendingCallbacks, 1);
      b.payloads[0]!.signal();
      assert.equal(await pending, 1);
      assert.equal(waitedOn.pendingCallbacks, 0, 'the wait removed its callback from the fence that did not signal');
      assert.equal(clock.pendingTimers, 0);
    });

    it('late any: the index of the first entry already signaled', async () => {
      const a = timeline(1);
      const b = timeline(1);
      b.payloads[0]!.signal();
      a.payloads[0]!.signal();
      assert.equal(
        await Syncobj.wait([
          { syncobj: a.syncobj, point: 1 },
          { syncobj: b.syncobj, point: 1 },
        ]),
        0,
      );
    });

    it('all: waits for every entry and reports the first one signaled up front, -1 when none was', async () => {
      const a = timeline(1);
      const b = timeline(1);
      const c = timeline(1);
      const entries = [
        { syncobj: a.syncobj, point: 1 },
        { syncobj: b.syncobj, point: 1 },
        { syncobj: c.syncobj, point: 1 },
      ];
      const none = Syncobj.wait(entries, { all: true });
      b.payloads[0]!.signal();
      const some = Syncobj.wait(entries, { all: true });
      a.payloads[0]!.signal();
      assert.equal(await state(none), 'pending');
      c.payloads[0]!.signal();
      assert.equal(await none, -1, 'the kernel leaves first_signaled at ~0u when nothing was signaled up front');
      assert.equal(await some, 1);
      assert.equal(await Syncobj.wait(entries, { all: true }), 0, 'late: all signaled up front');
    });

    it('a missing point without waitForSubmit or available is NotSubmittedError', async () => {
      const a = timeline(1);
      await assert.rejects(
        Syncobj.wait([
          { syncobj: a.syncobj, point: 1 },
          { syncobj: a.syncobj, point: 2 },
        ]),
        (err: unknown) => err instanceof NotSubmittedError && /entry 1/.test(err.message),
      );
      await assert.rejects(Syncobj.wait([{ syncobj: new Syncobj() }]), NotSubmittedError);
    });

    it('waitForSubmit: waits for the point to appear, then to signal', async () => {
      const a = timeline(1);
      const pending = Syncobj.wait([{ syncobj: a.syncobj, point: 2 }], { waitForSubmit: true });
      assert.equal(a.syncobj.pendingSubmitWaiters, 1);
      const two = mockFence();
      a.syncobj.addPoint(two, 2);
      assert.equal(a.syncobj.pendingSubmitWaiters, 0);
      assert.equal(await state(pending), 'pending');
      a.payloads[0]!.signal();
      two.signal();
      assert.equal(await pending, 0);
      assert.equal(two.pendingCallbacks, 0);
    });

    it('available: resolves once the points exist, without waiting for them to signal', async () => {
      const a = timeline(1);
      const b = timeline(1);
      const pending = Syncobj.wait(
        [
          { syncobj: a.syncobj, point: 2 },
          { syncobj: b.syncobj, point: 3 },
        ],
        { available: true, all: true },
      );
      a.syncobj.addPoint(mockFence(), 2);
      assert.equal(await state(pending), 'pending');
      b.syncobj.addPoint(mockFence(), 3);
      assert.equal(await pending, -1);
      assert.equal(a.syncobj.findFenceNow(2)?.isSignaled(), false);
      assert.equal(a.syncobj.pendingSubmitWaiters + b.syncobj.pendingSubmitWaiters, 0);
      assert.equal(
        await Syncobj.wait([{ syncobj: b.syncobj, point: 3 }], { available: true }),
        0,
        'late: already available',
      );
    });

    it('deadline: every fence waited on gets the hint, including one submitted later', async () => {
      const seen: number[] = [];
      const ops: DmaFenceOps = {
        getDriverName: () => 'mock',
        getTimelineName: () => 'deadline',
        setDeadline: (_f, deadline) => void seen.push(deadline),
      };
      using a = new Syncobj({ fence: new DmaFence(ops, fenceContextAlloc(), 1) });
      using b = new Syncobj();
      const pending = Syncobj.wait([{ syncobj: a }, { syncobj: b, point: 1 }], {
        all: true,
        waitForSubmit: true,
        deadline: 42,
      });
      assert.deepEqual(seen, [42]);
      const late = new DmaFence(ops, fenceContextAlloc(), 1);
      b.addPoint(late, 1);
      assert.deepEqual(seen, [42, 42]);
      a.fence!.signal();
      late.signal();
      assert.equal(await pending, -1);
    });

    it('times out with FenceTimeoutError naming what is pending, and cleans up', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const a = timeline(1);
      const b = timeline(1);
      const pending = Syncobj.wait(
        [
          { syncobj: a.syncobj, point: 1 },
          { syncobj: b.syncobj, point: 2 },
        ],
        { all: true, waitForSubmit: true, timeout: 50 },
      );
      const outcome = assert.rejects(
        pending,
        (err: unknown) =>
          err instanceof FenceTimeoutError &&
          /point 1 \(unsignaled\)/.test(err.message) &&
          /point 2 \(not submitted\)/.test(err.message),
      );
      await clock.tick(50);
      await outcome;
      assert.equal(a.syncobj.findFenceNow(1)!.pendingCallbacks, 0);
      assert.equal(b.syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0);
    });

    it('timeout 0 polls: FenceTimeoutError when pending, the index when signaled', async () => {
      const a = timeline(1);
      await assert.rejects(Syncobj.wait([{ syncobj: a.syncobj, point: 1 }], { timeout: 0 }), FenceTimeoutError);
      assert.equal(a.syncobj.findFenceNow(1)!.pendingCallbacks, 0);
      a.payloads[0]!.signal();
      assert.equal(await Syncobj.wait([{ syncobj: a.syncobj, point: 1 }], { timeout: 0 }), 0);
    });

    it('aborts with the signal’s reason, leaving no waiter, callback, timer or listener', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const a = timeline(1);
      const b = timeline(1);
      const controller = new AbortController();
      const pending = Syncobj.wait(
        [
          { syncobj: a.syncobj, point: 1 },
          { syncobj: b.syncobj, point: 2 },
        ],
        { waitForSubmit: true, timeout: 1000, signal: controller.signal },
      );
      controller.abort('stop');
      await assert.rejects(pending, (err: unknown) => err === 'stop');
      assert.equal(a.syncobj.findFenceNow(1)!.pendingCallbacks, 0);
      assert.equal(b.syncobj.pendingSubmitWaiters, 0);
      assert.equal(clock.pendingTimers, 0);
      await assert.rejects(
        Syncobj.wait([{ syncobj: a.syncobj, point: 1 }], { signal: controller.signal }),
        (err: unknown) => err === 'stop',
      );
    });

    it('a chain whose payload signals resolves the wait (the chain node signals through its callbacks)', async () => {
      const a = timeline(3);
      const pending = Syncobj.wait([{ syncobj: a.syncobj, point: 3 }]);
      a.payloads[2]!.signal();
      a.payloads[1]!.signal();
      assert.equal(await state(pending), 'pending');
      a.payloads[0]!.signal();
      assert.equal(await pending, 0);
    });

    it('rejects bad entries and options', async () => {
      await assert.rejects(Syncobj.wait([{ syncobj: {} as Syncobj }]), InvalidArgumentError);
      await assert.rejects(Syncobj.wait([{ syncobj: new Syncobj(), point: -1 }]), InvalidArgumentError);
      await assert.rejects(Syncobj.wait([], { timeout: -5 }), InvalidArgumentError);
      await assert.rejects(Syncobj.wait([], { deadline: Number.NaN }), InvalidArgumentError);
    });
  });

  describe('transfer', () => {
    it('to a timeline point flattens the source chain into one array payload', () => {
      const src = timeline(2);
      using dst = new Syncobj();
      Syncobj.transfer(dst, 7, src.syncobj, 2);
      const head = DmaFenceChain.toChain(dst.fence)!;
      assert.equal(head.seqno, 7);
      const payload = DmaFenceArray.toArray(head.fence);
      assert.ok(payload, 'two pending points on different timelines merge into an array');
      assert.deepEqual(new Set(payload.fences), new Set(src.payloads));
      src.payloads[1]!.signal();
      assert.equal(dst.findFenceNow(7)?.isSignaled(), false);
      src.payloads[0]!.signal();
      assert.equal(dst.findFenceNow(7)?.isSignaled(), true);
    });

    it('to a timeline point takes an array payload apart and keeps one fence when only one is pending', () => {
      const a = mockFence();
      const b = mockFence();
      using src = new Syncobj();
      src.addPoint(new DmaFenceArray([a, b], fenceContextAlloc(), 1), 1);
      a.signal();
      using dst = new Syncobj();
      Syncobj.transfer(dst, 1, src, 1);
      assert.equal(DmaFenceChain.toChain(dst.fence)?.fence, b);
    });

    it('late: a fully signaled source becomes a signaled payload', () => {
      const src = timeline(2);
      for (const payload of src.payloads) payload.signal();
      using dst = new Syncobj();
      Syncobj.transfer(dst, 3, src.syncobj, 2);
      assert.equal(dst.findFenceNow(3)?.isSignaled(), true);
      assert.ok(!(DmaFenceChain.toChain(dst.fence)?.fence instanceof DmaFenceChain));
    });

    it('to point 0 replaces the destination fence with the source fence as it is', () => {
      const src = timeline(2);
      using dst = new Syncobj({ fence: mockFence() });
      Syncobj.transfer(dst, 0, src.syncobj, 2);
      assert.equal(dst.fence, src.syncobj.findFenceNow(2));
      assert.ok(dst.fence instanceof DmaFenceChain);
      assert.deepEqual(new Set(unwrap(dst.fence)), new Set(src.payloads));
    });

    it('from a binary source to a timeline point', () => {
      const fence = mockFence();
      using src = new Syncobj({ fence });
      const dst = timeline(1);
      Syncobj.transfer(dst.syncobj, 2, src, 0);
      assert.equal(DmaFenceChain.toChain(dst.syncobj.fence)?.fence, fence);
    });

    it('a missing source point is NotSubmittedError and leaves the destination unchanged', () => {
      const src = timeline(1);
      const dst = timeline(1);
      const before = dst.syncobj.fence;
      assert.throws(() => Syncobj.transfer(dst.syncobj, 2, src.syncobj, 2), NotSubmittedError);
      assert.equal(dst.syncobj.fence, before);
    });
  });

  describe('dispose', () => {
    it('rejects pending submit-waiters with ECANCELED, drops the fence, and is idempotent', async () => {
      const { syncobj } = timeline(1);
      const find = syncobj.findFence(5, { waitForSubmit: true, timeout: Infinity });
      const other = timeline(1);
      const wait = Syncobj.wait(
        [
          { syncobj: other.syncobj, point: 1 },
          { syncobj, point: 4 },
        ],
        { all: true, waitForSubmit: true },
      );
      assert.equal(syncobj.pendingSubmitWaiters, 2);
      syncobj[Symbol.dispose]();
      const cancelled = (err: unknown): boolean =>
        err instanceof DmaBufError && !(err instanceof BugError) && err.code === 'ECANCELED';
      await assert.rejects(find, cancelled);
      await assert.rejects(wait, cancelled);
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      assert.equal(
        other.syncobj.findFenceNow(1)!.pendingCallbacks,
        0,
        'the rejected wait removed its callbacks on other syncobjs too',
      );
      assert.equal(syncobj.fence, null);
      assert.ok(syncobj.disposed);
      syncobj[Symbol.dispose]();
      assert.match(syncobj.describe(), /disposed/);
    });

    it('late: using a disposed syncobj is a BugError', async () => {
      const syncobj = new Syncobj();
      syncobj[Symbol.dispose]();
      assert.throws(() => syncobj.addPoint(mockFence(), 1), BugError);
      assert.throws(() => syncobj.replaceFence(null), BugError);
      assert.throws(() => syncobj.query(), BugError);
      await assert.rejects(syncobj.findFence(0), BugError);
      await assert.rejects(Syncobj.wait([{ syncobj }]), BugError);
    });
  });
});
