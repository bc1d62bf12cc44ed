/**
 * Validator hook points: where locks, fence waits and signalling sections report to lockdep.
 *
 * Overview: the lock-dependency validator lives in `locking/lockdep.ts`, but fences (a lower
 * layer) must report their waits and signalling too. So the hooks are declared here, at the
 * bottom of the stack, as one live binding, {@link lockdep}, that is `null` while the validator
 * is off. Every call site is a single branch: `if (lockdep !== null) lockdep.mightWait(...)`.
 * {@link LockClass} names what the validator orders: each ww class, each plain mutex class, and
 * the kernel's pseudo-locks ({@link dmaFenceMap}, {@link dmaFenceLrMap}, {@link fsReclaim}).
 *
 * Contract:
 * - Hooks are installed only by `enableLockdep()` and removed by `disableLockdep()`.
 * - A hook never changes the behaviour of the code it observes, except to throw a
 *   {@link BugError} report in the validator's `'throw'` mode.
 * - `instance` arguments identify one lock; the same object must be passed to acquire and release.
 *
 * @example
 * ```ts
 * import { LockClass } from 'dmabuf';
 * import { lockdep } from './lockdep-hooks.js'; // the live binding: internal
 * const queueLock = LockClass.forName('queue.lock');
 * console.log(queueLock.name, lockdep === null ? 'validator off' : 'validator on');
 * ```
 */

import { oneOf, requiredName } from './options.js';

/** What kind of lock a class is: a ww class, a plain mutex class, or a pseudo-lock. */
export type LockClassKind = 'ww' | 'mutex' | 'pseudo';

const checkKind = oneOf(['ww', 'mutex', 'pseudo'] as const);

/** A lock class: the unit the validator orders (the kernel's `lock_class_key`). */
export class LockClass {
  readonly name: string;
  readonly kind: LockClassKind;
  static readonly #byName = new Map<string, LockClass>();

  /** @throws {InvalidArgumentError} for an empty name or an unknown kind. */
  constructor(name: string, kind: LockClassKind) {
    this.name = requiredName(name, 'LockClass', 'name');
    this.kind = checkKind(kind, 'LockClass', 'kind');
  }

  /** The plain mutex class called `name`, created on first use: mutexes with one name share it. */
  static forName(name: string): LockClass {
    requiredName(name, 'LockClass.forName', 'name');
    let cls = LockClass.#byName.get(name);
    if (cls === undefined) {
      cls = new LockClass(name, 'mutex');
      LockClass.#byName.set(name, cls);
    }
    return cls;
  }

  toString(): string {
    return this.name;
  }
}

/** @internal The fence-signalling pseudo-lock: held (as a read lock) by code on the way to `signal()`. */
export const dmaFenceMap = new LockClass('dma_fence_map', 'pseudo');
/** @internal The same for long-running fences (seed 001): their own map, so the two can be ordered. */
export const dmaFenceLrMap = new LockClass('dma_fence_lr_map', 'pseudo');
/** @internal Memory reclaim: an allocation that may wait for eviction or shrinking takes this. */
export const fsReclaim = new LockClass('fs_reclaim', 'pseudo');

/** What a signalling-section cookie is: opaque to callers. */
export type SignallingCookie = object;

/** @internal The validator's entry points. */
export interface LockdepHooks {
  /**
   * A lock is requested (before any waiting): records and checks dependencies from every lock
   * held now. @returns a token for the calls below.
   */
  request(cls: LockClass, instance: object, ctx: object | null, trylock: boolean): object;
  /**
   * Records the request in the requester's async context. Call it last before returning to the
   * requester (after creating any promise of your own), so that the requester's `await` carries it.
   */
  enter(token: object): void;
  /** The request behind `token` was granted: the lock now counts as held. */
  acquired(token: object): void;
  /** The request behind `token` failed (back-off, abort): it never counts as held. */
  abandon(token: object): void;
  /** `instance` was released. */
  release(instance: object): void;
  /** A fence wait may block here: records held locks -> the (long-running) signalling map. */
  mightWait(longRunning: boolean): void;
  /** An allocation may reclaim memory here. */
  mightReclaim(): void;
  /** Opens a (long-running) signalling section; nested sections are free. */
  beginSignalling(longRunning: boolean): SignallingCookie;
  /** Closes the section opened with `cookie`. */
  endSignalling(cookie: SignallingCookie): void;
  /** A plain callback was added to a long-running fence (report: it may never complete). */
  plainCallbackOnLongRunning(what: string): void;
  /** Runs `fn` as a task of its own: it starts holding nothing (a queued work item, a timer). */
  task<T>(fn: () => T): T;
}

/** @internal The installed validator, or null while it is off. Read it on every hot path; it is one branch. */
export let lockdep: LockdepHooks | null = null;

/** @internal Installs (or, with null, removes) the validator. For `locking/lockdep.ts` only. */
export function installLockdepHooks(hooks: LockdepHooks | null): void {
  lockdep = hooks;
}
