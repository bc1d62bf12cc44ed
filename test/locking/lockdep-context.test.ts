/**
 * lockdep, continued: how the validator follows held locks across `await` (per async context,
 * sibling tasks, lockdepTask, hand-offs between tasks, trylocks, aborted requests) and how it
 * treats ww classes (one acquire context nests freely, two do not). The reports, modes and the
 * documented patterns are in lockdep.test.ts; the long-running fence rules in
 * test/fence/long-running.test.ts.
 *
 * Every case runs in 'record' mode (set in beforeEach, the previous state restored in afterEach),
 * so the file passes both plainly and under `DMABUF_LOCKDEP=1` (throw mode). Orders are checked
 * with probes: a task of its own taking two locks in the reverse order reports exactly when the
 * order under test was recorded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DmaResv,
  Mutex,
  WwAcquireCtx,
  WwClass,
  WwMutex,
  beginSignalling,
  disableLockdep,
  enableLockdep,
  endSignalling,
  lockdepReports,
  lockdepTask,
  mightReclaim,
  resetLockdep,
  reservationWwClass,
  signallingSection,
} from '../../src/node.js';
import { dmaFenceMap, fsReclaim } from '../../src/base/lockdep-hooks.js';
import { nextTurn } from '../helpers/completion.js';
import { nest, probe, recordMode, seen } from '../helpers/lockdep-mode.js';
import { mockFence } from '../helpers/mock-fence.js';
import { asOtherTask } from '../helpers/other-task.js';

const MAP = dmaFenceMap.name;
const RECLAIM = fsReclaim.name;
const RESV = reservationWwClass.lockClass.name;

describe('lockdep: held locks follow await, per async context', () => {
  recordMode();

  it('a lock taken before an await is held after it', async () => {
    const a = new Mutex('held.a');
    const b = new Mutex('held.b');
    await lockdepTask(async () => {
      await a.lock();
      await nextTurn();
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      await b.lock(); // records a -> b
      b.unlock();
      a.unlock();
    });
    await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency held.b -> held.a']);
  });

  it('a lock granted after waiting (contended) is held after the await', async () => {
    const a = new Mutex('held.contended');
    const b = new Mutex('held.next');
    await a.lock();
    const task = lockdepTask(async () => {
      await a.lock(); // waits for the test to unlock
      await nextTurn();
      await b.lock();
      b.unlock();
      a.unlock();
    });
    await nextTurn();
    assert.equal(a.waiters, 1);
    a.unlock();
    await task;
    await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency held.next -> held.contended']);
  });

  it("sibling tasks started in one synchronous stretch do not see each other's locks", async () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Mutex(`sibling.${n}`)) as [Mutex, Mutex, Mutex, Mutex];
    const siblings = async (): Promise<void> => {
      const t1 = async (): Promise<void> => {
        await a.lock();
        await nextTurn();
        await c.lock(); // b is held by the sibling now; only a -> c is ours
        c.unlock();
        a.unlock();
      };
      const t2 = async (): Promise<void> => {
        await b.lock();
        await nextTurn();
        await d.lock();
        d.unlock();
        b.unlock();
      };
      await Promise.all([t1(), t2()]);
    };
    // Each leak a sibling could cause (x -> y) is probed in a fresh graph: y then x would close it.
    const leaks: [Mutex, Mutex][] = [
      [a, b],
      [a, d],
      [b, a],
      [b, c],
    ];
    for (const [x, y] of leaks) {
      resetLockdep();
      await lockdepTask(siblings);
      await probe(y, x);
      assert.deepEqual(seen(), [], `${x.name} -> ${y.name} leaked between siblings`);
    }
    // The control: each task's own order was recorded.
    resetLockdep();
    await lockdepTask(siblings);
    await probe(c, a);
    await probe(d, b);
    assert.deepEqual(seen(), [
      'circular-dependency sibling.c -> sibling.a',
      'circular-dependency sibling.d -> sibling.b',
    ]);
  });

  it('lockdepTask: the task starts holding nothing, even when its starter holds locks', async () => {
    const a = new Mutex('task.a');
    const b = new Mutex('task.b');
    await lockdepTask(async () => {
      await a.lock();
      await lockdepTask(() => nest(b)); // would record a -> b if it inherited a
      a.unlock();
    });
    await probe(b, a);
    assert.deepEqual(seen(), []);
  });

  it('lockdepTask: the starter does not hold what the task took (task awaiting inside)', async () => {
    const c = new Mutex('task.c');
    const d = new Mutex('task.d');
    await lockdepTask(async () => {
      await lockdepTask(async () => {
        await c.lock(); // c stays locked, held by the inner task
      });
      await d.lock(); // would record c -> d if the starter held c
      d.unlock();
    });
    assert.equal(c.isLocked, true);
    c.unlock();
    await probe(d, c);
    assert.deepEqual(seen(), []);
  });

  it('lockdepTask: the starter does not hold what the task took (task returning the lock promise)', async () => {
    const c = new Mutex('task.direct.c');
    const d = new Mutex('task.direct.d');
    const e = new Mutex('task.direct.e');
    await lockdepTask(async () => {
      await lockdepTask(() => c.lock()); // from a starter holding nothing
      await lockdepTask(async () => e.lock());
      await d.lock(); // would record c -> d and e -> d if the starter held them
      d.unlock();
    });
    c.unlock();
    e.unlock();
    await probe(d, c);
    await probe(d, e);
    assert.deepEqual(seen(), []);
  });

  it('a lock released in another async context no longer counts as held', async () => {
    const a = new Mutex('handoff.a');
    const b = new Mutex('handoff.b');
    await lockdepTask(async () => {
      await a.lock();
      await asOtherTask(() => a.unlock()); // the other task releases it
      assert.equal(a.isLocked, false);
      await b.lock(); // a is no longer held here: no a -> b
      b.unlock();
    });
    await probe(b, a);
    assert.deepEqual(seen(), []);
  });

  it('an aborted lock request never counts as held', async () => {
    const a = new Mutex('abort.a');
    const b = new Mutex('abort.b');
    await asOtherTask(() => a.lock());
    await lockdepTask(async () => {
      const ac = new AbortController();
      const pending = a.lock({ signal: ac.signal });
      ac.abort(new Error('gave up'));
      await assert.rejects(pending, /gave up/);
      await b.lock();
      b.unlock();
    });
    a.unlock();
    await probe(b, a);
    assert.deepEqual(seen(), []);
  });

  it('a trylock records nothing, yet counts as held for what is taken under it', async () => {
    const a = new Mutex('try.a');
    const b = new Mutex('try.b');
    const c = new Mutex('try.c');
    const d = new Mutex('try.d');
    await lockdepTask(async () => {
      await a.lock();
      assert.equal(b.tryLock(), true); // no a -> b
      b.unlock();
      a.unlock();
    });
    await probe(b, a);
    assert.deepEqual(seen(), []);
    await lockdepTask(async () => {
      assert.equal(c.tryLock(), true);
      await d.lock(); // c -> d
      d.unlock();
      c.unlock();
    });
    await probe(d, c);
    assert.deepEqual(seen(), ['circular-dependency try.d -> try.c']);
  });

  it('a trylocked lock is still held after awaiting a promise-returning call', async () => {
    const c = new Mutex('try.await.c');
    const d = new Mutex('try.await.d');
    await lockdepTask(async () => {
      assert.equal(c.tryLock(), true);
      await nextTurn(); // creates its promise before the await: takes the hand-off
      await d.lock(); // c -> d expected
      d.unlock();
      c.unlock();
    });
    await probe(d, c);
    assert.deepEqual(seen(), ['circular-dependency try.await.d -> try.await.c']);
  });

  it('a signalling section is still open after awaiting a fence wait inside it', async () => {
    const f = mockFence();
    queueMicrotask(() => f.signal());
    const cookie = beginSignalling();
    await f.wait();
    mightReclaim();
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
  });
});

describe('lockdep: scoped signalling sections', () => {
  recordMode();

  it(
    'signallingSection(fn) stays open across every await in fn: ' + 'a reservation lock after waits is reported',
    async () => {
      const resv = new DmaResv({ name: 'scoped.bo' });
      const gate = new Mutex('scoped.gate');
      const f = mockFence();
      await asOtherTask(() => gate.lock());
      queueMicrotask(() => f.signal());
      setImmediate(() => gate.unlock());
      const result = await signallingSection(async () => {
        await f.wait(); // a callee's promise
        await gate.lock(); // a contended lock
        gate.unlock();
        await nextTurn();
        await resv.lock();
        resv.unlock();
        return 'done';
      });
      assert.equal(result, 'done');
      assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RESV}`]);
    },
  );

  it('nothing after the scoped section, nor the code beside a pending one, is inside it', async () => {
    let inside = false;
    const pending = signallingSection(async () => {
      await nextTurn();
      inside = true;
    });
    mightReclaim(); // the caller's code next to the pending section
    await pending;
    assert.equal(inside, true);
    mightReclaim(); // after it
    assert.deepEqual(seen(), []);
    signallingSection(() => mightReclaim()); // the control: inside, it is a report
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
  });

  it('returns what fn returns; a throwing or rejecting fn closes the section', async () => {
    assert.equal(
      signallingSection(() => 42),
      42,
    );
    const boom = new Error('boom');
    assert.throws(
      () =>
        signallingSection(() => {
          throw boom;
        }),
      (err: unknown) => err === boom,
    );
    await assert.rejects(
      signallingSection(async () => {
        await nextTurn();
        throw boom;
      }),
      (err: unknown) => err === boom,
    );
    mightReclaim();
    assert.deepEqual(seen(), [], 'both sections closed');
  });

  it('sections nested in a scoped one are free and leave it open', async () => {
    await signallingSection(async () => {
      const cookie = beginSignalling(); // nested: a no-op cookie
      endSignalling(cookie);
      await signallingSection(() => nextTurn()); // nested: just runs fn
      assert.deepEqual(seen(), []);
      mightReclaim(); // still inside the outer section
    });
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
  });

  it('with the validator off it just runs fn', async () => {
    disableLockdep();
    assert.equal(await signallingSection(async () => 'ran'), 'ran');
    enableLockdep({ mode: 'record' });
    mightReclaim();
    assert.deepEqual(seen(), []);
  });
});

describe('lockdep: ww classes', () => {
  recordMode();

  it('nesting locks of one ww class under one acquire context is legal', async () => {
    const cls = new WwClass('ldww.one', 'wait-die');
    const ms = [0, 1, 2].map((i) => new WwMutex(cls, `m${i}`));
    const ctx = new WwAcquireCtx(cls);
    for (const m of ms) await m.lock(ctx);
    for (const m of ms) m.unlock();
    ctx.fini();
    assert.deepEqual(seen(), []);
  });

  it('two acquire contexts of one class nested in one task are recursive locking', async () => {
    const cls = new WwClass('ldww.two', 'wound-wait');
    const m1 = new WwMutex(cls, 'm1');
    const m2 = new WwMutex(cls, 'm2');
    const ctx1 = new WwAcquireCtx(cls);
    const ctx2 = new WwAcquireCtx(cls);
    await m1.lock(ctx1);
    await m2.lock(ctx2);
    assert.equal(m2.holder, ctx2, 'record mode: the lock was still granted');
    m2.unlock();
    m1.unlock();
    ctx1.fini();
    ctx2.fini();
    assert.deepEqual(seen(), ['recursive-locking ldww.two']);
    const msg = lockdepReports()[0]!.message;
    assert.match(msg, /possible recursive locking/);
    assert.match(msg, /class ldww\.two/);
  });

  it('two plain mutexes sharing a name (one class) nested are recursive locking', async () => {
    const first = new Mutex('same.class');
    const second = new Mutex('same.class');
    await first.lock();
    await second.lock();
    second.unlock();
    first.unlock();
    assert.deepEqual(seen(), ['recursive-locking same.class']);
  });

  it('a ww trylock under another lock of the class records nothing', async () => {
    const cls = new WwClass('ldww.try', 'wait-die');
    const m1 = new WwMutex(cls, 'm1');
    const m2 = new WwMutex(cls, 'm2');
    await m1.lock();
    assert.equal(m2.tryLock(), true);
    m2.unlock();
    m1.unlock();
    assert.deepEqual(seen(), []);
  });
});
