/**
 * mutex: a plain async mutex that reports to the lock validator.
 *
 * Overview: {@link Mutex} is the kernel's `struct mutex` for async code: one holder, FIFO
 * waiters, the lock handed straight to the first waiter on unlock, abortable waits. Unlike other
 * JavaScript mutexes it belongs to a lock class (by name: mutexes created with one name share
 * one class, like the kernel's per-call-site class keys), so the validator can see that task 1
 * takes `a` then `b` while task 2 takes `b` then `a`, and report the deadlock before it happens.
 * For many locks in any order, use {@link WwMutex} instead.
 *
 * Models `kernel/locking/mutex.c` (the plain, non-ww paths).
 *
 * Contract:
 * - Waiters acquire in the order they asked; `unlock()` passes the lock on before returning.
 * - An aborted wait rejects with `signal.reason` and leaves the queue as if it never joined.
 * - Unlocking a free mutex is a {@link BugError}. Ownership is not checked (JavaScript has no
 *   task identity); the validator tracks who holds what per async context.
 * - Uncontended `lock()` returns an already-resolved promise and allocates nothing.
 * - `acquire()` is `lock()` returning a {@link LockGuard}, for `using guard = await m.acquire()`.
 *
 * @example
 * ```ts
 * import { Mutex } from 'dmabuf';
 * const queueLock = new Mutex('queue');
 * await queueLock.runExclusive(async () => {
 *   // one task at a time in here
 * });
 * {
 *   using _guard = await queueLock.acquire();
 *   console.log(queueLock.isLocked); // true
 * } // unlocked here, however the block ends
 * console.log(queueLock.isLocked); // false
 * ```
 */

import { BugError } from '../base/errors.js';
import { LockGuard } from '../base/lifecycle.js';
import { LockClass, lockdep } from '../base/lockdep-hooks.js';
import { defineOptions, optionalSignal, requiredFunction, requiredName } from '../base/options.js';
import { Waiter } from '../base/waiter.js';

/** Options for waiting on a {@link Mutex}. */
export interface MutexLockOptions {
  /** Aborts the wait: the promise rejects with `signal.reason` and the waiter leaves the queue. */
  readonly signal?: AbortSignal;
}

/** A queued lock request: settled once, by the hand-off (with its value) or by its signal. */
class MutexWaiter extends Waiter<unknown> {
  constructor(
    readonly token: object | undefined,
    /** What the request resolves to: nothing for lock(), the guard for acquire(). */
    readonly value: unknown,
  ) {
    super();
  }
}

const parseLockOptions = defineOptions('Mutex.lock', { signal: optionalSignal });
const parseRunOptions = defineOptions('Mutex.runExclusive', { signal: optionalSignal });
const parseAcquireOptions = defineOptions('Mutex.acquire', { signal: optionalSignal });

const RESOLVED: Promise<void> = Promise.resolve();

/** A plain async mutex (`struct mutex`). */
export class Mutex {
  readonly name: string;
  /** The validator's class for this mutex: shared by every mutex with the same name. */
  readonly lockClass: LockClass;
  #locked = false;
  #waiters: MutexWaiter[] = [];

  /** @throws {InvalidArgumentError} unless `name` (it names the lock class) is a non-empty string. */
  constructor(name = 'mutex') {
    this.name = requiredName(name, 'Mutex', 'name');
    this.lockClass = LockClass.forName(name);
  }

  get isLocked(): boolean {
    return this.#locked;
  }

  /** Number of queued waiters. */
  get waiters(): number {
    return this.#waiters.length;
  }

  toString(): string {
    return `Mutex(${this.name})`;
  }

  /**
   * Takes the mutex, waiting in FIFO order if needed.
   * @throws rejects with `signal.reason` when aborted, a {@link BugError} validator report, or
   *   {@link InvalidArgumentError} for options other than `{ signal? }` (nothing is queued then).
   * @see mutex_lock() / mutex_lock_interruptible()
   */
  lock(options?: MutexLockOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    let token: object | undefined;
    try {
      if (options !== undefined) signal = parseLockOptions(options).signal;
      // The validator's request is made here, one frame from the caller, so reports show its site.
      if (lockdep !== null) token = lockdep.request(this.lockClass, this, null, false);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#take(token, signal, undefined, RESOLVED);
  }

  /**
   * {@link lock}, resolving to a guard that unlocks when disposed: `using guard = await
   * m.acquire()`. The guard comes through the lock's own promise (no wrapper), so the validator
   * sees the mutex held in the caller's continuation, as with `await m.lock()`.
   * @throws rejects as {@link lock} does.
   */
  acquire(options?: MutexLockOptions): Promise<LockGuard> {
    let signal: AbortSignal | undefined;
    let token: object | undefined;
    try {
      signal = parseAcquireOptions(options).signal;
      if (lockdep !== null) token = lockdep.request(this.lockClass, this, null, false);
    } catch (err) {
      return Promise.reject(err);
    }
    const guard = new LockGuard(() => this.unlock(), String(this));
    return this.#take(token, signal, guard, Promise.resolve(guard));
  }

  /**
   * Takes the mutex now (resolving to `granted`, made by the caller before anything is recorded)
   * or queues a waiter that resolves to `value` at the hand-off.
   */
  #take<T>(token: object | undefined, signal: AbortSignal | undefined, value: T, granted: Promise<T>): Promise<T> {
    if (!this.#locked) {
      this.#locked = true;
      if (token !== undefined) {
        lockdep?.acquired(token);
        // Last, after every promise of our own: the requester's await must carry the request.
        lockdep?.enter(token);
      }
      return granted;
    }
    if (signal?.aborted) {
      if (token !== undefined) lockdep?.abandon(token);
      return Promise.reject(signal.reason);
    }
    const waiter = new MutexWaiter(token, value);
    this.#waiters.push(waiter);
    if (signal !== undefined) {
      waiter.abortOn(signal, () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        if (token !== undefined) lockdep?.abandon(token);
      });
    }
    if (token !== undefined) lockdep?.enter(token);
    return waiter.promise as Promise<T>;
  }

  /** Takes the mutex only if it is free. @see mutex_trylock() */
  tryLock(): boolean {
    if (this.#locked) return false;
    const token = lockdep?.request(this.lockClass, this, null, true);
    this.#locked = true;
    if (token !== undefined) {
      lockdep?.acquired(token);
      lockdep?.enter(token);
    }
    return true;
  }

  /**
   * Releases the mutex, handing it to the first waiter.
   * @throws {BugError} when the mutex is not locked.
   * @see mutex_unlock()
   */
  unlock(): void {
    if (!this.#locked) throw new BugError(`${this}: unlock() of a mutex that is not locked`);
    lockdep?.release(this);
    const next = this.#waiters.shift();
    if (next === undefined) {
      this.#locked = false;
      return;
    }
    if (next.token !== undefined) lockdep?.acquired(next.token);
    next.resolve(next.value);
  }

  /**
   * Runs `fn` holding the mutex and releases it however `fn` ends.
   * @throws rejects with {@link InvalidArgumentError} when `fn` is not a function or for bad options.
   */
  async runExclusive<T>(fn: () => T | Promise<T>, options?: MutexLockOptions): Promise<T> {
    requiredFunction(fn, 'Mutex.runExclusive', 'fn');
    parseRunOptions(options);
    await this.lock(options);
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }
}
