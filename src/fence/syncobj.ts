/**
 * syncobj: a binary or timeline synchronisation object (Vulkan fences and semaphores).
 *
 * Overview: a {@link Syncobj} is a mutable slot holding one fence, or none. Used as a *binary*
 * object, producers replace the fence ({@link Syncobj.replaceFence}, {@link Syncobj.reset},
 * {@link Syncobj.signal}) and consumers take whatever is there. Used as a *timeline*, every
 * submission adds a point ({@link Syncobj.addPoint}): a {@link DmaFenceChain} node wrapping the
 * producer's fence and linking to the previous head, so point N signals once all work up to N has.
 * Consumers look points up ({@link Syncobj.findFence}, {@link Syncobj.findFenceNow}), read
 * progress ({@link Syncobj.query}) and wait on many objects at once ({@link Syncobj.wait}),
 * optionally waiting for a point to be submitted first (Vulkan's wait-before-signal). Point 0
 * always means "the binary behaviour", as in the kernel's timeline ioctls. One class serves both
 * kinds because the kernel's `struct drm_syncobj` does too.
 *
 * Models `drivers/gpu/drm/drm_syncobj.c` (and `include/drm/drm_syncobj.h`).
 *
 * Contract:
 * - A timeline point is a positive safe integer. Adding a point that is not after the current
 *   head is allowed, as in the kernel: it is reported (`outOfOrder`, {@link Syncobj.outOfOrderPoints})
 *   and the chain starts a new context for it, which makes earlier points resolve conservatively.
 * - A point's payload is never itself a chain: flatten it with `unwrapMerge()` first ({@link BugError}).
 * - After each add, the chain is walked once from the previous head, so signaled links are
 *   collected even when nobody looks points up.
 * - A missing point is an error ({@link NotSubmittedError}) unless the caller asked to wait for
 *   its submission; such a wait is bounded (5 s by default, like the kernel) and abortable.
 * - Every promise settles, and whichever outcome comes first removes every submit-waiter, fence
 *   callback, timer and abort listener the call installed ({@link Syncobj.pendingSubmitWaiters}
 *   returns to 0). Disposal rejects pending submit-waits with `ECANCELED` and drops the fence.
 * - After disposal only the getters and `describe()` work; anything else is a {@link BugError}.
 *
 * @example
 * ```ts
 * import { DmaFence, Syncobj, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'queue-0' };
 * const queue = fenceContextAlloc();
 * const timeline = new Syncobj();
 * const job1 = new DmaFence(ops, queue, 1);
 * timeline.addPoint(job1, 1);
 * const point2 = timeline.findFence(2, { waitForSubmit: true }); // resolves once point 2 exists
 * timeline.addPoint(new DmaFence(ops, queue, 2), 2);
 * await point2;
 * job1.signal();
 * console.log(timeline.query()); // 1: point 1 has signaled, point 2 has not
 * console.log(await Syncobj.wait([{ syncobj: timeline, point: 1 }], { timeout: 100 })); // 0
 * ```
 */

import { BugError, DmaBufError, FenceTimeoutError, NotSubmittedError } from '../base/errors.js';
import {
  defineOptions,
  instanceOf,
  invalidArgument,
  isPlainObject,
  oneOf,
  optional,
  optionalBoolean,
  optionalFinite,
  optionalSignal,
  optionalTimeout,
  requiredIndex,
} from '../base/options.js';
import { Waiter } from '../base/waiter.js';
import { DmaFence } from './dma-fence.js';
import { DmaFenceChain, type ChainGcPolicy, type DmaFenceChainInit } from './dma-fence-chain.js';
import { unwrapMerge } from './dma-fence-unwrap.js';

/**
 * Default bound, in milliseconds, on waiting for a point to be submitted.
 * @see DRM_SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT
 */
export const SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT = 5000;

/** Options for constructing a {@link Syncobj}. */
export interface SyncobjInit {
  /** The initial fence (`drm_syncobj_create()` with a fence); none by default. */
  readonly fence?: DmaFence;
  /** Garbage-collection policy passed to every chain node this syncobj creates. */
  readonly gc?: ChainGcPolicy;
  /** Start with a signaled stub as the fence (`DRM_SYNCOBJ_CREATE_SIGNALED`); not with `fence`. */
  readonly signaled?: boolean;
}

/** What {@link Syncobj.addPoint} reports. */
export interface SyncobjAddPointResult {
  /** The point was not after the previous head's seqno (the kernel's "unorder point" debug message). */
  readonly outOfOrder: boolean;
}

/** Options for {@link Syncobj.findFence}. */
export interface SyncobjFindOptions {
  /** Wait for the point to be submitted instead of failing (`DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`). */
  readonly waitForSubmit?: boolean;
  /** Bound on that wait in milliseconds; default {@link SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT}, Infinity for none. */
  readonly timeout?: number;
  /** Aborts that wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** Options for {@link Syncobj.query}. */
export interface SyncobjQueryOptions {
  /** Report the last submitted point instead of the last signaled one (`DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED`). */
  readonly lastSubmitted?: boolean;
}

/** One object (and point; 0 = binary) to wait on with {@link Syncobj.wait}. */
export interface SyncobjWaitEntry {
  readonly syncobj: Syncobj;
  readonly point?: number;
}

/** Options for {@link Syncobj.wait}; each flag is the `DRM_SYNCOBJ_WAIT_FLAGS_*` of the same name. */
export interface SyncobjWaitOptions {
  /** Wait for every entry instead of any one (`WAIT_ALL`). */
  readonly all?: boolean;
  /** Wait for missing points to be submitted instead of failing (`WAIT_FOR_SUBMIT`). */
  readonly waitForSubmit?: boolean;
  /** Done as soon as the points exist, signaled or not (`WAIT_AVAILABLE`); implies waiting for submission. */
  readonly available?: boolean;
  /** Milliseconds to wait; 0 polls once; omitted or Infinity waits for ever. */
  readonly timeout?: number;
  /** Aborts the wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
  /** Deadline hint (clock milliseconds) passed to every fence waited on (`WAIT_DEADLINE`). */
  readonly deadline?: number;
}

/** A wait for a point to appear, woken from {@link Syncobj.addPoint} / {@link Syncobj.replaceFence}. */
interface SubmitWaiter {
  readonly point: number;
  /** Called once the point resolves, after the waiter was removed from the list. */
  readonly onSubmit: (fence: DmaFence) => void;
  /** Called when the syncobj is disposed, after the waiter was removed from the list. */
  readonly onCancel: (error: Error) => void;
}

/** Per-entry state of {@link Syncobj.wait}. */
interface WaitSlot {
  readonly syncobj: Syncobj;
  readonly point: number;
  fence: DmaFence | undefined;
  waiter: SubmitWaiter | undefined;
  /** A callback of this wait is registered on `fence`. */
  armed: boolean;
}

interface WaitPlan {
  readonly all: boolean;
  readonly available: boolean;
  readonly first: number;
  readonly timeout: number | undefined;
  readonly abort: AbortSignal | undefined;
  readonly deadline: number | undefined;
  /** Builds the timeout error; the default lists the entries still pending. */
  readonly onTimeout?: () => Error;
}

let nextSyncobjId = 1;

const parseInit = defineOptions('Syncobj', {
  fence: optional(instanceOf(DmaFence)),
  gc: optional(oneOf(['walk', 'queue'] as const)),
  signaled: optionalBoolean,
});
const parseFindOptions = defineOptions('Syncobj.findFence', {
  waitForSubmit: optionalBoolean,
  timeout: optionalTimeout,
  signal: optionalSignal,
});
const parseQueryOptions = defineOptions('Syncobj.query', { lastSubmitted: optionalBoolean });
const parseWaitOptions = defineOptions('Syncobj.wait', {
  all: optionalBoolean,
  waitForSubmit: optionalBoolean,
  available: optionalBoolean,
  timeout: optionalTimeout,
  signal: optionalSignal,
  deadline: optionalFinite,
});
const checkPayload = instanceOf(DmaFence);

/**
 * A binary or timeline synchronisation object (`struct drm_syncobj`).
 * @see drm_syncobj_create()
 */
export class Syncobj implements Disposable {
  /** A process-unique number naming this object in messages (the kernel's handle). */
  readonly id: number;
  #fence: DmaFence | null = null;
  readonly #chainInit: DmaFenceChainInit | undefined;
  // Insertion order is wake order, like the kernel's cb_list.
  readonly #waiters = new Set<SubmitWaiter>();
  #outOfOrderPoints = 0;
  #disposed = false;

  /**
   * @throws {InvalidArgumentError} for options other than `{ fence?, gc?, signaled? }`, a `fence`
   *   that is not a fence, an unknown `gc` policy, or both `fence` and `signaled: true`.
   * @see drm_syncobj_create()
   */
  constructor(init?: SyncobjInit) {
    const { fence, gc, signaled } = parseInit(init);
    if (fence !== undefined && signaled === true) {
      throw invalidArgument(
        'Syncobj',
        'options.signaled',
        signaled,
        'absent when a fence is given (the fence is the state)',
      );
    }
    this.id = nextSyncobjId++;
    this.#chainInit = gc === undefined ? undefined : { gc };
    if (fence !== undefined) this.#fence = fence;
    else if (signaled === true) this.#fence = DmaFence.allocatePrivateStub();
  }

  /** The current fence (a chain node for timelines), or null. @see drm_syncobj_fence_get() */
  get fence(): DmaFence | null {
    return this.#fence;
  }

  /** How many added points were not after the head at the time (kernel: a debug message each). */
  get outOfOrderPoints(): number {
    return this.#outOfOrderPoints;
  }

  /** Number of waits for a point to be submitted still registered here. Leak checks expect 0. */
  get pendingSubmitWaiters(): number {
    return this.#waiters.size;
  }

  /** Whether `[Symbol.dispose]()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Installs `fence` (or nothing) as the binary payload and wakes submit-waiters that it satisfies.
   * @throws {InvalidArgumentError} when `fence` is neither a fence nor null.
   * @throws {BugError} after disposal.
   * @see drm_syncobj_replace_fence()
   */
  replaceFence(fence: DmaFence | null): void {
    if (fence !== null && !(fence instanceof DmaFence)) {
      throw invalidArgument('Syncobj.replaceFence', 'fence', fence, 'a DmaFence or null');
    }
    this.#checkLive('replaceFence');
    const old = this.#fence;
    this.#fence = fence;
    if (fence !== old) this.#wakeSubmitWaiters();
  }

  /** Drops the fence: waits on point 0 now fail or wait for a new one. @see drm_syncobj_reset_ioctl() */
  reset(): void {
    this.replaceFence(null);
  }

  /**
   * Adds timeline point `point` with payload `fence`: a new chain node on top of the current
   * fence becomes the head, submit-waiters are woken, and then the old chain is walked once so
   * signaled links are collected.
   * @returns whether the point was out of order (not after the previous head's seqno). Such a
   *   point is accepted, as in the kernel; the chain gives it a new context and keeps the
   *   head's seqno, so lookups of earlier points wait for everything added so far.
   * @throws {InvalidArgumentError} unless `point` is a positive safe integer (point 0 is
   *   {@link replaceFence}) and `fence` a fence.
   * @throws {BugError} when `fence` is a chain (flatten it with `unwrapMerge()`), or after disposal.
   * @see drm_syncobj_add_point()
   */
  addPoint(fence: DmaFence, point: number): SyncobjAddPointResult {
    checkPayload(fence, 'Syncobj.addPoint', 'fence');
    if (typeof point !== 'number' || !Number.isSafeInteger(point) || point <= 0) {
      throw invalidArgument(
        'Syncobj.addPoint',
        'point',
        point,
        'an integer from 1 to 2^53-1',
        'use replaceFence() for the binary point 0',
      );
    }
    this.#checkLive('addPoint');
    if (fence instanceof DmaFenceChain) {
      // The chain constructor refuses this too; saying it here names the syncobj and the point.
      throw new BugError(
        `${this.#name()}.addPoint(point ${point}): the payload ${fence.describe()} is a chain node; ` +
          'timeline payloads must be flat. Merge it with unwrapMerge() first',
      );
    }
    const prev = this.#fence;
    const outOfOrder = prev !== null && prev.seqno >= point;
    const chain = new DmaFenceChain(prev, fence, point, this.#chainInit);
    this.#fence = chain;
    if (outOfOrder) this.#outOfOrderPoints++;
    this.#wakeSubmitWaiters();
    // Nothing else may ever walk the old nodes; without this, signaled links would pile up.
    for (let node: DmaFence | null = prev; node !== null; node = DmaFenceChain.walk(node));
    return { outOfOrder };
  }

  /**
   * Signals from the host: point 0 installs a fresh signaled stub (binary), a timeline point
   * adds the shared stub as that point's payload.
   * @see drm_syncobj_signal_ioctl()
   * @see drm_syncobj_timeline_signal_ioctl()
   */
  signal(point = 0): void {
    requiredIndex(point, 'Syncobj.signal', 'point');
    this.#checkLive('signal');
    if (point === 0) this.replaceFence(DmaFence.allocatePrivateStub());
    else this.addPoint(DmaFence.getStub(), point);
  }

  /**
   * The fence to wait on for `point`, without waiting for it to be submitted.
   * Point 0 is the current fence. A point that signaled and was collected resolves to the
   * signaled stub.
   * @returns undefined when the point has not been submitted (or there is no fence).
   * @throws {BugError} after disposal.
   * @see drm_syncobj_find_fence()
   */
  findFenceNow(point: number): DmaFence | undefined {
    requiredIndex(point, 'Syncobj.findFenceNow', 'point');
    this.#checkLive('findFenceNow');
    return this.#lookup(point);
  }

  /**
   * The fence to wait on for `point`; see {@link findFenceNow}.
   * @throws rejects with {@link NotSubmittedError} when the point is missing and `waitForSubmit`
   *   is not set; with {@link FenceTimeoutError} when it does not appear within `timeout`; with
   *   `signal.reason` when aborted; with a `DmaBufError` `ECANCELED` when the syncobj is disposed.
   * @see drm_syncobj_find_fence()
   */
  findFence(point: number, options?: SyncobjFindOptions): Promise<DmaFence> {
    try {
      requiredIndex(point, 'Syncobj.findFence', 'point');
      const { waitForSubmit, signal: abort, timeout: limit } = parseFindOptions(options);
      this.#checkLive('findFence');
      // An omitted timeout is the kernel's 5 s bound; Infinity (parsed as undefined) is no bound.
      const timeout = options?.timeout === undefined ? SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT : limit;
      const fence = this.#lookup(point);
      if (fence !== undefined) return Promise.resolve(fence);
      if (waitForSubmit !== true) throw this.#notSubmitted(`findFence(${point})`, point);
      if (abort?.aborted) return Promise.reject(abort.reason);
      if (timeout === 0) throw this.#submitTimeout(point, 0);
      // A one-entry wait for availability; its slot keeps the fence found when it was woken.
      const slot: WaitSlot = { syncobj: this, point, fence: undefined, waiter: undefined, armed: false };
      const onTimeout = (): Error => this.#submitTimeout(point, timeout ?? Infinity);
      const plan = { all: false, available: true, first: -1, timeout, abort, deadline: undefined, onTimeout };
      return Syncobj.#waitSlots([slot], plan).then(() => slot.fence!);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Timeline progress. By default the last signaled point: walking from the head through the
   * head's context (collecting as it goes), the oldest node still pending reports the point
   * before it; when all signaled, the head's point. With an out-of-order point the context is
   * new, so this may report 0 although earlier points signaled, exactly like the kernel.
   * @returns 0 when there is no fence or it is not a chain.
   * @see drm_syncobj_query_ioctl()
   */
  query(options?: SyncobjQueryOptions): number {
    const { lastSubmitted } = parseQueryOptions(options);
    this.#checkLive('query');
    const head = DmaFenceChain.toChain(this.#fence);
    if (head === null) return 0;
    if (lastSubmitted === true) return head.seqno;
    let last = head;
    for (const node of DmaFenceChain.iterate(head)) {
      const chain = DmaFenceChain.toChain(node);
      if (chain === null || chain.context !== head.context) break;
      last = chain;
    }
    return last.isSignaled() ? last.seqno : last.prevSeqno;
  }

  /** One line for logs: kind, head and waiters. Does not walk (so collects nothing). */
  describe(): string {
    const fence = this.#fence;
    const head = DmaFenceChain.toChain(fence);
    const parts = [
      this.#disposed
        ? 'disposed'
        : fence === null
          ? 'empty'
          : head === null
            ? `binary, fence ${fence.describe()}`
            : `timeline, last submitted point ${head.seqno}, head ${head.describe()}`,
    ];
    if (this.#outOfOrderPoints > 0) parts.push(`${this.#outOfOrderPoints} out-of-order point(s)`);
    if (this.#waiters.size > 0) parts.push(`${this.#waiters.size} submit waiter(s)`);
    return `${this.#name()}: ${parts.join('; ')}`;
  }

  toString(): string {
    return `Syncobj(${this.describe()})`;
  }

  /**
   * Drops the fence and rejects every pending submit-wait with a `DmaBufError` `ECANCELED`.
   * Idempotent. @see drm_syncobj_free()
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#fence = null;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) {
      waiter.onCancel(
        new DmaBufError(
          'ECANCELED',
          `${this.#name()} was disposed while a caller waited for point ${waiter.point} to be submitted`,
        ),
      );
    }
  }

  /**
   * Moves the fence at `srcPoint` of `src` to `dstPoint` of `dst`, without waiting for it to be
   * submitted. To a timeline point the fence is flattened first (`unwrapMerge`), since a chain
   * may not be a payload; to point 0 it replaces `dst`'s fence as it is.
   * @throws {NotSubmittedError} when `src` has nothing at `srcPoint`.
   * @see drm_syncobj_transfer_to_timeline()
   * @see drm_syncobj_transfer_to_binary()
   */
  static transfer(dst: Syncobj, dstPoint: number, src: Syncobj, srcPoint: number): void {
    checkSyncobj(dst, 'Syncobj.transfer', 'dst');
    requiredIndex(dstPoint, 'Syncobj.transfer', 'dstPoint');
    checkSyncobj(src, 'Syncobj.transfer', 'src');
    requiredIndex(srcPoint, 'Syncobj.transfer', 'srcPoint');
    dst.#checkLive('transfer');
    src.#checkLive('transfer');
    const fence = src.#lookup(srcPoint);
    if (fence === undefined) throw src.#notSubmitted(`transfer to ${dst.#name()} point ${dstPoint}`, srcPoint);
    if (dstPoint > 0) dst.addPoint(unwrapMerge(fence), dstPoint);
    else dst.replaceFence(fence);
  }

  /**
   * Waits on several syncobj points at once.
   * @returns the index of the first entry (in array order) found signaled (or available). With
   *   `all`, what the kernel reports in `first_signaled`: the index of the first entry that was
   *   already signaled (or available) when the call began, or -1 (the kernel's `~0u`) when none
   *   was. No entries: 0 at once.
   * @throws rejects with {@link NotSubmittedError} when a point is missing and neither
   *   `waitForSubmit` nor `available` is set; {@link FenceTimeoutError} when `timeout` runs out
   *   (also for `timeout: 0` when not yet done); `signal.reason` when aborted; `ECANCELED` when a
   *   syncobj still awaited for submission is disposed. Every outcome removes everything the wait
   *   installed.
   * @see drm_syncobj_array_wait_timeout()
   */
  static wait(entries: ReadonlyArray<SyncobjWaitEntry>, options?: SyncobjWaitOptions): Promise<number> {
    const slots: WaitSlot[] = [];
    let parsed: ReturnType<typeof parseWaitOptions>;
    try {
      if (!Array.isArray(entries)) {
        throw invalidArgument('Syncobj.wait', 'entries', entries, 'an array of { syncobj, point? } entries');
      }
      parsed = parseWaitOptions(options);
      for (let i = 0; i < entries.length; i++) {
        const entry: unknown = entries[i];
        if (!isPlainObject(entry))
          throw invalidArgument('Syncobj.wait', `entries[${i}]`, entry, 'a { syncobj, point? } entry');
        const syncobj = checkSyncobj(entry['syncobj'], 'Syncobj.wait', `entries[${i}].syncobj`);
        const point =
          entry['point'] === undefined ? 0 : requiredIndex(entry['point'], 'Syncobj.wait', `entries[${i}].point`);
        slots.push({ syncobj, point, fence: undefined, waiter: undefined, armed: false });
      }
      for (const slot of slots) slot.syncobj.#checkLive('wait');
    } catch (err) {
      return Promise.reject(err);
    }
    if (slots.length === 0) return Promise.resolve(0);
    const { timeout, deadline, signal: abort } = parsed;
    if (abort?.aborted) return Promise.reject(abort.reason);
    const all = parsed.all === true;
    const available = parsed.available === true;
    const mayWaitForSubmit = available || parsed.waitForSubmit === true;

    // Up-front pass, as in the kernel: a missing point fails here or never.
    let first = -1;
    let ready = 0;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      slot.fence = slot.syncobj.#lookup(slot.point);
      if (slot.fence === undefined) {
        if (!mayWaitForSubmit) return Promise.reject(slot.syncobj.#notSubmitted(`wait (entry ${i})`, slot.point, true));
        continue;
      }
      if (available || slot.fence.isSignaled()) {
        if (ready === 0) first = i;
        ready++;
      }
    }
    if (ready === slots.length || (ready > 0 && !all)) return Promise.resolve(first);
    return Syncobj.#waitSlots(slots, { all, available, first, timeout, abort, deadline });
  }

  /** The resolution rule shared by every lookup: point 0 is the fence itself. */
  #lookup(point: number): DmaFence | undefined {
    const head = this.#fence;
    if (head === null) return undefined;
    if (point === 0) return head;
    const found = DmaFenceChain.findSeqno(head, point);
    if (found.kind === 'fence') return found.fence;
    // Signaled and collected: the point exists but its nodes are gone; any signaled fence will do.
    if (found.kind === 'signaled') return DmaFence.getStub();
    return undefined;
  }

  #wakeSubmitWaiters(): void {
    if (this.#waiters.size === 0) return;
    // A woken wait may settle and remove other waiters of ours: iterate over a snapshot.
    for (const waiter of [...this.#waiters]) {
      if (!this.#waiters.has(waiter)) continue;
      const fence = this.#lookup(waiter.point);
      if (fence === undefined) continue;
      this.#waiters.delete(waiter);
      waiter.onSubmit(fence);
    }
  }

  #name(): string {
    return `syncobj#${this.id}`;
  }

  #checkLive(op: string): void {
    if (this.#disposed) {
      throw new BugError(
        `${this.#name()}.${op}: the syncobj was disposed and cannot be used any more; create a new one`,
      );
    }
  }

  #lastSubmitted(): string {
    const fence = this.#fence;
    if (fence === null) return 'it has no fence at all';
    const head = DmaFenceChain.toChain(fence);
    return head === null ? 'it holds a binary fence, not a timeline' : `the last submitted point is ${head.seqno}`;
  }

  #notSubmitted(op: string, point: number, inWait = false): NotSubmittedError {
    const what = point === 0 ? 'has no fence' : `point ${point} has not been submitted (${this.#lastSubmitted()})`;
    const fix = inWait
      ? 'pass waitForSubmit or available to wait for it to appear'
      : 'pass waitForSubmit to wait for it, or look it up after the producer added it';
    return new NotSubmittedError(`${this.#name()}.${op}: ${what}; ${fix}`);
  }

  #submitTimeout(point: number, timeout: number): FenceTimeoutError {
    const what = point === 0 ? 'a fence' : `point ${point}`;
    return new FenceTimeoutError(
      `${this.#name()}: ${what} was not submitted within ${timeout} ms ` +
        `(${this.#lastSubmitted()}); check that a producer will add it, or wait longer`,
    );
  }

  /**
   * The slow part of {@link Syncobj.wait}: submit-waiters for missing points, a callback on every
   * known fence, a timer and an abort listener, all removed by whichever outcome comes first.
   */
  static #waitSlots(slots: WaitSlot[], plan: WaitPlan): Promise<number> {
    const { all, available, first, timeout, abort, deadline } = plan;
    const waiter = new Waiter<number>(() => {
      for (const slot of slots) {
        if (slot.waiter !== undefined) {
          slot.syncobj.#waiters.delete(slot.waiter);
          slot.waiter = undefined;
        }
        if (slot.armed) {
          slot.fence!.removeCallback(onSignal);
          slot.armed = false;
        }
      }
    });
    // The answer, or undefined while not done. Polling may signal a fence and so re-enter
    // check(); a nested check that settles is noticed by the `settled` test after evaluate().
    const evaluate = (): number | undefined => {
      if (all) {
        for (const slot of slots) {
          if (slot.fence === undefined || (!available && !slot.fence.isSignaled())) return undefined;
        }
        return first;
      }
      for (let i = 0; i < slots.length; i++) {
        const fence = slots[i]!.fence;
        if (fence !== undefined && (available || fence.isSignaled())) return i;
      }
      return undefined;
    };
    const check = (): void => {
      if (waiter.settled) return;
      const index = evaluate();
      if (index !== undefined) waiter.resolve(index);
    };
    const onSignal = (): void => check();
    const arm = (slot: WaitSlot): void => {
      const fence = slot.fence!;
      if (deadline !== undefined) fence.setDeadline(deadline);
      if (!available) slot.armed = fence.lrAddCallback(onSignal);
    };

    for (const slot of slots) {
      if (slot.fence !== undefined) {
        arm(slot);
        continue;
      }
      const submitWaiter: SubmitWaiter = {
        point: slot.point,
        onSubmit: (fence) => {
          slot.waiter = undefined;
          if (waiter.settled) return;
          slot.fence = fence;
          arm(slot);
          check();
        },
        onCancel: (error) => {
          slot.waiter = undefined;
          waiter.reject(error);
        },
      };
      slot.waiter = submitWaiter;
      slot.syncobj.#waiters.add(submitWaiter);
    }
    check();
    if (waiter.settled) return waiter.promise;
    const onTimeout = (): void =>
      void waiter.reject(plan.onTimeout?.() ?? Syncobj.#timeoutError(slots, plan, timeout ?? Infinity));
    if (timeout === 0) onTimeout();
    waiter.timeoutAfter(timeout, onTimeout);
    waiter.abortOn(abort);
    return waiter.promise;
  }

  static #timeoutError(slots: readonly WaitSlot[], plan: WaitPlan, timeout: number): FenceTimeoutError {
    const pending: string[] = [];
    for (const slot of slots) {
      const fence = slot.fence;
      if (fence !== undefined && (plan.available || fence.signaledFlag)) continue;
      pending.push(
        `${slot.syncobj.#name()} point ${slot.point} (${fence === undefined ? 'not submitted' : 'unsignaled'})`,
      );
    }
    const shown = pending.length > 8 ? [...pending.slice(0, 8), `${pending.length - 8} more`] : pending;
    const goal = plan.available ? 'to be submitted' : 'to signal';
    return new FenceTimeoutError(
      `Syncobj.wait: timed out after ${timeout} ms waiting for ${plan.all ? 'all' : 'any'} ` +
        `of ${slots.length} point(s) ${goal}; pending: ${shown.join(', ')}`,
    );
  }
}

function checkSyncobj(value: unknown, fn: string, name: string): Syncobj {
  if (value instanceof Syncobj) return value;
  throw invalidArgument(fn, name, value, 'a Syncobj');
}
