/**
 * WwMutex: ports of kernel/locking/test-ww_mutex.c's test_mutex and test_aa, the algorithm's
 * details (queue order, early kill, wounding, deadlock injection, aborts) and the
 * DEBUG_WW_MUTEXES checks, for both classes.
 *
 * "Tasks" are async functions; they interleave at `await`s on {@link Completion} latches and
 * `setImmediate` turns. Waits that could hang are bounded by a number of turns and asserted.
 * The multi-task cases (test_abba, test_cycle, the stress runs, the design document's back-off
 * methods) are in ww-mutex-stress.test.ts, the random transactions in ww-mutex.property.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AlreadyLockedError, BugError, InvalidArgumentError, WwDeadlockError } from '../../src/base/errors.js';
import {
  WwAcquireCtx,
  WwClass,
  WwMutex,
  wwBackOffOf,
  wwLockGranted,
  type WwAlgorithm,
} from '../../src/locking/ww-mutex.js';
import { Completion, HANG_TURNS, finish, nextTurn, outcome, watch, yieldTurns } from '../helpers/completion.js';
import { asOtherTask } from '../helpers/other-task.js';

/** test_mutex's TIMEOUT (HZ/16), as event-loop turns. */
const TIMEOUT_TURNS = 25;

const CLASSES: readonly (readonly [string, string, WwAlgorithm])[] = [
  ['test-ww_mutex (wound)', 'ww_class', 'wound-wait'],
  ['test-ww_mutex (die)', 'wd_class', 'wait-die'],
];

/** A context that already holds `mutexes` (uncontended). */
async function holding(cls: WwClass, ...mutexes: WwMutex[]): Promise<WwAcquireCtx> {
  const ctx = new WwAcquireCtx(cls);
  for (const m of mutexes) await m.lock(ctx);
  return ctx;
}

function release(ctx: WwAcquireCtx | null, ...mutexes: WwMutex[]): void {
  for (const m of mutexes) m.unlock();
  ctx?.fini();
}

function mutexes(cls: WwClass, n: number, prefix = 'm'): WwMutex[] {
  return Array.from({ length: n }, (_, i) => new WwMutex(cls, `${prefix}${i}`));
}

function registerSuite(title: string, className: string, algorithm: WwAlgorithm): void {
  describe(title, () => {
    const cls = new WwClass(className, algorithm);
    const waitDie = algorithm === 'wait-die';

    it('sanity: an uncontended lock is taken synchronously and unlock frees it', async () => {
      assert.equal(cls.isWaitDie, waitDie);
      const m = new WwMutex(cls, 'sanity');
      const ctx = new WwAcquireCtx(cls);
      const p = m.lock(ctx);
      assert.equal(m.isLocked, true);
      assert.equal(m.holder, ctx);
      assert.equal(ctx.acquired, 1);
      await p;
      m.unlock();
      assert.equal(m.isLocked, false);
      assert.equal(m.holder, null);
      assert.equal(ctx.acquired, 0);
      ctx.fini();
    });

    it('unlock hands the mutex to the first waiter before it returns', async () => {
      const m = new WwMutex(cls);
      const [a, b] = [new WwAcquireCtx(cls), new WwAcquireCtx(cls)];
      await m.lock(a);
      const pb = m.lock(b);
      assert.equal(m.waiters, 1);
      m.unlock();
      assert.equal(m.holder, b);
      assert.equal(m.waiters, 0);
      assert.equal(b.acquired, 1);
      await pb;
      release(b, m);
      a.fini();
    });

    describe('test_mutex', () => {
      for (let flags = 0; flags < 8; flags++) {
        const spin = (flags & 1) !== 0;
        const tryLock = (flags & 2) !== 0;
        const withCtx = (flags & 4) !== 0;
        const label =
          [spin ? 'SPIN' : '', tryLock ? 'TRY' : '', withCtx ? 'CTX' : ''].filter(Boolean).join('|') || 'none';
        it(`test_mutex flags=${label}: the worker does not get the mutex while main holds it`, async () => {
          const m = new WwMutex(cls, 'test_mutex');
          const ready = new Completion();
          const go = new Completion();
          const done = new Completion();
          const worker = (async () => {
            ready.complete();
            await go.wait();
            if (tryLock) {
              for (let spins = 0; !m.tryLock(null); spins++) {
                assert.ok(spins < HANG_TURNS, 'worker never got the mutex');
                await nextTurn();
              }
            } else {
              await asOtherTask(() => m.lock(null));
            }
            done.complete();
            m.unlock();
          })();
          await ready.wait();
          const ctx = withCtx ? new WwAcquireCtx(cls) : null;
          await m.lock(ctx);
          go.complete();
          let early = false;
          if (spin) {
            for (let i = 0; i < TIMEOUT_TURNS && !early; i++) {
              early = done.done;
              await nextTurn();
            }
          } else {
            early = await done.waitTurns(TIMEOUT_TURNS);
          }
          assert.equal(early, false, 'mutual exclusion failure');
          assert.equal(m.holder, ctx);
          release(ctx, m);
          await finish(worker, 'worker');
          assert.equal(done.done, true);
          assert.equal(m.isLocked, false);
        });
      }
    });

    describe('test_aa', () => {
      for (const trylock of [false, true]) {
        const mode = trylock ? 'trylock' : 'lock';
        it(`test_aa(${mode}): a context cannot take what it holds; lock says EALREADY`, async () => {
          const m = new WwMutex(cls, 'aa');
          const ctx = new WwAcquireCtx(cls);
          if (trylock) assert.equal(m.tryLock(ctx), true);
          else await m.lock(ctx);
          assert.equal(m.tryLock(null), false, 'trylock(NULL) succeeded on a held mutex');
          assert.equal(m.tryLock(ctx), false, 'trylock(ctx) succeeded on a mutex the context holds');
          const err = await m.lock(ctx).then(
            () => null,
            (e: unknown) => e,
          );
          assert.ok(err instanceof AlreadyLockedError, `expected EALREADY, got ${String(err)}`);
          assert.equal(err.code, 'EALREADY');
          assert.equal(ctx.acquired, 1, 'EALREADY changed the count');
          assert.equal(m.holder, ctx);
          release(ctx, m);
        });
      }
    });

    describe('algorithm', () => {
      it('a context holding nothing waits behind an older holder instead of backing off', async () => {
        const m = new WwMutex(cls);
        const old = await holding(cls, m);
        const young = new WwAcquireCtx(cls);
        const p = watch(m.lock(young));
        await yieldTurns(3);
        assert.equal(p().state, 'pending');
        assert.equal(m.waiters, 1);
        m.unlock();
        old.fini();
        await yieldTurns(1);
        assert.equal(p().state, 'fulfilled');
        assert.equal(m.holder, young);
        release(young, m);
      });

      it('a plain lock (no context) waits and never backs off', async () => {
        const m = new WwMutex(cls);
        const ctx = await holding(cls, m);
        const p = watch(m.lock(null));
        await yieldTurns(3);
        assert.equal(p().state, 'pending');
        m.unlock();
        await yieldTurns(1);
        assert.equal(p().state, 'fulfilled');
        assert.equal(m.holder, null);
        assert.equal(m.isLocked, true);
        release(ctx);
        m.unlock();
      });

      it('waiters with a context queue by stamp; waiters without one keep their place (FIFO)', async () => {
        const m = new WwMutex(cls);
        await asOtherTask(() => m.lock(null));
        const ctxs = [1, 2, 3, 4].map(() => new WwAcquireCtx(cls)); // c1 oldest
        const order: string[] = [];
        const take = (name: string, ctx: WwAcquireCtx | null) =>
          m.lock(ctx).then(() => {
            order.push(name);
            m.unlock();
          });
        const tasks = [
          take('c3', ctxs[2]!),
          take('p1', null),
          take('c1', ctxs[0]!),
          take('c4', ctxs[3]!),
          take('p2', null),
          take('c2', ctxs[1]!),
        ];
        assert.equal(m.waiters, 6, 'a context holding nothing must queue, not back off');
        m.unlock();
        for (const t of tasks) await finish(t, 'waiter');
        assert.deepEqual(order, ['c1', 'c2', 'c3', 'p1', 'c4', 'p2']);
        for (const ctx of ctxs) ctx.fini();
      });

      it('an aborted waiter rejects with signal.reason and the others still acquire in order', async () => {
        const m = new WwMutex(cls);
        await asOtherTask(() => m.lock(null));
        const [a, b, c] = [new WwAcquireCtx(cls), new WwAcquireCtx(cls), new WwAcquireCtx(cls)];
        const ac = new AbortController();
        const order: string[] = [];
        const take = (name: string, ctx: WwAcquireCtx | null, signal?: AbortSignal) =>
          m.lock(ctx, signal ? { signal } : {}).then(() => {
            order.push(name);
            m.unlock();
          });
        const ta = take('a', a);
        const tb = watch(take('b', b, ac.signal));
        const tp = take('p', null);
        const tc = take('c', c);
        assert.equal(m.waiters, 4);
        const reason = new Error('user cancelled');
        ac.abort(reason);
        await yieldTurns(1);
        const got = tb();
        assert.equal(got.state, 'rejected');
        assert.equal(got.state === 'rejected' && got.reason, reason, 'must reject with signal.reason itself');
        assert.equal(m.waiters, 3);
        const pre = watch(m.lock(b, { signal: AbortSignal.abort(reason) }));
        await yieldTurns(1);
        assert.deepEqual(pre(), { state: 'rejected', reason }, 'an aborted signal rejects at once');
        assert.equal(m.waiters, 3, 'an already aborted signal must not queue');
        m.unlock();
        for (const t of [ta, tp, tc]) await finish(t, 'waiter');
        assert.deepEqual(order, ['a', 'p', 'c']);
        assert.equal(m.isLocked, false);
        for (const ctx of [a, b, c]) ctx.fini();
      });

      it("cancelWait rejects the context's pending lock with the reason; the queue goes on", async () => {
        const m = new WwMutex(cls);
        await asOtherTask(() => m.lock(null));
        const [a, b] = [new WwAcquireCtx(cls), new WwAcquireCtx(cls)];
        assert.equal(b.cancelWait(new Error('idle')), false, 'nothing to cancel');
        const pa = m.lock(a);
        const pb = watch(m.lock(b));
        const reason = new Error('transaction abandoned');
        assert.equal(b.cancelWait(reason), true);
        await yieldTurns(1);
        assert.deepEqual(pb(), { state: 'rejected', reason });
        assert.equal(m.waiters, 1);
        assert.equal(b.cancelWait(reason), false, 'the wait is already gone');
        m.unlock();
        await pa;
        assert.equal(m.holder, a);
        release(a, m);
        b.fini();
      });

      it('deadlock injection: countdown starts at stamp & 0xf and the interval grows x3.5', async () => {
        const ctx = new WwAcquireCtx(cls, { deadlockInjection: true });
        let [held, probe] = mutexes(cls, 2) as [WwMutex, WwMutex];
        await held.lock(ctx);
        const expected: number[] = [ctx.stamp & 0xf];
        for (let interval = 1; expected.length < 5; ) {
          interval = interval * 2 + interval + Math.floor(interval / 2);
          expected.push(expected[expected.length - 1]! + interval + 1);
        }
        const injected: number[] = [];
        for (let attempt = 0; injected.length < expected.length && attempt < 1000; attempt++) {
          const err = await probe.lock(ctx).then(
            () => null,
            (e: unknown) => e,
          );
          if (err === null) {
            probe.unlock();
            continue;
          }
          assert.ok(err instanceof WwDeadlockError, String(err));
          assert.equal(err.contended, probe);
          assert.equal(ctx.contendingLock, probe);
          assert.equal(probe.isLocked, false, 'an injected back-off releases the lock it just took');
          assert.equal(ctx.acquired, 1);
          injected.push(attempt);
          held.unlock();
          await probe.lockSlow(ctx);
          [held, probe] = [probe, held];
        }
        assert.deepEqual(injected, expected, `stamp ${ctx.stamp}`);
        release(ctx, held);
      });

      it('deadlock injection is off by default and inherited from the class when on', async () => {
        const [x, y] = mutexes(cls, 2);
        const plain = await holding(cls, x!);
        for (let i = 0; i < 100; i++) {
          await y!.lock(plain);
          y!.unlock();
        }
        release(plain, x!);
        const injecting = new WwClass(`${className}-inject`, algorithm);
        injecting.deadlockInjection = true;
        const [p, q] = mutexes(injecting, 2) as [WwMutex, WwMutex];
        const ctx = await holding(injecting, p);
        let err: unknown = null;
        for (let i = 0; i <= 16 && err === null; i++) {
          err = await q.lock(ctx).then(
            () => null,
            (e: unknown) => e,
          );
          if (err === null) q.unlock();
        }
        assert.ok(err instanceof WwDeadlockError, 'no injected back-off within 16 locks');
        release(ctx, p);
      });

      if (waitDie) {
        it('wait-die: a younger context holding locks dies at once when the holder is older', async () => {
          const [m, y] = mutexes(cls, 2) as [WwMutex, WwMutex];
          const old = await holding(cls, m);
          const young = await holding(cls, y);
          const err = await outcome(m.lock(young), 'young lock');
          assert.ok(err instanceof WwDeadlockError, String(err));
          assert.equal(err.code, 'EDEADLK');
          assert.equal(err.contended, m);
          assert.equal(young.contendingLock, m);
          assert.equal(m.waiters, 0);
          assert.equal(m.holder, old);
          y.unlock();
          const slow = m.lockSlow(young);
          release(old, m);
          await slow;
          assert.equal(young.contendingLock, null, 'acquiring the contended lock clears it');
          release(young, m);
        });

        it('wait-die: an older context waits for a younger holder, which is not disturbed', async () => {
          const [m, o, n] = mutexes(cls, 3) as [WwMutex, WwMutex, WwMutex];
          const old = await holding(cls, o);
          const young = await holding(cls, m);
          const po = watch(m.lock(old));
          await asOtherTask(() => n.lock(null));
          const py = watch(n.lock(young));
          await yieldTurns(3);
          assert.equal(po().state, 'pending');
          assert.equal(py().state, 'pending', 'wait-die does not wound the holder');
          n.unlock();
          await yieldTurns(1);
          assert.equal(py().state, 'fulfilled');
          release(young, n, m);
          await yieldTurns(1);
          assert.equal(po().state, 'fulfilled');
          release(old, m, o);
        });

        it('wait-die: early kill when queueing behind an older waiter', async () => {
          const [m, y] = mutexes(cls, 2) as [WwMutex, WwMutex];
          await asOtherTask(() => m.lock(null));
          const old = new WwAcquireCtx(cls);
          const po = m.lock(old);
          const young = await holding(cls, y);
          const err = await outcome(m.lock(young), 'young lock');
          assert.ok(err instanceof WwDeadlockError, 'no point in queueing behind an older context');
          assert.equal(m.waiters, 1);
          const empty = new WwAcquireCtx(cls);
          const pe = m.lock(empty);
          assert.equal(m.waiters, 2, 'a context holding nothing queues behind an older one');
          m.unlock();
          await po;
          m.unlock();
          await pe;
          release(empty, m);
          release(young, y);
          old.fini();
        });

        it('wait-die: an older waiter queueing ahead wakes a younger waiter holding locks, which dies', async () => {
          const [m, y] = mutexes(cls, 2) as [WwMutex, WwMutex];
          const old = new WwAcquireCtx(cls);
          const young = await holding(cls, y);
          await asOtherTask(() => m.lock(null));
          const py = watch(m.lock(young));
          await yieldTurns(2);
          assert.equal(py().state, 'pending', 'nobody older around yet');
          const po = m.lock(old);
          await yieldTurns(1);
          const got = py();
          assert.ok(got.state === 'rejected' && got.reason instanceof WwDeadlockError, `young waiter: ${got.state}`);
          assert.equal(m.waiters, 1);
          m.unlock();
          await po;
          assert.equal(m.holder, old);
          release(old, m);
          release(young, y);
        });
      } else {
        it(
          'wound-wait: an older requester wounds a younger holder, ' + 'which dies only at its next contended lock',
          async () => {
            const [m, o, f, n] = mutexes(cls, 4) as [WwMutex, WwMutex, WwMutex, WwMutex];
            const old = await holding(cls, o);
            const young = await holding(cls, m);
            const po = watch(asOtherTask(() => m.lock(old)));
            await yieldTurns(2);
            assert.equal(po().state, 'pending', 'the older requester waits');
            await f.lock(young); // uncontended: the wound is not noticed yet
            assert.equal(young.acquired, 2);
            await asOtherTask(() => n.lock(null));
            const err = await outcome(n.lock(young), 'wounded lock');
            assert.ok(err instanceof WwDeadlockError, `wounded holder must back off, got ${String(err)}`);
            assert.equal(young.contendingLock, n);
            assert.equal(n.waiters, 0);
            m.unlock();
            f.unlock();
            await yieldTurns(1);
            assert.equal(po().state, 'fulfilled');
            assert.equal(m.holder, old);
            const slow = watch(n.lockSlow(young));
            n.unlock();
            await yieldTurns(1);
            assert.equal(slow().state, 'fulfilled');
            const again = watch(m.lock(young)); // younger requester: waits, no wound
            await yieldTurns(2);
            assert.equal(again().state, 'pending');
            release(old, m, o);
            await yieldTurns(1);
            assert.equal(again().state, 'fulfilled');
            release(young, m, n);
          },
        );

        it('wound-wait: a wounded holder asleep on another lock is woken and dies', async () => {
          const [m, o, n] = mutexes(cls, 3) as [WwMutex, WwMutex, WwMutex];
          const old = await holding(cls, o);
          const young = await holding(cls, m);
          await asOtherTask(() => n.lock(null));
          const py = watch(n.lock(young));
          await yieldTurns(2);
          assert.equal(py().state, 'pending');
          const po = m.lock(old);
          await yieldTurns(1);
          const got = py();
          assert.ok(got.state === 'rejected' && got.reason instanceof WwDeadlockError, `wounded sleeper: ${got.state}`);
          assert.equal(n.waiters, 0);
          m.unlock();
          await po;
          release(old, m, o);
          n.unlock();
          young.fini();
        });

        it('wound-wait: younger requesters and requesters holding nothing do not wound', async () => {
          const [m, o, y, n] = mutexes(cls, 4) as [WwMutex, WwMutex, WwMutex, WwMutex];
          const old = await holding(cls, m, o);
          const mid = new WwAcquireCtx(cls); // older than young, holds nothing
          const young = await holding(cls, y);
          const pYoung = watch(m.lock(young));
          await asOtherTask(() => n.lock(null));
          const pOld = watch(n.lock(old));
          const pEmpty = watch(y.lock(mid)); // older than the holder of y, but holds nothing
          await yieldTurns(3);
          assert.equal(pYoung().state, 'pending');
          assert.equal(pOld().state, 'pending', 'the holder was wounded by a younger requester');
          assert.equal(pEmpty().state, 'pending');
          n.unlock();
          await yieldTurns(1);
          assert.equal(pOld().state, 'fulfilled');
          release(old, n, m, o);
          await yieldTurns(1);
          assert.equal(pYoung().state, 'fulfilled', 'young was wounded by a requester holding nothing');
          release(young, m, y);
          await yieldTurns(1);
          assert.equal(pEmpty().state, 'fulfilled');
          release(mid, y);
        });

        it('wound-wait: a wounded context that let go of everything is no longer wounded', async () => {
          const [m, o, n, q] = mutexes(cls, 4) as [WwMutex, WwMutex, WwMutex, WwMutex];
          const old = await holding(cls, o);
          const young = await holding(cls, m);
          const po = asOtherTask(() => m.lock(old)); // wounds young
          m.unlock(); // young lets go without ever blocking
          await po;
          await asOtherTask(() => n.lock(null));
          await asOtherTask(() => q.lock(null));
          const pn = watch(n.lock(young));
          await yieldTurns(2);
          assert.equal(pn().state, 'pending', 'a context holding nothing never dies');
          n.unlock();
          await yieldTurns(1);
          assert.equal(pn().state, 'fulfilled');
          const pq = watch(q.lock(young)); // contended, holding n: only a stale wound would kill it
          await yieldTurns(2);
          assert.equal(pq().state, 'pending', 'the wound survived holding nothing');
          q.unlock();
          await yieldTurns(1);
          assert.equal(pq().state, 'fulfilled');
          release(young, n, q);
          release(old, m, o);
        });
      }
    });

    describe('debug checks', () => {
      /** Gets `ctx` (holding `held`) an EDEADLK on `contended`; `cleanup` releases the others. */
      async function provokeDeadlock(): Promise<{
        ctx: WwAcquireCtx;
        held: WwMutex;
        contended: WwMutex;
        cleanup: () => Promise<void>;
      }> {
        const [held, contended, o] = mutexes(cls, 3, 'dbg') as [WwMutex, WwMutex, WwMutex];
        if (waitDie) {
          const old = await holding(cls, contended);
          const ctx = await holding(cls, held);
          const err = await outcome(contended.lock(ctx), 'lock');
          assert.ok(err instanceof WwDeadlockError);
          return { ctx, held, contended, cleanup: async () => release(old, contended) };
        }
        const old = await holding(cls, o);
        const ctx = await holding(cls, held);
        const wounding = held.lock(old); // older and holding o: wounds ctx
        await asOtherTask(() => contended.lock(null));
        const err = await outcome(contended.lock(ctx), 'lock');
        assert.ok(err instanceof WwDeadlockError);
        return {
          ctx,
          held,
          contended,
          cleanup: async () => {
            contended.unlock();
            await wounding;
            release(old, held, o);
          },
        };
      }

      it('locking after done() is a BugError and changes nothing', async () => {
        const m = new WwMutex(cls);
        const ctx = new WwAcquireCtx(cls);
        ctx.done();
        await assert.rejects(m.lock(ctx), BugError);
        assert.equal(m.isLocked, false);
        assert.equal(ctx.acquired, 0);
        ctx.fini();
      });

      it(
        'after EDEADLK: ' + 'other locks, the same lock with locks held, and lockSlow elsewhere are BugErrors',
        async () => {
          const { ctx, held, contended, cleanup } = await provokeDeadlock();
          const other = new WwMutex(cls, 'other');
          await assert.rejects(other.lock(ctx), BugError, 'a different mutex before backing off');
          assert.equal(other.isLocked, false);
          await assert.rejects(contended.lock(ctx), BugError, 'the contended mutex before unlocking everything');
          await assert.rejects(contended.lockSlow(ctx), BugError, 'lockSlow with locks held');
          held.unlock();
          await assert.rejects(other.lockSlow(ctx), BugError, 'lockSlow on a lock that did not report EDEADLK');
          assert.equal(other.isLocked, false);
          assert.equal(ctx.contendingLock, contended, 'the bookkeeping survived the failed calls');
          const slow = watch(contended.lockSlow(ctx));
          await cleanup();
          await yieldTurns(1);
          assert.equal(slow().state, 'fulfilled');
          assert.equal(contended.holder, ctx);
          release(ctx, contended);
        },
      );

      it(
        'issue 10 defect 2: ' + 'a second lock while one is pending on the context is a BugError that changes nothing',
        async () => {
          const [x, a, b] = mutexes(cls, 3, 'pair') as [WwMutex, WwMutex, WwMutex];
          const ctx = await holding(cls, x); // older than the holder: its lock of a waits in both classes
          const holder = await holding(cls, a, b);
          // The natural Promise.all: the first lock queues, the second must be refused at once.
          const first = watch(a.lock(ctx));
          const second = watch(b.lock(ctx));
          await yieldTurns(1);
          const refused = second();
          assert.ok(
            refused.state === 'rejected' && refused.reason instanceof BugError,
            `the second lock must be refused with a BugError, got ${JSON.stringify(refused.state)}`,
          );
          assert.match((refused.reason as Error).message, /pending/, 'the message says a lock is already pending');
          assert.equal(b.waiters, 0, 'b gained no waiter');
          assert.equal(b.holder, holder, 'b is still held by its holder');
          assert.equal(ctx.acquired, 1, 'the context still holds only x');
          assert.throws(() => b.tryLock(ctx), BugError, 'tryLock while a lock is pending is refused too');
          release(holder, a, b);
          await yieldTurns(2);
          const state = first();
          assert.equal(state.state, 'fulfilled', 'the first lock got a once it was free');
          assert.equal(ctx.acquired, 2, 'the context holds x and a, nothing else');
          release(ctx, a, x);
        },
      );

      it('acquire(ctx) gives a guard for using; the guard waits its turn like lock() and unlocks once', async () => {
        const m = new WwMutex(cls, 'guarded');
        const ctx = new WwAcquireCtx(cls);
        {
          using guard = await m.acquire(ctx);
          assert.equal(m.holder, ctx);
          const other = watch(m.acquire());
          await yieldTurns(1);
          assert.equal(other().state, 'pending', 'a second acquire waits in the queue');
          guard.unlock();
          await yieldTurns(1);
          const state = other();
          assert.ok(state.state === 'fulfilled', 'it got the mutex at the hand-off');
          state.value[Symbol.dispose]();
        }
        assert.equal(m.isLocked, false);
        assert.equal(ctx.acquired, 0);
        await assert.rejects(m.acquire({} as never), InvalidArgumentError);
        ctx.fini();
      });

      it('lockSlow without a back-off is a BugError', async () => {
        const m = new WwMutex(cls);
        const ctx = new WwAcquireCtx(cls);
        await assert.rejects(m.lockSlow(ctx), BugError);
        assert.equal(m.isLocked, false);
        ctx.fini();
      });

      it('a mutex and a context of different classes do not mix', async () => {
        const other = new WwClass('other_class', algorithm);
        const m = new WwMutex(other);
        const ctx = new WwAcquireCtx(cls);
        await assert.rejects(m.lock(ctx), BugError);
        assert.equal(m.isLocked, false);
        ctx.fini();
      });

      it('fini with locks held is a BugError; after unlocking it works; a second fini is a BugError', async () => {
        const m = new WwMutex(cls);
        const ctx = new WwAcquireCtx(cls);
        await m.lock(ctx);
        assert.throws(() => ctx.fini(), BugError);
        assert.equal(ctx.isFinished, false);
        m.unlock();
        ctx.fini();
        assert.equal(ctx.isFinished, true);
        assert.throws(() => ctx.fini(), BugError);
      });

      it('unlocking an unlocked mutex is a BugError', async () => {
        const m = new WwMutex(cls);
        assert.throws(() => m.unlock(), BugError);
        const ctx = new WwAcquireCtx(cls);
        await m.lock(ctx);
        m.unlock();
        assert.throws(() => m.unlock(), BugError);
        assert.equal(ctx.acquired, 0);
        ctx.fini();
      });

      it('[Symbol.dispose] finishes the context and is idempotent after fini', async () => {
        const m = new WwMutex(cls);
        let kept: WwAcquireCtx;
        {
          using ctx = new WwAcquireCtx(cls);
          kept = ctx;
          await m.lock(ctx);
          m.unlock();
        }
        assert.equal(kept.isFinished, true);
        const ctx = new WwAcquireCtx(cls);
        ctx.fini();
        ctx[Symbol.dispose]();
        ctx[Symbol.dispose]();
        assert.equal(ctx.isFinished, true);
      });
    });
  });
}

for (const [title, className, algorithm] of CLASSES) registerSuite(title, className, algorithm);

describe('the fast paths DrmExec relies on (internal)', () => {
  it('a lock with a context taken at once returns wwLockGranted; one that has to wait does not', async () => {
    const cls = new WwClass('fast-granted', 'wait-die');
    const m = new WwMutex(cls, 'm');
    const ctx = new WwAcquireCtx(cls);
    assert.equal(m.lock(ctx), wwLockGranted);
    const other = new WwAcquireCtx(cls); // younger, holding nothing: it waits
    const queued = m.lock(other);
    assert.notEqual(queued, wwLockGranted);
    assert.equal(wwBackOffOf(queued), undefined, 'a queued request is no back-off');
    assert.equal(m.waiters, 1);
    release(ctx, m);
    await queued;
    assert.equal(m.holder, other);
    release(other, m);
  });

  it('a back-off refused at once is known through wwBackOffOf before it rejects, and queues nothing', async () => {
    const cls = new WwClass('fast-backoff', 'wait-die');
    const [a, b] = mutexes(cls, 2) as [WwMutex, WwMutex];
    const older = await holding(cls, a);
    const younger = await holding(cls, b);
    const refused = a.lock(younger);
    const error = wwBackOffOf(refused);
    assert.ok(error instanceof WwDeadlockError, 'the younger, holding b, dies at once on the older holder');
    assert.equal(error.contended, a);
    assert.equal(
      error.message,
      'WwMutex(m0): back off (wait-die: the holder is older); ' +
        'unlock everything held with the acquire context, then lockSlow(m0)',
      'the message names the mutex, the reason and the way out',
    );
    assert.equal(younger.contendingLock, a);
    assert.equal(a.waiters, 0, 'nothing was queued');
    await assert.rejects(refused, (err) => err === error);
    release(younger, b);
    const again = await holding(cls, b); // younger still, holding b after the first one let go
    const refusedAgain = a.lock(again);
    assert.equal(wwBackOffOf(refusedAgain), error, 'the same reason on the same mutex: the same error, like an errno');
    await assert.rejects(refusedAgain, (err) => err === error);
    release(again, b);
    assert.equal(wwBackOffOf(Promise.reject(error).catch(() => undefined) as Promise<void>), undefined);
    release(older, a);
  });
});
