/**
 * Executable specification of waiting on fences (src/fence/dma-fence.ts): `wait()` and
 * `DmaFence.waitAny()` with timeouts on a virtual clock and abort signals, each outcome checked
 * for leftovers (callbacks, timers, abort listeners).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { FenceTimeoutError, InvalidArgumentError } from '../../src/base/errors.js';
import { mockFence } from '../helpers/mock-fence.js';
import { abortListeners, pending, spyFence } from '../helpers/fence-spies.js';

describe('DmaFence waits', () => {
  it('wait() without limits enables signaling and resolves true on signal', async () => {
    const { spy, f } = spyFence();
    const p = f.wait();
    assert.deepEqual([spy.enableCalls, f.pendingCallbacks], [1, 1]);
    f.signal();
    assert.equal(await p, true);
  });

  it('late: wait on a signaled fence returns the same resolved promise every time', async () => {
    const f = mockFence();
    f.signal();
    const p = f.wait();
    assert.equal(f.wait({ timeout: 5 }), p);
    assert.notEqual(mockFence().wait({ timeout: 0 }), p);
    assert.equal(await p, true);
    assert.equal(f.pendingCallbacks, 0);
  });

  it('wait with a timeout resolves false at the due time, leaving no timer and no callback', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const f = mockFence();
    let result: boolean | undefined;
    void f.wait({ timeout: 10 }).then((r) => (result = r));
    assert.deepEqual([f.pendingCallbacks, clock.pendingTimers], [1, 1]);
    await clock.tick(9);
    assert.equal(result, undefined, 'timed out early');
    await clock.tick(1);
    assert.deepEqual([result, clock.pendingTimers, f.pendingCallbacks], [false, 0, 0]);
    assert.equal(f.signal(), true, 'fence unusable after a timed-out wait');
  });

  it('late: a signal before the timeout resolves true and clears the timer and the abort listener', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const f = mockFence();
    const controller = new AbortController();
    const p = f.wait({ timeout: 10, signal: controller.signal });
    assert.equal(abortListeners(controller.signal), 1);
    await clock.tick(5);
    f.signal();
    assert.equal(await p, true);
    assert.deepEqual([clock.pendingTimers, abortListeners(controller.signal)], [0, 0]);
    controller.abort();
  });

  it('abort rejects with signal.reason (the same object) and leaves no callback, timer or listener', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const f = mockFence();
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const p = f.wait({ timeout: 100, signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(p, (err: unknown) => err === reason);
    assert.deepEqual([f.pendingCallbacks, clock.pendingTimers, abortListeners(controller.signal)], [0, 0, 0]);
    assert.equal(f.signal(), true);
  });

  it('an already-aborted signal rejects at once with its reason, enabling and adding nothing', async () => {
    const { spy, f } = spyFence();
    const signal = AbortSignal.abort();
    await assert.rejects(f.wait({ signal }), (err: unknown) => err === signal.reason);
    assert.deepEqual([spy.enableCalls, f.pendingCallbacks, abortListeners(signal)], [0, 0, 0]);
  });

  it('late: a signaled fence wins over an already-aborted signal', async () => {
    const f = mockFence();
    f.signal();
    assert.equal(await f.wait({ signal: AbortSignal.abort() }), true);
  });

  it('waitAny returns the index of the fence that signaled and removes its callbacks from every fence', async () => {
    const fences = [mockFence(), mockFence(), mockFence()];
    const p = DmaFence.waitAny(fences);
    assert.deepEqual(
      fences.map((f) => f.signalingEnabled),
      [true, true, true],
    );
    assert.deepEqual(pending(fences), [1, 1, 1]);
    fences[2]!.signal();
    assert.equal(await p, 2);
    assert.deepEqual(pending(fences), [0, 0, 0]);
  });

  it('late: waitAny on already-signaled fences returns the first signaled index in array order', async () => {
    const fences = [mockFence(), mockFence(), mockFence()];
    fences[2]!.signal();
    fences[1]!.signal();
    assert.equal(await DmaFence.waitAny(fences), 1);
    assert.equal(await DmaFence.waitAny(fences, { timeout: 0 }), 1);
    assert.equal(fences[0]!.pendingCallbacks, 0);
  });

  it('waitAny reports the lowest signaled index when a callback signals an earlier fence first', async () => {
    const fences = [mockFence(), mockFence()];
    fences[1]!.addCallback(() => fences[0]!.signal());
    const p = DmaFence.waitAny(fences);
    fences[1]!.signal();
    assert.equal(await p, 0);
  });

  it('waitAny times out with FenceTimeoutError, leaving no callback or timer; timeout 0 polls', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const fences = [mockFence(), mockFence()];
    await assert.rejects(DmaFence.waitAny(fences, { timeout: 0 }), FenceTimeoutError);
    assert.deepEqual([clock.pendingTimers, ...pending(fences)], [0, 0, 0]);
    const rejected = assert.rejects(DmaFence.waitAny(fences, { timeout: 5 }), (err: unknown) => {
      assert.ok(err instanceof FenceTimeoutError, String(err));
      assert.match(err.message, /none of 2 fence\(s\) signaled within 5 ms/);
      return true;
    });
    await clock.tick(5);
    await rejected;
    assert.deepEqual([clock.pendingTimers, ...pending(fences)], [0, 0, 0]);
  });

  it('waitAny resolves the index of a fence whose enableSignaling finds it done, and cleans up', async () => {
    const other = mockFence();
    const { f } = spyFence({ enableResult: false, withSignaled: false });
    assert.equal(await DmaFence.waitAny([other, f]), 1);
    assert.equal(other.pendingCallbacks, 0);
  });

  it('waitAny rejects InvalidArgumentError for an empty list and signal.reason on abort, cleaning up', async () => {
    await assert.rejects(DmaFence.waitAny([]), InvalidArgumentError);
    const fences = [mockFence(), mockFence()];
    const controller = new AbortController();
    const p = DmaFence.waitAny(fences, { signal: controller.signal });
    controller.abort();
    await assert.rejects(p, (err: unknown) => err === controller.signal.reason);
    assert.deepEqual([abortListeners(controller.signal), ...pending(fences)], [0, 0, 0]);
    await assert.rejects(
      DmaFence.waitAny(fences, { signal: controller.signal }),
      (err: unknown) => err === controller.signal.reason,
    );
  });
});
