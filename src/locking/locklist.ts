/**
 * Transaction lock lists: the locks one transaction holds, released together, with the object
 * lifetimes made explicit.
 *
 * Overview: in April 2021 Thomas Hellström proposed, from i915's dma_resv conversion, that a
 * ww transaction keep the locks it takes on lists of "lock items". An item carries an ops table
 * (slow-lock, unlock, put), so a list can hold any kind of lock — a bare ww mutex, a reservation
 * object, a buffer object, or another list — and release them all in one call. i915 kept two
 * lists per transaction: the main one, unlocked when the transaction ends, and an eviction list,
 * filled while making room for one buffer and unlocked after that buffer is validated. A backoff
 * helper unlocked a list and then slow-locked the contending item, optionally unlocking it again
 * at once (`relax_unlock`) because a restarted transaction may not need it. Christian König and
 * Daniel Vetter answered that they had tried the same and it always died on lifetime: a ww
 * mutex on a list must stay alive until it is unlocked, and a bare mutex has no reference count
 * to guarantee that. The idea was not merged; it became drm_exec (Christian König, Linux 6.6),
 * which locks GEM objects only, holds a GEM reference on every object it has locked and on the
 * object it backed off for, and keeps them in one flat array (`DrmExec` in `src/exec/` is that
 * form).
 *
 * This module builds the seed's version anyway, because drm_exec cannot express two things the
 * seed wanted: nesting (a {@link TransLockList} is itself a lock item, so an eviction sub-list
 * can be unlocked on its own while the outer transaction keeps its locks, or be unlocked with
 * it), and contention that travels up from code that only sees a sub-list
 * ({@link TransLockList.setContending}: the sub-list records the item it backed off for and the
 * outer transaction backs off with the sub-list as its contending item). The lifetime objection
 * is answered by putting `get`/`put` in the item's ops and making the rule below a checked one
 * rather than a convention. This file models the seed's `struct trans_lockitem`,
 * `struct trans_locklist_ops`, `trans_unlock_put_all()` and `trans_backoff()`; they were never
 * in a kernel tree.
 *
 * Contract:
 * - Only locked objects are added, and the caller locked them. Items stand for exclusive locks,
 *   so an object is on at most one list at a time, across all transactions (membership is per
 *   object, not per item, so two items for one lock are caught too); adding it again is a
 *   {@link BugError}, as is a list that would contain itself. A list leaves an object's
 *   membership before unlocking it, so the next owner can list it as soon as it holds it.
 * - Lifetime: `add` takes a reference (`ops.get`) before the item is listed. A reference is
 *   dropped (`ops.put`) only after the item is off the list and its `unlock` returned normally.
 *   If `unlock` throws, the item still leaves the list but its reference is kept for good (a
 *   leak, reported in the error), because an object that may still be locked is never released.
 *   `get` and `put` come as a pair or not at all.
 * - `unlockPutAll` releases in reverse order of addition and keeps going past failures, then
 *   throws one `AggregateError`. It leaves the list empty and reusable; disposing the list is the
 *   same call (plus dropping a recorded contending item), so disposal is idempotent.
 * - `slowLock` resolves `'locked'` when the lock is now held, `'relaxed'` when the transaction
 *   was relaxed but the lock is not held (the seed's `-EAGAIN`), and rejects only with nothing
 *   held (an abort rejects with `signal.reason`).
 * - `backoff` holds its own reference on the contending object while it works, so the caller's
 *   references are untouched whatever happens. A contending lock it leaves locked is put on the
 *   list, which then owns it; the restarted transaction skips it ({@link TransLockList.has}).
 *   While a backoff is in flight the list refuses `add` and a second `backoff`.
 *
 * @example
 * ```ts
 * import { TransLockList, WwAcquireCtx, WwClass, WwDeadlockError, WwMutex, wwMutexLockItem } from 'dmabuf';
 *
 * const buffers = new WwClass('buffers', 'wait-die');
 * const [a, b, c] = [new WwMutex(buffers, 'a'), new WwMutex(buffers, 'b'), new WwMutex(buffers, 'c')];
 *
 * async function withLocked(mutexes: readonly WwMutex[], work: () => Promise<void>): Promise<void> {
 *   using ctx = new WwAcquireCtx(buffers);
 *   using list = new TransLockList({ name: 'submit' }); // disposed first: unlocks before ctx.fini()
 *   restart: for (;;) {
 *     for (const mutex of mutexes) {
 *       if (list.has(mutex)) continue; // slow-locked by the last backoff
 *       try {
 *         await mutex.lock(ctx);
 *       } catch (err) {
 *         if (!(err instanceof WwDeadlockError)) throw err;
 *         await list.backoff(wwMutexLockItem(mutex, ctx));
 *         continue restart;
 *       }
 *       list.add(wwMutexLockItem(mutex, ctx));
 *     }
 *     break;
 *   }
 *   ctx.done();
 *   await work();
 * }
 *
 * await Promise.all([
 *   withLocked([a, b, c], async () => console.log('first holds', a.name, b.name, c.name)),
 *   withLocked([c, b, a], async () => console.log('second holds', c.name, b.name, a.name)),
 * ]);
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { defineOptions, invalidArgument, optionalBoolean, optionalSignal, optionalString } from '../base/options.js';
import { WwAcquireCtx, WwMutex } from './ww-mutex.js';

const parseInit = defineOptions('TransLockList', { name: optionalString, relaxUnlock: optionalBoolean });
const parseBackoffOptions = defineOptions('TransLockList.backoff', { signal: optionalSignal });
const parseItemInit = defineOptions('wwMutexLockItem', { relaxUnlock: optionalBoolean });

/**
 * What a slow lock achieved: `'locked'` (the lock is held) or `'relaxed'` (the transaction was
 * relaxed, the lock is not held: the seed's `-EAGAIN`).
 */
export type SlowLockResult = 'locked' | 'relaxed';

/**
 * What {@link TransLockList.backoff} did with the contending item: `'locked'` (slow-locked and
 * now on the list), `'unlocked'` (slow-locked, then unlocked again because of `relaxUnlock`) or
 * `'relaxed'` (its slow lock relaxed the transaction and left it unlocked).
 */
export type BackoffOutcome = 'locked' | 'unlocked' | 'relaxed';

/**
 * How to lock, unlock and reference one kind of object (`struct trans_locklist_ops`).
 * `get`/`put` are optional together: leave both out for objects the garbage collector keeps
 * alive on its own (a bare `WwMutex`).
 */
export interface LockItemOps<T extends object> {
  /**
   * Waits for the contended lock after everything else was unlocked (ww: `lockSlow`). Only called
   * for the contending item of a backoff. Rejects only with nothing held.
   */
  slowLock(object: T, signal?: AbortSignal): Promise<SlowLockResult>;
  /** Unlocks a lock the transaction holds. Throwing means the list cannot tell whether it is still held. */
  unlock(object: T): void;
  /** Takes a reference; called before the object goes on a list. */
  get?(object: T): void;
  /** Drops a reference taken by `get`; called only once the object is unlocked and off the list. */
  put?(object: T): void;
}

/**
 * One lock a transaction can list (`struct trans_lockitem`). Items are cheap values: a new item
 * for the same object is the same entry as far as a list is concerned.
 */
export interface LockItem<T extends object = object> {
  readonly ops: LockItemOps<T>;
  readonly object: T;
  /** After a backoff slow-locked this item, unlock it again at once: a restart probably does not need it. */
  readonly relaxUnlock?: boolean;
}

/** Options for {@link TransLockList}. */
export interface TransLockListInit {
  /** Names the list in error messages. */
  readonly name?: string;
  /** The list's `relaxUnlock` when it is itself the contending item of an outer backoff. */
  readonly relaxUnlock?: boolean;
}

interface Membership {
  readonly list: TransLockList;
  readonly item: LockItem;
}

// Keyed by the locked object, so a lock is listed once whichever item value stands for it.
const membership = new WeakMap<object, Membership>();

function nameOf(object: object): string {
  if (object instanceof TransLockList) return `list '${object.name}'`;
  const name = (object as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? `'${name}'` : describeValue(object);
}

function checkItem(item: LockItem, where: string): void {
  if (typeof item !== 'object' || item === null || !('ops' in item) || !('object' in item)) {
    throw new InvalidArgumentError(`${where}: expected a lock item { ops, object }, got ${describeValue(item)}`);
  }
  const { ops, object } = item;
  if (typeof object !== 'object' || object === null) {
    throw new InvalidArgumentError(`${where}: a lock item's object must be an object, got ${describeValue(object)}`);
  }
  if (
    typeof ops !== 'object' ||
    ops === null ||
    typeof ops.slowLock !== 'function' ||
    typeof ops.unlock !== 'function'
  ) {
    throw new InvalidArgumentError(`${where}: the ops of ${nameOf(object)} need slowLock() and unlock() functions`);
  }
  if ((ops.get === undefined) !== (ops.put === undefined)) {
    throw new BugError(
      `${where}: the ops of ${nameOf(object)} have ${ops.get ? 'get() without put()' : 'put() without get()'}; ` +
        'a listed object is referenced by get() and released by put(), so give both or neither',
    );
  }
}

function getRef(item: LockItem): void {
  item.ops.get?.(item.object);
}

function putRef(item: LockItem): void {
  item.ops.put?.(item.object);
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

/**
 * The locks one transaction holds, unlocked together; itself a lock item, so lists nest.
 * @see trans_unlock_put_all() and trans_backoff() in the seed proposal; drm_exec is the merged successor.
 */
export class TransLockList implements LockItem<TransLockList>, Disposable {
  readonly name: string;
  readonly relaxUnlock: boolean;
  #items: LockItem[] = [];
  #contending: LockItem | null = null;
  #backingOff = false;

  /** @throws {InvalidArgumentError} for options other than `{ name?, relaxUnlock? }`. */
  constructor(init?: TransLockListInit) {
    const { name, relaxUnlock } = parseInit(init);
    this.name = name ?? 'translocklist';
    this.relaxUnlock = relaxUnlock ?? false;
  }

  /**
   * A sub-list's ops: unlocking it unlocks its items; slow-locking it backs off on the item it
   * recorded with `setContending` (or just unlocks it when there is none, and reports `'relaxed'`).
   */
  static readonly #subListOps: LockItemOps<TransLockList> = Object.freeze({
    slowLock: (list: TransLockList, signal?: AbortSignal) => list.#relax(signal),
    unlock: (list: TransLockList) => list.unlockPutAll(),
  });

  /** As a lock item: the sub-list ops. */
  get ops(): LockItemOps<TransLockList> {
    return TransLockList.#subListOps;
  }

  /** As a lock item: the list itself. */
  get object(): TransLockList {
    return this;
  }

  /** Listed items in order of addition (a copy). */
  get items(): readonly LockItem[] {
    return [...this.#items];
  }

  get size(): number {
    return this.#items.length;
  }

  /** The list this one is an item of, or null. */
  get parent(): TransLockList | null {
    return membership.get(this)?.list ?? null;
  }

  /** The item recorded by {@link setContending} and not yet backed off for. */
  get contending(): LockItem | null {
    return this.#contending;
  }

  /** Whether `object` is listed here (directly, not through a sub-list). */
  has(object: object): boolean {
    return membership.get(object)?.list === this;
  }

  /**
   * Lists an item the caller has locked; takes its reference (`ops.get`).
   * @throws {BugError} when the object is already on a list, the list would contain itself, or a
   *   backoff is in flight; nothing is listed or referenced then.
   * @see list_add_tail() of a trans_lockitem in the seed proposal; drm_exec_obj_locked()
   */
  add<T extends object>(item: LockItem<T>): void {
    checkItem(item as LockItem, `TransLockList '${this.name}': add()`);
    if (this.#backingOff) {
      throw new BugError(
        `TransLockList '${this.name}': add() of ${nameOf(item.object)} ` +
          `while a backoff is in flight; await backoff() first`,
      );
    }
    this.#append(item as LockItem);
  }

  /**
   * Unlocks one listed item, takes it off the list and drops its reference.
   * @throws {BugError} when the object is not on this list. An error from `unlock` or `put` is
   *   rethrown; the item is off the list either way, and after a failed unlock it keeps its reference.
   * @see drm_exec_unlock_obj()
   */
  remove<T extends object>(item: LockItem<T>): void {
    checkItem(item as LockItem, `TransLockList '${this.name}': remove()`);
    const entry = membership.get(item.object);
    if (entry?.list !== this) {
      const where = entry ? `on list '${entry.list.name}'` : 'on no list';
      throw new BugError(
        `TransLockList '${this.name}': remove() of ${nameOf(item.object)}, ` +
          `which is ${where}; remove it from the list that holds it`,
      );
    }
    const index = this.#items.lastIndexOf(entry.item);
    this.#items.splice(index, 1);
    membership.delete(item.object);
    const errors: unknown[] = [];
    const notes: string[] = [];
    this.#release(entry.item, errors, notes);
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Unlocks every item, last added first, taking each off the list and dropping its reference.
   * Keeps going past failures.
   * @throws {AggregateError} after trying every item, when any unlock or put threw; the list is
   *   empty either way.
   * @see trans_unlock_put_all() in the seed proposal; drm_exec_unlock_all()
   */
  unlockPutAll(): void {
    const errors: unknown[] = [];
    const notes: string[] = [];
    // Pop one at a time so that every step leaves the list and the membership map consistent,
    // even if an unlock or put callback looks at this list.
    for (let item = this.#items.pop(); item !== undefined; item = this.#items.pop()) {
      membership.delete(item.object);
      this.#release(item, errors, notes);
    }
    if (errors.length > 0) {
      throw new AggregateError(
        errors,
        `TransLockList '${this.name}': unlockPutAll() finished with ${errors.length} failure(s): ${notes.join('; ')}`,
      );
    }
  }

  /**
   * Relaxes the transaction after a deadlock: unlocks and puts everything on the list, then waits
   * for the contending lock with `slowLock`. When that lock ends up held (and the item does not
   * ask for `relaxUnlock`) it goes on this list, so the restart finds it already locked.
   * @returns what happened to the contending item (see {@link BackoffOutcome}).
   * @throws {AggregateError} from unlocking the list (no slow lock is attempted then);
   *   `signal.reason` when aborted, with nothing locked; {@link BugError} when, after this list
   *   was emptied, the contending object is still held on a list of the same tree (this list's
   *   outermost parent and everything nested in it), when it is this list or contains it, or
   *   when its `slowLock` returned something else than `'locked'` or `'relaxed'`. The contending
   *   object being on a list of another tree is normal: that is the transaction holding it.
   * @see trans_backoff() in the seed proposal; drm_exec_cleanup() and drm_exec_lock_contended()
   */
  async backoff<T extends object>(
    contending: LockItem<T>,
    options?: { signal?: AbortSignal },
  ): Promise<BackoffOutcome> {
    checkItem(contending as LockItem, `TransLockList '${this.name}': backoff()`);
    const { signal } = parseBackoffOptions(options);
    if (this.#backingOff) {
      throw new BugError(
        `TransLockList '${this.name}': backoff() while another backoff of this list is in flight; await the first one`,
      );
    }
    if (this.#containedBy(contending.object)) {
      throw new BugError(
        `TransLockList '${this.name}': backoff() with ${nameOf(contending.object)} ` +
          `as the contending item, which is this list or contains it; ` +
          'back off on the outer list instead',
      );
    }
    this.#backingOff = true;
    try {
      return await this.#backoff(contending as LockItem, signal);
    } finally {
      this.#backingOff = false;
    }
  }

  /**
   * Records the item this (sub-)list's user backed off for, so that an outer transaction can back
   * off with this list as its contending item and wait for that lock. Takes a reference on the
   * item and drops the one on the item it replaces; `null` just drops the record.
   */
  setContending<T extends object>(item: LockItem<T> | null): void {
    if (item !== null) {
      checkItem(item as LockItem, `TransLockList '${this.name}': setContending()`);
      getRef(item as LockItem);
    }
    const previous = this.#contending;
    this.#contending = item as LockItem | null;
    if (previous !== null) putRef(previous);
  }

  /** One line for logs and error messages. */
  describe(): string {
    const parent = this.parent;
    const contending = this.#contending ? `, contending ${nameOf(this.#contending.object)}` : '';
    const onList = parent ? `, on list '${parent.name}'` : '';
    return `TransLockList '${this.name}' (${this.#items.length} item(s)${contending}${onList})`;
  }

  /** Unlocks and puts everything, and drops a recorded contending item. Idempotent. */
  [Symbol.dispose](): void {
    const contending = this.#contending;
    this.#contending = null;
    try {
      this.unlockPutAll();
    } finally {
      if (contending !== null) putRef(contending);
    }
  }

  #append(item: LockItem): void {
    const { object } = item;
    const entry = membership.get(object);
    if (entry !== undefined) {
      const where = entry.list === this ? 'this list' : `list '${entry.list.name}'`;
      throw new BugError(
        `TransLockList '${this.name}': add() of ${nameOf(object)}, which is already on ${where}; ` +
          'a lock is held once and listed once (skip objects for which has() is true)',
      );
    }
    if (this.#containedBy(object)) {
      throw new BugError(`TransLockList '${this.name}': add() of ${nameOf(object)} would make a list contain itself`);
    }
    getRef(item);
    this.#items.push(item);
    membership.set(object, { list: this, item });
  }

  /** The outermost list this one is nested in (itself when it has no parent). */
  #root(): TransLockList {
    let list: TransLockList = this;
    for (let parent = list.parent; parent !== null; parent = list.parent) list = parent;
    return list;
  }

  /** Whether `object` is this list or one of the lists this one is nested in. */
  #containedBy(object: object): boolean {
    for (let list: TransLockList | null = this; list !== null; list = list.parent) {
      if (list === object) return true;
    }
    return false;
  }

  /** Unlocks an item that is already off the list, then drops its reference; records failures. */
  #release(item: LockItem, errors: unknown[], notes: string[]): void {
    try {
      item.ops.unlock(item.object);
    } catch (err) {
      errors.push(err);
      notes.push(`unlock of ${nameOf(item.object)} failed, so its reference is kept (it may still be locked)`);
      return;
    }
    try {
      putRef(item);
    } catch (err) {
      errors.push(err);
      notes.push(`put of ${nameOf(item.object)} failed`);
    }
  }

  async #backoff(contending: LockItem, signal: AbortSignal | undefined): Promise<BackoffOutcome> {
    const { ops, object } = contending;
    // Our own reference: the object may be on this list, whose reference goes away just below.
    getRef(contending);
    let keepRef = false;
    try {
      this.unlockPutAll();
      // On another transaction's list is the normal case: that is who holds the contended lock.
      // On a list of this one's tree, this transaction holds it and would wait for itself.
      const owner = membership.get(object);
      if (owner !== undefined && owner.list.#root() === this.#root()) {
        throw new BugError(
          `TransLockList '${this.name}': backoff() on ${nameOf(object)}, ` +
            `which this transaction still holds on list '${owner.list.name}'; ` +
            'a transaction backs off for a lock it does not hold (back off on the outermost list)',
        );
      }
      signal?.throwIfAborted();
      const result: unknown = await ops.slowLock(object, signal);
      if (result === 'relaxed') return 'relaxed';
      if (result !== 'locked') {
        keepRef = true;
        throw new BugError(
          `TransLockList '${this.name}': slowLock() of ${nameOf(object)} ` +
            `returned ${describeValue(result)}, expected 'locked' or 'relaxed'; ` +
            'its lock state is unknown, so its reference is kept',
        );
      }
      if (contending.relaxUnlock === true) {
        try {
          ops.unlock(object);
        } catch (err) {
          keepRef = true;
          throw err;
        }
        return 'unlocked';
      }
      this.#append(contending);
      return 'locked';
    } finally {
      if (!keepRef) putRef(contending);
    }
  }

  /** The slow lock of a sub-list. The recorded contention is used up even if the backoff fails. */
  async #relax(signal: AbortSignal | undefined): Promise<SlowLockResult> {
    const contending = this.#contending;
    if (contending === null) {
      this.unlockPutAll();
      return 'relaxed';
    }
    this.#contending = null;
    try {
      return (await this.backoff(contending, signalOption(signal))) === 'locked' ? 'locked' : 'relaxed';
    } finally {
      putRef(contending);
    }
  }
}

/** Options for {@link wwMutexLockItem}. */
export interface WwMutexLockItemInit {
  readonly relaxUnlock?: boolean;
}

const wwOpsByCtx = new WeakMap<WwAcquireCtx, LockItemOps<WwMutex>>();

function wwOps(ctx: WwAcquireCtx): LockItemOps<WwMutex> {
  let ops = wwOpsByCtx.get(ctx);
  if (ops === undefined) {
    ops = Object.freeze({
      async slowLock(mutex: WwMutex, signal?: AbortSignal): Promise<SlowLockResult> {
        await mutex.lockSlow(ctx, signalOption(signal));
        return 'locked';
      },
      unlock(mutex: WwMutex): void {
        // WwMutex.unlock() only checks that the mutex is locked; a listed mutex that something
        // unlocked behind the list's back may be someone else's by now.
        if (mutex.holder !== ctx) {
          throw new BugError(
            `ww_mutex '${mutex.name}' is listed as held by ${ctx} but is ` +
              `${mutex.isLocked ? 'held by another owner' : 'not locked'}; unlock listed mutexes only through the list`,
          );
        }
        mutex.unlock();
      },
    });
    wwOpsByCtx.set(ctx, ops);
  }
  return ops;
}

/**
 * A lock item for a bare ww mutex locked through `ctx`: `slowLock` is `mutex.lockSlow(ctx)`,
 * `unlock` is `mutex.unlock()` (after checking that `ctx` still holds it). No reference counting:
 * the list's own reference keeps the mutex reachable. Items for one ctx share one ops table.
 * @see ww_mutex_lock_slow() and ww_mutex_unlock() behind the seed's "single ww_mutex" item
 */
export function wwMutexLockItem(mutex: WwMutex, ctx: WwAcquireCtx, init?: WwMutexLockItemInit): LockItem<WwMutex> {
  if (!(mutex instanceof WwMutex)) throw invalidArgument('wwMutexLockItem', 'mutex', mutex, 'a WwMutex');
  if (!(ctx instanceof WwAcquireCtx)) throw invalidArgument('wwMutexLockItem', 'ctx', ctx, 'a WwAcquireCtx');
  const relaxUnlock = parseItemInit(init).relaxUnlock ?? false;
  return Object.freeze({ ops: wwOps(ctx), object: mutex, relaxUnlock });
}
