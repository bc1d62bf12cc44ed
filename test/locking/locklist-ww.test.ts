/**
 * Transaction lock lists over real locks: ww mutexes (two transactions in opposite order, a seeded
 * stress with deadlock injection) and DmaResv buffer objects with reference counts, the GEM-level
 * form the seed's reviewers asked for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, WwDeadlockError } from '../../src/base/errors.js';
import { Kref } from '../../src/base/lifecycle.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { WwAcquireCtx, WwClass, WwMutex, type WwAlgorithm } from '../../src/locking/ww-mutex.js';
import {
  TransLockList,
  wwMutexLockItem,
  type BackoffOutcome,
  type LockItem,
  type LockItemOps,
  type SlowLockResult,
} from '../../src/locking/locklist.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

// ---- real ww transactions ------------------------------------------------------------------

interface TxStats {
  backoffs: number;
  outcomes: BackoffOutcome[];
}

/**
 * Locks `mutexes` in order through `list`, backing off and restarting on WwDeadlockError. `between`
 * runs after each lock taken in the first pass (the awaits of a real transaction).
 */
async function lockAll(
  list: TransLockList,
  ctx: WwAcquireCtx,
  mutexes: readonly WwMutex[],
  stats: TxStats,
  between: (i: number) => Promise<void>,
): Promise<void> {
  let firstPass = true;
  restart: for (;;) {
    for (const [i, mutex] of mutexes.entries()) {
      if (list.has(mutex)) continue;
      try {
        await mutex.lock(ctx);
      } catch (err) {
        if (!(err instanceof WwDeadlockError)) throw err;
        stats.backoffs++;
        stats.outcomes.push(await list.backoff(wwMutexLockItem(mutex, ctx)));
        firstPass = false;
        continue restart;
      }
      list.add(wwMutexLockItem(mutex, ctx));
      if (firstPass) await between(i);
    }
    return;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function yields(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe('TransLockList with ww mutexes', () => {
  it('wwMutexLockItem: slowLock is lockSlow(ctx), unlock checks that ctx still holds the mutex', async () => {
    const cls = new WwClass('items', 'wait-die');
    const m = new WwMutex(cls, 'm');
    using ctx = new WwAcquireCtx(cls);
    const a = wwMutexLockItem(m, ctx);
    const b = wwMutexLockItem(new WwMutex(cls, 'n'), ctx, { relaxUnlock: true });
    assert.equal(a.ops, b.ops, 'items of one ctx share their ops');
    assert.deepEqual([a.relaxUnlock, b.relaxUnlock], [false, true]);
    await assert.rejects(a.ops.slowLock(m), BugError, 'lockSlow without a contention is the ww debug check');
    await m.lock(ctx);
    const list = new TransLockList();
    list.add(a);
    m.unlock(); // behind the list's back
    await m.lock(null);
    assert.throws(
      () => list.unlockPutAll(),
      (err: unknown) => err instanceof AggregateError && /held by another owner/.test((err.errors[0] as Error).message),
    );
    assert.equal(m.isLocked, true, 'the other owner keeps its lock');
    m.unlock();
  });

  for (const algorithm of ['wait-die', 'wound-wait'] as const satisfies readonly WwAlgorithm[]) {
    it(`${algorithm}: two transactions locking in opposite order both complete through backoff`, async () => {
      const cls = new WwClass(`abba-${algorithm}`, algorithm);
      const [a, b, c] = [new WwMutex(cls, 'a'), new WwMutex(cls, 'b'), new WwMutex(cls, 'c')];
      const ready = [deferred(), deferred()];
      const inside = new Set<WwMutex>();
      const stats: TxStats = { backoffs: 0, outcomes: [] };
      const done: string[] = [];
      const task = async (id: 0 | 1, order: WwMutex[]): Promise<void> => {
        using ctx = new WwAcquireCtx(cls);
        using list = new TransLockList({ name: `task${id}` });
        await lockAll(list, ctx, order, stats, async (i) => {
          if (i !== 0) return yields(2);
          ready[id]!.resolve();
          await ready[1 - id]!.promise; // both hold their first lock before either takes a second
        });
        ctx.done();
        for (const m of order) {
          assert.equal(inside.has(m), false, `${m.name} is held by two transactions`);
          inside.add(m);
        }
        await yields(3);
        for (const m of order) inside.delete(m);
        done.push(`task${id}`);
      };
      await Promise.all([task(0, [a, b, c]), task(1, [c, b, a])]);
      assert.deepEqual([...done].sort(), ['task0', 'task1']);
      assert.ok(stats.backoffs >= 1, 'the ABBA collision forced a backoff');
      assert.ok(
        stats.outcomes.includes('locked'),
        `a backoff slow-locked the contended mutex: ${stats.outcomes.join(',')}`,
      );
      assert.deepEqual(
        [a, b, c].map((m) => [m.isLocked, m.waiters]),
        [
          [false, 0],
          [false, 0],
          [false, 0],
        ],
      );
    });
  }

  it(
    'stress: six transactions over five mutexes in random orders, with deadlock injection, ' +
      'all complete exclusively',
    async () => {
      const seed = testSeed();
      const random = seededRandom(seed);
      for (const algorithm of ['wait-die', 'wound-wait'] as const) {
        const cls = new WwClass(`stress-${algorithm}`, algorithm);
        const mutexes = Array.from({ length: 5 }, (_, i) => new WwMutex(cls, `m${i}`));
        const inside = new Set<WwMutex>();
        const stats: TxStats = { backoffs: 0, outcomes: [] };
        let completed = 0;
        const task = async (rounds: number): Promise<void> => {
          for (let r = 0; r < rounds; r++) {
            const order = shuffle([...mutexes], random).slice(0, 2 + Math.floor(random() * 4));
            using ctx = new WwAcquireCtx(cls, { deadlockInjection: true });
            using list = new TransLockList();
            await lockAll(list, ctx, order, stats, () => yields(Math.floor(random() * 3)));
            ctx.done();
            for (const m of order) {
              assert.equal(inside.has(m), false, `seed ${seed}: ${m.name} held twice`);
              inside.add(m);
            }
            await yields(1 + Math.floor(random() * 3));
            for (const m of order) inside.delete(m);
            completed++;
          }
        };
        await Promise.all(Array.from({ length: 6 }, () => task(4)));
        assert.equal(completed, 24, `seed ${seed}`);
        assert.ok(stats.backoffs > 0, `seed ${seed}: ${algorithm} with injection backed off at least once`);
        assert.ok(
          mutexes.every((m) => !m.isLocked && m.waiters === 0),
          `seed ${seed}: everything released`,
        );
      }
    },
  );
});

// ---- a DmaResv adapter: the GEM-level list the reviewers asked for ---------------------------

/** A buffer object: a reservation plus the reference count that keeps it alive while listed. */
class BufferObject {
  readonly resv: DmaResv;
  readonly kref: Kref;
  freed = false;

  constructor(
    readonly name: string,
    violations: string[],
  ) {
    this.resv = new DmaResv({ name });
    this.kref = new Kref(() => {
      if (this.resv.isLocked) violations.push(`${name} freed with its reservation locked`);
      this.resv[Symbol.dispose]();
      this.freed = true;
    }, name);
  }
}

function boItem(bo: BufferObject, ctx: WwAcquireCtx): LockItem<BufferObject> {
  const ops: LockItemOps<BufferObject> = {
    async slowLock(o: BufferObject, signal?: AbortSignal): Promise<SlowLockResult> {
      await o.resv.lockSlow(ctx, signal ? { signal } : {});
      return 'locked';
    },
    unlock: (o: BufferObject) => o.resv.unlock(),
    get: (o: BufferObject) => o.kref.get(),
    put: (o: BufferObject) => void o.kref.put(),
  };
  return { ops, object: bo };
}

describe('TransLockList over DmaResv buffer objects', () => {
  it(
    'two submissions in opposite order add their fences; ' + 'objects dropped mid-transaction live until unlocked',
    async () => {
      const violations: string[] = [];
      const [x, y, z] = ['x', 'y', 'z'].map((n) => new BufferObject(n, violations)) as [
        BufferObject,
        BufferObject,
        BufferObject,
      ];
      const ready = [deferred(), deferred()];
      let backoffs = 0;
      const jobs: DmaFence[] = [];
      const submit = async (id: 0 | 1, order: BufferObject[]): Promise<void> => {
        // The submission looked its buffers up: it holds a reference on each until it ends.
        for (const bo of order) bo.kref.get();
        using _lookups = {
          [Symbol.dispose]: () => {
            for (const bo of order) bo.kref.put();
          },
        };
        using ctx = new WwAcquireCtx(x.resv.mutex.wwClass);
        using list = new TransLockList({ name: `submit${id}` });
        let first = true;
        restart: for (;;) {
          for (const bo of order) {
            if (list.has(bo)) continue;
            try {
              await bo.resv.lock(ctx);
            } catch (err) {
              if (!(err instanceof WwDeadlockError)) throw err;
              backoffs++;
              await list.backoff(boItem(bo, ctx));
              continue restart;
            }
            list.add(boItem(bo, ctx));
            if (first) {
              first = false;
              ready[id]!.resolve();
              await ready[1 - id]!.promise;
            }
          }
          break;
        }
        ctx.done();
        const job = mockFence();
        for (const item of list.items) {
          const bo = item.object as BufferObject;
          bo.resv.reserveFences(1);
          bo.resv.addFence(job, DmaResvUsage.Write);
        }
        jobs.push(job);
      };
      const both = Promise.all([submit(0, [x, y, z]), submit(1, [z, y, x])]);
      // Two creators let go while the submissions run; lookups and lists keep the objects alive.
      x.kref.put();
      y.kref.put();
      await both;
      assert.ok(backoffs >= 1, 'the opposite orders collided');
      assert.deepEqual([x.freed, y.freed, z.freed], [true, true, false], 'freed once both lists let go');
      assert.deepEqual(z.resv.getFences(DmaResvUsage.Write), jobs, 'each submission added its fence');
      for (const job of jobs) job.signal();
      assert.equal(z.resv.isLocked, false);
      z.kref.put();
      assert.equal(z.freed, true);
      assert.deepEqual(violations, []);
    },
  );
});
