/**
 * Waiter: a promise that settles once and then takes down everything that could settle it.
 *
 * Overview: every wait in dmabuf (a fence wait, a lock waiting in a queue, a syncobj wait for a
 * point to appear, a drain) has the same shape. Several things race to finish it: the event it
 * waits for, a timer, an `AbortSignal`, a teardown. Whichever comes first settles the promise,
 * and then the others must go: the callback on the fence, the place in the queue, the timer and
 * the abort listener. A {@link Waiter} is that shape written once. Its owner creates it with a
 * cleanup function (what to remove besides the timer and the listener), arms a timer with
 * {@link Waiter.timeoutAfter} and a signal with {@link Waiter.abortOn}, and settles it with
 * {@link Waiter.resolve} or {@link Waiter.reject}.
 *
 * Models the waiter side of the kernel's `wait_event_interruptible_timeout()` and its wait queue
 * entry: one sleeper, woken once by the condition, a signal or the timeout, removed from the
 * queue on the way out.
 *
 * Contract:
 * - The promise settles at most once; later `resolve`/`reject` calls return `false` and do nothing.
 * - Settling runs, in this order and before the promise's reactions: clearing the timer, removing
 *   the abort listener, the owner's cleanup. So no callback, timer or listener outlives the wait.
 * - {@link Waiter.abortOn} with an already aborted signal rejects at once with `signal.reason`;
 *   otherwise an abort runs the owner's `onAbort` (to leave a queue) and rejects with the reason.
 * - A timer fires through the current clock (`getClock()`), so tests drive it with a virtual clock.
 * - The abort listener and the timer closure are the only allocations beyond the promise, and a
 *   waiter without a timeout or a signal makes neither.
 *
 * @example
 * ```ts
 * import { Waiter } from './waiter.js';
 * const listeners = new Set<() => void>();
 * function nextEvent(signal?: AbortSignal): Promise<string> {
 *   const waiter = new Waiter<string>(() => listeners.delete(onEvent));
 *   const onEvent = (): void => void waiter.resolve('event');
 *   listeners.add(onEvent);
 *   waiter.timeoutAfter(1000, () => waiter.resolve('timeout'));
 *   waiter.abortOn(signal);
 *   return waiter.promise;
 * }
 * const next = nextEvent();
 * for (const listener of listeners) listener();
 * console.log(await next, listeners.size); // 'event' 0
 * ```
 */

import { getClock, type Clock, type TimerHandle } from './clock.js';

let capturedResolve: ((value: never) => void) | undefined;
let capturedReject: ((reason: unknown) => void) | undefined;
function captureSettlers(resolve: (value: never) => void, reject: (reason: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** @internal A promise settled once, whose settling removes its timer, abort listener and the owner's hooks. */
export class Waiter<T> {
  /** Settles once, with whatever settled the waiter first. */
  readonly promise: Promise<T>;
  #resolve!: (value: T) => void;
  #reject!: (reason: unknown) => void;
  #settled = false;
  readonly #cleanup: (() => void) | undefined;
  #signal: AbortSignal | undefined = undefined;
  #listener: (() => void) | undefined = undefined;
  #timer: TimerHandle | undefined = undefined;
  // The clock that armed the timer: the one to clear it on, even if another was installed since.
  #clock: Clock | undefined = undefined;

  /** @param cleanup runs once when the waiter settles, however it settles. It must not throw. */
  constructor(cleanup?: () => void) {
    // The executor runs synchronously: one module-level function hands the settle functions over
    // (no closure per waiter; lock and fence waits make one waiter each).
    this.promise = new Promise<T>(captureSettlers);
    this.#resolve = capturedResolve as (value: T) => void;
    this.#reject = capturedReject!;
    capturedResolve = capturedReject = undefined;
    this.#cleanup = cleanup;
  }

  /** Whether the waiter has settled. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Fulfils the promise with `value` unless already settled. @returns whether this call settled it. */
  resolve(value: T): boolean {
    if (this.#settled) return false;
    this.#finish();
    this.#resolve(value);
    return true;
  }

  /** Rejects the promise with `reason` unless already settled. @returns whether this call settled it. */
  reject(reason: unknown): boolean {
    if (this.#settled) return false;
    this.#finish();
    this.#reject(reason);
    return true;
  }

  /**
   * Rejects with `signal.reason` when `signal` aborts, after running `onAbort` (where the owner
   * leaves its queue). With an aborted signal this happens now. `undefined` arms nothing.
   * @returns false when the waiter is settled after the call (the signal had already aborted).
   */
  abortOn(signal: AbortSignal | undefined, onAbort?: () => void): boolean {
    if (signal === undefined || this.#settled) return !this.#settled;
    if (signal.aborted) {
      onAbort?.();
      this.reject(signal.reason);
      return false;
    }
    const listener = (): void => {
      if (this.#settled) return;
      onAbort?.();
      this.reject(signal.reason);
    };
    this.#signal = signal;
    this.#listener = listener;
    signal.addEventListener('abort', listener, { once: true });
    return true;
  }

  /**
   * Calls `onTimeout` after `ms` clock milliseconds unless the waiter settled first; `onTimeout`
   * settles it (resolving `false`, or rejecting with a timeout error). `undefined` arms nothing,
   * and so does a settled waiter.
   */
  timeoutAfter(ms: number | undefined, onTimeout: () => void): void {
    if (ms === undefined || this.#settled) return;
    const clock = getClock();
    this.#clock = clock;
    this.#timer = clock.setTimer(ms, () => {
      this.#timer = undefined;
      if (!this.#settled) onTimeout();
    });
  }

  #finish(): void {
    this.#settled = true;
    const timer = this.#timer;
    if (timer !== undefined) {
      this.#timer = undefined;
      this.#clock!.clearTimer(timer);
    }
    const listener = this.#listener;
    if (listener !== undefined) {
      this.#listener = undefined;
      this.#signal!.removeEventListener('abort', listener);
    }
    this.#cleanup?.();
  }
}

/**
 * @internal
 * `promise`, or a rejection with `signal.reason` if `signal` aborts first; the abort stops only
 * this wait, not the work behind `promise`. Without a signal it is `promise` itself.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  const waiter = new Waiter<T>();
  if (!waiter.abortOn(signal)) {
    promise.catch(() => undefined); // the caller stopped listening; its outcome is someone else's
    return waiter.promise;
  }
  promise.then(
    (value) => waiter.resolve(value),
    (reason: unknown) => waiter.reject(reason),
  );
  return waiter.promise;
}
