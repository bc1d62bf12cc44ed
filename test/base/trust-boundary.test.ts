/**
 * Regression tests for issue 10's defects at the trust boundary (1, 2, 5 and 6): each case is the
 * issue's reproduction, written before the fix, and asserts that the call fails with a typed
 * error before any side effect and that the object stays usable.
 *
 * Defect 1: a `signal` option that is not an AbortSignal (the controller itself is the common
 * slip) was accepted far enough to register a waiter, callback or timer, then failed on
 * `addEventListener`; the cleanup later threw in unrelated code (a plain `signal()`, `unlock()`,
 * `addPoint()`). Defect 6: unchecked inputs reached raw TypeErrors or were silently accepted.
 * Defect 2 (two pending locks on one acquire context) is in test/locking/ww-mutex.test.ts and
 * defect 5 (a view kept after put) in test/heap/dma-heap.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { Syncobj } from '../../src/fence/syncobj.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { Mutex } from '../../src/locking/mutex.js';
import { WwAcquireCtx, WwClass, WwMutex } from '../../src/locking/ww-mutex.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { mockFence } from '../helpers/mock-fence.js';
import { abortListeners } from '../helpers/fence-spies.js';
import { nextTurn } from '../helpers/completion.js';

/** What a careless caller passes as `signal`: the controller, not its signal. */
const controller = new AbortController();
const notASignal = controller as unknown as AbortSignal;

/** Calls `fn`, which must fail (throw or reject) with an InvalidArgumentError; returns it. */
async function invalid(fn: () => unknown, what: string): Promise<InvalidArgumentError> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof InvalidArgumentError, `${what}: expected an InvalidArgumentError, got ${String(error)}`);
  return error;
}

describe('defect 1: a signal option that is not an AbortSignal', () => {
  it('sanity: a real AbortSignal is accepted and leaves nothing behind', async () => {
    const fence = mockFence();
    const abort = new AbortController();
    const wait = fence.wait({ signal: abort.signal });
    assert.equal(abortListeners(abort.signal), 1, 'the wait listens to its signal');
    fence.signal();
    assert.equal(await wait, true);
    assert.equal(abortListeners(abort.signal), 0, 'the listener is gone once the wait settled');
  });

  it('DmaFence.wait registers no callback, and a later signal() runs clean', async () => {
    const fence = mockFence();
    await invalid(() => fence.wait({ signal: notASignal }), 'wait');
    assert.equal(fence.pendingCallbacks, 0, 'no callback may stay on the fence');
    assert.equal(fence.signal(), true);
    await nextTurn(); // an error re-raised from a callback would surface here
  });

  it('DmaFence.wait with a timeout arms no timer', async () => {
    const fence = mockFence();
    await invalid(() => fence.wait({ timeout: 10, signal: notASignal }), 'wait with timeout');
    assert.equal(fence.pendingCallbacks, 0);
    fence.signal();
  });

  it('DmaFence.waitAny registers nothing on any fence', async () => {
    const fences = [mockFence(), mockFence()];
    await invalid(() => DmaFence.waitAny(fences, { signal: notASignal }), 'waitAny');
    assert.deepEqual(
      fences.map((f) => f.pendingCallbacks),
      [0, 0],
    );
    for (const f of fences) f.signal();
    await nextTurn();
  });

  it('SyncFile.wait registers nothing', async () => {
    const fence = mockFence();
    using file = new SyncFile(fence);
    await invalid(() => file.wait({ signal: notASignal }), 'SyncFile.wait');
    assert.equal(fence.pendingCallbacks, 0);
    fence.signal();
    await nextTurn();
  });

  it('Mutex.lock queues no waiter, and unlock() hands over to nobody', async () => {
    const mutex = new Mutex('trust-boundary');
    await mutex.lock();
    await invalid(() => mutex.lock({ signal: notASignal }), 'Mutex.lock');
    assert.equal(mutex.waiters, 0, 'no waiter may stay queued');
    mutex.unlock();
    assert.equal(mutex.isLocked, false, 'nobody may have been handed the mutex');
    await invalid(() => mutex.runExclusive(async () => 1, { signal: notASignal }), 'Mutex.runExclusive');
    assert.equal(mutex.isLocked, false);
  });

  it('WwMutex.lock with and without a context queues no waiter', async () => {
    const cls = new WwClass('trust-boundary-ww', 'wait-die');
    const mutex = new WwMutex(cls, 'm');
    await mutex.lock();
    const ctx = new WwAcquireCtx(cls);
    await invalid(() => mutex.lock(ctx, { signal: notASignal }), 'WwMutex.lock(ctx)');
    await invalid(() => mutex.lock(null, { signal: notASignal }), 'WwMutex.lock(null)');
    assert.equal(mutex.waiters, 0);
    mutex.unlock();
    assert.equal(mutex.isLocked, false);
    ctx.fini();
  });

  it('DmaResv.lock and wait leave nothing behind', async () => {
    const resv = new DmaResv();
    const fence = mockFence();
    await resv.lock();
    resv.reserveFences(1);
    resv.addFence(fence, DmaResvUsage.Write);
    await invalid(() => resv.lock(null, { signal: notASignal }), 'DmaResv.lock');
    assert.equal(resv.mutex.waiters, 0);
    resv.unlock();
    await invalid(() => resv.wait({ signal: notASignal }), 'DmaResv.wait');
    assert.equal(fence.pendingCallbacks, 0);
    fence.signal();
    await nextTurn();
  });

  it('Syncobj.findFence and Syncobj.wait leave no submit-waiter, and addPoint() runs clean', async () => {
    const syncobj = new Syncobj();
    await invalid(() => syncobj.findFence(1, { waitForSubmit: true, signal: notASignal }), 'Syncobj.findFence');
    await invalid(
      () => Syncobj.wait([{ syncobj, point: 1 }], { waitForSubmit: true, signal: notASignal }),
      'Syncobj.wait',
    );
    assert.equal(syncobj.pendingSubmitWaiters, 0);
    syncobj.addPoint(mockFence(), 1);
    await nextTurn();
  });

  it('DmaBuf.beginCpuAccess waits for nothing and opens no access', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const fence = mockFence();
    await buf.resv.lock();
    buf.resv.reserveFences(1);
    buf.resv.addFence(fence, DmaResvUsage.Write);
    buf.resv.unlock();
    await invalid(() => buf.beginCpuAccess({ write: true, signal: notASignal }), 'beginCpuAccess');
    assert.equal(buf.cpuAccessDepth, 0);
    assert.equal(fence.pendingCallbacks, 0);
    fence.signal();
    await nextTurn();
  });
});

describe('defect 6: unchecked inputs', () => {
  it('sanity: well-formed calls still work', async () => {
    const fence = mockFence();
    fence.signal();
    assert.equal(await fence.wait({ timeout: 0 }), true);
  });

  it('wait(null) is an InvalidArgumentError naming the options', async () => {
    const error = await invalid(() => mockFence().wait(null as never), 'wait(null)');
    assert.match(error.message, /options/);
  });

  it('waitAny([null]) and waitAny([f, 5]) name the bad member', async () => {
    const f = mockFence();
    assert.match((await invalid(() => DmaFence.waitAny([null as never]), 'waitAny([null])')).message, /fences\[0\]/);
    assert.match((await invalid(() => DmaFence.waitAny([f, 5 as never]), 'waitAny([f, 5])')).message, /fences\[1\]/);
    assert.equal(f.pendingCallbacks, 0, 'nothing was registered on the good member');
  });

  it('isLater(null, f) names its first argument', async () => {
    const error = await invalid(() => DmaFence.isLater(null as never, mockFence()), 'isLater');
    assert.match(error.message, /f1/);
  });

  it('lock({}) with something that is not an acquire context', async () => {
    const mutex = new WwMutex(new WwClass('trust-boundary-ctx', 'wait-die'), 'm');
    await invalid(() => mutex.lock({} as never), 'WwMutex.lock({})');
    await invalid(() => new DmaResv().lock({} as never), 'DmaResv.lock({})');
    assert.equal(mutex.isLocked, false);
  });

  it("new DmaResv('x') and new Syncobj('x') are refused, not silently accepted", async () => {
    await invalid(() => new DmaResv('x' as never), "new DmaResv('x')");
    await invalid(() => new Syncobj('x' as never), "new Syncobj('x')");
  });

  it('unknown or mistyped option names are refused', async () => {
    await invalid(() => new Syncobj({ signaled: 'yes' } as never), "new Syncobj({ signaled: 'yes' })");
    const syncobj = new Syncobj();
    await invalid(() => syncobj.query({ bogus: 1 } as never), 'query({ bogus: 1 })');
    assert.equal(syncobj.query(), 0, 'the syncobj is still usable');
  });

  it('the errors are DmaBufErrors with code EINVAL', async () => {
    const error = await invalid(() => mockFence().wait(null as never), 'wait(null)');
    assert.ok(error instanceof DmaBufError);
    assert.equal(error.code, 'EINVAL');
  });
});
