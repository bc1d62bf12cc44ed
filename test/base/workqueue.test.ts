/**
 * Executable specification of src/base/workqueue.ts (seed 004's per-device workqueue): items
 * start later and in order, at most maxActive at once with sleeping items counted, flush waits
 * for what was queued before it and drain for everything, failures are recorded and the queue
 * goes on, disposal drains then refuses, and a 10,000-item release storm keeps the bound.
 *
 * Sleeping items wait on fences signaled by the test or on timers of a VirtualClock, so nothing
 * here depends on real time.
 */
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock, useClock, type Clock } from '../../src/base/clock.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { WorkQueue, type WorkFailure } from '../../src/base/workqueue.js';
import { mightReclaim, signallingSection } from '../../src/node.js';
import { nextTurn, watch } from '../helpers/completion.js';
import { recordMode, seen } from '../helpers/lockdep-mode.js';
import { mockFence } from '../helpers/mock-fence.js';

/** A promise resolved after `ms` on `clock` (an item "sleeping" in the kernel sense). */
function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

describe('WorkQueue', () => {
  it('sanity: items run later, not inside queue(), in queue order; counters add up', async () => {
    const log: string[] = [];
    const wq = new WorkQueue('sanity');
    assert.equal(wq.name, 'sanity');
    assert.equal(wq.maxActive, 16, "the seed's alloc_workqueue(.., 16)");
    wq.queue(() => void log.push('a'));
    wq.queue(async () => {
      await nextTurn();
      log.push('b');
    });
    wq.queue(() => void log.push('c'));
    assert.deepEqual(log, [], 'nothing runs synchronously inside queue()');
    assert.equal(wq.pending, 3);
    assert.equal(wq.active, 0);
    await wq.drain();
    assert.deepEqual(log, ['a', 'c', 'b'], 'c does not wait for b: 16 may run at once');
    assert.equal(wq.completed, 3);
    assert.equal(wq.failed, 0);
    assert.equal(wq.pending, 0);
    assert.equal(wq.active, 0);
    await wq[Symbol.asyncDispose]();
  });

  it(
    'items start on a microtask: ' + 'before the next macrotask, after the queuer finishes its synchronous code',
    async () => {
      const log: string[] = [];
      const wq = new WorkQueue('micro');
      setImmediate(() => log.push('immediate'));
      wq.queue(() => void log.push('item'));
      log.push('queuer');
      await nextTurn();
      assert.deepEqual(log, ['queuer', 'item', 'immediate']);
    },
  );

  it('starts items in FIFO order: with maxActive 1 each waits for the one before to settle', async () => {
    const log: string[] = [];
    const wq = new WorkQueue('fifo', { maxActive: 1 });
    const fences = [mockFence(), mockFence(), mockFence()];
    fences.forEach((fence, i) => {
      wq.queue(async () => {
        log.push(`start ${i}`);
        await fence.wait();
        log.push(`end ${i}`);
      });
    });
    await nextTurn();
    assert.deepEqual(log, ['start 0']);
    fences[2]!.signal(); // the last one's fence first: it still has to wait its turn
    await nextTurn();
    assert.deepEqual(log, ['start 0']);
    fences[0]!.signal();
    await nextTurn();
    assert.deepEqual(log, ['start 0', 'end 0', 'start 1']);
    fences[1]!.signal();
    await wq.drain();
    assert.deepEqual(log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('start order is queue order with several slots too, whatever order items finish in', async () => {
    const starts: number[] = [];
    const wq = new WorkQueue('fifo-3', { maxActive: 3 });
    const fences = Array.from({ length: 9 }, () => mockFence());
    for (const [i, fence] of fences.entries()) {
      wq.queue(async () => {
        starts.push(i);
        await fence.wait();
      });
    }
    await nextTurn();
    assert.deepEqual(starts, [0, 1, 2]);
    // Finish in reverse: each freed slot goes to the oldest pending item.
    for (let i = 8; i >= 0; i--) {
      fences[i]!.signal();
      await nextTurn();
    }
    await wq.drain();
    assert.deepEqual(starts, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  describe('maxActive', () => {
    it('bounds the items in flight, sleeping ones included; peakActive records the bound', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const wq = new WorkQueue('bounded', { maxActive: 4 });
      let inFlight = 0;
      let worst = 0;
      for (let i = 0; i < 20; i++) {
        wq.queue(async () => {
          worst = Math.max(worst, ++inFlight);
          assert.ok(wq.active <= 4, `active ${wq.active} > maxActive`);
          await sleep(clock, 10);
          inFlight--;
        });
      }
      await clock.tick(0);
      assert.equal(wq.active, 4, 'four items sleep, each keeping its slot');
      assert.equal(wq.pending, 16);
      await clock.tick(10);
      assert.equal(wq.completed, 4);
      assert.equal(wq.active, 4, 'late: the next four took the freed slots');
      while (wq.pending + wq.active > 0) await clock.tick(10);
      assert.equal(clock.now(), 50, '20 items of 10 ms, 4 at a time');
      assert.equal(worst, 4);
      assert.equal(wq.peakActive, 4);
      assert.equal(wq.completed, 20);
    });

    it('an item is active until its promise settles, not until its synchronous part returns', async () => {
      const wq = new WorkQueue('settle', { maxActive: 1 });
      const fence = mockFence();
      let secondStarted = false;
      wq.queue(() => fence.wait().then(() => undefined));
      wq.queue(() => void (secondStarted = true));
      await nextTurn();
      assert.equal(wq.active, 1);
      assert.equal(secondStarted, false);
      fence.signal();
      await wq.drain();
      assert.equal(secondStarted, true, 'late: after the first settled');
      assert.equal(wq.active, 0);
    });

    it('resetPeak restarts the measurement from the number active now', async () => {
      const wq = new WorkQueue('peak', { maxActive: 3 });
      const fence = mockFence();
      for (let i = 0; i < 3; i++) wq.queue(() => fence.wait().then(() => undefined));
      await nextTurn();
      assert.equal(wq.peakActive, 3);
      fence.signal();
      await wq.drain();
      assert.equal(wq.peakActive, 3, 'the peak outlives the items');
      wq.resetPeak();
      assert.equal(wq.peakActive, 0);
      wq.queue(() => undefined);
      await wq.drain();
      assert.equal(wq.peakActive, 1);
    });
  });

  describe('flush and drain', () => {
    it('flush waits for every item queued before the call, not for items queued after it', async () => {
      const wq = new WorkQueue('flush');
      const before = mockFence();
      const after = mockFence();
      wq.queue(() => before.wait().then(() => undefined), 'before');
      const flushed = watch(wq.flush());
      wq.queue(() => after.wait().then(() => undefined), 'after');
      await nextTurn();
      assert.equal(flushed().state, 'pending');
      before.signal();
      await nextTurn();
      assert.equal(flushed().state, 'fulfilled', 'resolved while the later item still sleeps');
      assert.equal(wq.active, 1);
      after.signal();
      await wq.drain();
    });

    it('flush waits for all earlier items even when they finish out of order', async () => {
      const wq = new WorkQueue('flush-order', { maxActive: 4 });
      const fences = [mockFence(), mockFence(), mockFence()];
      for (const fence of fences) wq.queue(() => fence.wait().then(() => undefined));
      const flushed = watch(wq.flush());
      fences[2]!.signal();
      fences[1]!.signal();
      await nextTurn();
      assert.equal(flushed().state, 'pending', 'the oldest item is still running');
      fences[0]!.signal();
      await nextTurn();
      assert.equal(flushed().state, 'fulfilled');
    });

    it('flush does not wait for work queued by the flushed work; drain does', async () => {
      const wq = new WorkQueue('chained');
      const child = mockFence();
      let childDone = false;
      wq.queue(() => {
        wq.queue(async () => {
          await child.wait();
          childDone = true;
        }, 'child');
      }, 'parent');
      const flushed = watch(wq.flush());
      const drained = watch(wq.drain());
      await nextTurn();
      assert.equal(flushed().state, 'fulfilled');
      assert.equal(drained().state, 'pending', 'the child is still running');
      assert.equal(wq.active, 1);
      child.signal();
      await nextTurn();
      assert.equal(drained().state, 'fulfilled');
      assert.equal(childDone, true);
    });

    it('drain waits through a chain of items each queueing the next (flush_workqueue would not)', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const wq = new WorkQueue('chain', { maxActive: 2 });
      let links = 0;
      const link = async (): Promise<void> => {
        await sleep(clock, 1);
        if (++links < 10) wq.queue(link);
      };
      wq.queue(link);
      const drained = watch(wq.drain());
      for (let i = 0; i < 9; i++) {
        await clock.tick(1);
        assert.equal(drained().state, 'pending', `after ${links} links`);
      }
      await clock.tick(1);
      assert.equal(links, 10);
      assert.equal(drained().state, 'fulfilled');
    });

    it('late: flush and drain on an idle queue resolve at once, and again after work finished', async () => {
      const wq = new WorkQueue('idle');
      assert.equal(
        await Promise.race([wq.flush().then(() => 'flushed'), Promise.resolve().then(() => 'later')]),
        'flushed',
      );
      assert.equal(
        await Promise.race([wq.drain().then(() => 'drained'), Promise.resolve().then(() => 'later')]),
        'drained',
      );
      wq.queue(() => undefined);
      await wq.flush();
      assert.equal(wq.completed, 1);
      assert.equal(
        await Promise.race([wq.flush().then(() => 'flushed'), Promise.resolve().then(() => 'later')]),
        'flushed',
      );
    });

    it('flush counts failed items as finished', async () => {
      const wq = new WorkQueue('flush-fail', { onError: () => undefined });
      wq.queue(() => Promise.reject(new Error('nope')));
      await wq.flush();
      assert.equal(wq.failed, 1);
    });
  });

  describe('failures', () => {
    it('a throwing or rejecting item is recorded with its name, onError sees it, and the queue goes on', async () => {
      const reported: WorkFailure[] = [];
      const log: string[] = [];
      const wq = new WorkQueue('failing', { maxActive: 1, onError: (f) => reported.push(f) });
      const thrown = new Error('thrown');
      const rejected = new Error('rejected');
      wq.queue(() => {
        throw thrown;
      }, 'sync');
      wq.queue(async () => {
        await nextTurn();
        throw rejected;
      }, 'async');
      wq.queue(() => void log.push('after'), 'after');
      await wq.drain();
      assert.deepEqual(log, ['after'], 'the next item still ran');
      assert.deepEqual(wq.failures, [
        { name: 'sync', error: thrown },
        { name: 'async', error: rejected },
      ]);
      assert.deepEqual(reported, wq.failures);
      assert.equal(wq.failed, 2);
      assert.equal(wq.completed, 1);
    });

    it('unnamed items are named after their function, else by their number', async () => {
      const wq = new WorkQueue('names', { onError: () => undefined });
      function releaseBo(): void {
        throw new Error('busy');
      }
      wq.queue(releaseBo);
      wq.queue(() => Promise.reject(new Error('anon')));
      await wq.drain();
      assert.deepEqual(
        wq.failures.map((f) => f.name),
        ['releaseBo', 'work #2'],
      );
    });

    it('without onError: one console.warn per queue, every failure still recorded', async () => {
      const warn = mock.method(console, 'warn', () => undefined);
      try {
        const wq = new WorkQueue('warn-once');
        for (let i = 0; i < 3; i++) wq.queue(() => Promise.reject(new Error(`failure ${i}`)), `item ${i}`);
        await wq.drain();
        assert.equal(warn.mock.callCount(), 1);
        const message = String(warn.mock.calls[0]!.arguments[0]);
        assert.match(message, /WorkQueue "warn-once": work item "item 0" failed/);
        assert.equal(wq.failures.length, 3);
        const other = new WorkQueue('other');
        other.queue(() => {
          throw new Error('x');
        });
        await other.drain();
        assert.equal(warn.mock.callCount(), 2, 'once per queue, not once per process');
      } finally {
        warn.mock.restore();
      }
    });

    it('an onError that throws does not stop the queue; its error is re-raised on a microtask', async () => {
      const raised: unknown[] = [];
      const original = globalThis.queueMicrotask;
      // Every microtask still runs, later as usual; what one throws is caught here instead of
      // becoming an uncaught exception.
      globalThis.queueMicrotask = (fn: () => void): void =>
        original(() => {
          try {
            fn();
          } catch (err) {
            raised.push(err);
          }
        });
      try {
        const reporterError = new Error('reporter broke');
        const wq = new WorkQueue('bad-reporter', {
          onError: () => {
            throw reporterError;
          },
        });
        let ran = false;
        wq.queue(() => {
          throw new Error('item');
        });
        wq.queue(() => void (ran = true));
        await wq.drain();
        await nextTurn();
        assert.equal(ran, true);
        assert.equal(wq.failed, 1);
        assert.equal(wq.failures.length, 1);
        assert.deepEqual(raised, [reporterError]);
      } finally {
        globalThis.queueMicrotask = original;
      }
    });
  });

  describe('disposal', () => {
    it('drains (items queued while draining included), then refuses new work with a BugError', async () => {
      const wq = new WorkQueue('dispose');
      const fence = mockFence();
      const log: string[] = [];
      wq.queue(async () => {
        await fence.wait();
        log.push('first');
      });
      const closing = watch(wq[Symbol.asyncDispose]());
      wq.queue(() => void log.push('queued while closing'));
      await nextTurn();
      assert.equal(closing().state, 'pending', 'waits for the sleeping item');
      fence.signal();
      await wq[Symbol.asyncDispose](); // the same disposal
      assert.equal(closing().state, 'fulfilled');
      assert.deepEqual(log, ['queued while closing', 'first']);
      assert.throws(
        () => wq.queue(() => undefined, 'late item'),
        (e: unknown) =>
          e instanceof BugError &&
          /WorkQueue "dispose" is destroyed/.test(e.message) &&
          e.message.includes('late item'),
      );
      await wq[Symbol.asyncDispose](); // idempotent
    });

    it('await using drains at the end of the block', async () => {
      let done = 0;
      {
        await using wq = new WorkQueue('scoped', { maxActive: 2 });
        for (let i = 0; i < 5; i++) {
          wq.queue(async () => {
            await nextTurn();
            done++;
          });
        }
      }
      assert.equal(done, 5);
    });
  });

  it(
    'release storm: ' + '10,000 sleeping items finish with peakActive == maxActive, in items/maxActive sleeps',
    async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const wq = new WorkQueue('ttm');
      const started = performance.now();
      let done = 0;
      for (let i = 0; i < 10_000; i++) {
        wq.queue(async () => {
          await sleep(clock, 1);
          done++;
        });
      }
      assert.equal(wq.pending, 10_000);
      let ticks = 0;
      while (wq.pending + wq.active > 0) {
        await clock.tick(1);
        ticks++;
      }
      await wq.drain();
      assert.equal(done, 10_000);
      assert.equal(wq.completed, 10_000);
      assert.equal(wq.peakActive, wq.maxActive);
      assert.equal(ticks, 10_000 / 16, 'every slot busy every millisecond');
      assert.equal(clock.pendingTimers, 0);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 5_000, `storm took ${elapsed.toFixed(0)} ms of real time`);
    },
  );

  describe('cancellation and abortable waits (issue 10)', () => {
    it('an item whose signal aborts before it starts never runs, and flushes stop waiting for it', async () => {
      const wq = new WorkQueue('cancel', { maxActive: 1 });
      const gate = mockFence();
      const ran: string[] = [];
      wq.queue(async () => {
        await gate.wait();
        ran.push('first');
      });
      await nextTurn(); // the first item is running and holds the only slot
      const controller = new AbortController();
      wq.queue(() => void ran.push('cancelled'), { name: 'doomed', signal: controller.signal });
      wq.queue(() => void ran.push('third'));
      assert.equal(wq.pending, 2);
      const flushed = watch(wq.flush());
      controller.abort();
      assert.equal(wq.pending, 1, 'the cancelled item no longer counts as pending');
      gate.signal();
      await wq.drain();
      assert.deepEqual(ran, ['first', 'third']);
      assert.equal(flushed().state, 'fulfilled');
      assert.deepEqual([wq.completed, wq.failed, wq.cancelled], [2, 0, 1]);
    });

    it('late: aborting after the item started changes nothing; an already aborted signal queues nothing', async () => {
      const wq = new WorkQueue('late-cancel');
      const controller = new AbortController();
      let runs = 0;
      wq.queue(() => void runs++, { signal: controller.signal });
      await wq.drain();
      controller.abort();
      wq.queue(() => void runs++, { signal: controller.signal });
      assert.equal(wq.pending, 0);
      await wq.drain();
      assert.deepEqual([runs, wq.completed, wq.cancelled], [1, 1, 1]);
    });

    it('flush and drain reject with the reason on abort and leave no waiter; the queue goes on', async () => {
      const wq = new WorkQueue('abortable');
      const gate = mockFence();
      wq.queue(() => gate.wait().then(() => undefined));
      const controller = new AbortController();
      const reason = new Error('give up');
      const flush = watch(wq.flush({ signal: controller.signal }));
      const drain = watch(wq.drain({ signal: controller.signal }));
      controller.abort(reason);
      await nextTurn();
      assert.deepEqual([flush().state, drain().state], ['rejected', 'rejected']);
      gate.signal();
      await wq.drain();
      assert.equal(wq.completed, 1);
      await assert.rejects(wq.flush({ signal: AbortSignal.abort(reason) }), (err: unknown) => err === reason);
    });

    it('options of queue, flush and drain are checked: unknown names and non-signals are refused', async () => {
      const wq = new WorkQueue('checked');
      assert.throws(() => wq.queue(() => undefined, { signal: new AbortController() } as never), InvalidArgumentError);
      assert.throws(() => wq.queue(() => undefined, { nmae: 'x' } as never), /unknown option "nmae"/);
      assert.equal(wq.pending, 0);
      await Promise.all([
        assert.rejects(wq.flush({ signal: {} } as never), InvalidArgumentError),
        assert.rejects(wq.drain(5 as never), InvalidArgumentError),
      ]);
    });
  });

  describe('options and arguments', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '4', null]) {
      it(`maxActive ${String(bad)} is an InvalidArgumentError naming the value`, () => {
        assert.throws(
          () => new WorkQueue('bad', { maxActive: bad as number }),
          (e: unknown) =>
            e instanceof InvalidArgumentError &&
            e.message.includes('maxActive') &&
            e.message.includes(typeof bad === 'string' ? '"4"' : String(bad)),
        );
      });
    }

    it('maxActive 1 and large values are accepted', () => {
      assert.equal(new WorkQueue('one', { maxActive: 1 }).maxActive, 1);
      assert.equal(new WorkQueue('many', { maxActive: 512 }).maxActive, 512);
    });

    it('a non-string name, a non-function onError, and queueing a non-function are InvalidArgumentErrors', () => {
      assert.throws(() => new WorkQueue(42 as unknown as string), InvalidArgumentError);
      assert.throws(() => new WorkQueue('x', { onError: 'log' as never }), InvalidArgumentError);
      const wq = new WorkQueue('args');
      assert.throws(() => wq.queue('work' as never), InvalidArgumentError);
      assert.throws(() => wq.queue(() => undefined, 7 as never), InvalidArgumentError);
      assert.equal(wq.pending, 0, 'nothing was queued');
    });
  });
});

describe('WorkQueue under the validator', () => {
  recordMode();

  it('an item holds nothing its queuer held: it runs as a task of its own', async () => {
    const wq = new WorkQueue('validated');
    let ran = false;
    await signallingSection(async () => {
      wq.queue(() => {
        mightReclaim(); // a report if the queuer's signalling section leaked into the item
        ran = true;
      });
      await nextTurn(); // the section is still open while the item runs
    });
    assert.equal(ran, true);
    assert.deepEqual(seen(), []);
  });
});
