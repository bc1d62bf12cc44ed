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
 * `flush_workqueue()`, `drain_workqueue()`, `destroy_workqueue()` and `cancel_work()`. Flags
 * have no meaning in a single JavaScript thread and are not modelled; neither is requeueing a
 * work item that is already pending (every `queue()` call is a new item).
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
 *   included. Both take a `signal`: an abort rejects with `signal.reason` and leaves no waiter.
 * - A queued item can be cancelled until it starts: when the `signal` given to `queue()` aborts,
 *   the item leaves the queue (one controller can cancel a whole batch). It then never runs,
 *   counts as {@link WorkQueue.cancelled}, and flushes no longer wait for it. Once started an
 *   item runs to its end, as `cancel_work()` leaves a running work item alone.
 * - Disposal (`await using`, {@link WorkQueue[Symbol.asyncDispose]}) drains, then refuses new
 *   items with a {@link BugError}; items queued while it drains are still accepted and run. The
 *   open / draining / closed life is the shared {@link QueueState}.
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

import { BugError, describeValue, reportCallbackError } from './errors.js';
import { lockdep } from './lockdep-hooks.js';
import {
  defineOptions,
  defineSignalOnly,
  optionalFunction,
  optionalPositiveInteger,
  optionalSignal,
  optionalString,
  requiredFunction,
  requiredString,
} from './options.js';
import { QueueState } from './queue-state.js';
import { Waiter } from './waiter.js';

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

/** Options for one {@link WorkQueue.queue} call. */
export interface WorkItemOptions {
  /** Names the item in {@link WorkQueue.failures} (default: the function's name). */
  readonly name?: string;
  /** Cancels the item if it aborts before the item started. */
  readonly signal?: AbortSignal;
}

/** Where a work item is: waiting its turn, running, finished (or failed), or cancelled. */
type WorkItemState = 'queued' | 'running' | 'finished' | 'cancelled';

/** Default `maxActive`: the value TTM passes to `alloc_workqueue()` (seed 004). */
const DEFAULT_MAX_ACTIVE = 16;

/** The queue array is compacted once this many items have been taken from its front. */
const COMPACT_AT = 1024;

const parseQueueOptions = defineOptions('WorkQueue', { maxActive: optionalPositiveInteger, onError: optionalFunction });
const parseItemOptions = defineOptions('WorkQueue.queue', { name: optionalString, signal: optionalSignal });
const parseFlushOptions = defineSignalOnly('WorkQueue.flush');
const parseDrainOptions = defineSignalOnly('WorkQueue.drain');

/** One queued call (`struct work_struct`), cancelled by its signal until it starts (`cancel_work()`). */
class WorkItem {
  readonly fn: WorkFn;
  readonly name: string | undefined;
  #state: WorkItemState = 'queued';
  readonly #onCancel: (item: WorkItem) => void;
  #signal: AbortSignal | undefined = undefined;
  #listener: (() => void) | undefined = undefined;

  constructor(fn: WorkFn, name: string | undefined, onCancel: (item: WorkItem) => void) {
    this.fn = fn;
    this.name = name;
    this.#onCancel = onCancel;
  }

  get state(): WorkItemState {
    return this.#state;
  }

  /** Marks the item cancelled if it has not started. @returns whether it was cancelled now. */
  cancel(): boolean {
    if (this.#state !== 'queued') return false;
    this.#state = 'cancelled';
    this.#unlisten();
    this.#onCancel(this);
    return true;
  }

  /** Cancels the item when `signal` aborts before it starts. */
  listen(signal: AbortSignal): void {
    this.#signal = signal;
    this.#listener = () => void this.cancel();
    signal.addEventListener('abort', this.#listener, { once: true });
  }

  /** The queue starts the item. */
  start(): void {
    this.#state = 'running';
    this.#unlisten();
  }

  /** The item settled. */
  finish(): void {
    this.#state = 'finished';
  }

  #unlisten(): void {
    if (this.#listener === undefined) return;
    this.#signal!.removeEventListener('abort', this.#listener);
    this.#listener = undefined;
    this.#signal = undefined;
  }
}

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
  #cancelled = 0;
  /** Cancelled items still sitting in `#items` (skipped, and given their sequence number, when reached). */
  #cancelledQueued = 0;
  readonly #failures: WorkFailure[] = [];
  #warned = false;

  #scheduled = false;
  /** Flush waiters in call order; their targets never decrease, so the front is always the next due. */
  #flushWaiters: { readonly target: number; readonly waiter: Waiter<void> }[] = [];
  #flushHead = 0;
  readonly #state = new QueueState(() => this.#active === 0 && this.#head === this.#items.length);
  readonly #cancel = (_item: WorkItem): void => {
    this.#cancelledQueued++;
    // The pump skips it; if nothing else would wake the pump, make it run once.
    this.#schedulePump();
  };

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
    requiredString(name, 'WorkQueue', 'name');
    const { maxActive, onError } = parseQueueOptions(options);
    this.name = name;
    this.maxActive = maxActive ?? DEFAULT_MAX_ACTIVE;
    this.#onError = onError as ((failure: WorkFailure) => void) | undefined;
  }

  /**
   * Queues `fn` to run after the items queued before it have started, once fewer than
   * `maxActive` items are active. Never runs it synchronously.
   * @param options the item's name in {@link failures} (a string, or `{ name }`; default: the
   *   function's name), and a `signal` that cancels the item if it aborts before the item started
   *   (with a signal that has already aborted the item is not queued at all).
   * @throws {InvalidArgumentError} for a non-function `fn` or bad options.
   * @throws {BugError} after disposal finished (`destroy_workqueue()`): do the work directly.
   * @see queue_work() @see cancel_work()
   */
  queue(fn: WorkFn, options?: string | WorkItemOptions): void {
    requiredFunction(fn, 'WorkQueue.queue', 'fn');
    const { name, signal } =
      typeof options === 'string' ? { name: options, signal: undefined } : parseItemOptions(options);
    if (this.#state.closed) {
      throw new BugError(
        `WorkQueue "${this.name}" is destroyed (queue_work after ` +
          `destroy_workqueue) and refuses ${name ?? 'new work'}; ` +
          'queue work only before disposing the queue, or run it directly',
      );
    }
    if (signal?.aborted) {
      this.#cancelled++; // never entered the queue
      return;
    }
    const item = new WorkItem(fn, name, this.#cancel);
    if (signal !== undefined) item.listen(signal);
    this.#items.push(item);
    this.#queued++;
    if (this.#active < this.maxActive) this.#schedulePump();
  }

  /**
   * Resolves once every item queued before this call has finished (successfully or not) or was
   * cancelled. Items queued later, including ones those items queue, are not waited for.
   * @throws rejects with `signal.reason` when aborted, leaving no waiter.
   * @see flush_workqueue()
   */
  flush(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    return parseFlushOptions(options, (signal) => {
      if (signal?.aborted) return Promise.reject(signal.reason);
      const target = this.#queued;
      if (this.#finishedBelow >= target) return Promise.resolve();
      const entry = { target, waiter: new Waiter<void>() };
      this.#flushWaiters.push(entry);
      entry.waiter.abortOn(signal, () => {
        const i = this.#flushWaiters.indexOf(entry, this.#flushHead);
        if (i >= 0) this.#flushWaiters.splice(i, 1);
      });
      return entry.waiter.promise;
    });
  }

  /**
   * Resolves once no item is pending or active, however many were queued in the meantime
   * (items that queue further items are waited for too).
   * @throws rejects with `signal.reason` when aborted, leaving no waiter.
   * @see drain_workqueue()
   */
  drain(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    return parseDrainOptions(options, (signal) => this.#state.drain(signal));
  }

  /** Items started and not yet settled; never more than `maxActive`. */
  get active(): number {
    return this.#active;
  }

  /** Items queued and not yet started (cancelled ones not counted). */
  get pending(): number {
    return this.#items.length - this.#head - this.#cancelledQueued;
  }

  /** Items cancelled before they started. */
  get cancelled(): number {
    return this.#cancelled;
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
    return this.#state.close();
  }

  toString(): string {
    return (
      `WorkQueue "${this.name}" (${this.#state.status}, ${this.pending} pending, ` +
      `${this.#active}/${this.maxActive} active, ${this.#completed} completed, ${this.#failed} failed, ` +
      `${this.#cancelled} cancelled)`
    );
  }

  #schedulePump(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#pump);
  }

  /** Starts pending items while there is room, then wakes whoever waits for what finished. */
  #startItems(): void {
    for (;;) {
      // Cancelled items at the front finish at once, holding no slot.
      while (this.#head < this.#items.length && this.#items[this.#head]!.state === 'cancelled') {
        this.#take();
        this.#cancelledQueued--;
        this.#cancelled++;
        this.#retire(this.#started++);
      }
      if (this.#active >= this.maxActive || this.#head >= this.#items.length) break;
      this.#start(this.#take());
    }
    this.#wakeWaiters();
  }

  /** Takes the item at the front of the queue, compacting the array now and then. */
  #take(): WorkItem {
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  #start(item: WorkItem): void {
    const seq = this.#started++;
    item.start();
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

  /** Records item `seq` as finished (or skipped) for the flush bookkeeping. */
  #retire(seq: number): void {
    if (seq === this.#finishedBelow) {
      this.#finishedBelow++;
      while (this.#finishedAhead.delete(this.#finishedBelow)) this.#finishedBelow++;
    } else {
      this.#finishedAhead.add(seq);
    }
  }

  #finish(seq: number, item: WorkItem, failed: boolean, error: unknown): void {
    this.#active--;
    item.finish();
    this.#retire(seq);
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
      waiters[this.#flushHead++]!.waiter.resolve();
    }
    if (this.#flushHead === waiters.length && this.#flushHead > 0) {
      this.#flushWaiters = [];
      this.#flushHead = 0;
    } else if (this.#flushHead >= COMPACT_AT && this.#flushHead * 2 >= waiters.length) {
      this.#flushWaiters = waiters.slice(this.#flushHead);
      this.#flushHead = 0;
    }
    this.#state.wake();
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return describeValue(error);
}
