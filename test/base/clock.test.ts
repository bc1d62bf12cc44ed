/**
 * Executable specification of src/base/clock.ts: the virtual clock every timeout test relies on,
 * the install/restore discipline of useClock, and the real clock's edges.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock, getClock, realClock, settle, useClock } from '../../src/base/clock.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';

/**
 * A fresh clock with two timers logging into `log`: 't1' at 1, which also queues a promise
 * continuation logging 'cont1', and 't2' at 2. Where 'cont1' lands tells advance from tick.
 */
function timersWithContinuation(): { clock: VirtualClock; log: string[] } {
  const clock = new VirtualClock();
  const log: string[] = [];
  clock.setTimer(1, () => {
    log.push('t1');
    void Promise.resolve().then(() => log.push('cont1'));
  });
  clock.setTimer(2, () => log.push('t2'));
  return { clock, log };
}

describe('VirtualClock', () => {
  it('sanity: starts at the given time and only moves when told to', async () => {
    assert.equal(new VirtualClock().now(), 0);
    const clock = new VirtualClock(1000);
    assert.equal(clock.now(), 1000);
    await settle();
    assert.equal(clock.now(), 1000);
    clock.advance(5);
    assert.equal(clock.now(), 1005);
    await clock.tick(2.5);
    assert.equal(clock.now(), 1007.5);
  });

  it('a timer never fires before its due time and fires once at it, seeing the due time as now', () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimer(10, () => seen.push(clock.now()));
    clock.advance(9);
    assert.deepEqual(seen, []);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(5);
    assert.deepEqual(seen, [10]);
    assert.equal(clock.now(), 14);
    clock.advance(100);
    assert.deepEqual(seen, [10], 'fired twice');
    assert.equal(clock.pendingTimers, 0);
  });

  it('timers fire by due time; timers due at the same time fire in arming order', () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.setTimer(5, () => order.push('b@5'));
    clock.setTimer(3, () => order.push('a@3'));
    clock.setTimer(5, () => order.push('c@5'));
    clock.setTimer(0, () => order.push('z@0'));
    clock.setTimer(5, () => order.push('d@5'));
    clock.advance(5);
    assert.deepEqual(order, ['z@0', 'a@3', 'b@5', 'c@5', 'd@5']);
  });

  it('a timer armed by a firing timer inside the advanced window fires in the same advance', () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimer(2, () => clock.setTimer(3, () => seen.push(clock.now())));
    clock.advance(5);
    assert.deepEqual(seen, [5]);
    clock.setTimer(2, () => clock.setTimer(3, () => seen.push(clock.now())));
    clock.advance(4);
    assert.deepEqual(seen, [5], 'fired past the window');
    assert.equal(clock.pendingTimers, 1);
  });

  it('clearTimer cancels a pending timer; clearing a fired or cleared timer is a no-op', () => {
    const clock = new VirtualClock();
    let fired = 0;
    const a = clock.setTimer(1, () => fired++);
    const b = clock.setTimer(1, () => fired++);
    assert.equal(clock.pendingTimers, 2);
    clock.clearTimer(a);
    assert.equal(clock.pendingTimers, 1);
    clock.clearTimer(a);
    assert.equal(clock.pendingTimers, 1);
    clock.advance(1);
    assert.equal(fired, 1);
    clock.clearTimer(b);
    clock.clearTimer({});
    assert.equal(clock.pendingTimers, 0);
    assert.equal(fired, 1);
  });

  it('advance fires synchronously; promise continuations run only after it returns', async () => {
    const { clock, log } = timersWithContinuation();
    clock.advance(2);
    assert.deepEqual(log, ['t1', 't2']);
    await settle();
    assert.deepEqual(log, ['t1', 't2', 'cont1']);
  });

  it('tick lets promise continuations run between timers', async () => {
    const { clock, log } = timersWithContinuation();
    await clock.tick(2);
    assert.deepEqual(log, ['t1', 'cont1', 't2']);
    assert.equal(clock.now(), 2);
  });

  it('tick fires a timer that an awaiting continuation arms inside the window', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => clock.setTimer(ms, resolve));
    void (async () => {
      await sleep(3);
      seen.push(clock.now());
      await sleep(3);
      seen.push(clock.now());
    })();
    await clock.tick(6);
    assert.deepEqual(seen, [3, 6]);
    assert.equal(clock.pendingTimers, 0);
  });

  it('runAll fires every timer, including ones armed while running, and leaves time at the last', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimer(50, () => seen.push(clock.now()));
    clock.setTimer(10, () => {
      seen.push(clock.now());
      clock.setTimer(100, () => seen.push(clock.now()));
    });
    await clock.runAll();
    assert.deepEqual(seen, [10, 50, 110]);
    assert.equal(clock.now(), 110);
    assert.equal(clock.pendingTimers, 0);
  });

  it('runAll stops a timer that re-arms itself for ever with a BugError', async () => {
    const clock = new VirtualClock();
    let fired = 0;
    const rearm = (): void => {
      fired++;
      clock.setTimer(1, rearm);
    };
    clock.setTimer(1, rearm);
    await assert.rejects(clock.runAll(10), BugError);
    assert.equal(fired, 10);
    assert.equal(clock.pendingTimers, 1);
  });

  it('a negative or NaN delay or step is InvalidArgumentError; an infinite step is BugError', async () => {
    const clock = new VirtualClock();
    assert.throws(() => clock.setTimer(-1, () => {}), InvalidArgumentError);
    assert.throws(() => clock.setTimer(NaN, () => {}), InvalidArgumentError);
    assert.throws(() => clock.advance(-1), InvalidArgumentError);
    assert.throws(() => clock.advance(Infinity), BugError);
    await assert.rejects(clock.tick(-1), InvalidArgumentError);
    await assert.rejects(clock.tick(Infinity), BugError);
    assert.equal(clock.now(), 0);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('useClock', () => {
  it('sanity: the default clock is the real one', () => {
    assert.equal(getClock(), realClock);
  });

  it('installs a clock until disposed, then restores the previous one', () => {
    const clock = new VirtualClock();
    {
      using _installed = useClock(clock);
      assert.equal(getClock(), clock);
    }
    assert.equal(getClock(), realClock);
  });

  it('installs nest: each disposal restores the clock that was current before it', () => {
    const outer = new VirtualClock();
    const inner = new VirtualClock();
    const a = useClock(outer);
    const b = useClock(inner);
    assert.equal(getClock(), inner);
    b[Symbol.dispose]();
    assert.equal(getClock(), outer);
    a[Symbol.dispose]();
    assert.equal(getClock(), realClock);
  });

  it('a second dispose of the same install changes nothing', () => {
    const outer = new VirtualClock();
    const inner = new VirtualClock();
    using _outer = useClock(outer);
    const b = useClock(inner);
    b[Symbol.dispose]();
    const c = useClock(inner);
    b[Symbol.dispose]();
    assert.equal(getClock(), inner, 'a stale dispose uninstalled a newer clock');
    c[Symbol.dispose]();
    assert.equal(getClock(), outer);
  });
});

describe('realClock', () => {
  it('sanity: frozen, and now() is a finite, non-decreasing number of milliseconds', () => {
    assert.ok(Object.isFrozen(realClock));
    const a = realClock.now();
    const b = realClock.now();
    assert.ok(Number.isFinite(a));
    assert.ok(b >= a);
  });

  it('a cleared timer never fires; a later timer with the same delay does', async () => {
    const fired: string[] = [];
    const handle = realClock.setTimer(0, () => fired.push('cleared'));
    realClock.clearTimer(handle);
    // Same-delay timers fire in arming order, so once the control fires the cleared one would have.
    await new Promise<void>((resolve) => realClock.setTimer(0, () => resolve(void fired.push('control'))));
    assert.deepEqual(fired, ['control']);
  });

  it('a delay above 2^31-1 ms is honoured, not truncated to 1 ms', () => {
    const warnings: string[] = [];
    const original = process.emitWarning;
    process.emitWarning = ((warning: string | Error, type?: unknown): void => {
      warnings.push(typeof type === 'string' ? type : String(warning));
    }) as typeof process.emitWarning;
    let handle: object;
    try {
      handle = realClock.setTimer(2 ** 31, () => {});
    } finally {
      process.emitWarning = original;
    }
    realClock.clearTimer(handle);
    assert.deepEqual(warnings, [], 'setTimeout overflowed: the timer fires after 1 ms');
  });
});

describe('clock edge cases', () => {
  it('an infinite delay never fires and leaves nothing armed', async () => {
    const clock = new VirtualClock();
    let fired = false;
    clock.setTimer(Infinity, () => (fired = true));
    assert.equal(clock.pendingTimers, 0);
    await clock.runAll();
    assert.deepEqual([fired, clock.now()], [false, 0]);
    realClock.clearTimer(realClock.setTimer(Infinity, () => (fired = true)));
    assert.equal(fired, false);
  });

  it('useClock handles disposed out of order never bring back a removed clock', () => {
    const outer = new VirtualClock(1);
    const inner = new VirtualClock(2);
    const a = useClock(outer);
    const b = useClock(inner);
    a[Symbol.dispose]();
    assert.equal(getClock(), inner, 'the inner install is still in force');
    b[Symbol.dispose]();
    assert.equal(getClock(), realClock, 'both gone: back to the real clock, not to outer');
  });
});
