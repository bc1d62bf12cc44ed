/**
 * Mutex: the plain async mutex (`struct mutex`): FIFO hand-off, tryLock, abortable waits,
 * runExclusive, the lock class per name, and what the validator sees of it (its reports carry
 * the acquisition sites in this file).
 *
 * The behaviour cases run with the validator as the suite sets it (off, or throw mode under
 * `DMABUF_LOCKDEP=1`); the validator cases switch to record mode and restore the state after.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { LockClass } from '../../src/base/lockdep-hooks.js';
import { Mutex } from '../../src/locking/mutex.js';
import { lockdepReports, lockdepTask } from '../../src/node.js';
import { nextTurn } from '../helpers/completion.js';
import { recordMode } from '../helpers/lockdep-mode.js';

/** Locks `m` in the background, recording `name` in `order` once granted. */
function queue(m: Mutex, order: string[], name: string, signal?: AbortSignal): Promise<void> {
  return m.lock(signal === undefined ? undefined : { signal }).then(() => {
    order.push(name);
  });
}

describe('Mutex', () => {
  it('sanity: lock, held, unlock, free again', async () => {
    const m = new Mutex('sanity');
    assert.equal(m.isLocked, false);
    await m.lock();
    assert.equal(m.isLocked, true);
    assert.equal(m.waiters, 0);
    assert.equal(String(m), 'Mutex(sanity)');
    m.unlock();
    assert.equal(m.isLocked, false);
  });

  it('an uncontended lock returns an already-resolved promise, the same one every time', async () => {
    const m = new Mutex('fast');
    const first = m.lock();
    m.unlock();
    const second = m.lock();
    assert.equal(first, second);
    await second;
    assert.equal(m.isLocked, true);
    m.unlock();
  });

  it('waiters acquire in the order they asked; unlock hands over before returning', async () => {
    const m = new Mutex('fifo');
    const order: string[] = [];
    await m.lock();
    const all = ['w1', 'w2', 'w3', 'w4'].map((name) => queue(m, order, name));
    assert.equal(m.waiters, 4);
    for (let i = 0; i < 4; i++) {
      m.unlock();
      // Handed over: still locked, one waiter fewer, and nobody can barge in.
      assert.equal(m.isLocked, true);
      assert.equal(m.waiters, 3 - i);
      assert.equal(m.tryLock(), false);
      await nextTurn();
      assert.equal(order.length, i + 1);
    }
    await Promise.all(all);
    assert.deepEqual(order, ['w1', 'w2', 'w3', 'w4']);
    m.unlock();
    assert.equal(m.isLocked, false);
  });

  it('late: after the last waiter unlocks, the next lock is uncontended', async () => {
    const m = new Mutex('fifo-late');
    await m.lock();
    const w = m.lock();
    m.unlock();
    await w;
    m.unlock();
    assert.equal(m.isLocked, false);
    await m.lock();
    assert.equal(m.waiters, 0);
    m.unlock();
  });

  it('tryLock takes a free mutex and fails on a held one without queueing', () => {
    const m = new Mutex('try');
    assert.equal(m.tryLock(), true);
    assert.equal(m.isLocked, true);
    assert.equal(m.tryLock(), false);
    assert.equal(m.waiters, 0);
    m.unlock();
    assert.equal(m.tryLock(), true, 'late: free again after unlock');
    m.unlock();
  });

  it('unlocking a free mutex is a BugError naming the mutex', async () => {
    const m = new Mutex('free');
    assert.throws(
      () => m.unlock(),
      (err: unknown) => err instanceof BugError && /Mutex\(free\).*not locked/.test(err.message),
    );
    await m.lock();
    m.unlock();
    assert.throws(() => m.unlock(), BugError, 'late: a second unlock');
    assert.equal(m.isLocked, false);
  });

  it('an aborted wait rejects with the reason and leaves the queue intact for the others', async () => {
    const m = new Mutex('abort');
    const order: string[] = [];
    await m.lock();
    const ac = new AbortController();
    const first = queue(m, order, 'first');
    const middle = queue(m, order, 'middle', ac.signal);
    const last = queue(m, order, 'last');
    assert.equal(m.waiters, 3);
    const reason = new Error('stop waiting');
    ac.abort(reason);
    await assert.rejects(middle, (err: unknown) => err === reason);
    assert.equal(m.waiters, 2);
    m.unlock();
    await first;
    m.unlock();
    await last;
    m.unlock();
    assert.deepEqual(order, ['first', 'last']);
    assert.equal(m.isLocked, false);
  });

  it('an already-aborted signal rejects at once and never queues', async () => {
    const m = new Mutex('aborted');
    await m.lock();
    const reason = new Error('already');
    await assert.rejects(m.lock({ signal: AbortSignal.abort(reason) }), (err: unknown) => err === reason);
    assert.equal(m.waiters, 0);
    m.unlock();
    // A free mutex is taken even with an aborted signal: there is no wait to abort.
    await m.lock({ signal: AbortSignal.abort(reason) });
    assert.equal(m.isLocked, true);
    m.unlock();
  });

  it('late: aborting after the lock was granted changes nothing', async () => {
    const m = new Mutex('abort-late');
    await m.lock();
    const ac = new AbortController();
    const w = m.lock({ signal: ac.signal });
    m.unlock();
    await w;
    ac.abort(new Error('too late'));
    assert.equal(m.isLocked, true);
    m.unlock();
    assert.equal(m.isLocked, false);
  });

  it('runExclusive returns the result and releases; runs are serialised', async () => {
    const m = new Mutex('exclusive');
    const trace: string[] = [];
    const run = (name: string): Promise<string> =>
      m.runExclusive(async () => {
        trace.push(`${name} in`);
        await nextTurn();
        trace.push(`${name} out`);
        return name.toUpperCase();
      });
    const results = await Promise.all([run('a'), run('b')]);
    assert.deepEqual(results, ['A', 'B']);
    assert.deepEqual(trace, ['a in', 'a out', 'b in', 'b out']);
    assert.equal(m.isLocked, false);
  });

  it('runExclusive releases when fn throws or rejects, and passes the error on', async () => {
    const m = new Mutex('exclusive-throw');
    const boom = new Error('boom');
    await assert.rejects(
      m.runExclusive(() => {
        throw boom;
      }),
      (err: unknown) => err === boom,
    );
    assert.equal(m.isLocked, false);
    await assert.rejects(
      m.runExclusive(() => Promise.reject(boom)),
      (err: unknown) => err === boom,
    );
    assert.equal(m.isLocked, false);
    assert.equal(await m.runExclusive(() => 7), 7, 'late: usable after the failures');
  });

  it('runExclusive with an aborted wait never runs fn and leaves the holder alone', async () => {
    const m = new Mutex('exclusive-abort');
    await m.lock();
    let ran = false;
    const ac = new AbortController();
    const pending = m.runExclusive(
      () => {
        ran = true;
      },
      { signal: ac.signal },
    );
    ac.abort(new Error('cancelled'));
    await assert.rejects(pending, /cancelled/);
    assert.equal(ran, false);
    assert.equal(m.isLocked, true);
    m.unlock();
  });

  it('mutexes with one name share one lock class; other names get their own', () => {
    const a1 = new Mutex('shared-name');
    const a2 = new Mutex('shared-name');
    const b = new Mutex('other-name');
    assert.equal(a1.lockClass, a2.lockClass);
    assert.equal(a1.lockClass, LockClass.forName('shared-name'));
    assert.notEqual(a1.lockClass, b.lockClass);
    assert.equal(a1.lockClass.kind, 'mutex');
    assert.equal(a1.lockClass.name, 'shared-name');
    assert.equal(new Mutex().name, 'mutex', 'the default name');
  });

  it('a name that is not a non-empty string is an InvalidArgumentError', () => {
    assert.throws(
      () => new Mutex(''),
      (err: unknown) => err instanceof InvalidArgumentError && /non-empty string/.test(err.message),
    );
    assert.throws(
      () => new Mutex(42 as unknown as string),
      (err: unknown) => err instanceof InvalidArgumentError && /42/.test(err.message),
    );
  });
});

describe('Mutex.acquire (issue 10 front door)', () => {
  it('sanity: using guard = await m.acquire() holds the mutex for the block and unlocks after', async () => {
    const m = new Mutex('acquire.sanity');
    {
      using guard = await m.acquire();
      assert.equal(m.isLocked, true);
      assert.equal(guard.held, true);
    }
    assert.equal(m.isLocked, false);
  });

  it('late: the guard unlocks when the block throws, and hands over to the next waiter', async () => {
    const m = new Mutex('acquire.throw');
    const first = await m.acquire();
    const next = m.acquire();
    assert.throws(() => {
      using _guard = first;
      throw new Error('body failed');
    }, /body failed/);
    const second = await next;
    assert.equal(m.isLocked, true);
    second.unlock();
    assert.equal(m.isLocked, false);
  });

  it('rejects a bad signal before queueing, naming Mutex.acquire', async () => {
    const m = new Mutex('acquire.bad');
    await assert.rejects(m.acquire({ signal: {} as AbortSignal }), /Mutex\.acquire: options\.signal/);
    assert.equal(m.waiters, 0);
  });
});

describe('Mutex under the validator', () => {
  recordMode();

  async function takeBoth(first: Mutex, second: Mutex): Promise<void> {
    await first.lock();
    await nextTurn();
    await second.lock();
    second.unlock();
    first.unlock();
  }

  it('a lock taken with acquire() is held in the caller: an inverted order through guards is reported', async () => {
    const a = new Mutex('guard.a');
    const b = new Mutex('guard.b');
    const both = async (first: Mutex, second: Mutex): Promise<void> => {
      using _first = await first.acquire();
      await nextTurn();
      using _second = await second.acquire();
    };
    await lockdepTask(() => both(a, b));
    await lockdepTask(() => both(b, a));
    assert.deepEqual(
      lockdepReports().map((r) => r.classes),
      [['guard.b', 'guard.a']],
    );
    assert.equal(a.isLocked || b.isLocked, false, 'the guards unlocked both');
  });

  it('ABBA: the report names both classes and both acquisition sites in this file', async () => {
    const a = new Mutex('mtx.a');
    const b = new Mutex('mtx.b');
    await lockdepTask(() => takeBoth(a, b));
    await lockdepTask(() => takeBoth(b, a));
    const reports = lockdepReports();
    assert.equal(reports.length, 1);
    const { kind, classes, message } = reports[0]!;
    assert.equal(kind, 'circular-dependency');
    assert.deepEqual(classes, ['mtx.b', 'mtx.a']);
    const held = message.slice(
      message.indexOf('mtx.b was acquired at:'),
      message.indexOf('mtx.a is being acquired at:'),
    );
    const acquiring = message.slice(
      message.indexOf('mtx.a is being acquired at:'),
      message.indexOf('but the reverse chain'),
    );
    assert.match(held, /mutex\.test\.ts:\d+/, held);
    assert.match(acquiring, /mutex\.test\.ts:\d+/, acquiring);
    assert.match(
      message,
      /mtx\.a -> mtx\.b: mtx\.a held at:[\s\S]*mutex\.test\.ts/,
      'the recorded edge has its sites too',
    );
  });

  it('two mutexes of one name nested are recursive locking; the same mutex relocked after unlock is not', async () => {
    const m = new Mutex('mtx.same');
    await m.lock();
    m.unlock();
    await m.lock();
    m.unlock();
    assert.deepEqual(lockdepReports(), []);
    const twin = new Mutex('mtx.same');
    await m.lock();
    await twin.lock();
    twin.unlock();
    m.unlock();
    assert.deepEqual(
      lockdepReports().map((r) => [r.kind, ...r.classes]),
      [['recursive-locking', 'mtx.same']],
    );
  });

  it('runExclusive counts as holding the lock for what fn takes', async () => {
    const outer = new Mutex('mtx.outer');
    const inner = new Mutex('mtx.inner');
    await lockdepTask(() => outer.runExclusive(() => inner.runExclusive(() => undefined)));
    await lockdepTask(() => takeBoth(inner, outer));
    assert.deepEqual(
      lockdepReports().map((r) => r.classes),
      [['mtx.inner', 'mtx.outer']],
    );
  });
});
