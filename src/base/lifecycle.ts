/**
 * Lifecycle helpers: explicit ownership for what the garbage collector cannot see.
 *
 * Overview: {@link Kref} is the kernel's `kref` (a count that runs a release function when it
 * reaches zero); {@link DisposableStore} owns a set of disposables and disposes them together,
 * continuing past failures; {@link toDisposable} turns a function into a `Disposable`;
 * {@link LockGuard} is what `acquire()` on a lock returns, so that `using guard = await
 * mutex.acquire()` unlocks at the end of the block; {@link runAll} runs several releases,
 * continuing past failures, and throws what failed as one error.
 *
 * Contract:
 * - `Kref.put()` after the count reached zero is a {@link BugError}, as is `get()` on a released
 *   object: both mean a use-after-free in the caller. A release action may resurrect its object
 *   with `init()` (the count restarts at one); `init()` on a live count is a {@link BugError}.
 * - Disposal is idempotent everywhere: a second dispose does nothing.
 * - `DisposableStore.dispose()` disposes in reverse order of addition and, when some disposals
 *   throw, throws one `AggregateError` after trying all of them (a single failure as itself).
 * - A `LockGuard` unlocks once: disposing it again does nothing, `unlock()` twice is a
 *   {@link BugError}.
 *
 * @example
 * ```ts
 * import { DisposableStore, Kref, toDisposable } from 'dmabuf';
 * const ref = new Kref(() => console.log('released'));
 * ref.get();
 * ref.put();
 * ref.put(); // prints "released"
 * using store = new DisposableStore();
 * store.add(toDisposable(() => console.log('cleaned up')));
 * ```
 */

import { BugError } from './errors.js';
import { invalidArgument, requiredFunction, requiredString } from './options.js';

/**
 * @internal
 * Runs `release` on every item, in order, continuing past failures.
 * @throws the single failure as itself, or an `AggregateError` of them all, described by
 *   `message(count)`, once every item was tried.
 */
export function runAll<T>(items: Iterable<T>, release: (item: T) => void, message: (failures: number) => string): void {
  throwCollected(collectFailures(items, release), message);
}

/**
 * @internal
 * Runs `release` on every item, in order, continuing past failures.
 * @returns what the failed calls threw, in order, or undefined when none failed.
 */
export function collectFailures<T>(items: Iterable<T>, release: (item: T) => void): unknown[] | undefined {
  let errors: unknown[] | undefined;
  for (const item of items) {
    try {
      release(item);
    } catch (err) {
      (errors ??= []).push(err);
    }
  }
  return errors;
}

/** @internal Throws nothing for no errors, the error itself for one, an `AggregateError` for several. */
export function throwCollected(errors: readonly unknown[] | undefined, message: (failures: number) => string): void {
  if (errors === undefined || errors.length === 0) return;
  if (errors.length === 1) throw errors[0];
  throw new AggregateError(errors, message(errors.length));
}

/**
 * A reference count with a release action, modelled on the kernel's `struct kref`. Use it as a
 * field (`new Kref(() => free(), 'buffer 7')`), or extend it the way kernel objects embed their
 * kref: a subclass overrides {@link Kref.release} (and {@link Kref.refName} for messages) and
 * costs no closure per object.
 */
export class Kref {
  #count = 1;
  readonly #release: (() => void) | undefined;
  readonly #what: string | undefined;

  /**
   * Starts at one reference, owned by the creator.
   * @param release runs once, at the last put (subclasses may override `release()` instead).
   * @param what names the object in error messages.
   * @throws {InvalidArgumentError} for a `release` that is not a function or a non-string `what`.
   */
  constructor(release?: () => void, what?: string) {
    if (release !== undefined && typeof release !== 'function') {
      throw invalidArgument('Kref', 'release', release, 'a function (or omitted in a subclass)');
    }
    if (what !== undefined && typeof what !== 'string') throw invalidArgument('Kref', 'what', what, 'a string');
    this.#release = release;
    this.#what = what;
  }

  /** References held; 0 once released. */
  get count(): number {
    return this.#count;
  }

  /** Takes a reference. @throws {BugError} when the object was already released. */
  get(): void {
    if (this.#count <= 0)
      throw new BugError(`${this.refName()}: get() after the last reference was dropped (use after free)`);
    this.#count++;
  }

  /** Takes a reference unless the object is already being released (`kref_get_unless_zero`). */
  getUnlessZero(): boolean {
    if (this.#count <= 0) return false;
    this.#count++;
    return true;
  }

  /**
   * Drops a reference; the last one runs the release action.
   * @returns true when this call released the object.
   * @throws {BugError} on a put without a matching reference.
   */
  put(): boolean {
    if (this.#count <= 0) throw new BugError(`${this.refName()}: put() without a reference (double put)`);
    if (--this.#count > 0) return false;
    this.release();
    return true;
  }

  /**
   * Starts the count again at one reference, for a release action that resurrects its object
   * instead of freeing it (a TTM buffer released while busy lives on as a zombie owned by its
   * delayed delete): that reference is dropped by a later `put()`, which runs the release again.
   * @throws {BugError} while references are still held (only a released count may restart).
   * @see kref_init()
   */
  init(): void {
    if (this.#count !== 0)
      throw new BugError(
        `${this.refName()}: init() with ${this.#count} reference(s) still held; only a released count restarts`,
      );
    this.#count = 1;
  }

  /** The release action: the constructor's function. Subclasses override it. */
  protected release(): void {
    this.#release?.();
  }

  /** How error messages name the object: the constructor's `what`, else `'object'`. */
  protected refName(): string {
    return this.#what ?? 'object';
  }
}

/** Wraps a function as an idempotent `Disposable`. */
export function toDisposable(fn: () => void): Disposable {
  requiredFunction(fn, 'toDisposable', 'fn');
  let done = false;
  return {
    [Symbol.dispose](): void {
      if (done) return;
      done = true;
      fn();
    },
  };
}

/** Owns disposables and disposes them together, last added first. */
export class DisposableStore implements Disposable {
  #items: Disposable[] = [];
  #disposed = false;

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Adds `item`; if the store is already disposed, disposes `item` at once. */
  add<T extends Disposable>(item: T): T {
    if (typeof (item as Partial<Disposable> | null)?.[Symbol.dispose] !== 'function') {
      throw invalidArgument('DisposableStore.add', 'item', item, 'a Disposable (an object with [Symbol.dispose]())');
    }
    if (this.#disposed) item[Symbol.dispose]();
    else this.#items.push(item);
    return item;
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const items = this.#items.reverse();
    this.#items = [];
    runAll(
      items,
      (item) => item[Symbol.dispose](),
      (n) => `${n} disposals failed`,
    );
  }
}

/**
 * A held lock as a `Disposable`: `using guard = await mutex.acquire()` unlocks when the block
 * ends, however it ends. Returned by the `acquire()` methods of dmabuf's locks.
 */
export class LockGuard implements Disposable {
  #release: (() => void) | null;
  readonly #what: string;

  /** @param release unlocks the lock; called at most once. @param what names the lock in errors. */
  constructor(release: () => void, what: string) {
    this.#release = requiredFunction(release, 'LockGuard', 'release') as () => void;
    this.#what = requiredString(what, 'LockGuard', 'what');
  }

  /** Whether the guard still holds its lock. */
  get held(): boolean {
    return this.#release !== null;
  }

  /** Unlocks now. @throws {BugError} when the guard already unlocked. */
  unlock(): void {
    const release = this.#release;
    if (release === null)
      throw new BugError(`LockGuard of ${this.#what}: unlock() twice; the lock was already released`);
    this.#release = null;
    release();
  }

  /** Unlocks unless already unlocked. */
  [Symbol.dispose](): void {
    if (this.#release !== null) this.unlock();
  }
}
