/**
 * Workqueue: a bounded pool of asynchronous work items, started in order.
 *
 * Overview: a {@link WorkQueue} runs functions queued with {@link WorkQueue.queue} in the
 * background, first in first out, with at most `maxActive` of them in flight at once. An item is
 * in flight from the moment it starts until the promise it returned settles, so an item that
 * sleeps (waits for a fence, a lock, a timer) keeps its slot, exactly as a sleeping kernel worker
 * keeps its place in the workqueue's active count. That bound is what seed 004's reviewer asked
 * about ("won't per-BO workers leave many sleeping threads?"): a release storm of thousands of
 * busy buffer objects queues thousands of items, but only `maxActive` sleep at a time and the
 * rest wait their turn in the queue.
 *
 * Models the parts of `kernel/workqueue.c` that TTM uses since "drm/ttm: use per BO cleanup
 * workers" (seed 004, Linux 6.3): `alloc_workqueue(name, flags, max_active)` (the device's
 * `alloc_workqueue("ttm", WQ_MEM_RECLAIM | WQ_HIGHPRI | WQ_UNBOUND, 16)`), `queue_work()`,
 * `flush_workqueue()`, `drain_workqueue()` and `destroy_workqueue()`. Flags have no meaning in
 * a single JavaScript thread and are not modelled; neither is requeueing a work item that is
 * already pending (every `queue()` call is a new item).
 *
 * Contract:
 * - `queue()` never runs the item synchronously: items start on a later microtask (or when an
 *   earlier item settles), so queueing is cheap and safe while holding locks or inside a fence
 *   callback.
 * - Items start in queue order; at most `maxActive` are active (started, not settled) at once.
 * - An item that throws or rejects is recorded in {@link WorkQueue.failures} (never dropped),
 *   reported to `onError` (default: one `console.warn` per queue, the first time), and the queue
 *   goes on with the next item.
 * - `flush()` resolves once every item queued before the call has finished; `drain()` resolves
 *   once nothing is pending or active, items queued meanwhile (by running items or anyone else)
 *   included.
 * - Disposal (`await using`, {@link WorkQueue[Symbol.asyncDispose]}) drains, then refuses new
 *   items with a {@link BugError}; items queued while it drains are still accepted and run.
 * - Every item runs as a task of its own for the lock validator (through the `task` hook of
 *   `base/lockdep-hooks`): it starts holding nothing, whatever its queuer held, as a kernel
 *   worker thread does.
 *
 * @example
 * ```ts
 * import { WorkQueue, SwSyncTimeline } from 'dmabuf';
 * await using wq = new WorkQueue('cleanup', { maxActive: 2 });
 * using timeline = new SwSyncTimeline('gpu');
 * for (let i = 1; i <= 5; i++) {
 *   const busy = timeline.createFence(i);
 *   wq.queue(async () => {
 *     await busy.wait(); // sleeping keeps the slot, as a kernel worker would
 *   }, `release ${i}`);
 * }
 * timeline.inc(5);
 * await wq.flush();
 * console.log(wq.completed, wq.peakActive); // 5 2
 * ```
 */

import { BugError, InvalidArgumentError, describeValue, reportCallbackError } from './errors.js';
import { lockdep } from './lockdep-hooks.js';

/** A work item's body. A returned promise keeps the item active until it settles. */
export type WorkFn = () => void | Promise<void>;

/** One item that threw or rejected, as recorded by its queue. */
export interface WorkFailure {
  /** The name given to `queue()`, else the function's name, else `work #<n>` (n counts from 1). */
  readonly name: string;
  /** What the item threw or rejected with, untouched. */
  readonly error: unknown;
}

/** Options for a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Most items active at once, an integer >= 1; default 16 (TTM's `alloc_workqueue(.., 16)`). */
  readonly maxActive?: number;
  /**
   * Receives every failure, after it is recorded in `failures`. Default: the first failure of the
   * queue is printed with `console.warn`; later ones are only recorded.
   */
  readonly onError?: (failure: WorkFailure) => void;
}

/** Default `maxActive`: the value TTM passes to `alloc_workqueue()` (seed 004). */
const DEFAULT_MAX_ACTIVE = 16;

/** The queue array is compacted once this many items have been taken from its front. */
const COMPACT_AT = 1024;

interface WorkItem {
  readonly fn: WorkFn;
  readonly name: string | undefined;
}

type Waiter = () => void;

/**
 * A bounded, ordered pool of background work items.
 * @see alloc_workqueue()
 */
export class WorkQueue implements AsyncDisposable {
  readonly name: string;
  readonly maxActive: number;
  readonly #onError: ((failure: WorkFailure) => void) | undefined;

  /** FIFO: pending items are `#items[#head..]`; taken slots are cleared for the collector. */
  #items: (WorkItem | undefined)[] = [];
  #head = 0;
  /** Items ever queued / ever started: an item's sequence number is its start index. */
  #queued = 0;
  #started = 0;
  /** Every item with a sequence number below this has finished; finished ones above it wait in the set. */
  #finishedBelow = 0;
  readonly #finishedAhead = new Set<number>();

  #active = 0;
  #peak = 0;
  #completed = 0;
  #failed = 0;
  readonly #failures: WorkFailure[] = [];
  #warned = false;

  #scheduled = false;
  /** Flush waiters in call order; their targets never decrease, so the front is always the next due. */
  #flushWaiters: { readonly target: number; readonly resolve: Waiter }[] = [];
  #flushHead = 0;
  #drainWaiters: Waiter[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closing: Promise<void> | null = null;

  readonly #pump = (): void => {
    this.#scheduled = false;
    this.#startItems();
  };

  /**
   * @param name names the queue in messages and warnings (the kernel's `fmt` argument).
   * @throws {InvalidArgumentError} for a non-string name, a `maxActive` that is not an integer
   *   >= 1, or an `onError` that is not a function.
   * @see alloc_workqueue()
   */
  constructor(name: string, options?: WorkQueueOptions) {
    if (typeof name !== 'string') {
      throw new InvalidArgumentError(`WorkQueue: name must be a string, got ${describeValue(name)}`);
    }
    const maxActive: unknown = options?.maxActive === undefined ? DEFAULT_MAX_ACTIVE : options.maxActive;
    if (typeof maxActive !== 'number' || !Number.isSafeInteger(maxActive) || maxActive < 1) {
      throw new InvalidArgumentError(
        `WorkQueue "${name}": maxActive must be an integer >= 1 (the most items running at once), got ${describeValue(maxActive)}`,
      );
    }
    const onError = options?.onError;
    if (onError !== undefined && typeof onError !== 'function') {
      throw new InvalidArgumentError(
        `WorkQueue "${name}": onError must be a function when given, got ${describeValue(onError)}`,
      );
    }
    this.name = name;
    this.maxActive = maxActive;
    this.#onError = onError;
  }

  /**
   * Queues `fn` to run after the items queued before it have started, once fewer than
   * `maxActive` items are active. Never runs it synchronously.
   * @param name names the item in {@link failures} (default: the function's name).
   * @throws {InvalidArgumentError} for a non-function `fn` or a non-string `name`.
   * @throws {BugError} after disposal finished (`destroy_workqueue()`): do the work directly.
   * @see queue_work()
   */
  queue(fn: WorkFn, name?: string): void {
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError(`WorkQueue "${this.name}": queue() takes a function, got ${describeValue(fn)}`);
    }
    if (name !== undefined && typeof name !== 'string') {
      throw new InvalidArgumentError(
        `WorkQueue "${this.name}": queue() item name must be a string, got ${describeValue(name)}`,
      );
    }
    if (this.#state === 'closed') {
      throw new BugError(
        `WorkQueue "${this.name}" is destroyed (queue_work after destroy_workqueue) and refuses ${name ?? 'new work'}; ` +
          'queue work only before disposing the queue, or run it directly',
      );
    }
    this.#items.push({ fn, name });
    this.#queued++;
    if (!this.#scheduled && this.#active < this.maxActive) {
      this.#scheduled = true;
      queueMicrotask(this.#pump);
    }
  }

  /**
   * Resolves once every item queued before this call has finished (successfully or not). Items
   * queued later, including ones those items queue, are not waited for.
   * @see flush_workqueue()
   */
  flush(): Promise<void> {
    const target = this.#queued;
    if (this.#finishedBelow >= target) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ target, resolve }));
  }

  /**
   * Resolves once no item is pending or active, however many were queued in the meantime
   * (items that queue further items are waited for too).
   * @see drain_workqueue()
   */
  drain(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Items started and not yet settled; never more than `maxActive`. */
  get active(): number {
    return this.#active;
  }

  /** Items queued and not yet started. */
  get pending(): number {
    return this.#items.length - this.#head;
  }

  /** The highest {@link active} seen since construction or the last {@link resetPeak}. */
  get peakActive(): number {
    return this.#peak;
  }

  /** Restarts {@link peakActive} from the number active now (for measuring one phase). */
  resetPeak(): void {
    this.#peak = this.#active;
  }

  /** Items that finished without throwing or rejecting. */
  get completed(): number {
    return this.#completed;
  }

  /** Items that threw or rejected; `completed + failed` is the number finished. */
  get failed(): number {
    return this.#failed;
  }

  /** Every failure, oldest first. The array is a live read-only view. */
  get failures(): readonly WorkFailure[] {
    return this.#failures;
  }

  /**
   * Drains the queue, then refuses new items. Idempotent: later calls return the same promise,
   * or a resolved one once closed.
   * @see destroy_workqueue()
   */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.#closing ??= (async (): Promise<void> => {
      this.#state = 'closing';
      await this.drain();
      this.#state = 'closed';
    })();
    return this.#closing;
  }

  toString(): string {
    return `WorkQueue "${this.name}" (${this.#state}, ${this.pending} pending, ${this.#active}/${this.maxActive} active, ${this.#completed} completed, ${this.#failed} failed)`;
  }

  #isIdle(): boolean {
    return this.#active === 0 && this.#head === this.#items.length;
  }

  /** Starts pending items while there is room, then wakes whoever waits for what finished. */
  #startItems(): void {
    while (this.#active < this.maxActive && this.#head < this.#items.length) {
      const item = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      this.#start(item);
    }
    this.#wakeWaiters();
  }

  #start(item: WorkItem): void {
    const seq = this.#started++;
    if (++this.#active > this.#peak) this.#peak = this.#active;
    let result: unknown;
    try {
      // Each item is a task of its own for the validator, as a kernel worker is.
      const hooks = lockdep;
      result = hooks === null ? item.fn() : hooks.task(item.fn);
    } catch (err) {
      this.#finish(seq, item, true, err);
      return;
    }
    if (result === undefined || typeof (result as { then?: unknown } | null)?.then !== 'function') {
      this.#finish(seq, item, false, undefined);
      return;
    }
    Promise.resolve(result as PromiseLike<unknown>).then(
      () => {
        this.#finish(seq, item, false, undefined);
        this.#startItems();
      },
      (err: unknown) => {
        this.#finish(seq, item, true, err);
        this.#startItems();
      },
    );
  }

  #finish(seq: number, item: WorkItem, failed: boolean, error: unknown): void {
    this.#active--;
    if (seq === this.#finishedBelow) {
      this.#finishedBelow++;
      while (this.#finishedAhead.delete(this.#finishedBelow)) this.#finishedBelow++;
    } else {
      this.#finishedAhead.add(seq);
    }
    if (!failed) {
      this.#completed++;
      return;
    }
    this.#failed++;
    const failure: WorkFailure = {
      name: item.name ?? (item.fn.name !== '' ? item.fn.name : `work #${seq + 1}`),
      error,
    };
    this.#failures.push(failure);
    this.#report(failure);
  }

  #report(failure: WorkFailure): void {
    const onError = this.#onError;
    if (onError !== undefined) {
      try {
        onError(failure);
      } catch (err) {
        reportCallbackError(err);
      }
      return;
    }
    if (this.#warned) return;
    this.#warned = true;
    console.warn(
      `WorkQueue "${this.name}": work item "${failure.name}" failed: ${describeError(failure.error)}. ` +
        'The queue goes on; this and later failures are kept in its failures list (pass onError to handle each one).',
    );
  }

  #wakeWaiters(): void {
    const waiters = this.#flushWaiters;
    while (this.#flushHead < waiters.length && waiters[this.#flushHead]!.target <= this.#finishedBelow) {
      waiters[this.#flushHead++]!.resolve();
    }
    if (this.#flushHead === waiters.length && this.#flushHead > 0) {
      this.#flushWaiters = [];
      this.#flushHead = 0;
    } else if (this.#flushHead >= COMPACT_AT && this.#flushHead * 2 >= waiters.length) {
      this.#flushWaiters = waiters.slice(this.#flushHead);
      this.#flushHead = 0;
    }
    if (this.#drainWaiters.length > 0 && this.#isIdle()) {
      const drained = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const resolve of drained) resolve();
    }
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return describeValue(error);
}
