/**
 * Executable specification of src/base/waiter.ts: a promise that settles once, whichever of its
 * event, timer or abort comes first, and then removes the other two and runs its cleanup.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { Waiter } from '../../src/base/waiter.js';

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

describe('Waiter', () => {
  it('sanity: resolve settles the promise and runs the cleanup once', async () => {
    let cleanups = 0;
    const waiter = new Waiter<number>(() => cleanups++);
    assert.equal(waiter.settled, false);
    assert.equal(waiter.resolve(7), true);
    assert.equal(await waiter.promise, 7);
    assert.equal(cleanups, 1);
    assert.equal(waiter.settled, true);
  });

  it('late: a second resolve or reject does nothing and says so', async () => {
    let cleanups = 0;
    const waiter = new Waiter<number>(() => cleanups++);
    waiter.resolve(1);
    assert.equal(waiter.resolve(2), false);
    assert.equal(waiter.reject(new Error('late')), false);
    assert.equal(await waiter.promise, 1);
    assert.equal(cleanups, 1);
  });

  it('a timer settles it and nothing is left armed', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const waiter = new Waiter<string>();
    waiter.timeoutAfter(10, () => waiter.resolve('timeout'));
    assert.equal(clock.pendingTimers, 1);
    clock.advance(10);
    assert.equal(await waiter.promise, 'timeout');
    assert.equal(clock.pendingTimers, 0);
  });

  it('late: settling first clears the timer, on the clock that armed it', async () => {
    const clock = new VirtualClock();
    const waiter = new Waiter<string>();
    {
      using _clock = useClock(clock);
      waiter.timeoutAfter(10, () => waiter.resolve('timeout'));
    }
    waiter.resolve('event');
    assert.equal(clock.pendingTimers, 0, 'cleared although another clock is current now');
    assert.equal(await waiter.promise, 'event');
  });

  it('an abort runs onAbort, then rejects with the reason; the listener is gone', async () => {
    const controller = new AbortController();
    const order: string[] = [];
    const waiter = new Waiter<void>(() => order.push('cleanup'));
    waiter.abortOn(controller.signal, () => order.push('onAbort'));
    assert.equal(listeners(controller.signal), 1);
    const reason = new Error('stop');
    controller.abort(reason);
    await assert.rejects(waiter.promise, (err: unknown) => err === reason);
    assert.deepEqual(order, ['onAbort', 'cleanup']);
    assert.equal(listeners(controller.signal), 0);
  });

  it('late: an already aborted signal rejects at once; settling first removes the listener', async () => {
    const waiter = new Waiter<void>();
    const aborted = AbortSignal.abort(new Error('already'));
    assert.equal(waiter.abortOn(aborted), false);
    await assert.rejects(waiter.promise, /already/);
    const controller = new AbortController();
    const other = new Waiter<void>();
    assert.equal(other.abortOn(controller.signal), true);
    other.resolve();
    assert.equal(listeners(controller.signal), 0);
    controller.abort();
    await other.promise;
  });

  it('nothing to arm for an undefined timeout or signal', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const waiter = new Waiter<void>();
    waiter.timeoutAfter(undefined, () => assert.fail('never'));
    assert.equal(waiter.abortOn(undefined), true);
    assert.equal(clock.pendingTimers, 0);
    waiter.resolve();
    await waiter.promise;
  });
});
