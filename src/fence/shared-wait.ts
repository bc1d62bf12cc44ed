/**
 * shared-wait: one asynchronous waiter per word of shared memory, and the clock threads agree on.
 *
 * Overview: fences shared between threads live in `SharedArrayBuffer` words that another thread
 * changes and wakes with `Atomics.notify`. A thread that waits for many such fences keeps one
 * {@link SharedWordWaiter} per word (per fence region, per timeline, per engine ring), never one
 * per fence: a wake costs tens of microseconds, so each wake must settle everything that changed
 * since the last one (the way a driver's interrupt handler signals every fence up to the seqno
 * the hardware wrote). The waiter calls its handler at most once per wake, on the thread's event
 * loop, and re-arms itself until stopped.
 *
 * Models the kernel's futex wait queues as seen from a wait on shared memory; uses only
 * web-standard APIs (`Atomics.waitAsync`, timers, `performance`) so it runs in browsers.
 *
 * Contract:
 * - The handler runs after every change of the word observed since the previous run; changes
 *   that happen while it runs are seen by the next run (the word is read before the handler
 *   runs, and the re-arm waits on that value, so nothing is missed).
 * - A running waiter holds the thread open (Node would otherwise exit while a waiter is armed,
 *   since a pending `Atomics.waitAsync` does not count as work); a stopped one does not.
 * - Where `Atomics.waitAsync` is missing (older browsers) the word is polled every millisecond.
 * - Cross-thread timestamps are wall-clock milliseconds ({@link sharedNow}); {@link localTime}
 *   turns one back into this thread's clock time.
 * - Errors cross threads as errno numbers, as they cross the kernel's user boundary:
 *   {@link errnoOf} gives a `DmaBufError`'s number (any other error crosses as `EIO`), and
 *   {@link errorFromErrno} makes a `DmaBufError` of the same code on the other side.
 *
 * @example
 * ```ts
 * import { SharedWordWaiter } from './shared-wait.js';
 * const word = new Int32Array(new SharedArrayBuffer(4));
 * const waiter = new SharedWordWaiter(word, 0, () => console.log('changed to', Atomics.load(word, 0)));
 * waiter.start();
 * Atomics.store(word, 0, 1);
 * Atomics.notify(word, 0);
 * setTimeout(() => waiter.stop(), 10);
 * ```
 */

import { getClock, realClock } from '../base/clock.js';
import { DmaBufError, ERRNO, type ErrnoCode } from '../base/errors.js';

type WaitValue = 'ok' | 'not-equal' | 'timed-out';
interface WaitAsyncResult {
  readonly async: boolean;
  readonly value: Promise<WaitValue> | WaitValue;
}
type WaitAsync = (view: Int32Array, index: number, value: number) => WaitAsyncResult;

// ES2024 API, missing from the ES2023 lib this project compiles against.
const waitAsync: WaitAsync | undefined = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/** Whether this platform has `Atomics.waitAsync` (otherwise waiters poll every millisecond). */
export const hasWaitAsync: boolean = typeof waitAsync === 'function';

// One interval timer holds the thread open for every running waiter together. Where timers can
// be (un)ref'ed (Node) it is made once and toggled, which is cheap enough to do per job; a
// browser never exits a thread on its own, so there the timer only has to exist.
interface Refable {
  ref?(): unknown;
  unref?(): unknown;
}
let holders = 0;
let keepAlive: (ReturnType<typeof setInterval> & Refable) | undefined;

function hold(): void {
  if (holders++ !== 0) return;
  if (keepAlive === undefined) keepAlive = setInterval(() => {}, 1 << 30);
  else keepAlive.ref?.();
}

function release(): void {
  if (--holders !== 0 || keepAlive === undefined) return;
  if (typeof keepAlive.unref === 'function') keepAlive.unref();
  else {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

/**
 * Calls a handler on this thread whenever one word of shared memory changes (see the module
 * overview). @see futex_wait()
 */
export class SharedWordWaiter {
  readonly #view: Int32Array;
  readonly #index: number;
  readonly #handler: () => void;
  #running = false;
  // A wait is armed (or a poll timer is set); at most one at a time.
  #armed = false;
  #pollTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  readonly #onWake = (): void => {
    this.#armed = false;
    this.#pollTimer = undefined;
    if (this.#running) this.#run();
  };

  constructor(view: Int32Array, index: number, handler: () => void) {
    this.#view = view;
    this.#index = index;
    this.#handler = handler;
  }

  /** Whether the waiter is armed and holding the thread open. */
  get running(): boolean {
    return this.#running;
  }

  /** Starts waiting (idempotent). The handler first runs after the next change. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    hold();
    if (!this.#armed) this.#arm(Atomics.load(this.#view, this.#index));
  }

  /**
   * Stops calling the handler and lets the thread exit (idempotent). An armed `waitAsync` cannot
   * be withdrawn; it resolves harmlessly at the next change of the word.
   */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    release();
    if (this.#pollTimer !== undefined) {
      clearTimeout(this.#pollTimer);
      this.#pollTimer = undefined;
      this.#armed = false;
    }
  }

  /** Runs the handler now, for a change this thread made or learned of another way; keeps waiting. */
  poke(): void {
    if (this.#running) this.#handler();
  }

  #run(): void {
    // Read before handling, wait on what was read: a change during the handler re-wakes at once.
    const seen = Atomics.load(this.#view, this.#index);
    this.#handler();
    if (this.#running && !this.#armed) this.#arm(seen);
  }

  #arm(seen: number): void {
    this.#armed = true;
    if (waitAsync === undefined) {
      this.#pollTimer = setTimeout(() => {
        if (Atomics.load(this.#view, this.#index) !== seen || !this.#running) this.#onWake();
        else {
          this.#armed = false;
          this.#arm(seen);
        }
      }, 1);
      return;
    }
    const result = waitAsync(this.#view, this.#index, seen);
    if (result.async) (result.value as Promise<WaitValue>).then(this.#onWake);
    else queueMicrotask(this.#onWake);
  }
}

/**
 * Resolves once `view[index]` no longer holds `seen` (or after a spurious wake; callers re-check),
 * or returns `undefined` at once when it already differs. One-shot, for loops that wait on a
 * word themselves (an engine worker waiting for its ring's write pointer).
 */
export function waitForChange(view: Int32Array, index: number, seen: number): Promise<unknown> | undefined {
  if (Atomics.load(view, index) !== seen) return undefined;
  if (waitAsync === undefined) return new Promise((resolve) => setTimeout(resolve, 1));
  const result = waitAsync(view, index, seen);
  return result.async ? (result.value as Promise<WaitValue>) : undefined;
}

/** Wall-clock milliseconds, comparable between threads (`performance.timeOrigin` differs per thread). */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A {@link sharedNow} time as this thread's clock time: exact on the real clock; with another
 * clock installed (a virtual one in tests) times from other threads mean nothing, so "now".
 */
export function localTime(shared: number): number {
  const clock = getClock();
  return clock === realClock ? shared - performance.timeOrigin : clock.now();
}

/** {@link sharedNow} for a time on this thread's clock (the inverse of {@link localTime}). */
export function sharedTime(local: number): number {
  return getClock() === realClock ? local + performance.timeOrigin : sharedNow();
}

const CODES = new Map<number, ErrnoCode>(Object.entries(ERRNO).map(([code, errno]) => [errno, code as ErrnoCode]));

/** The positive errno number an error crosses threads as: its code's, or `EIO` for any other error. */
export function errnoOf(error: Error): number {
  return error instanceof DmaBufError ? ERRNO[error.code] : ERRNO.EIO;
}

/** The errno name of a positive errno number, or `undefined` for one dmabuf does not use. */
export function errnoCode(errno: number): ErrnoCode | undefined {
  return CODES.get(errno);
}

/** A `DmaBufError` for an errno number that arrived from another thread (unknown numbers: `EIO`). */
export function errorFromErrno(errno: number, what: string): DmaBufError {
  const code = errnoCode(errno) ?? 'EIO';
  return new DmaBufError(code, `${what} failed with ${code} (the errno its signaller set)`);
}
