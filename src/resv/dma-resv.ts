/**
 * dma-resv: the set of fences guarding one buffer, behind a wound/wait lock.
 *
 * Overview: a {@link DmaResv} (reservation object) records which work still uses a buffer. Each
 * entry is a fence plus a {@link DmaResvUsage} saying why it is there: kernel memory management,
 * an implicitly synced write or read, or bookkeeping only. Writers hold the reservation lock (a
 * {@link WwMutex} on {@link reservationWwClass}, so several buffers can be locked together
 * without deadlock), reserve slots with {@link DmaResv.reserveFences} and add fences with
 * {@link DmaResv.addFence}. Readers need no lock: {@link DmaResv.fencesUnlocked},
 * {@link DmaResv.getFences}, {@link DmaResv.testSignaled} and {@link DmaResv.wait} see the list
 * as published and start over when a writer replaced it.
 *
 * Models `drivers/dma-buf/dma-resv.c` and `include/linux/dma-resv.h` (the usage-based list of
 * v5.19 and later). Slot accounting is the strict one of `CONFIG_DEBUG_MUTEXES` kernels
 * (unlock forgets reservations), but the list keeps its capacity across unlocks like a
 * production kernel, so a lock / reserve(1) / add / unlock cycle does not reallocate.
 *
 * Contract:
 * - Usages are ordered Kernel < Write < Read < Bookkeep; asking for usage U means every fence
 *   whose usage is <= U. Every method takes a usage as the number (`DmaResvUsage.Write`) or as
 *   its lower-case name (`'write'`); entries report the number.
 * - The list is an object that is replaced, never shrunk in place, whenever
 *   {@link DmaResv.reserveFences} reallocates it (or {@link DmaResv.copyFences} or disposal swap
 *   it). That replacement is the RCU pointer update of the kernel: an unlocked iterator compares
 *   the list it walks with the current one at every step and restarts from the first fence when
 *   they differ, reporting `restarted: true` on the first entry it yields after (re)starting.
 *   In-place changes (a slot reused, a fence appended) do not restart anybody.
 * - Every operation that changes the list needs the lock held ({@link BugError} naming the
 *   operation otherwise), and {@link DmaResv.addFence} needs a slot reserved since the lock was
 *   taken: {@link DmaResv.unlock} forgets unused reservations, as debug kernels do.
 * - `addFence` never fails once the caller reserved: it reuses the first slot holding an older
 *   fence of the same context with an equal or stronger usage, or a signaled fence; otherwise it
 *   appends. A same-context fence with a weaker usage is appended beside the old one, so usages
 *   can be promoted (add the fence again with a stronger usage) but never degraded.
 * - The list never holds containers (arrays, chains): they are rejected with {@link BugError}.
 * - Locked iteration shows signaled fences too; unlocked readers skip them.
 * - Every wait settles once: `true` when all fences signaled, `false` when the total timeout ran
 *   out, rejection with `signal.reason` when aborted.
 * - `acquire(ctx?)` is `lock(ctx?)` returning a `LockGuard`: `using guard = await resv.acquire()`.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaResv, DmaResvUsage, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'gfx' };
 * const resv = new DmaResv({ name: 'vertex-buffer' });
 * const job = new DmaFence(ops, fenceContextAlloc(), 1);
 * {
 *   using _guard = await resv.acquire(); // unlocked at the end of the block
 *   resv.reserveFences(1);
 *   resv.addFence(job, DmaResvUsage.Write);
 * }
 * console.log(resv.testSignaled('read')); // false: a write is pending
 * setTimeout(() => job.signal(), 5);
 * console.log(await resv.wait({ usage: 'read', timeout: 1000 })); // true
 * ```
 */

import { BugError } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import type { LockGuard } from '../base/lifecycle.js';
import {
  defineOptions,
  instanceOf,
  invalidArgument,
  optional,
  optionalSignal,
  optionalString,
  optionalTimeout,
  requiredBoolean,
  requiredFinite,
  requiredIndex,
} from '../base/options.js';
import { DmaFence, fenceContextAlloc } from '../fence/dma-fence.js';
import { DmaFenceArray } from '../fence/dma-fence-array.js';
import { WwClass, WwMutex, wwMutexAcquire, type WwAcquireCtx } from '../locking/ww-mutex.js';
import { lockdepPrime } from '../locking/lockdep.js';
import { dmaFenceLrMap, dmaFenceMap, fsReclaim } from '../base/lockdep-hooks.js';

/**
 * Why a fence sits in a reservation object, weakest need to wait last.
 * @see enum dma_resv_usage
 */
export const DmaResvUsage = {
  /** Kernel memory management (moves, clears): everybody must wait for these. */
  Kernel: 0,
  /** An implicitly synced write. */
  Write: 1,
  /** An implicitly synced read. */
  Read: 2,
  /** Not for implicit sync: preemption fences, page-table updates, explicitly synced work. */
  Bookkeep: 3,
} as const;
export type DmaResvUsage = (typeof DmaResvUsage)[keyof typeof DmaResvUsage];

/** The usages by name, as every {@link DmaResv} method also accepts them. */
export type DmaResvUsageName = 'kernel' | 'write' | 'read' | 'bookkeep';

/** A usage as a method argument: the ordered number or its name. */
export type DmaResvUsageLike = DmaResvUsage | DmaResvUsageName;

const USAGE_NAMES: readonly DmaResvUsageName[] = ['kernel', 'write', 'read', 'bookkeep'];

/** The lock class of every reservation object (wait-die, as in the kernel). @see reservation_ww_class */
export const reservationWwClass: WwClass = new WwClass('reservation_ww_class', 'wait-die');

// The kernel's boot-time priming (dma_resv_lockdep): fence waits happen under reservation locks
// and inside reclaim, so a reservation lock or a reclaiming allocation inside a signalling
// section closes a cycle. Long-running work (seed 001) may take reservation locks, so an
// ordinary signalling path may not wait for it.
lockdepPrime([reservationWwClass.lockClass, fsReclaim, dmaFenceMap]);
lockdepPrime([dmaFenceLrMap, reservationWwClass.lockClass]);

/** The refusal of long-running fences: nobody may depend on them implicitly (seed 001). */
function longRunningRefused(op: string, name: string, fence: DmaFence): BugError {
  return new BugError(
    `DmaResv.${op} on ${name}: ${fence.describe()} is long-running and may never signal; ` +
      'reservation objects carry only fences that complete, so keep long-running work out of implicit sync',
  );
}

/** A fence and why it is in the object. */
export interface DmaResvFenceEntry {
  readonly fence: DmaFence;
  readonly usage: DmaResvUsage;
}

/** An entry of an unlocked walk; `restarted` marks the first entry after the walk (re)started. */
export interface DmaResvUnlockedEntry extends DmaResvFenceEntry {
  readonly restarted: boolean;
}

/** Options for constructing a {@link DmaResv}. */
export interface DmaResvInit {
  /** Lock class of the reservation lock; {@link reservationWwClass} by default. */
  readonly wwClass?: WwClass;
  /** Name of the object in messages and of its lock. */
  readonly name?: string;
}

/** Options for {@link DmaResv.wait}. */
export interface DmaResvWaitOptions {
  /** Which fences to wait for (every usage <= this); {@link DmaResvUsage.Bookkeep} (all) by default. */
  readonly usage?: DmaResvUsageLike;
  /** Total milliseconds for all fences together; 0 polls; omitted or Infinity waits for ever. */
  readonly timeout?: number;
  /** Aborts the wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/**
 * The published fence list (`struct dma_resv_list`). Slots `0 .. fences.length - 1` are used;
 * `max` is the capacity. Replaced as a whole on reallocation, so its identity is the generation
 * unlocked readers compare.
 */
class ResvList {
  constructor(
    readonly fences: DmaFence[],
    readonly usages: DmaResvUsage[],
    public max: number,
  ) {}
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

let nextResvId = 1;

/** Where a {@link DmaResv} publishes its list; readers hold this box and compare its content. */
type ResvHead = { list: ResvList | null };

/** @internal A usage as the ordered number, from the number or its name. */
export function checkUsage(fn: string, usage: unknown, name = 'usage'): DmaResvUsage {
  if (usage === 0 || usage === 1 || usage === 2 || usage === 3) return usage;
  switch (usage) {
    case 'kernel':
      return DmaResvUsage.Kernel;
    case 'write':
      return DmaResvUsage.Write;
    case 'read':
      return DmaResvUsage.Read;
    case 'bookkeep':
      return DmaResvUsage.Bookkeep;
  }
  throw invalidArgument(
    fn,
    name,
    usage,
    "a DmaResvUsage: Kernel 0, Write 1, Read 2, Bookkeep 3, or 'kernel', 'write', 'read', 'bookkeep'",
  );
}

function checkFence(fn: string, fence: unknown, name = 'fence'): DmaFence {
  if (!(fence instanceof DmaFence)) throw invalidArgument(fn, name, fence, 'a DmaFence');
  return fence;
}

const checkUsageOption = (value: unknown, fn: string, name: string): DmaResvUsage | undefined =>
  value === undefined ? undefined : checkUsage(fn, value, name);
const parseInit = defineOptions('DmaResv', { wwClass: optional(instanceOf(WwClass)), name: optionalString });
const parseWaitOptions = defineOptions('DmaResv.wait', {
  usage: checkUsageOption,
  timeout: optionalTimeout,
  signal: optionalSignal,
});
const parseLockOptions = defineOptions('DmaResv.lock', { signal: optionalSignal });
const parseLockSlowOptions = defineOptions('DmaResv.lockSlow', { signal: optionalSignal });
const parseAcquireOptions = defineOptions('DmaResv.acquire', { signal: optionalSignal });

/**
 * The unlocked walk (`struct dma_resv_iter` with the `_unlocked` functions). {@link step} moves
 * to the next unsignaled fence without allocating; `next()` wraps it for `for...of`.
 */
class UnlockedCursor implements IterableIterator<DmaResvUnlockedEntry> {
  /** Current fence after a successful {@link step}. */
  fence: DmaFence | null = null;
  /** Its usage. */
  usage: DmaResvUsage = DmaResvUsage.Kernel;
  /** True when this step (re)started the walk. */
  restarted = false;
  /** Number of slots in the list when the walk last (re)started. */
  num = 0;
  /** How many times the walk has (re)started; collectors compare it to spot a restart that yielded nothing. */
  starts = 0;

  readonly #head: ResvHead;
  readonly #limit: DmaResvUsage;
  // undefined = not started yet; null = the object had no list at the last (re)start.
  #list: ResvList | null | undefined = undefined;
  #index = 0;
  #finished = false;

  constructor(head: ResvHead, limit: DmaResvUsage) {
    this.#head = head;
    this.#limit = limit;
  }

  #restart(list: ResvList | null): void {
    this.#list = list;
    this.#index = 0;
    this.num = list === null ? 0 : list.fences.length;
    this.restarted = true;
    this.starts++;
  }

  /**
   * Advances to the next unsignaled fence with usage <= the limit.
   * @returns false once the walk is over.
   * @see dma_resv_iter_next_unlocked()
   */
  step(): boolean {
    if (this.#finished) return false;
    const head = this.#head;
    const limit = this.#limit;
    this.restarted = false;
    let list = head.list;
    if (list !== this.#list) this.#restart(list);
    for (;;) {
      if (list !== null) {
        const fences = list.fences;
        const usages = list.usages;
        const num = this.num;
        let i = this.#index;
        while (i < num) {
          const usage = usages[i]!;
          const fence = fences[i++]!;
          if (usage > limit || fence.isSignaled()) continue;
          this.#index = i;
          // Polling runs foreign code (ops.signaled, callbacks) that may have replaced the list;
          // checking once per yield suffices, as a restart discards what was skipped.
          if (head.list !== list) break;
          this.fence = fence;
          this.usage = usage;
          return true;
        }
        this.#index = i;
      }
      const now = head.list;
      if (now === list) break;
      list = now;
      this.#restart(list);
    }
    this.#finished = true;
    this.fence = null;
    return false;
  }

  next(): IteratorResult<DmaResvUnlockedEntry> {
    if (!this.step()) return DONE;
    return { done: false, value: { fence: this.fence!, usage: this.usage, restarted: this.restarted } };
  }

  [Symbol.iterator](): this {
    return this;
  }
}

/**
 * A reservation object: a lock plus the fences of the work using one buffer (`struct dma_resv`).
 * @see dma_resv_init()
 */
export class DmaResv implements Disposable {
  /** The reservation lock. */
  readonly mutex: WwMutex;
  // The published list, boxed so unlocked cursors can compare it without reaching into the object.
  readonly #head: ResvHead = { list: null };
  // Appends allowed before the next reservation: the list's capacity right after reserveFences(),
  // trimmed to the used slots at unlock (the debug kernel's check, without its reallocation).
  #limit = 0;
  #disposed = false;

  /**
   * @param options `wwClass` to lock this object in another class than {@link reservationWwClass};
   *   `name` for messages.
   * @throws {InvalidArgumentError} for options other than `{ wwClass?, name? }`, a `wwClass` that
   *   is not a WwClass or a non-string name.
   */
  constructor(options?: DmaResvInit) {
    const { wwClass, name } = parseInit(options);
    this.mutex = new WwMutex(wwClass ?? reservationWwClass, name ?? `dma_resv#${nextResvId++}`);
  }

  /**
   * Takes the reservation lock. With a context, rejects with `WwDeadlockError` (back off: unlock
   * everything, then {@link lockSlow}) or `AlreadyLockedError`; with an abort signal, rejects
   * with its reason; {@link InvalidArgumentError} for a bad context or options.
   * @see dma_resv_lock() @see dma_resv_lock_interruptible()
   */
  lock(ctx?: WwAcquireCtx | null, options?: { signal?: AbortSignal }): Promise<void> {
    if (options !== undefined) {
      try {
        parseLockOptions(options);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#disposed) return Promise.reject(this.#disposedError('lock'));
    return this.mutex.lock(ctx, options);
  }

  /**
   * {@link lock}, returning a guard that unlocks when disposed: `using guard = await resv.acquire()`.
   * @throws rejects as {@link lock} does.
   */
  acquire(ctx?: WwAcquireCtx | null, options?: { signal?: AbortSignal }): Promise<LockGuard> {
    let signal: AbortSignal | undefined;
    try {
      signal = parseAcquireOptions(options).signal;
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#disposed) return Promise.reject(this.#disposedError('acquire'));
    // The guard comes through the lock's own promise, so the validator sees the lock held in the
    // caller's continuation; it unlocks the reservation (forgetting reserved slots), not just the mutex.
    return wwMutexAcquire(this.mutex, ctx, signal, () => this.unlock(), this.mutex.name);
  }

  /** Takes the lock that rejected with `WwDeadlockError`, holding nothing else. @see dma_resv_lock_slow() */
  lockSlow(ctx: WwAcquireCtx, options?: { signal?: AbortSignal }): Promise<void> {
    if (options !== undefined) {
      try {
        parseLockSlowOptions(options);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#disposed) return Promise.reject(this.#disposedError('lockSlow'));
    return this.mutex.lockSlow(ctx, options);
  }

  /** Takes the lock if it is free. @see dma_resv_trylock() */
  tryLock(ctx?: WwAcquireCtx | null): boolean {
    if (this.#disposed) throw this.#disposedError('tryLock');
    return this.mutex.tryLock(ctx);
  }

  /**
   * Forgets unused reserved slots, then releases the lock.
   * @throws {BugError} when the lock is not held.
   * @see dma_resv_unlock() @see dma_resv_reset_max_fences()
   */
  unlock(): void {
    this.#assertLocked('DmaResv.unlock');
    const list = this.#head.list;
    this.#limit = list === null ? 0 : list.fences.length;
    this.mutex.unlock();
  }

  /** Whether somebody holds the reservation lock. @see dma_resv_is_locked() */
  get isLocked(): boolean {
    return this.mutex.isLocked;
  }

  /** The acquire context holding the lock, or null (free, or held without a context). @see dma_resv_locking_ctx() */
  get lockingCtx(): WwAcquireCtx | null {
    return this.mutex.holder;
  }

  /**
   * Makes room for `n` more fences. When the capacity is short it grows to max(num + n,
   * 2 * capacity) (a first list: max(4, n rounded up to a power of two)); reallocating drops
   * signaled fences and publishes a new list, so unlocked readers restart. Either way, appends
   * are allowed up to the capacity until the next unlock.
   * @throws {BugError} without the lock, or for `n` = 0 (a miscounted reservation).
   * @throws {InvalidArgumentError} when `n` is not a non-negative safe integer.
   * @see dma_resv_reserve_fences()
   */
  reserveFences(n: number): void {
    requiredIndex(n, 'DmaResv.reserveFences', 'n');
    this.#assertLocked('DmaResv.reserveFences');
    if (n === 0) {
      throw new BugError(
        `DmaResv.reserveFences(0) on ${this.mutex.name}: reserving no slot means the caller miscounted its fences; ` +
          'pass how many it will add',
      );
    }
    const old = this.#head.list;
    let max: number;
    if (old !== null && old.max > 0) {
      const num = old.fences.length;
      if (num + n <= old.max) {
        this.#limit = old.max;
        return;
      }
      max = Math.max(num + n, 2 * old.max);
    } else {
      let pow = 1;
      while (pow < n) pow *= 2;
      max = Math.max(4, pow);
    }
    const fences: DmaFence[] = [];
    const usages: DmaResvUsage[] = [];
    if (old !== null) {
      for (let i = 0; i < old.fences.length; i++) {
        const fence = old.fences[i]!;
        if (fence.isSignaled()) continue;
        fences.push(fence);
        usages.push(old.usages[i]!);
      }
    }
    this.#head.list = new ResvList(fences, usages, max);
    this.#limit = max;
  }

  /**
   * Adds `fence` with `usage`: into the first slot holding an older-or-same fence of its context
   * with an equal or stronger usage, or a signaled fence; otherwise into a reserved slot.
   * @throws {BugError} without the lock, for a container, or when no slot is reserved.
   * @throws {InvalidArgumentError} for something that is not a fence or a usage.
   * @see dma_resv_add_fence()
   */
  addFence(fence: DmaFence, usage: DmaResvUsageLike): void {
    checkFence('DmaResv.addFence', fence);
    usage = checkUsage('DmaResv.addFence', usage);
    this.#assertLocked('DmaResv.addFence');
    if (fence.isContainer) {
      throw new BugError(
        `DmaResv.addFence on ${this.mutex.name}: ${fence.describe()} is a container; ` +
          'add each fence individually; unwrap arrays and chains first',
      );
    }
    if (fence.isLongRunning) throw longRunningRefused('addFence', this.mutex.name, fence);
    const context = fence.context;
    scan: for (;;) {
      const list = this.#head.list;
      if (list === null) break;
      const fences = list.fences;
      const usages = list.usages;
      for (let i = 0; i < fences.length; i++) {
        const old = fences[i]!;
        if (old.context === context && usages[i]! >= usage && DmaFence.isLaterOrSame(fence, old)) {
          fences[i] = fence;
          usages[i] = usage;
          return;
        }
        const signaled = old.isSignaled();
        // Polling ran foreign code (ops.signaled, callbacks); if it reallocated the list, scan the new one.
        if (this.#head.list !== list) continue scan;
        if (signaled) {
          fences[i] = fence;
          usages[i] = usage;
          return;
        }
      }
      if (fences.length < this.#limit) {
        fences.push(fence);
        usages.push(usage);
        return;
      }
      break;
    }
    const list = this.#head.list;
    const used = list === null ? 'no list yet' : `${list.fences.length} of ${this.#limit} slots used`;
    throw new BugError(
      `DmaResv.addFence on ${this.mutex.name}: no reserved fence slot (${used}); ` +
        'reserve with reserveFences(n) while holding the lock, after the last unlock',
    );
  }

  /**
   * Replaces every fence of `context` with `replacement` at `usage` (for instance a preemption
   * fence by the page-table update that follows it). Needs no reserved slot.
   * @throws {BugError} without the lock or for a container replacement.
   * @throws {InvalidArgumentError} for a bad context, fence or usage.
   * @see dma_resv_replace_fences()
   */
  replaceFences(context: number, replacement: DmaFence, usage: DmaResvUsageLike): void {
    requiredIndex(context, 'DmaResv.replaceFences', 'context');
    checkFence('DmaResv.replaceFences', replacement, 'replacement');
    const checked = checkUsage('DmaResv.replaceFences', usage);
    this.#assertLocked('DmaResv.replaceFences');
    // The kernel does not check this, but a container in the list would break getSingleton().
    if (replacement.isContainer) {
      throw new BugError(
        `DmaResv.replaceFences on ${this.mutex.name}: ${replacement.describe()} is a container; ` +
          'replace with a plain fence',
      );
    }
    if (replacement.isLongRunning) throw longRunningRefused('replaceFences', this.mutex.name, replacement);
    const list = this.#head.list;
    if (list === null) return;
    for (let i = 0; i < list.fences.length; i++) {
      if (list.fences[i]!.context !== context) continue;
      list.fences[i] = replacement;
      list.usages[i] = checked;
    }
  }

  /**
   * Makes this object's fences a copy of `src`'s unsignaled ones, usages kept. Reads `src`
   * without its lock and starts over if `src`'s list is replaced meanwhile.
   * @throws {BugError} without this object's lock.
   * @see dma_resv_copy_fences()
   */
  copyFences(src: DmaResv): void {
    if (!(src instanceof DmaResv)) throw invalidArgument('DmaResv.copyFences', 'src', src, 'a DmaResv');
    this.#assertLocked('DmaResv.copyFences');
    const cursor = new UnlockedCursor(src.#head, DmaResvUsage.Bookkeep);
    let copy: ResvList | null = null;
    let starts = 0;
    while (cursor.step()) {
      if (cursor.starts !== starts) {
        // Sized like the source list, as the kernel does: its signaled slots become spare room.
        copy = new ResvList([], [], cursor.num);
        starts = cursor.starts;
      }
      copy!.fences.push(cursor.fence!);
      copy!.usages.push(cursor.usage);
    }
    // A restart that found nothing unsignaled leaves nothing to copy.
    this.#head.list = cursor.starts === starts ? copy : null;
    this.#limit = this.#head.list === null ? 0 : this.#head.list.max;
  }

  /**
   * Every fence with usage <= `usage`, signaled ones included, lock held.
   * @throws {BugError} without the lock (also from a step taken after unlock).
   * @see dma_resv_for_each_fence()
   */
  fences(usage: DmaResvUsageLike): IterableIterator<DmaResvFenceEntry> {
    const limit = checkUsage('DmaResv.fences', usage);
    this.#assertLocked('DmaResv.fences');
    return this.#walkLocked(this.#head.list, limit);
  }

  *#walkLocked(list: ResvList | null, limit: DmaResvUsage): Generator<DmaResvFenceEntry, undefined, undefined> {
    if (list === null) return;
    // The length is read live: appends made while iterating are seen, as in the kernel.
    for (let i = 0; i < list.fences.length; i++) {
      if (!this.mutex.isLocked) {
        throw new BugError(
          `DmaResv.fences: the reservation lock of ${this.mutex.name} was released during a locked walk; ` +
            'finish it before unlock()',
        );
      }
      const usage = list.usages[i]!;
      if (usage <= limit) yield { fence: list.fences[i]!, usage };
    }
  }

  /**
   * Every unsignaled fence with usage <= `usage`, without the lock. When a writer replaces the
   * list between two steps, the walk starts over and flags its next entry `restarted`; callers
   * that accumulate must drop what they gathered then.
   * @see dma_resv_for_each_fence_unlocked() @see dma_resv_iter_is_restarted()
   */
  fencesUnlocked(usage: DmaResvUsageLike): IterableIterator<DmaResvUnlockedEntry> {
    return new UnlockedCursor(this.#head, checkUsage('DmaResv.fencesUnlocked', usage));
  }

  /** A snapshot of the unsignaled fences with usage <= `usage`. @see dma_resv_get_fences() */
  getFences(usage: DmaResvUsageLike): DmaFence[] {
    usage = checkUsage('DmaResv.getFences', usage);
    // The unlocked walk, flattened: a restart discards everything gathered, so checking the
    // list once per pass gives the same result as checking at every step.
    const head = this.#head;
    for (;;) {
      const list = head.list;
      if (list === null) return [];
      const fences = list.fences;
      const usages = list.usages;
      const out: DmaFence[] = [];
      for (let i = 0, n = fences.length; i < n; i++) {
        const fence = fences[i]!;
        if (usages[i]! <= usage && !fence.isSignaled()) out.push(fence);
      }
      if (head.list === list) return out;
    }
  }

  /**
   * The unsignaled fences with usage <= `usage` as one fence: null for none, the fence itself
   * for one, else a new {@link DmaFenceArray} on a fresh context. Do not add the result back to
   * this object (it is a container).
   * @see dma_resv_get_singleton()
   */
  getSingleton(usage: DmaResvUsageLike): DmaFence | null {
    const fences = this.getFences(checkUsage('DmaResv.getSingleton', usage));
    if (fences.length === 0) return null;
    if (fences.length === 1) return fences[0]!;
    return new DmaFenceArray(fences, fenceContextAlloc(), 1);
  }

  /** Whether every fence with usage <= `usage` has signaled (polls each). @see dma_resv_test_signaled() */
  testSignaled(usage: DmaResvUsageLike): boolean {
    usage = checkUsage('DmaResv.testSignaled', usage);
    const head = this.#head;
    for (;;) {
      const list = head.list;
      if (list === null) return true;
      const fences = list.fences;
      const usages = list.usages;
      let pending = false;
      for (let i = 0, n = fences.length; i < n && !pending; i++)
        pending = usages[i]! <= usage && !fences[i]!.isSignaled();
      if (head.list === list) return !pending;
    }
  }

  /**
   * Waits until every fence with usage <= `options.usage` has signaled, one after the other,
   * within one total `timeout`. A list replaced meanwhile restarts the walk, which then skips
   * what has signaled.
   * @returns true when all signaled; false when the timeout ran out (0 polls once).
   * @throws rejects with `signal.reason` when aborted, or {@link InvalidArgumentError}.
   * @see dma_resv_wait_timeout()
   */
  async wait(options?: DmaResvWaitOptions): Promise<boolean> {
    const parsed = parseWaitOptions(options);
    const usage = parsed.usage ?? DmaResvUsage.Bookkeep;
    const { timeout, signal: abort } = parsed;
    const clock = getClock();
    const deadline = timeout === undefined ? undefined : clock.now() + timeout;
    const cursor = new UnlockedCursor(this.#head, usage);
    const fenceOptions: { timeout?: number; signal?: AbortSignal } = {};
    if (abort !== undefined) fenceOptions.signal = abort;
    while (cursor.step()) {
      if (deadline !== undefined) fenceOptions.timeout = Math.max(0, deadline - clock.now());
      if (!(await cursor.fence!.wait(fenceOptions))) return false;
    }
    return true;
  }

  /**
   * Passes a deadline hint to every unsignaled fence with usage <= `usage`; no lock needed.
   * @throws {InvalidArgumentError} for a bad usage or a non-finite deadline.
   * @see dma_resv_set_deadline()
   */
  setDeadline(usage: DmaResvUsageLike, deadline: number): void {
    const limit = checkUsage('DmaResv.setDeadline', usage);
    requiredFinite(deadline, 'DmaResv.setDeadline', 'deadline');
    const cursor = new UnlockedCursor(this.#head, limit);
    while (cursor.step()) cursor.fence!.setDeadline(deadline);
  }

  /**
   * One line per fence with usage <= Read (bookkeeping fences are left out), signaled ones
   * included: `\t<usage> fence: <fence.describe()>`, joined by newlines. Reads the list as it
   * is: in JavaScript the synchronous walk cannot race a writer, so the lock is not required.
   * @see dma_resv_describe()
   */
  describe(): string {
    const list = this.#head.list;
    if (list === null) return '';
    const lines: string[] = [];
    for (let i = 0; i < list.fences.length; i++) {
      const usage = list.usages[i]!;
      if (usage <= DmaResvUsage.Read) lines.push(`\t${USAGE_NAMES[usage]} fence: ${list.fences[i]!.describe()}`);
    }
    return lines.join('\n');
  }

  /**
   * The usage a new access must wait for: a write waits for reads (and so for everything
   * stronger), a read only for writes.
   * @see dma_resv_usage_rw()
   */
  static usageRw(write: boolean): DmaResvUsage {
    requiredBoolean(write, 'DmaResv.usageRw', 'write');
    return write ? DmaResvUsage.Read : DmaResvUsage.Write;
  }

  /** Number of used slots, signaled fences included. */
  get numFences(): number {
    return this.#head.list === null ? 0 : this.#head.list.fences.length;
  }

  /**
   * How many fences the list may hold before the next reservation: used plus reserved slots
   * (the kernel's `max_fences` under `CONFIG_DEBUG_MUTEXES`); equals {@link numFences} after unlock.
   */
  get maxFences(): number {
    return this.#limit;
  }

  /**
   * Drops every fence and retires the object; later locking is a {@link BugError}. Idempotent.
   * @throws {BugError} while the lock is held (the object is then left unchanged).
   * @see dma_resv_fini()
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    if (this.mutex.isLocked) {
      throw new BugError(
        `DmaResv dispose on ${this.mutex.name}: the reservation lock is still held; unlock it before disposing`,
      );
    }
    this.#disposed = true;
    this.#head.list = null;
    this.#limit = 0;
  }

  toString(): string {
    return `DmaResv(${this.mutex.name}, ${this.numFences} fences${this.isLocked ? ', locked' : ''})`;
  }

  #assertLocked(op: string): void {
    if (!this.mutex.isLocked) {
      throw new BugError(
        `${op}: the reservation lock is not held; lock it first with resv.lock(ctx) (object ${this.mutex.name})`,
      );
    }
  }

  #disposedError(op: string): BugError {
    return new BugError(
      `DmaResv.${op}: ${this.mutex.name} was disposed; reservation objects cannot be used after dispose`,
    );
  }
}
