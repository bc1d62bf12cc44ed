/**
 * Executable specification of src/fence/dma-fence.ts: the port of the kernel's st-dma-fence
 * self-test ([K] case names and sizes), then behaviour sentences each paired with its late case
 * (after signal), then bad input, where every typed error must leave the fence usable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DmaFence,
  fenceContextAlloc,
  seqnoIsLater,
  type DmaFenceOps,
  type FenceCallback,
} from '../../src/fence/dma-fence.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { BugError, DmaBufError, FenceTimeoutError, InvalidArgumentError } from '../../src/base/errors.js';
import { mockFence, mockOps, seededRandom, testSeed } from '../helpers/mock-fence.js';
import { captureMicrotasks, firstContext, spyFence } from '../helpers/fence-spies.js';

describe('st-dma-fence', () => {
  it('test_sanitycheck', () => {
    const f = mockFence();
    f.enableSwSignaling();
    assert.equal(f.signal(), true);
  });

  it('test_signaling', () => {
    const f = mockFence();
    f.enableSwSignaling();
    assert.equal(f.isSignaled(), false, 'a new fence must start pending');
    assert.equal(f.signal(), true, 'the first signal must report that it did the signalling');
    assert.equal(f.isSignaled(), true, 'isSignaled must see the signal');
    assert.equal(f.signaledFlag, true, 'the signaled flag must be set');
    assert.equal(f.signal(), false, 'a second signal must report the fence as already done');
    // [K] expects ops to be detached on signal; here the names switch to the detached ones.
    assert.equal(f.driverName, 'detached-driver');
    assert.equal(f.timelineName, 'signaled-timeline');
  });

  it('test_add_callback', () => {
    const f = mockFence();
    let seen = false;
    assert.equal(
      f.addCallback(() => (seen = true)),
      true,
      'adding to a pending fence must succeed',
    );
    f.signal();
    assert.equal(seen, true, 'signal must run the callback before returning');
  });

  it('test_late_add_callback', () => {
    const f = mockFence();
    f.enableSwSignaling();
    f.signal();
    let seen = false;
    assert.equal(
      f.addCallback(() => (seen = true)),
      false,
      'adding to a signaled fence must report false',
    );
    f.signal();
    assert.equal(seen, false, 'a refused callback must never run');
  });

  it('test_rm_callback', () => {
    const f = mockFence();
    let seen = false;
    const cb: FenceCallback = () => (seen = true);
    assert.equal(f.addCallback(cb), true);
    assert.equal(f.removeCallback(cb), true, 'removing a pending callback must succeed');
    f.signal();
    assert.equal(seen, false, 'a removed callback must not run');
  });

  it('test_late_rm_callback', () => {
    const f = mockFence();
    let seen = false;
    const cb: FenceCallback = () => (seen = true);
    assert.equal(f.addCallback(cb), true);
    f.signal();
    assert.equal(seen, true, 'signal must run the callback');
    assert.equal(f.removeCallback(cb), false, 'removing a callback that already ran must report false');
  });

  it('test_status', () => {
    const f = mockFence();
    f.enableSwSignaling();
    assert.equal(f.status, 'active');
    f.signal();
    assert.equal(f.status, 'signaled');
  });

  it('test_error', () => {
    const f = mockFence();
    f.enableSwSignaling();
    f.setError('EIO');
    assert.equal(f.status, 'active', 'an error set before signal must not show as a status yet');
    f.signal();
    assert.equal(f.status, 'error');
    assert.ok(f.error instanceof DmaBufError);
    assert.equal(f.error.code, 'EIO');
    assert.equal(f.error.errno, -5);
  });

  it('test_wait', async () => {
    const f = mockFence();
    f.enableSwSignaling();
    assert.equal(await f.wait({ timeout: 0 }), false, 'a poll of a pending fence must report false');
    f.signal();
    assert.equal(await f.wait({ timeout: 0 }), true, 'a poll of a signaled fence must report true');
  });

  it('test_wait_timeout', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const f = mockFence();
    f.enableSwSignaling();
    const first = f.wait({ timeout: 1 });
    await clock.tick(1);
    assert.equal(await first, false, 'nothing signals the fence, so the wait must time out');
    clock.setTimer(1, () => f.signal());
    const second = f.wait({ timeout: 1000 });
    await clock.tick(1);
    assert.equal(await second, true, 'the timer signalled the fence within the wait');
    assert.equal(clock.pendingTimers, 0, 'the wait left its timer armed');
  });

  it('test_stub', () => {
    const STUBS = 64;
    const stubs = Array.from({ length: STUBS }, () => DmaFence.getStub());
    for (const [i, stub] of stubs.entries()) assert.equal(stub.isSignaled(), true, `stub ${i} is pending`);
  });

  /* The race: two async tasks signal their own fence and hook onto each other's, crosswise. */
  it('test_race_signal_callback', async () => {
    const ITERATIONS = 1000; // per task and pass; the kernel runs for 50 ms instead
    const seed = testSeed();
    const random = seededRandom(seed);
    const yieldSome = async (): Promise<void> => {
      const r = random();
      if (r < 0.4) return;
      if (r < 0.8) await Promise.resolve();
      else await new Promise((resolve) => setImmediate(resolve));
    };
    for (const before of [false, true]) {
      const context = fenceContextAlloc();
      const slots: (DmaFence | null)[] = [null, null];
      const finished = [false, false];
      const checked: [number, number] = [0, 0];
      const task = async (id: 0 | 1): Promise<void> => {
        const other = 1 - id;
        let f1: DmaFence | null = null;
        try {
          for (let i = 0; i < ITERATIONS; i++) {
            f1 = new DmaFence(mockOps, context, 2 * i + id);
            f1.enableSwSignaling();
            slots[id] = f1;
            await yieldSome();
            let f2: DmaFence | null;
            while ((f2 = slots[other]!) === null) {
              if (finished[other]) return;
              await yieldSome();
              await Promise.resolve();
            }
            if (before) f1.signal();
            await yieldSome();
            let seen = false;
            // false: f2 signaled already, which counts as seen (the kernel's "miss").
            if (f2.addCallback(() => (seen = true))) await yieldSome();
            else seen = true;
            if (!before) f1.signal();
            if (!seen) await f2.wait();
            assert.ok(seen, `callback lost: task ${id}, before=${before}, iteration ${i}, seed ${seed}`);
            checked[id]++;
            slots[id] = null;
          }
        } finally {
          finished[id] = true;
          f1?.signal(); // a failed task must not leave the other one waiting
        }
      };
      await Promise.all([task(0), task(1)]);
      // A task may run ahead on a fence the other has not unpublished yet, so only one must finish.
      const message = `iterations checked ${checked.join('/')} (before=${before}, seed ${seed})`;
      assert.ok(checked.includes(ITERATIONS) && !checked.includes(0), message);
    }
  });
});

describe('DmaFence', () => {
  it('sanity: a new fence is active, not enabled, not a container, 32-bit', () => {
    const context = fenceContextAlloc();
    const f = new DmaFence(mockOps, context, 7);
    assert.deepEqual(
      [f.ops, f.context, f.seqno, f.status, f.error, f.timestamp],
      [mockOps, context, 7, 'active', undefined, undefined],
    );
    assert.deepEqual(
      [f.signalingEnabled, f.isContainer, f.isSeqno64, f.pendingCallbacks, f.driverName],
      [false, false, false, 0, 'mock'],
    );
    assert.equal(new DmaFence(mockOps, context, 8, { seqno64: true }).isSeqno64, true);
  });

  it('callbacks run synchronously inside signal, in registration order, with the fence', () => {
    const f = mockFence();
    const order: number[] = [];
    for (let i = 0; i < 5; i++) f.addCallback((fence) => (assert.equal(fence, f), order.push(i)));
    assert.equal(f.pendingCallbacks, 5);
    f.signal();
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(f.pendingCallbacks, 0);
  });

  it('late: a second signal returns false, keeps the first timestamp and runs no callback again', () => {
    const f = mockFence();
    let runs = 0;
    f.addCallback(() => runs++);
    f.signal(5);
    assert.equal(f.signal(9), false);
    assert.equal(runs, 1);
    assert.equal(f.timestamp, 5);
  });

  it('a throwing callback does not stop later ones; its error is re-raised on a microtask', () => {
    const f = mockFence();
    const boom = new Error('boom');
    const ran: string[] = [];
    f.addCallback(() => ran.push('a'));
    f.addCallback(() => {
      ran.push('b');
      throw boom;
    });
    f.addCallback(() => ran.push('c'));
    const { result, queued } = captureMicrotasks(() => f.signal());
    assert.equal(result, true);
    assert.deepEqual(ran, ['a', 'b', 'c']);
    assert.equal(queued.length, 1);
    assert.throws(
      () => queued[0]!(),
      (err: unknown) => err === boom,
    );
    assert.equal(f.status, 'signaled', 'a callback error is not the fence error');
  });

  it('ops.enableSignaling runs at most once, on the first callback, wait or explicit enable', async () => {
    const { spy, f, make } = spyFence();
    assert.equal(spy.enableCalls, 0);
    f.addCallback(() => {});
    assert.deepEqual([spy.enableCalls, f.signalingEnabled], [1, true]);
    f.enableSwSignaling();
    assert.equal(await f.wait({ timeout: 0 }), false);
    await assert.rejects(DmaFence.waitAny([f], { timeout: 0 }), FenceTimeoutError);
    f.addCallback(() => {});
    assert.equal(spy.enableCalls, 1);
    assert.equal(await make().wait({ timeout: 0 }), false);
    assert.equal(spy.enableCalls, 2, 'a wait must enable signaling');
  });

  it('late: enabling a signaled fence marks it enabled without calling ops.enableSignaling', () => {
    const { spy, f } = spyFence();
    f.signal();
    f.enableSwSignaling();
    assert.equal(
      f.addCallback(() => {}),
      false,
    );
    assert.deepEqual([spy.enableCalls, f.signalingEnabled], [0, true]);
  });

  it('enableSignaling returning false signals the fence: addCallback returns false, wait resolves true', async () => {
    const { f, make } = spyFence({ enableResult: false });
    let ran = false;
    assert.equal(
      f.addCallback(() => (ran = true)),
      false,
    );
    assert.deepEqual([ran, f.signaledFlag], [false, true]);
    assert.equal(await f.wait(), true);
    const g = make();
    assert.equal(await g.wait({ timeout: 0 }), true);
    assert.equal(g.signaledFlag, true);
  });

  it('enableSignaling may set an error before returning false; the fence then reports it', () => {
    const ops: DmaFenceOps = { ...mockOps, enableSignaling: (fence) => (fence.setError('ECANCELED'), false) };
    const f = new DmaFence(ops, fenceContextAlloc(), 1);
    f.enableSwSignaling();
    assert.equal(f.status, 'error');
    assert.equal((f.error as DmaBufError).code, 'ECANCELED');
  });

  it('isSignaled polls ops.signaled and, once it says done, signals the fence (callbacks run)', () => {
    const clock = new VirtualClock(40);
    using _c = useClock(clock);
    const { spy, f } = spyFence();
    let ran = 0;
    f.addCallback(() => ran++);
    assert.deepEqual([f.isSignaled(), ran], [false, 0]);
    spy.done = true;
    assert.deepEqual([f.isSignaled(), ran, f.signaledFlag, f.timestamp], [true, 1, true, 40]);
  });

  it('late: isSignaled on a signaled fence no longer polls ops.signaled', () => {
    const { spy, f } = spyFence();
    f.signal();
    assert.deepEqual([f.isSignaled(), f.status, spy.signaledCalls], [true, 'signaled', 0]);
  });

  it('isSignaled does not enable signaling', () => {
    const { spy, f } = spyFence();
    f.isSignaled();
    assert.deepEqual([f.signalingEnabled, spy.enableCalls], [false, 0]);
  });

  it('signaledFlag has no side effects (no poll, no signal); status polls', () => {
    const { spy, f } = spyFence();
    spy.done = true;
    assert.deepEqual([f.signaledFlag, spy.signaledCalls, f.timestamp], [false, 0, undefined]);
    assert.equal(f.status, 'signaled');
    assert.equal(f.signaledFlag, true);
  });

  it('removeCallback: true for a pending callback, false for one never added or already removed', () => {
    const f = mockFence();
    const a: FenceCallback = () => {};
    assert.equal(f.removeCallback(a), false);
    f.addCallback(a);
    assert.equal(
      f.removeCallback(() => {}),
      false,
    );
    assert.equal(f.removeCallback(a), true);
    assert.equal(f.removeCallback(a), false);
    assert.equal(f.pendingCallbacks, 0);
  });

  it('removeCallback removes one registration of a function added twice', () => {
    const f = mockFence();
    let runs = 0;
    const cb: FenceCallback = () => runs++;
    f.addCallback(cb);
    f.addCallback(() => {});
    f.addCallback(cb);
    assert.equal(f.removeCallback(cb), true);
    assert.equal(f.pendingCallbacks, 2);
    f.signal();
    assert.equal(runs, 1);
  });

  it('late: removeCallback after signal returns false', () => {
    const f = mockFence();
    const cb: FenceCallback = () => {};
    f.addCallback(cb);
    f.signal();
    assert.equal(f.removeCallback(cb), false);
  });

  it('late: removeCallback from an earlier callback inside signal returns false; the later one still runs', () => {
    const f = mockFence();
    let laterRan = false;
    let removed: boolean | undefined;
    const later: FenceCallback = () => (laterRan = true);
    f.addCallback(() => (removed = f.removeCallback(later)));
    f.addCallback(later);
    f.signal();
    assert.deepEqual([removed, laterRan], [false, true]);
  });

  it('late: addCallback from a callback during signal returns false and never calls back', () => {
    const f = mockFence();
    let added: boolean | undefined;
    let nestedRan = false;
    f.addCallback(() => (added = f.addCallback(() => (nestedRan = true))));
    f.signal();
    assert.deepEqual([added, nestedRan], [false, false]);
  });

  it('seqnos compare with 32-bit wrap-around unless the fence is 64-bit', () => {
    const context = fenceContextAlloc();
    const one = new DmaFence(mockOps, context, 1);
    const last32 = new DmaFence(mockOps, context, 0xffffffff);
    assert.equal(DmaFence.isLater(one, last32), true, '1 follows 0xffffffff after wrap-around');
    assert.equal(DmaFence.isLater(last32, one), false);
    const one64 = new DmaFence(mockOps, context, 1, { seqno64: true });
    const last64 = new DmaFence(mockOps, context, 0xffffffff, { seqno64: true });
    assert.equal(DmaFence.isLater(one64, last32), false, 'the width is taken from f1');
    assert.equal(DmaFence.isLater(last64, one), true);
    assert.equal(seqnoIsLater(2 ** 31, 0, false), false, 'exactly 2^31 apart is not later');
    assert.equal(seqnoIsLater(0, 2 ** 31, false), false);
    assert.equal(seqnoIsLater(2 ** 32 + 1, 1, false), false, 'equal low 32 bits');
    assert.equal(seqnoIsLater(2 ** 32 + 1, 1, true), true);
    assert.equal(seqnoIsLater(5, 5, true), false);
  });

  it('isLater, isLaterOrSame and later across contexts are BugErrors', () => {
    const a = mockFence();
    const b = mockFence();
    assert.throws(() => DmaFence.isLater(a, b), BugError);
    assert.throws(() => DmaFence.isLaterOrSame(a, b), BugError);
    assert.throws(() => DmaFence.later(a, b), BugError);
    assert.equal(a.signal(), true, 'fence unusable after the BugError');
  });

  it('isLaterOrSame: identity, or later; an equal seqno on another object is not enough', () => {
    const context = fenceContextAlloc();
    const [a, twin, b] = [3, 3, 4].map((seqno) => new DmaFence(mockOps, context, seqno)) as [
      DmaFence,
      DmaFence,
      DmaFence,
    ];
    assert.deepEqual(
      [
        DmaFence.isLaterOrSame(a, a),
        DmaFence.isLaterOrSame(a, twin),
        DmaFence.isLaterOrSame(b, a),
        DmaFence.isLaterOrSame(a, b),
      ],
      [true, false, true, false],
    );
  });

  it('later returns the later fence while it is pending, even when the earlier one signaled', () => {
    const context = fenceContextAlloc();
    const a = new DmaFence(mockOps, context, 3);
    const b = new DmaFence(mockOps, context, 4);
    assert.equal(DmaFence.later(a, b), b);
    assert.equal(DmaFence.later(b, a), b);
    a.signal();
    assert.equal(DmaFence.later(a, b), b);
  });

  it('late: later returns null once the later fence has signaled (polling ops.signaled)', () => {
    const { spy, ops } = spyFence();
    const context = fenceContextAlloc();
    const a = new DmaFence(mockOps, context, 3);
    const b = new DmaFence(ops, context, 4);
    spy.done = true;
    assert.equal(DmaFence.later(a, b), null);
    assert.equal(DmaFence.later(b, a), null);
    assert.equal(b.signaledFlag, true);
  });

  it('getStub returns one shared signaled fence on context 0, seqno 0', () => {
    const stub = DmaFence.getStub();
    assert.equal(DmaFence.getStub(), stub);
    assert.deepEqual([stub.signaledFlag, stub.context, stub.seqno, typeof stub.timestamp], [true, 0, 0, 'number']);
    assert.equal(stub.ops.getDriverName(stub), 'stub');
    assert.equal(stub.ops.getTimelineName(stub), 'stub');
    assert.equal(stub.driverName, 'detached-driver');
    assert.equal(stub.timelineName, 'signaled-timeline');
    assert.equal(
      stub.addCallback(() => assert.fail('the stub called back')),
      false,
    );
  });

  it('allocatePrivateStub returns a new signaled, enabled fence timestamped at ts (default now)', () => {
    const clock = new VirtualClock(77);
    using _c = useClock(clock);
    const stub = DmaFence.allocatePrivateStub(12.5);
    assert.notEqual(stub, DmaFence.getStub());
    assert.notEqual(DmaFence.allocatePrivateStub(), stub);
    assert.deepEqual([stub.timestamp, stub.signalingEnabled, stub.status, stub.context], [12.5, true, 'signaled', 0]);
    assert.equal(DmaFence.allocatePrivateStub().timestamp, 77);
  });

  it('timestamp is undefined before signal, then the given time or the clock time, fixed from then on', () => {
    const clock = new VirtualClock(100);
    using _c = useClock(clock);
    const f = mockFence();
    const g = mockFence();
    assert.equal(f.timestamp, undefined);
    clock.advance(23);
    f.signal();
    g.signal(7);
    clock.advance(10);
    assert.deepEqual([f.timestamp, g.timestamp], [123, 7]);
  });

  it('fenceContextAlloc returns consecutive contexts, never 0', () => {
    assert.ok(firstContext > 0, 'context 0 is reserved for stubs');
    const first = fenceContextAlloc(3);
    assert.equal(fenceContextAlloc(), first + 3);
    assert.equal(fenceContextAlloc(1), first + 4);
  });

  it('fenceContextAlloc: a count that is not a positive integer is InvalidArgumentError, allocates nothing', () => {
    const before = fenceContextAlloc();
    for (const count of [0, -1, 1.5, NaN, Infinity])
      assert.throws(() => fenceContextAlloc(count), InvalidArgumentError, String(count));
    assert.equal(fenceContextAlloc(), before + 1);
  });

  it('describe() gives context:seqno, timeline, driver and state; the names drop once signaled', () => {
    const { f } = spyFence();
    const head = `${f.context}:1`;
    assert.equal(f.describe(), `${head} spy-timeline spy-driver active`);
    assert.equal(String(f), `DmaFence(${head} spy-timeline spy-driver active)`);
    f.setError(new Error('gpu hang'));
    f.signal();
    assert.equal(f.describe(), `${head} error (gpu hang)`);
    const ok = mockFence();
    ok.signal();
    assert.equal(ok.describe(), `${ok.context}:1 signaled`);
  });

  it('setDeadline passes each deadline to ops.setDeadline while pending; without the op it does nothing', () => {
    const { spy, f } = spyFence();
    f.setDeadline(30);
    f.setDeadline(-5);
    assert.deepEqual(spy.deadlines, [30, -5]);
    assert.doesNotThrow(() => mockFence().setDeadline(1));
  });

  it('late: setDeadline after signal, or once ops.signaled says done, does not call ops.setDeadline', () => {
    const { spy, f, make } = spyFence();
    f.signal();
    f.setDeadline(30);
    const g = make();
    spy.done = true;
    g.setDeadline(30);
    assert.deepEqual([spy.deadlines, g.signaledFlag], [[], true]);
  });
});

describe('DmaFence without an ops table (issue 10 front door)', () => {
  it('sanity: a name is enough; the fence gets a timeline of its own at seqno 1', async () => {
    const upload = new DmaFence('upload');
    assert.deepEqual([upload.timelineName, upload.driverName, upload.seqno], ['upload', 'dmabuf', 1]);
    assert.notEqual(upload.context, new DmaFence('upload').context, 'each named fence is its own timeline');
    assert.match(upload.describe(), /^\d+:1 upload dmabuf active$/);
    queueMicrotask(() => upload.signal());
    assert.equal(await upload.wait(), true);
  });

  it('init places it on a timeline and sets the driver name and flags', () => {
    const ring = fenceContextAlloc();
    const a = new DmaFence('ring0', { context: ring, seqno: 7, driver: 'gpu' });
    const b = new DmaFence('ring0', { context: ring, seqno: 8, seqno64: true, longRunning: true });
    assert.deepEqual([a.context, a.seqno, a.driverName], [ring, 7, 'gpu']);
    assert.equal(DmaFence.isLater(b, a), true);
    assert.deepEqual([b.isSeqno64, b.isLongRunning], [true, true]);
    assert.equal(new DmaFence().timelineName, 'fence', 'no name at all is allowed too');
  });

  it('late: named fences share one ops table per name, so making many costs no table each', () => {
    assert.equal(new DmaFence('shared').ops, new DmaFence('shared').ops);
  });

  it('bad init options and ops-style extra arguments are InvalidArgumentErrors', () => {
    assert.throws(() => new DmaFence('x', { seqno: -1 }), InvalidArgumentError);
    assert.throws(() => new DmaFence('x', { bogus: 1 } as never), /unknown option "bogus"/);
    assert.throws(() => new DmaFence('x' as never, 5, 1), InvalidArgumentError);
    assert.throws(() => new DmaFence(42 as never), InvalidArgumentError);
  });
});

describe('DmaFence bad input', () => {
  /** Asserts that `f` still takes a callback and signals it. */
  const usable = (f: DmaFence = mockFence()): void => {
    let ran = false;
    assert.equal(
      f.addCallback(() => (ran = true)),
      true,
    );
    assert.deepEqual([f.signal(), ran], [true, true]);
  };

  it('ops without the name getters, or with a non-function optional op, are InvalidArgumentErrors', () => {
    const bad: unknown[] = [
      null,
      undefined,
      'ops',
      {},
      { getDriverName: () => 'x' },
      { getTimelineName: () => 'x' },
      { getDriverName: 'x', getTimelineName: () => 'x' },
      { ...mockOps, enableSignaling: true },
      { ...mockOps, signaled: 1 },
      { ...mockOps, setDeadline: {} },
    ];
    for (const ops of bad) {
      assert.throws(
        () => new DmaFence(ops as DmaFenceOps, fenceContextAlloc(), 1),
        InvalidArgumentError,
        JSON.stringify(ops),
      );
    }
    usable(new DmaFence({ ...mockOps, enableSignaling: undefined } as unknown as DmaFenceOps, fenceContextAlloc(), 1));
  });

  it('a context or seqno that is negative, fractional, NaN, too large or not a number is InvalidArgumentError', () => {
    const context = fenceContextAlloc();
    for (const value of [-1, 0.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 1, '1']) {
      assert.throws(() => new DmaFence(mockOps, value as number, 1), InvalidArgumentError, `context ${String(value)}`);
      assert.throws(
        () => new DmaFence(mockOps, context, value as number),
        InvalidArgumentError,
        `seqno ${String(value)}`,
      );
    }
    usable(new DmaFence(mockOps, context, Number.MAX_SAFE_INTEGER));
  });

  it('setError after signal is a BugError and leaves the error and status unchanged', () => {
    const f = mockFence();
    f.signal();
    assert.throws(() => f.setError('EIO'), BugError);
    assert.deepEqual([f.error, f.status], [undefined, 'signaled']);
    const g = mockFence();
    const first = new Error('first');
    g.setError(first);
    g.signal();
    assert.throws(() => g.setError(new Error('second')), BugError);
    assert.equal(g.error, first);
  });

  it('setError with something that is not an Error or an errno name is InvalidArgumentError', () => {
    const f = mockFence();
    for (const value of [42, null, undefined, { message: 'not an error' }]) {
      assert.throws(() => f.setError(value as Error), InvalidArgumentError, String(value));
    }
    assert.equal(f.error, undefined);
    usable(f);
    assert.equal(f.status, 'signaled');
  });

  it('setError with an unknown errno name is InvalidArgumentError', () => {
    const f = mockFence();
    assert.throws(() => f.setError('EBOGUS' as 'EIO'), InvalidArgumentError);
    assert.equal(f.error, undefined);
  });

  it('wait with a negative or NaN timeout rejects with InvalidArgumentError and adds nothing', async () => {
    const f = mockFence();
    for (const timeout of [-1, NaN, -Infinity, '10']) {
      await assert.rejects(f.wait({ timeout: timeout as number }), InvalidArgumentError, String(timeout));
    }
    const signaled = mockFence();
    signaled.signal();
    await assert.rejects(signaled.wait({ timeout: -1 }), InvalidArgumentError, 'checked even when already signaled');
    assert.deepEqual([f.pendingCallbacks, f.signalingEnabled], [0, false]);
    assert.equal(await f.wait({ timeout: 0 }), false);
    usable(f);
  });

  it('waitAny with a negative timeout rejects with InvalidArgumentError, like wait', async () => {
    const f = mockFence();
    await assert.rejects(DmaFence.waitAny([f], { timeout: -1 }), InvalidArgumentError);
    assert.equal(f.pendingCallbacks, 0);
    usable(f);
  });

  it('addCallback with a non-function is InvalidArgumentError and does not enable signaling', () => {
    const { spy, f } = spyFence();
    for (const value of [null, undefined, 'cb', {}]) {
      assert.throws(() => f.addCallback(value as FenceCallback), InvalidArgumentError, String(value));
    }
    assert.deepEqual([f.pendingCallbacks, spy.enableCalls], [0, 0]);
    usable(f);
  });

  it('signal with a non-finite timestamp is InvalidArgumentError and leaves the fence pending', () => {
    const f = mockFence();
    for (const ts of [NaN, Infinity, -Infinity]) assert.throws(() => f.signal(ts), InvalidArgumentError, String(ts));
    assert.deepEqual([f.signaledFlag, f.timestamp], [false, undefined]);
    usable(f);
  });

  it('setDeadline with a non-finite deadline is InvalidArgumentError', () => {
    const { spy, f } = spyFence();
    for (const deadline of [NaN, Infinity])
      assert.throws(() => f.setDeadline(deadline), InvalidArgumentError, String(deadline));
    assert.deepEqual(spy.deadlines, []);
    usable(f);
  });
});
