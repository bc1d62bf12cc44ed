/**
 * Executable specification of src/heap/deferred-free.ts (seed 002): the background worker
 * (after microtasks, one item per macrotask, interleaving with other macrotasks, asleep when the
 * list is empty), reasons, the shrinker's count and scan, drain, both disposals, throwing free
 * functions, and the worker running as a validator task of its own.
 *
 * Scheduling is observed two ways: with the default scheduler (setImmediate in Node) against
 * other immediates and microtasks, and with a spy `schedule` option that only records.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { useClock } from '../../src/base/clock.js';
import { DeferredFreeList, DeferredFreeReason, type DeferredFreeListOptions } from '../../src/heap/deferred-free.js';
import { ShrinkerRegistry } from '../../src/heap/shrinker.js';
import { mightReclaim, signallingSection } from '../../src/node.js';
import { nextTurn } from '../helpers/completion.js';
import { recordMode, seen } from '../helpers/lockdep-mode.js';
import { mockFence } from '../helpers/mock-fence.js';

/** A list whose worker turns are only recorded: run them by hand with `turn()`. */
function spied(options?: DeferredFreeListOptions) {
  const scheduled: (() => void)[] = [];
  const list = new DeferredFreeList({ ...options, schedule: (fn) => scheduled.push(fn) });
  return {
    list,
    scheduled,
    /** Runs the oldest scheduled turn; false when none is scheduled. */
    turn(): boolean {
      const fn = scheduled.shift();
      fn?.();
      return fn !== undefined;
    },
  };
}

/** A free function logging `name:reason`. */
function logger(log: string[]) {
  return (name: string, reason: DeferredFreeReason): void => {
    log.push(`${name}:${reason}`);
  };
}

describe('DeferredFreeList', () => {
  it(
    'sanity: items are freed later, in order, with reason Normal; ' + 'pendingPages and pendingItems count down to 0',
    async () => {
      const log: string[] = [];
      const list = new DeferredFreeList();
      list.deferredFree('a', logger(log), 3);
      list.deferredFree('b', logger(log), 5);
      assert.deepEqual(log, [], 'nothing is freed synchronously');
      assert.equal(list.pendingPages, 8);
      assert.equal(list.pendingItems, 2);
      await list.drain();
      assert.deepEqual(log, ['a:normal', 'b:normal']);
      assert.equal(list.pendingPages, 0);
      assert.equal(list.pendingItems, 0);
      assert.equal(list.workerScheduled, false);
      await list[Symbol.asyncDispose]();
    },
  );

  it('the reasons are the seed\'s two: "normal" and "under-pressure"', () => {
    assert.deepEqual({ ...DeferredFreeReason }, { Normal: 'normal', UnderPressure: 'under-pressure' });
  });

  it('rejects a non-function free and a bad page count, queueing nothing', () => {
    const { list, scheduled } = spied();
    assert.throws(() => list.deferredFree('x', 'nope' as never, 1), InvalidArgumentError);
    assert.throws(() => list.deferredFree('x', () => {}, -1), InvalidArgumentError);
    assert.throws(() => list.deferredFree('x', () => {}, 1.5), InvalidArgumentError);
    assert.equal(list.pendingItems, 0);
    assert.equal(scheduled.length, 0);
  });

  describe('the worker', () => {
    it('runs after every microtask queued before it: a promise chain and a fence callback come first', async () => {
      const log: string[] = [];
      const list = new DeferredFreeList();
      list.deferredFree('item', logger(log), 1);
      const fence = mockFence();
      fence.addCallback(() => log.push('fence callback'));
      let chain = Promise.resolve();
      for (let i = 0; i < 50; i++) chain = chain.then(() => void log.push(`then ${i}`));
      void chain.then(() => fence.signal());
      await list.drain();
      assert.equal(log.length, 52);
      assert.equal(log[49], 'then 49');
      assert.equal(log[50], 'fence callback');
      assert.equal(log[51], 'item:normal', `the free ran last: ${log.slice(-3).join(', ')}`);
    });

    it(
      'frees one item per macrotask: ' +
        'other immediates interleave, and microtasks a free queues run before the next free',
      async () => {
        const log: string[] = [];
        const list = new DeferredFreeList();
        for (const name of ['A', 'B', 'C']) {
          list.deferredFree(
            name,
            (n) => {
              log.push(n);
              queueMicrotask(() => log.push(`${n} micro`));
            },
            1,
          );
        }
        let others = 0;
        const other = (): void => {
          log.push(`other ${++others}`);
          if (others < 4) setImmediate(other);
        };
        setImmediate(other);
        await list.drain();
        await nextTurn();
        await nextTurn();
        assert.deepEqual(log, [
          'A',
          'A micro',
          'other 1',
          'B',
          'B micro',
          'other 2',
          'C',
          'C micro',
          'other 3',
          'other 4',
        ]);
      },
    );

    it('with a spy scheduler: one turn is scheduled per item, each turn frees exactly one', () => {
      const log: string[] = [];
      const { list, scheduled, turn } = spied();
      list.deferredFree('a', logger(log), 1);
      list.deferredFree('b', logger(log), 1);
      list.deferredFree('c', logger(log), 1);
      assert.equal(scheduled.length, 1, 'one wake-up for three items');
      assert.equal(list.workerScheduled, true);
      assert.equal(turn(), true);
      assert.deepEqual(log, ['a:normal']);
      assert.equal(scheduled.length, 1, 'the next turn is scheduled only after this one');
      turn();
      turn();
      assert.deepEqual(log, ['a:normal', 'b:normal', 'c:normal']);
    });

    it('with sliceMs, a turn frees items one at a time until the slice is used, then yields', () => {
      // A clock that moves 0.4 ms per reading: a 1 ms slice covers the first free and two more.
      let now = 0;
      const clock = { now: () => (now += 0.4), setTimer: () => ({}), clearTimer: () => undefined };
      using _clock = useClock(clock);
      const log: string[] = [];
      const { list, scheduled, turn } = spied({ sliceMs: 1 });
      for (const item of ['a', 'b', 'c', 'd', 'e', 'f']) list.deferredFree(item, logger(log), 1);
      turn();
      assert.deepEqual(log, ['a:normal', 'b:normal', 'c:normal'], 'one slice');
      assert.equal(scheduled.length, 1, 'then it yields, with the rest still pending');
      turn();
      assert.deepEqual(log, ['a:normal', 'b:normal', 'c:normal', 'd:normal', 'e:normal', 'f:normal']);
      assert.throws(() => new DeferredFreeList({ sliceMs: -1 }), InvalidArgumentError);
    });

    it('sleeps when the list is empty: after the last item nothing is scheduled, and a new item wakes it', () => {
      const log: string[] = [];
      const { list, scheduled, turn } = spied();
      list.deferredFree('a', logger(log), 1);
      turn();
      assert.equal(scheduled.length, 0, 'no turn pending after the list emptied');
      assert.equal(list.workerScheduled, false);
      list.deferredFree('b', logger(log), 1);
      assert.equal(scheduled.length, 1, 'late: woken by the next item');
      turn();
      assert.equal(scheduled.length, 0);
      assert.deepEqual(log, ['a:normal', 'b:normal']);
    });

    it('sleeps with the default scheduler too: after drain no turn is pending, even several turns later', async () => {
      const list = new DeferredFreeList();
      let freed = 0;
      for (let i = 0; i < 5; i++) list.deferredFree(i, () => freed++, 1);
      await list.drain();
      assert.equal(freed, 5);
      for (let i = 0; i < 3; i++) {
        await nextTurn();
        assert.equal(list.workerScheduled, false);
      }
    });

    it('an item queued by a free function is freed by the worker too, and drain waits for it', async () => {
      const log: string[] = [];
      const list = new DeferredFreeList();
      list.deferredFree(
        'first',
        (n, r) => {
          log.push(`${n}:${r}`);
          list.deferredFree('second', logger(log), 2);
        },
        1,
      );
      await list.drain();
      assert.deepEqual(log, ['first:normal', 'second:normal']);
      assert.equal(list.pendingPages, 0);
    });
  });

  describe('the shrinker', () => {
    it('counts pending pages and is named after the list, with the default seeks', () => {
      const { list } = spied({ name: 'heap-frees' });
      list.deferredFree('a', () => {}, 4);
      list.deferredFree('b', () => {}, 256);
      assert.equal(list.shrinker.count(), 260);
      assert.equal(list.shrinker.name, 'heap-frees');
      assert.equal(list.shrinker.seeks, 2);
    });

    it('scan(n) frees the oldest items with UnderPressure until at least n pages are freed', () => {
      const log: string[] = [];
      const { list, turn } = spied();
      list.deferredFree('a', logger(log), 4);
      list.deferredFree('b', logger(log), 4);
      list.deferredFree('c', logger(log), 256);
      assert.equal(list.shrinker.scan(5), 8);
      assert.deepEqual(log, ['a:under-pressure', 'b:under-pressure']);
      assert.equal(list.pendingPages, 256);
      assert.equal(list.shrinker.scan(0), 0);
      assert.equal(list.pendingItems, 1);
      turn();
      assert.deepEqual(log.at(-1), 'c:normal', 'late: the worker goes on with what the scan left');
    });

    it(
      'scan frees everything and returns less than asked when the list runs out; late: ' + 'scan on an empty list is 0',
      () => {
        const { list } = spied();
        list.deferredFree('a', () => {}, 2);
        list.deferredFree('z', () => {}, 0);
        assert.equal(list.shrinker.scan(100), 2);
        assert.equal(list.pendingItems, 0, 'the zero-page item was freed too');
        assert.equal(list.shrinker.scan(100), 0);
      },
    );

    it('through a registry: shrink(n) frees at least n pages under pressure, and drain resolves', async () => {
      const log: string[] = [];
      const { list } = spied();
      const registry = new ShrinkerRegistry();
      using _r = registry.register(list.shrinker);
      for (let i = 0; i < 10; i++) list.deferredFree(`i${i}`, logger(log), 16);
      const drained = list.drain();
      assert.equal(registry.shrink(40), 48);
      assert.deepEqual(
        log,
        ['i0', 'i1', 'i2'].map((n) => `${n}:under-pressure`),
      );
      assert.equal(registry.shrink(Infinity), 7 * 16);
      assert.equal(list.pendingPages, 0);
      await drained; // resolves although the (spied) worker never ran
    });
  });

  describe('disposal', () => {
    it(
      'sync dispose frees everything pending at once with UnderPressure, resolves drain, ' +
        'and later deferredFree is a BugError',
      async () => {
        const log: string[] = [];
        const { list, turn } = spied();
        list.deferredFree('a', logger(log), 1);
        list.deferredFree('b', logger(log), 1);
        const drained = list.drain();
        list[Symbol.dispose]();
        assert.deepEqual(log, ['a:under-pressure', 'b:under-pressure']);
        assert.equal(list.pendingPages, 0);
        assert.equal(list.isDisposed, true);
        await drained;
        assert.equal(turn(), true, 'the turn already scheduled still runs ...');
        assert.equal(log.length, 2, '... and frees nothing');
        assert.throws(
          () => list.deferredFree('c', logger(log), 1),
          (e: unknown) => e instanceof BugError && e.message.includes('disposed'),
        );
        list[Symbol.dispose](); // idempotent
      },
    );

    it('async dispose lets the worker drain with Normal, items queued meanwhile included, then closes', async () => {
      const log: string[] = [];
      const list = new DeferredFreeList();
      list.deferredFree('a', logger(log), 1);
      const closing = list[Symbol.asyncDispose]();
      list.deferredFree('b', logger(log), 1); // still accepted while closing
      assert.equal(list.isDisposed, false);
      await closing;
      assert.deepEqual(log, ['a:normal', 'b:normal']);
      assert.equal(list.isDisposed, true);
      assert.throws(() => list.deferredFree('c', logger(log), 1), BugError);
      await list[Symbol.asyncDispose](); // idempotent
    });

    it('await using drains the list at the end of the block', async () => {
      let freed = 0;
      {
        await using list = new DeferredFreeList();
        list.deferredFree(1, () => freed++, 1);
      }
      assert.equal(freed, 1);
    });
  });

  describe('a free function that throws', () => {
    it('is reported through onError, counts as freed (not retried), and the worker goes on', async () => {
      const errors: [unknown, unknown][] = [];
      const log: string[] = [];
      const list = new DeferredFreeList({ onError: (err, item) => errors.push([err, item]) });
      const boom = new Error('boom');
      list.deferredFree(
        'bad',
        () => {
          log.push('bad');
          throw boom;
        },
        7,
      );
      list.deferredFree('good', logger(log), 1);
      await list.drain();
      assert.deepEqual(log, ['bad', 'good:normal']);
      assert.deepEqual(errors, [[boom, 'bad']]);
      assert.equal(list.pendingPages, 0);
    });

    it(
      'under pressure too: ' +
        'the scan counts its pages; by default the error goes to reportCallbackError (a microtask)',
      () => {
        const { list } = spied();
        const boom = new Error('boom under pressure');
        list.deferredFree(
          'bad',
          () => {
            throw boom;
          },
          7,
        );
        const queued: (() => void)[] = [];
        const original = globalThis.queueMicrotask;
        globalThis.queueMicrotask = (fn: () => void): void => void queued.push(fn);
        let freed: number;
        try {
          freed = list.shrinker.scan(1);
        } finally {
          globalThis.queueMicrotask = original;
        }
        assert.equal(freed, 7);
        assert.equal(list.pendingItems, 0);
        assert.equal(queued.length, 1);
        assert.throws(
          () => queued[0]!(),
          (e: unknown) => e === boom,
        );
      },
    );
  });
});

describe('DeferredFreeList under the validator', () => {
  recordMode();

  it(
    'the worker frees as a task of its own: ' +
      'it does not inherit a signalling section open where the item was queued',
    async () => {
      let freed = false;
      const list = new DeferredFreeList();
      await signallingSection(async () => {
        list.deferredFree(
          'x',
          () => {
            mightReclaim(); // would be a report inside the section
            freed = true;
          },
          1,
        );
        // The section stays open while the worker runs.
        await nextTurn();
        await nextTurn();
      });
      assert.equal(freed, true);
      assert.deepEqual(seen(), []);
      await signallingSection(async () => {
        await nextTurn();
        mightReclaim(); // the control: in the section itself, it is reported
      });
      assert.equal(seen().length, 1);
    },
  );
});
