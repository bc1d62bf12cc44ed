/**
 * Clocks.
 *
 * Overview: dmabuf never reads the time or arms a timer directly; it asks the current
 * {@link Clock}. In production that is {@link realClock} (`performance.now()` milliseconds and
 * `setTimeout`). Tests install a {@link VirtualClock} (from `dmabuf/testing`) and move time by
 * hand, so timeout paths run in microseconds of real time and never flake.
 *
 * Contract:
 * - Times are milliseconds on a monotonic scale (fractions allowed); only differences mean anything.
 * - A timer fires at most once, never before its due time, and not after `clearTimer`.
 * - Timers due at the same time fire in the order they were armed.
 * - {@link useClock} returns a disposable that restores the previous clock, so installs nest.
 * - A timer armed with `{ background: true }` does not keep the process alive on its own (Node's
 *   `unref()`): periodic housekeeping uses it, so a program that is otherwise done can exit.
 *
 * @example
 * ```ts
 * import { VirtualClock, useClock } from 'dmabuf/testing'; // useClock is in 'dmabuf' too
 * const clock = new VirtualClock();
 * using _installed = useClock(clock);
 * let fired = false;
 * clock.setTimer(10, () => { fired = true; });
 * clock.advance(10);
 * console.log(fired); // true
 * ```
 */

import { BugError } from './errors.js';
import { invalidArgument, optionalTimeout, requiredFinite, requiredFunction } from './options.js';

/** An armed timer, as returned by {@link Clock.setTimer}. Opaque to callers. */
export type TimerHandle = object;

/** Options of {@link Clock.setTimer}. */
export interface TimerOptions {
  /**
   * Housekeeping that must not keep the process alive by itself (Node: the timer is `unref`ed).
   * Clocks without such a notion (browsers, virtual clocks) ignore it.
   */
  readonly background?: boolean;
}

/** A source of time and timers. */
export interface Clock {
  /** Current time in milliseconds. */
  now(): number;
  /** Runs `fn` once after `delayMs` milliseconds. */
  setTimer(delayMs: number, fn: () => void, options?: TimerOptions): TimerHandle;
  /** Cancels a timer; a no-op when it already fired or was cleared. */
  clearTimer(handle: TimerHandle): void;
}

/** The longest delay `setTimeout` honours; longer ones fire after 1 ms, so they are split. */
const MAX_TIMEOUT = 2 ** 31 - 1;

interface RealTimer {
  id: ReturnType<typeof setTimeout> | undefined;
}

// Read once: in Node `globalThis.performance` is an accessor, and every fence signal reads the
// clock, so the lookup is worth taking off that path.
const wallClock: { now(): number } = performance;

/** The wall clock: `performance.now()` and the platform's `setTimeout`. */
export const realClock: Clock = Object.freeze({
  now: () => wallClock.now(),
  setTimer(delayMs: number, fn: () => void, options?: TimerOptions): TimerHandle {
    const handle: RealTimer = { id: undefined };
    const delay = optionalTimeout(delayMs, 'realClock.setTimer', 'delayMs');
    requiredFunction(fn, 'realClock.setTimer', 'fn');
    if (delay === undefined) return handle; // an infinite delay never fires: arm nothing
    const background = options?.background === true;
    const due = performance.now() + delay;
    const arm = (remaining: number): void => {
      const id = setTimeout(
        () => {
          const left = due - performance.now();
          if (left > 0 && remaining > MAX_TIMEOUT) arm(left);
          else fn();
        },
        Math.min(remaining, MAX_TIMEOUT),
      );
      // Node's timers have unref(); browsers return a number and have no such notion.
      if (background) (id as { unref?: () => void }).unref?.();
      handle.id = id;
    };
    arm(delay);
    return handle;
  },
  clearTimer(handle: TimerHandle): void {
    const timer = handle as RealTimer;
    if (timer.id !== undefined) clearTimeout(timer.id);
    timer.id = undefined;
  },
});

// Installed clocks, innermost last; the default sits at the bottom and is never removed.
const installed: Clock[] = [realClock];
// The innermost one, kept apart: every fence signal asks for it.
let current: Clock = realClock;

/** The clock dmabuf uses right now. */
export function getClock(): Clock {
  return current;
}

/**
 * Installs `clock` until the returned object is disposed. Installs nest; disposing one that is
 * not the innermost removes just that one, so the order of disposal never resurrects a clock.
 */
export function useClock(clock: Clock): Disposable {
  const candidate = clock as Partial<Clock> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.now !== 'function' ||
    typeof candidate.setTimer !== 'function' ||
    typeof candidate.clearTimer !== 'function'
  ) {
    throw invalidArgument('useClock', 'clock', clock, 'a Clock { now(), setTimer(), clearTimer() }');
  }
  installed.push(clock);
  current = clock;
  let restored = false;
  return {
    [Symbol.dispose](): void {
      if (restored) return;
      restored = true;
      const i = installed.lastIndexOf(clock);
      if (i > 0) installed.splice(i, 1);
      current = installed[installed.length - 1]!;
    },
  };
}

interface VirtualTimer {
  readonly due: number;
  readonly order: number;
  fn: (() => void) | null;
}

/**
 * A clock that only moves when told to. Use it in tests: `advance(ms)` fires due timers
 * synchronously; `tick(ms)` also lets promise reactions run between timers, which is what an
 * `await` chain under test needs.
 */
export class VirtualClock implements Clock {
  #now: number;
  #order = 0;
  #timers: VirtualTimer[] = [];

  /** @throws {InvalidArgumentError} for a start time that is not a finite number. */
  constructor(start = 0) {
    this.#now = requiredFinite(start, 'VirtualClock', 'start');
  }

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, fn: () => void, _options?: TimerOptions): TimerHandle {
    const delay = optionalTimeout(delayMs, 'VirtualClock.setTimer', 'delayMs');
    requiredFunction(fn, 'VirtualClock.setTimer', 'fn');
    const timer: VirtualTimer = { due: this.#now + (delay ?? 0), order: this.#order++, fn };
    if (delay === undefined) return timer; // an infinite delay never fires: arm nothing
    // Keep the list sorted by (due, order); timers are few, so insertion sort is plenty.
    let i = this.#timers.length;
    while (i > 0 && this.#timers[i - 1]!.due > timer.due) i--;
    this.#timers.splice(i, 0, timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    const timer = handle as VirtualTimer;
    if (typeof timer !== 'object' || timer === null || !timer.fn) return;
    timer.fn = null;
    const i = this.#timers.indexOf(timer);
    if (i >= 0) this.#timers.splice(i, 1);
  }

  /** Number of armed timers. A test that expects no leftovers asserts this is 0. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order, synchronously. */
  advance(ms: number): void {
    const target = this.#now + this.#checkStep(ms);
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.due > target) break;
      this.#fire(next);
    }
    this.#now = target;
  }

  /**
   * Moves time forward by `ms` like {@link advance}, but drains pending promise reactions before
   * and after each timer, so code awaiting across the timeout sees it as it would in real time.
   */
  async tick(ms = 0): Promise<void> {
    const target = this.#now + this.#checkStep(ms);
    await settle();
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.due > target) break;
      this.#fire(next);
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Fires every armed timer, including ones armed while running, until none is left. */
  async runAll(limit = 100_000): Promise<void> {
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
      throw invalidArgument('VirtualClock.runAll', 'limit', limit, 'an integer from 1 to 2^53-1');
    }
    await settle();
    for (let n = 0; this.#timers.length > 0; n++) {
      if (n >= limit)
        throw new BugError(`VirtualClock.runAll: more than ${limit} timers fired; a timer re-arms itself forever`);
      this.#fire(this.#timers[0]!);
      await settle();
    }
  }

  #fire(timer: VirtualTimer): void {
    this.#timers.shift();
    if (timer.due > this.#now) this.#now = timer.due;
    const fn = timer.fn;
    timer.fn = null;
    fn?.();
  }

  #checkStep(ms: number): number {
    const step = optionalTimeout(ms, 'VirtualClock.advance', 'ms');
    if (step === undefined) throw new BugError('VirtualClock cannot advance by an infinite amount');
    return step;
  }
}

/** Resolves after every promise reaction queued so far (and those they queue) has run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => macrotask(resolve));
}

// setImmediate is Node's; browsers get a zero-delay timeout, which is also after all microtasks.
const macrotask: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);
