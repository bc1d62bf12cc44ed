/**
 * Transaction lock lists (seed 003): the list, sub-lists and backoff, on counted locks (see
 * test/helpers/counted-lock.ts). The lifetime property is in locklist.property.test.ts, real ww
 * and reservation transactions in locklist-ww.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidArgumentError, WwDeadlockError } from '../../src/base/errors.js';
import { WwAcquireCtx, WwClass, WwMutex } from '../../src/locking/ww-mutex.js';
import {
  TransLockList,
  wwMutexLockItem,
  type BackoffOutcome,
  type LockItem,
  type LockItemOps,
} from '../../src/locking/locklist.js';
import { type Counted, countedOps, names, world } from '../helpers/counted-lock.js';
import { asOtherTask } from '../helpers/other-task.js';

// ---- the list ------------------------------------------------------------------------------

describe('TransLockList', () => {
  it('sanity: two listed locks are unlocked and put by unlockPutAll', () => {
    const { objs, lockAdd, violations } = world('ab');
    const [a, b] = objs as [Counted, Counted];
    const list = new TransLockList({ name: 'sanity' });
    lockAdd(list, a);
    lockAdd(list, b);
    assert.equal(list.size, 2);
    assert.deepEqual([a.refs, b.refs], [2, 2]);
    list.unlockPutAll();
    assert.equal(list.size, 0);
    assert.deepEqual([a.locked, b.locked, a.refs, b.refs], [false, false, 1, 1]);
    assert.deepEqual(violations, []);
  });

  it('add takes a reference and lists the item in order; has() answers per object', () => {
    const { objs, lockAdd, item } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    assert.deepEqual(names(list), ['a', 'b']);
    assert.equal(a.refs, 2);
    assert.equal(list.has(a), true);
    assert.equal(list.has(c), false);
    assert.equal(list.items[0]!.object, a);
    // A fresh item value for a listed object is the same entry.
    list.remove(item(b));
    assert.deepEqual(names(list), ['a']);
    assert.equal(c.refs, 1);
    list.unlockPutAll();
  });

  it('remove unlocks, takes off the list, then puts; the others stay locked', () => {
    const { objs, lockAdd, item, events } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    for (const o of objs) lockAdd(list, o);
    list.remove(item(b));
    assert.deepEqual(events(), ['unlock b', 'put b']);
    assert.deepEqual([a.locked, b.locked, c.locked], [true, false, true]);
    assert.deepEqual([a.refs, b.refs, c.refs], [2, 1, 2]);
    assert.deepEqual(names(list), ['a', 'c']);
  });

  it('remove of an object that is not on this list is a BugError and changes nothing', () => {
    const { objs, lockAdd, item } = world('ab');
    const [a, b] = objs as [Counted, Counted];
    const one = new TransLockList({ name: 'one' });
    const two = new TransLockList({ name: 'two' });
    lockAdd(one, a);
    assert.throws(
      () => one.remove(item(b)),
      (err: unknown) => err instanceof BugError && /on no list/.test(err.message),
    );
    assert.throws(
      () => two.remove(item(a)),
      (err: unknown) => err instanceof BugError && /on list 'one'/.test(err.message),
    );
    assert.deepEqual([a.locked, a.refs, one.size], [true, 2, 1]);
    // late: after it was removed, removing it again is the same bug
    one.remove(item(a));
    assert.throws(() => one.remove(item(a)), BugError);
    assert.equal(a.refs, 1);
  });

  it('unlockPutAll goes in reverse order of addition: unlock then put, item by item', () => {
    const { objs, lockAdd, events, violations } = world('abc');
    const list = new TransLockList();
    for (const o of objs) lockAdd(list, o);
    list.unlockPutAll();
    assert.deepEqual(events(), ['unlock c', 'put c', 'unlock b', 'put b', 'unlock a', 'put a']);
    assert.deepEqual(violations, []);
  });

  it('the list is reusable after unlockPutAll, and disposal is idempotent', () => {
    const { objs, lockAdd } = world('ab');
    const [a, b] = objs as [Counted, Counted];
    {
      using list = new TransLockList();
      lockAdd(list, a);
      list.unlockPutAll();
      lockAdd(list, b);
      assert.deepEqual(names(list), ['b']);
      list[Symbol.dispose]();
      assert.equal(b.locked, false);
      list[Symbol.dispose]();
      // late: the `using` disposal at the end of the block is a third, harmless call
    }
    assert.deepEqual([a.refs, b.refs, a.locked, b.locked], [1, 1, false, false]);
  });

  it('an object is listed once: a second add, by any item and on any list, is a BugError', () => {
    const { objs, lockAdd, item } = world('a');
    const [a] = objs as [Counted];
    const one = new TransLockList({ name: 'one' });
    const two = new TransLockList({ name: 'two' });
    lockAdd(one, a);
    assert.throws(
      () => one.add(item(a)),
      (err: unknown) => err instanceof BugError && /already on this list/.test(err.message),
    );
    assert.throws(
      () => two.add(item(a)),
      (err: unknown) => err instanceof BugError && /already on list 'one'/.test(err.message),
    );
    assert.deepEqual([a.refs, one.size, two.size], [2, 1, 0]);
    // late: once unlocked and removed it may be listed again
    one.unlockPutAll();
    lockAdd(two, a);
    assert.equal(two.has(a), true);
    two.unlockPutAll();
  });

  it('items are checked: get without put is a BugError, missing unlock an InvalidArgumentError', () => {
    const list = new TransLockList();
    const o = { name: 'x' };
    const noPut = { slowLock: async () => 'locked' as const, unlock: () => {}, get: () => {} };
    assert.throws(
      () => list.add({ ops: noPut, object: o }),
      (err: unknown) => err instanceof BugError && /get\(\) without put\(\)/.test(err.message),
    );
    const noUnlock = { slowLock: async () => 'locked' as const } as unknown as LockItemOps<object>;
    assert.throws(() => list.add({ ops: noUnlock, object: o }), InvalidArgumentError);
    assert.throws(() => list.add({ ops: countedOps, object: 42 } as unknown as LockItem), InvalidArgumentError);
    assert.equal(list.size, 0);
    assert.throws(() => new TransLockList({ relaxUnlock: 'yes' as unknown as boolean }), InvalidArgumentError);
  });

  it('a get that fails (use after free) lists nothing', () => {
    const { objs, item } = world('a');
    const [a] = objs as [Counted];
    a.kref.put(); // released
    const list = new TransLockList();
    a.locked = true;
    assert.throws(() => list.add(item(a)), BugError);
    assert.equal(list.size, 0);
    assert.equal(list.has(a), false);
  });

  it('lifetime: the creator may drop its reference while listed; release waits for unlock and put', () => {
    const { objs, lockAdd, log, violations } = world('ab');
    const [a, b] = objs as [Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    a.kref.put();
    b.kref.put();
    assert.deepEqual([a.released, b.released], [false, false]);
    list.unlockPutAll();
    assert.deepEqual([a.released, b.released], [true, true]);
    assert.deepEqual(log, ['unlock b', 'put b', 'release b', 'unlock a', 'put a', 'release a']);
    assert.deepEqual(violations, []);
  });

  it('an unlock that throws does not stop the others; its object leaves the list but keeps its reference', () => {
    const { objs, lockAdd, events, violations } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList({ name: 'faulty' });
    for (const o of objs) lockAdd(list, o);
    b.failUnlock = true;
    b.kref.put(); // only the list's reference is left: a put after the failed unlock would release a locked object
    let caught: unknown;
    try {
      list.unlockPutAll();
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof AggregateError, `expected an AggregateError, got ${String(caught)}`);
    assert.equal(caught.errors.length, 1);
    assert.match((caught.errors[0] as Error).message, /b: unlock failed/);
    assert.match(caught.message, /unlock of 'b' failed, so its reference is kept/);
    assert.deepEqual(events(), ['unlock c', 'put c', 'unlock b', 'unlock a', 'put a']);
    assert.deepEqual([a.locked, b.locked, c.locked], [false, true, false]);
    assert.deepEqual([a.refs, b.refs, c.refs, b.released], [1, 1, 1, false]);
    assert.equal(list.size, 0);
    assert.equal(list.has(b), false);
    assert.deepEqual(violations, []);
    // late: the list is empty, so disposing it again is quiet
    list[Symbol.dispose]();
  });

  it('puts that throw are collected too, after every item was unlocked', () => {
    const { objs, lockAdd } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    for (const o of objs) lockAdd(list, o);
    a.failPut = true;
    c.failPut = true;
    assert.throws(
      () => list.unlockPutAll(),
      (err: unknown) =>
        err instanceof AggregateError &&
        err.errors.length === 2 &&
        /put of 'c' failed; put of 'a' failed/.test(err.message),
    );
    assert.deepEqual([a.locked, b.locked, c.locked, b.refs], [false, false, false, 1]);
  });

  it('remove rethrows a failing unlock; the item is off the list and keeps its reference', () => {
    const { objs, lockAdd, item } = world('a');
    const [a] = objs as [Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    a.failUnlock = true;
    assert.throws(() => list.remove(item(a)), /a: unlock failed/);
    assert.deepEqual([list.size, a.refs, a.locked], [0, 2, true]);
  });
});

// ---- sub-lists -------------------------------------------------------------------------------

describe('TransLockList sub-lists', () => {
  it('unlocking the parent unlocks a sub-list in place, items in reverse order', () => {
    const { objs, lockAdd, events, violations } = world('abcd');
    const [a, b, c, d] = objs as [Counted, Counted, Counted, Counted];
    const parent = new TransLockList({ name: 'exec' });
    const evict = new TransLockList({ name: 'evict' });
    lockAdd(parent, a);
    parent.add(evict);
    lockAdd(evict, b);
    lockAdd(evict, c);
    lockAdd(parent, d);
    assert.deepEqual(names(parent), ['a', '[evict]', 'd']);
    assert.equal(evict.parent, parent);
    parent.unlockPutAll();
    assert.deepEqual(events(), ['unlock d', 'put d', 'unlock c', 'put c', 'unlock b', 'put b', 'unlock a', 'put a']);
    assert.deepEqual([evict.size, evict.parent], [0, null]);
    assert.deepEqual(violations, []);
  });

  it('a sub-list can be unlocked alone while the outer transaction keeps its locks (the eviction list)', () => {
    const { objs, lockAdd } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const parent = new TransLockList({ name: 'exec' });
    const evict = new TransLockList({ name: 'evict' });
    lockAdd(parent, a);
    parent.add(evict);
    lockAdd(evict, b);
    lockAdd(evict, c);
    evict.unlockPutAll(); // after one buffer was validated
    assert.deepEqual([a.locked, b.locked, c.locked], [true, false, false]);
    assert.deepEqual(names(parent), ['a', '[evict]']);
    // late: refilled for the next buffer, it is unlocked with the parent
    lockAdd(evict, b);
    parent.unlockPutAll();
    assert.deepEqual([a.locked, b.locked, a.refs, b.refs], [false, false, 1, 1]);
  });

  it('a list cannot contain itself, directly or through a parent', () => {
    const parent = new TransLockList({ name: 'p' });
    const sub = new TransLockList({ name: 's' });
    assert.throws(
      () => parent.add(parent),
      (err: unknown) => err instanceof BugError && /contain itself/.test(err.message),
    );
    parent.add(sub);
    assert.throws(
      () => sub.add(parent),
      (err: unknown) => err instanceof BugError && /contain itself/.test(err.message),
    );
    assert.equal(sub.size, 0);
    assert.match(sub.describe(), /on list 'p'/);
  });

  it('a sub-list as the contending item slow-locks what it recorded and joins the outer list', async () => {
    const { objs, lockAdd, item, events, violations } = world('abx');
    const [a, b, x] = objs as [Counted, Counted, Counted];
    const exec = new TransLockList({ name: 'exec' });
    const evict = new TransLockList({ name: 'evict' });
    lockAdd(exec, a);
    lockAdd(evict, b);
    // The eviction code contended on x; it only knows its own list.
    evict.setContending(item(x));
    assert.equal(x.refs, 2);
    assert.equal(evict.contending?.object, x);
    const outcome = await exec.backoff(evict);
    assert.equal(outcome, 'locked');
    // backoff drops its own reference on x, then the sub-list drops the one its record held
    assert.deepEqual(events(), ['unlock a', 'put a', 'unlock b', 'put b', 'slowLock x', 'put x', 'put x']);
    assert.deepEqual(names(exec), ['[evict]']);
    assert.deepEqual(names(evict), ['x']);
    assert.deepEqual([x.locked, x.refs, evict.contending], [true, 2, null]);
    // late: unlocking the outer list unlocks the slow-locked lock too
    exec.unlockPutAll();
    assert.deepEqual([x.locked, x.refs, a.refs, b.refs], [false, 1, 1, 1]);
    assert.deepEqual(violations, []);
  });

  it('a nested sub-list may be the contending item of its own parent', async () => {
    const { objs, lockAdd, item } = world('abx');
    const [a, b, x] = objs as [Counted, Counted, Counted];
    const exec = new TransLockList({ name: 'exec' });
    const evict = new TransLockList({ name: 'evict' });
    lockAdd(exec, a);
    exec.add(evict);
    lockAdd(evict, b);
    evict.setContending(item(x));
    assert.equal(await exec.backoff(evict), 'locked');
    assert.deepEqual([a.locked, b.locked, x.locked], [false, false, true]);
    assert.deepEqual(names(exec), ['[evict]']);
    exec.unlockPutAll();
    assert.equal(x.refs, 1);
  });

  it("a sub-list with relaxUnlock, or with nothing recorded, relaxes: 'unlocked' / 'relaxed'", async () => {
    const { objs, lockAdd, item, events } = world('ax');
    const [a, x] = objs as [Counted, Counted];
    const exec = new TransLockList({ name: 'exec' });
    const relaxed = new TransLockList({ name: 'evict', relaxUnlock: true });
    lockAdd(exec, a);
    relaxed.setContending(item(x));
    assert.equal(await exec.backoff(relaxed), 'unlocked');
    // the outer relaxUnlock unlocks the sub-list, which unlocks x and drops its reference last
    assert.deepEqual(events(), ['unlock a', 'put a', 'slowLock x', 'put x', 'put x', 'unlock x', 'put x']);
    assert.deepEqual([x.locked, x.refs, exec.size, relaxed.size], [false, 1, 0, 0]);
    const empty = new TransLockList({ name: 'empty' });
    assert.equal(await exec.backoff(empty), 'relaxed');
    assert.equal(exec.size, 0);
  });

  it('setContending replaces and drops references; disposing the sub-list drops the record', () => {
    const { objs, item } = world('xy');
    const [x, y] = objs as [Counted, Counted];
    const evict = new TransLockList();
    evict.setContending(item(x));
    evict.setContending(item(y));
    assert.deepEqual([x.refs, y.refs], [1, 2]);
    evict[Symbol.dispose]();
    assert.deepEqual([y.refs, evict.contending], [1, null]);
    evict.setContending(item(x));
    evict.setContending(null);
    assert.equal(x.refs, 1);
  });
});

// ---- backoff ---------------------------------------------------------------------------------

describe('TransLockList.backoff', () => {
  it("'locked': the list is released, the contending lock is slow-locked and listed", async () => {
    const { objs, lockAdd, item, events, violations } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    const outcome: BackoffOutcome = await list.backoff(item(c));
    assert.equal(outcome, 'locked');
    assert.deepEqual(
      events(),
      ['unlock b', 'put b', 'unlock a', 'put a', 'slowLock c', 'put c'],
      'the last put is backoff’s own reference',
    );
    assert.deepEqual(names(list), ['c']);
    assert.deepEqual([c.locked, c.refs, a.refs, b.refs], [true, 2, 1, 1]);
    // late: the restart skips it and it is unlocked with the rest
    assert.equal(list.has(c), true);
    list.unlockPutAll();
    assert.deepEqual([c.locked, c.refs], [false, 1]);
    assert.deepEqual(violations, []);
  });

  it("'relaxed': the slow lock relaxed the transaction and the contending lock stays unlocked", async () => {
    const { objs, lockAdd, item, events } = world('ac');
    const [a, c] = objs as [Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    c.slowResult = 'relaxed';
    assert.equal(await list.backoff(item(c)), 'relaxed');
    assert.deepEqual(events(), ['unlock a', 'put a', 'slowLock c', 'put c']);
    assert.deepEqual([c.locked, c.refs, list.size], [false, 1, 0]);
  });

  it("relaxUnlock: slow-locked, then unlocked at once: 'unlocked'", async () => {
    const { objs, lockAdd, item, events } = world('ac');
    const [a, c] = objs as [Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    assert.equal(await list.backoff(item(c, true)), 'unlocked');
    assert.deepEqual(events(), ['unlock a', 'put a', 'slowLock c', 'unlock c', 'put c']);
    assert.deepEqual([c.locked, c.refs, list.size], [false, 1, 0]);
  });

  it('the caller’s reference is untouched: backoff holds its own while the creator lets go', async () => {
    const { objs, item, violations } = world('c');
    const [c] = objs as [Counted];
    const list = new TransLockList();
    c.slowResult = 'never';
    const ac = new AbortController();
    const pending = list.backoff(item(c), { signal: ac.signal });
    c.kref.put(); // the creator's only reference
    assert.equal(c.released, false, 'backoff keeps the contending object alive while it waits');
    ac.abort(new Error('cancelled'));
    await assert.rejects(pending, /cancelled/);
    assert.deepEqual([c.released, c.locked], [true, false]);
    assert.deepEqual(violations, []);
  });

  it('abort during the slow lock: rejects with the reason, nothing locked, nothing referenced', async () => {
    const { objs, lockAdd, item } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    c.slowResult = 'never';
    const ac = new AbortController();
    const pending = list.backoff(item(c), { signal: ac.signal });
    const reason = new Error('user gave up');
    ac.abort(reason);
    await assert.rejects(pending, (err: unknown) => err === reason);
    assert.deepEqual(
      objs.map((o) => [o.locked, o.refs]),
      [
        [false, 1],
        [false, 1],
        [false, 1],
      ],
    );
    assert.equal(list.size, 0);
    // late: the list works again afterwards
    c.slowResult = 'locked';
    assert.equal(await list.backoff(item(c)), 'locked');
    list.unlockPutAll();
    assert.equal(c.refs, 1);
  });

  it('an already aborted signal still releases the list but never calls slowLock', async () => {
    const { objs, lockAdd, item, events } = world('ac');
    const [a, c] = objs as [Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    await assert.rejects(list.backoff(item(c), { signal: AbortSignal.abort(new Error('early')) }), /early/);
    assert.deepEqual(events(), ['unlock a', 'put a', 'put c']);
    assert.deepEqual([a.locked, c.locked, c.refs], [false, false, 1]);
  });

  it('abort of a ww slow lock removes the waiter; nothing is locked or queued', async () => {
    const cls = new WwClass('abort', 'wait-die');
    const [m, n] = [new WwMutex(cls, 'm'), new WwMutex(cls, 'n')];
    const older = new WwAcquireCtx(cls);
    const younger = new WwAcquireCtx(cls);
    await asOtherTask(() => n.lock(older));
    const list = new TransLockList();
    await m.lock(younger);
    list.add(wwMutexLockItem(m, younger));
    await assert.rejects(n.lock(younger), WwDeadlockError);
    n.unlock(); // free it, then take it back without a context so the slow lock has to wait
    await asOtherTask(() => n.lock(null));
    const ac = new AbortController();
    const pending = list.backoff(wwMutexLockItem(n, younger), { signal: ac.signal });
    await Promise.resolve();
    assert.equal(n.waiters, 1);
    ac.abort(new Error('stop'));
    await assert.rejects(pending, /stop/);
    assert.deepEqual([m.isLocked, n.waiters, younger.acquired, list.size], [false, 0, 0, 0]);
    n.unlock();
    older.fini();
    younger.fini();
  });

  it('add and a second backoff are refused while a backoff is in flight', async () => {
    const { objs, item } = world('cd');
    const [c, d] = objs as [Counted, Counted];
    const list = new TransLockList({ name: 'busy' });
    c.slowResult = 'never';
    const ac = new AbortController();
    const pending = list.backoff(item(c), { signal: ac.signal });
    d.lock();
    assert.throws(
      () => list.add(item(d)),
      (err: unknown) => err instanceof BugError && /backoff is in flight/.test(err.message),
    );
    await assert.rejects(list.backoff(item(d)), BugError);
    ac.abort(new Error('done'));
    await assert.rejects(pending, /done/);
    // late: after it settled, both work
    list.add(item(d));
    assert.equal(list.size, 1);
    list.unlockPutAll();
    assert.deepEqual([c.refs, d.refs], [1, 1]);
  });

  it(
    'a contending object this transaction still holds on a list of its tree is a BugError, ' +
      'with nothing slow-locked',
    async () => {
      const { objs, lockAdd, item, events } = world('ax');
      const [a, x] = objs as [Counted, Counted];
      const exec = new TransLockList({ name: 'exec' });
      const evict = new TransLockList({ name: 'evict' });
      exec.add(evict);
      lockAdd(exec, x);
      lockAdd(evict, a);
      // Backing off the sub-list alone leaves x locked on its parent: the transaction would wait for itself.
      await assert.rejects(
        evict.backoff(item(x)),
        (err: unknown) => err instanceof BugError && /this transaction still holds on list 'exec'/.test(err.message),
      );
      assert.deepEqual(events(), ['unlock a', 'put a', 'put x']);
      assert.deepEqual([x.refs, x.locked], [2, true]);
      await assert.rejects(
        evict.backoff(exec),
        (err: unknown) => err instanceof BugError && /this list or contains it/.test(err.message),
      );
      await assert.rejects(
        exec.backoff(exec),
        (err: unknown) => err instanceof BugError && /this list or contains it/.test(err.message),
      );
      exec.unlockPutAll();
    },
  );

  it('a contending object held on another transaction’s list is the normal case: backoff waits for it', async () => {
    const { objs, lockAdd, item, events } = world('ax');
    const [a, x] = objs as [Counted, Counted];
    const mine = new TransLockList({ name: 'mine' });
    const theirs = new TransLockList({ name: 'theirs' });
    lockAdd(mine, a);
    lockAdd(theirs, x);
    x.slowResult = 'never'; // stands for waiting until the other transaction lets go
    const ac = new AbortController();
    const pending = mine.backoff(item(x), { signal: ac.signal });
    assert.deepEqual(events(), ['unlock a', 'put a', 'slowLock x']);
    ac.abort(new Error('gave up'));
    await assert.rejects(pending, /gave up/);
    assert.deepEqual([x.refs, x.locked, theirs.has(x)], [2, true, true], 'the holder keeps its lock and its reference');
    theirs.unlockPutAll();
  });

  it('a contending object on this very list is released with the rest, then slow-locked', async () => {
    const { objs, lockAdd, item, events } = world('ab');
    const [a, b] = objs as [Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    assert.equal(await list.backoff(item(a)), 'locked');
    // backoff's own reference kept a alive between the list's put and the slow lock
    assert.deepEqual(events(), ['unlock b', 'put b', 'unlock a', 'put a', 'slowLock a', 'put a']);
    assert.deepEqual(names(list), ['a']);
    assert.equal(a.refs, 2);
    list.unlockPutAll();
  });

  it('a slowLock that answers neither locked nor relaxed is a BugError; the reference is kept', async () => {
    const { objs, item, violations } = world('c');
    const [c] = objs as [Counted];
    c.slowResult = 'garbage';
    const list = new TransLockList();
    await assert.rejects(
      list.backoff(item(c)),
      (err: unknown) => err instanceof BugError && /returned "maybe"/.test(err.message),
    );
    c.kref.put();
    assert.deepEqual([c.refs, c.released, list.size], [1, false, 0]);
    assert.deepEqual(violations, []);
  });

  it('a failing unlock while releasing the list stops the backoff before the slow lock', async () => {
    const { objs, lockAdd, item, events } = world('abc');
    const [a, b, c] = objs as [Counted, Counted, Counted];
    const list = new TransLockList();
    lockAdd(list, a);
    lockAdd(list, b);
    b.failUnlock = true;
    await assert.rejects(list.backoff(item(c)), AggregateError);
    assert.deepEqual(
      events(),
      ['unlock b', 'unlock a', 'put a', 'put c'],
      'only backoff’s own reference on c is dropped',
    );
    assert.deepEqual([c.locked, c.refs, list.size], [false, 1, 0]);
  });
});
