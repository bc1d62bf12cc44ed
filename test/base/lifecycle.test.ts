/**
 * Executable specification of src/base/lifecycle.ts: Kref counting and release, toDisposable
 * idempotence, and DisposableStore's reverse-order, keep-going disposal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DisposableStore, Kref, LockGuard, runAll, toDisposable } from '../../src/base/lifecycle.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';

describe('Kref', () => {
  it('sanity: starts at one reference; the last put releases', () => {
    let released = 0;
    const ref = new Kref(() => released++);
    assert.equal(ref.count, 1);
    assert.equal(ref.put(), true);
    assert.equal(released, 1);
    assert.equal(ref.count, 0);
  });

  it('get and put balance; only the put that reaches zero releases, exactly once', () => {
    let released = 0;
    const ref = new Kref(() => released++);
    ref.get();
    ref.get();
    assert.equal(ref.count, 3);
    assert.equal(ref.put(), false);
    assert.equal(ref.put(), false);
    assert.equal(released, 0);
    assert.equal(ref.put(), true);
    assert.equal(released, 1);
  });

  it('late: a put after release (double put) is a BugError naming the object; release does not run again', () => {
    let released = 0;
    const ref = new Kref(() => released++, 'bo 7');
    ref.put();
    assert.throws(
      () => ref.put(),
      (err: unknown) => err instanceof BugError && /^bo 7: put\(\)/.test(err.message),
    );
    assert.equal(released, 1);
    assert.equal(ref.count, 0);
  });

  it('late: get after release is a BugError (use after free); the count stays at zero', () => {
    const ref = new Kref(() => {}, 'fence');
    ref.put();
    assert.throws(
      () => ref.get(),
      (err: unknown) => err instanceof BugError && err.message.includes('use after free'),
    );
    assert.equal(ref.count, 0);
  });

  it('getUnlessZero takes a reference while alive', () => {
    let released = 0;
    const ref = new Kref(() => released++);
    assert.equal(ref.getUnlessZero(), true);
    assert.equal(ref.count, 2);
    ref.put();
    ref.put();
    assert.equal(released, 1);
  });

  it('late: getUnlessZero returns false once released and does not resurrect the object', () => {
    let released = 0;
    const ref = new Kref(() => released++);
    ref.put();
    assert.equal(ref.getUnlessZero(), false);
    assert.equal(ref.count, 0);
    assert.throws(() => ref.put(), BugError);
    assert.equal(released, 1);
  });

  it('init inside the release resurrects the object with one reference; its put releases again', () => {
    let releases = 0;
    let resurrect = true;
    const ref: Kref = new Kref(() => {
      releases++;
      if (resurrect) ref.init(); // a zombie: the count restarts, owned by whoever frees it later
    }, 'zombie');
    assert.equal(ref.put(), true, 'the first put runs the release');
    assert.equal(ref.count, 1, 'resurrected with one reference');
    assert.equal(ref.getUnlessZero(), true, 'a resurrected object can be found and referenced again');
    ref.put();
    resurrect = false;
    assert.equal(ref.put(), true, 'the last put of the resurrected object releases again');
    assert.equal(releases, 2);
    assert.equal(ref.count, 0);
  });

  it('late: init while references are held is a BugError naming the object; the count is unchanged', () => {
    const ref = new Kref(() => {}, 'bo 9');
    ref.get();
    assert.throws(
      () => ref.init(),
      (err: unknown) => err instanceof BugError && /^bo 9: init\(\) with 2 reference/.test(err.message),
    );
    assert.equal(ref.count, 2);
  });
});

describe('toDisposable', () => {
  it('sanity: disposing runs the function', () => {
    let runs = 0;
    {
      using _d = toDisposable(() => runs++);
      assert.equal(runs, 0);
    }
    assert.equal(runs, 1);
  });

  it('late: a second dispose does nothing', () => {
    let runs = 0;
    const d = toDisposable(() => runs++);
    d[Symbol.dispose]();
    d[Symbol.dispose]();
    assert.equal(runs, 1);
  });

  it('late: a function that threw is not run again by a second dispose', () => {
    let runs = 0;
    const boom = new Error('boom');
    const d = toDisposable(() => {
      runs++;
      throw boom;
    });
    assert.throws(
      () => d[Symbol.dispose](),
      (err: unknown) => err === boom,
    );
    d[Symbol.dispose]();
    assert.equal(runs, 1);
  });
});

describe('DisposableStore', () => {
  it('sanity: add returns the item; dispose disposes it and marks the store disposed', () => {
    const store = new DisposableStore();
    let runs = 0;
    const item = toDisposable(() => runs++);
    assert.equal(store.add(item), item);
    assert.equal(store.isDisposed, false);
    store[Symbol.dispose]();
    assert.equal(runs, 1);
    assert.equal(store.isDisposed, true);
  });

  it('disposes in reverse order of addition', () => {
    const order: number[] = [];
    {
      using store = new DisposableStore();
      for (let i = 0; i < 5; i++) store.add(toDisposable(() => order.push(i)));
    }
    assert.deepEqual(order, [4, 3, 2, 1, 0]);
  });

  it('continues past a failing disposal and rethrows that one error as is', () => {
    const order: string[] = [];
    const boom = new Error('boom');
    const store = new DisposableStore();
    store.add(toDisposable(() => order.push('a')));
    store.add({
      [Symbol.dispose]: () => {
        order.push('b');
        throw boom;
      },
    });
    store.add(toDisposable(() => order.push('c')));
    assert.throws(
      () => store[Symbol.dispose](),
      (err: unknown) => err === boom,
    );
    assert.deepEqual(order, ['c', 'b', 'a']);
    assert.equal(store.isDisposed, true);
  });

  it('several failures become one AggregateError, in disposal order, after trying all', () => {
    const e1 = new Error('first added');
    const e2 = new Error('second added');
    let middle = 0;
    const store = new DisposableStore();
    store.add({
      [Symbol.dispose]: () => {
        throw e1;
      },
    });
    store.add(toDisposable(() => middle++));
    store.add({
      [Symbol.dispose]: () => {
        throw e2;
      },
    });
    assert.throws(
      () => store[Symbol.dispose](),
      (err: unknown) =>
        err instanceof AggregateError && err.errors.length === 2 && err.errors[0] === e2 && err.errors[1] === e1,
    );
    assert.equal(middle, 1);
  });

  it('late: a second dispose does nothing', () => {
    let runs = 0;
    const store = new DisposableStore();
    store.add(toDisposable(() => runs++));
    store[Symbol.dispose]();
    store[Symbol.dispose]();
    assert.equal(runs, 1);
  });

  it('late: an item added after dispose is disposed at once and still returned', () => {
    const store = new DisposableStore();
    store[Symbol.dispose]();
    let runs = 0;
    const item = toDisposable(() => runs++);
    assert.equal(store.add(item), item);
    assert.equal(runs, 1);
    store[Symbol.dispose]();
    assert.equal(runs, 1, 'a late item was kept and disposed twice');
  });

  it('late: an item added by a disposal while the store disposes is disposed at once', () => {
    const order: string[] = [];
    const store = new DisposableStore();
    store.add(toDisposable(() => order.push('a')));
    store.add(toDisposable(() => store.add(toDisposable(() => order.push('added during dispose')))));
    store[Symbol.dispose]();
    assert.deepEqual(order, ['added during dispose', 'a']);
  });
});

describe('Kref embedded in a subclass', () => {
  class Buffer extends Kref {
    released = 0;
    protected override release(): void {
      this.released++;
    }
    protected override refName(): string {
      return 'buffer 3';
    }
  }

  it('sanity: the subclass release runs at the last put, with no closure given', () => {
    const buf = new Buffer();
    buf.get();
    assert.equal(buf.put(), false);
    assert.equal(buf.put(), true);
    assert.equal(buf.released, 1);
  });

  it('late: a double put names the object as the subclass names it', () => {
    const buf = new Buffer();
    buf.put();
    assert.throws(() => buf.put(), /^BugError|buffer 3: put\(\) without a reference/);
    assert.equal(buf.released, 1);
  });

  it('a release or name of the wrong type is an InvalidArgumentError', () => {
    assert.throws(() => new Kref('free' as never), InvalidArgumentError);
    assert.throws(() => new Kref(() => {}, 7 as never), InvalidArgumentError);
  });
});

describe('LockGuard', () => {
  it('sanity: disposing unlocks once; a second dispose does nothing', () => {
    let unlocks = 0;
    {
      using guard = new LockGuard(() => unlocks++, 'lock');
      assert.equal(guard.held, true);
    }
    assert.equal(unlocks, 1);
  });

  it('late: unlock() then dispose unlocks once; unlock() twice is a BugError', () => {
    let unlocks = 0;
    const guard = new LockGuard(() => unlocks++, 'queue.lock');
    guard.unlock();
    guard[Symbol.dispose]();
    assert.equal(unlocks, 1);
    assert.throws(
      () => guard.unlock(),
      (err: unknown) => err instanceof BugError && /queue\.lock/.test(err.message),
    );
  });
});

describe('runAll', () => {
  it('runs every release past failures and throws one error, or an AggregateError for several', () => {
    const seen: number[] = [];
    assert.throws(
      () =>
        runAll(
          [1, 2, 3],
          (n) => {
            seen.push(n);
            if (n === 2) throw new Error('two');
          },
          (count) => `${count} failed`,
        ),
      /two/,
    );
    assert.deepEqual(seen, [1, 2, 3]);
    assert.throws(
      () =>
        runAll(
          [1, 2],
          (n) => {
            throw new Error(String(n));
          },
          (count) => `${count} failed`,
        ),
      (err: unknown) => err instanceof AggregateError && err.message === '2 failed' && err.errors.length === 2,
    );
    assert.doesNotThrow(() =>
      runAll(
        [],
        () => undefined,
        () => 'never',
      ),
    );
  });
});
