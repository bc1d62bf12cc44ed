/**
 * Lifecycle helpers: explicit ownership for what the garbage collector cannot see.
 *
 * Overview: {@link Kref} is the kernel's `kref` (a count that runs a release function when it
 * reaches zero); {@link DisposableStore} owns a set of disposables and disposes them together,
 * continuing past failures; {@link toDisposable} turns a function into a `Disposable`.
 *
 * Contract:
 * - `Kref.put()` after the count reached zero is a {@link BugError}, as is `get()` on a released
 *   object: both mean a use-after-free in the caller. A release action may resurrect its object
 *   with `init()` (the count restarts at one); `init()` on a live count is a {@link BugError}.
 * - Disposal is idempotent everywhere: a second dispose does nothing.
 * - `DisposableStore.dispose()` disposes in reverse order of addition and, when some disposals
 *   throw, throws one `AggregateError` after trying all of them.
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

/** A reference count with a release action, modelled on the kernel's `struct kref`. */
export class Kref {
  #count = 1;
  readonly #release: () => void;
  readonly #what: string;

  /** Starts at one reference, owned by the creator. `what` names the object in error messages. */
  constructor(release: () => void, what = 'object') {
    this.#release = release;
    this.#what = what;
  }

  get count(): number {
    return this.#count;
  }

  /** Takes a reference. @throws {BugError} when the object was already released. */
  get(): void {
    if (this.#count <= 0)
      throw new BugError(`${this.#what}: get() after the last reference was dropped (use after free)`);
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
    if (this.#count <= 0) throw new BugError(`${this.#what}: put() without a reference (double put)`);
    if (--this.#count > 0) return false;
    this.#release();
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
        `${this.#what}: init() with ${this.#count} reference(s) still held; only a released count restarts`,
      );
    this.#count = 1;
  }
}

/** Wraps a function as an idempotent `Disposable`. */
export function toDisposable(fn: () => void): Disposable {
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
    if (this.#disposed) item[Symbol.dispose]();
    else this.#items.push(item);
    return item;
  }

  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const errors: unknown[] = [];
    for (const item of this.#items.reverse()) {
      try {
        item[Symbol.dispose]();
      } catch (err) {
        errors.push(err);
      }
    }
    this.#items = [];
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} disposals failed`);
  }
}
