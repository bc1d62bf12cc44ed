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
 *
 * @example
 * ```ts
 * import { Mutex } from 'dmabuf';
 * const queueLock = new Mutex('queue');
 * await queueLock.runExclusive(async () => {
 *   // one task at a time in here
 * });
 * ```
 */

import { BugError, describeValue } from '../base/errors.js';
import { LockClass, lockdep } from '../base/lockdep-hooks.js';

/** Options for waiting on a {@link Mutex}. */
export interface MutexLockOptions {
  readonly signal?: AbortSignal;
}

interface MutexWaiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  readonly token: object | undefined;
}

const RESOLVED: Promise<void> = Promise.resolve();

/** A plain async mutex (`struct mutex`). */
export class Mutex {
  readonly name: string;
  /** The validator's class for this mutex: shared by every mutex with the same name. */
  readonly lockClass: LockClass;
  #locked = false;
  #waiters: MutexWaiter[] = [];

  constructor(name = 'mutex') {
    if (typeof name !== 'string' || name.length === 0) {
      throw new BugError(
        `Mutex: the name must be a non-empty string (it names the lock class), got ${describeValue(name)}`,
      );
    }
    this.name = name;
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
   * @throws rejects with `signal.reason` when aborted, or a {@link BugError} validator report.
   * @see mutex_lock() / mutex_lock_interruptible()
   */
  lock(options?: MutexLockOptions): Promise<void> {
    let token: object | undefined;
    if (lockdep !== null) {
      try {
        token = lockdep.request(this.lockClass, this, null, false);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (!this.#locked) {
      this.#locked = true;
      if (token !== undefined) {
        lockdep?.acquired(token);
        lockdep?.enter(token);
      }
      return RESOLVED;
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      if (token !== undefined) lockdep?.abandon(token);
      return Promise.reject(signal.reason);
    }
    const waiter: MutexWaiter = { resolve: noop, reject: noop, signal, onAbort: undefined, token };
    const promise = new Promise<void>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    this.#waiters.push(waiter);
    if (signal !== undefined) {
      waiter.onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i < 0) return;
        this.#waiters.splice(i, 1);
        if (token !== undefined) lockdep?.abandon(token);
        waiter.reject(signal.reason);
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    }
    if (token !== undefined) lockdep?.enter(token);
    return promise;
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
    if (next.onAbort !== undefined) next.signal!.removeEventListener('abort', next.onAbort);
    if (next.token !== undefined) lockdep?.acquired(next.token);
    next.resolve();
  }

  /** Runs `fn` holding the mutex and releases it however `fn` ends. */
  async runExclusive<T>(fn: () => T | Promise<T>, options?: MutexLockOptions): Promise<T> {
    await this.lock(options);
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }
}

function noop(): void {}
