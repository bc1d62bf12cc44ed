/**
 * Deferred free: release work (zeroing, returning to a pool) moved off the caller's path.
 *
 * Overview: releasing a buffer for reuse costs time (it must be zeroed before it is pooled).
 * {@link DeferredFreeList.deferredFree} queues the item with its free function and its size in
 * pages and returns at once; a background worker frees queued items one at a time, with reason
 * {@link DeferredFreeReason.Normal}, when the program has nothing better to do. Under memory
 * pressure the list's {@link DeferredFreeList.shrinker} frees items at once with reason
 * {@link DeferredFreeReason.UnderPressure}, telling the free function to skip work that costs
 * memory or time (a heap drops the buffer instead of zeroing and pooling it).
 *
 * Models `drivers/dma-buf/heaps/deferred-free-helper.c` from John Stultz's deferred-free series
 * (seed 002; never merged upstream, carried by the Android common kernel): `deferred_free()`,
 * the "dmabuf-deferred-free-worker" kthread at nice 19 freeing one item per wake-up, and the
 * freelist shrinker counting pending pages. Differences: one list per instance instead of a
 * global one, and first-in first-out (the kernel's list_add at the head and take from the head
 * freed the newest item first).
 *
 * Contract:
 * - The worker frees one item per macrotask (or, with the `sliceMs` option, items one at a time
 *   until the slice is used up), scheduled with
 *   `scheduler.postTask(fn, { priority: 'background' })` where it exists, else `setImmediate`
 *   (Node), else `setTimeout(fn, 0)`. It never runs in a microtask, so a promise continuation or
 *   a fence callback queued before it always runs first, and an allocation between two items
 *   waits for at most one free.
 * - The worker sleeps when the list is empty: nothing is scheduled until the next
 *   `deferredFree`. (When a shrinker scan or disposal empties the list, the one turn already
 *   scheduled still runs and finds nothing to do.)
 * - An item leaves the list, and `pendingPages`, before its free function is called; each item
 *   is freed exactly once. A free function that throws is reported through the `onError` option
 *   (default: `reportCallbackError`, an uncaught error on a later microtask) and the item still
 *   counts as freed: it is not retried, and the list goes on with the next one.
 * - The worker runs each free as a validator task of its own (`lockdepTask`): it holds nothing
 *   that the code which queued the item held.
 * - `drain()` resolves once the list is empty, whoever emptied it; with a `signal` it rejects
 *   with `signal.reason` on abort. The open / draining / closed life is the shared
 *   {@link QueueState}.
 * - `[Symbol.asyncDispose]` lets the worker drain everything with reason Normal (items queued
 *   meanwhile included), `[Symbol.dispose]` frees everything pending at once with reason
 *   UnderPressure. After either, `deferredFree` throws {@link BugError}: free the item directly.
 *
 * @example
 * ```ts
 * import { DeferredFreeList, DeferredFreeReason } from 'dmabuf';
 * await using list = new DeferredFreeList({ name: 'example' });
 * const buffer = new ArrayBuffer(1 << 20);
 * list.deferredFree(buffer, (b, reason) => {
 *   if (reason === DeferredFreeReason.Normal) new Uint8Array(b).fill(0); // then pool it
 * }, 256);
 * console.log(list.pendingPages); // 256: freed later, off this path
 * await list.drain();
 * console.log(list.pendingPages); // 0
 * ```
 */

import { BugError, reportCallbackError } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import {
  defineOptions,
  defineSignalOnly,
  optionalFunction,
  optionalString,
  optionalTimeout,
  requiredFunction,
  requiredIndex,
} from '../base/options.js';
import { QueueState } from '../base/queue-state.js';
import { lockdepTask } from '../locking/lockdep.js';
import { Shrinker } from './shrinker.js';

/** Why a free function is called. @see enum df_reason */
export const DeferredFreeReason = {
  /** By the background worker: take the time to recycle (zero and pool). */
  Normal: 'normal',
  /** By a shrinker or a synchronous disposal: release the memory, do not allocate or pool. */
  UnderPressure: 'under-pressure',
} as const;
export type DeferredFreeReason = (typeof DeferredFreeReason)[keyof typeof DeferredFreeReason];

/** Options for a {@link DeferredFreeList}. */
export interface DeferredFreeListOptions {
  /** Names the list and its shrinker in messages (default 'deferred-free'). */
  readonly name?: string;
  /**
   * Runs `fn` on a later macrotask at low priority. The default picks `scheduler.postTask`
   * (background), `setImmediate` or `setTimeout(fn, 0)`. Tests pass a spy.
   */
  readonly schedule?: (fn: () => void) => void;
  /** Receives what a free function threw (default `reportCallbackError`). */
  readonly onError?: (error: unknown, item: unknown) => void;
  /**
   * Milliseconds of freeing per worker turn (default 0: exactly one item per turn, as the seed's
   * worker). With a slice the worker still frees one item at a time, but keeps going until the
   * slice is used up before yielding, so a program that frees several buffers per turn does not
   * outrun it. A slice delays other macrotasks (never microtasks) by at most that long.
   */
  readonly sliceMs?: number;
}

interface Entry {
  readonly item: unknown;
  readonly free: (item: unknown, reason: DeferredFreeReason) => void;
  readonly nrPages: number;
}

type Schedule = (fn: () => void) => void;

interface PostTaskScheduler {
  postTask(fn: () => void, options: { priority: 'background' }): Promise<unknown>;
}

const defaultSchedule: Schedule = ((): Schedule => {
  const scheduler = (globalThis as { scheduler?: Partial<PostTaskScheduler> }).scheduler;
  if (typeof scheduler?.postTask === 'function') {
    const post = scheduler.postTask.bind(scheduler);
    // The worker catches its own errors; the catch only keeps an aborted task from going unhandled.
    return (fn) => void post(fn, { priority: 'background' }).catch(() => undefined);
  }
  if (typeof globalThis.setImmediate === 'function') return (fn) => void setImmediate(fn);
  return (fn) => void setTimeout(fn, 0);
})();

/** Items compact out of the queue array once this many have been taken from its front. */
const COMPACT_AT = 1024;

const parseOptions = defineOptions('DeferredFreeList', {
  name: optionalString,
  schedule: optionalFunction,
  onError: optionalFunction,
  sliceMs: optionalTimeout,
});
const parseDrainOptions = defineSignalOnly('DeferredFreeList.drain');

/**
 * A queue of items to free, drained by a low-priority worker or, under pressure, by its shrinker.
 * @see deferred_free()
 */
export class DeferredFreeList implements Disposable, AsyncDisposable {
  readonly name: string;
  /** count = pending pages; scan(n) frees items with reason UnderPressure until >= n pages. */
  readonly shrinker: Shrinker;
  readonly #schedule: Schedule;
  readonly #onError: (error: unknown, item: unknown) => void;
  /** FIFO: live entries are `#queue[#head..]`. */
  #queue: (Entry | undefined)[] = [];
  #head = 0;
  #pendingPages = 0;
  #scheduled = false;
  readonly #state = new QueueState(() => this.pendingItems === 0);
  readonly #run = (): void => {
    this.#scheduled = false;
    try {
      lockdepTask(() => {
        this.#freeOne(DeferredFreeReason.Normal);
        if (this.#sliceMs <= 0) return;
        const clock = getClock();
        const deadline = clock.now() + this.#sliceMs;
        while (this.pendingItems > 0 && clock.now() < deadline) this.#freeOne(DeferredFreeReason.Normal);
      });
    } finally {
      this.#wake();
    }
  };
  readonly #sliceMs: number;

  /** @throws {InvalidArgumentError} for options other than `{ name?, schedule?, onError?, sliceMs? }`. */
  constructor(options?: DeferredFreeListOptions) {
    const parsed = parseOptions(options);
    this.name = parsed.name ?? 'deferred-free';
    this.#schedule = (parsed.schedule as Schedule | undefined) ?? defaultSchedule;
    this.#sliceMs = parsed.sliceMs ?? 0;
    this.#onError =
      (parsed.onError as ((error: unknown, item: unknown) => void) | undefined) ??
      ((error) => reportCallbackError(error));
    this.shrinker = new Shrinker(this.name, {
      count: () => this.#pendingPages,
      scan: (n) => this.#scan(n),
    });
  }

  /**
   * Queues `item` to be freed later by `free(item, reason)`; wakes the worker.
   * @param nrPages the item's size in 4 KiB pages: what the shrinker counts.
   * @throws {InvalidArgumentError} for a non-function `free` or a bad `nrPages`.
   * @throws {BugError} after disposal (free the item directly then).
   * @see deferred_free()
   */
  deferredFree<T>(item: T, free: (item: T, reason: DeferredFreeReason) => void, nrPages: number): void {
    requiredFunction(free, 'DeferredFreeList.deferredFree', 'free');
    requiredIndex(nrPages, 'DeferredFreeList.deferredFree', 'nrPages');
    if (this.#state.closed) {
      throw new BugError(`${this.name}.deferredFree: the list is disposed; free the item directly instead`);
    }
    this.#queue.push({ item, free: free as Entry['free'], nrPages });
    this.#pendingPages += nrPages;
    this.#wake();
  }

  /** Pages queued and not yet freed. @see get_freelist_nr_pages() */
  get pendingPages(): number {
    return this.#pendingPages;
  }

  /** Items queued and not yet freed. */
  get pendingItems(): number {
    return this.#queue.length - this.#head;
  }

  /** Whether the worker has a turn scheduled (false whenever it sleeps on an empty list). */
  get workerScheduled(): boolean {
    return this.#scheduled;
  }

  /** Whether disposal finished: `deferredFree` throws from then on. */
  get isDisposed(): boolean {
    return this.#state.closed;
  }

  /**
   * Resolves when the list is empty (now, or once the worker or a shrinker has emptied it).
   * @throws rejects with `signal.reason` when aborted, or {@link InvalidArgumentError} for bad options.
   */
  drain(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    return parseDrainOptions(options, (signal) => this.#state.drain(signal));
  }

  /** Lets the worker free everything pending with reason Normal, then closes the list. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#state.close();
  }

  /** Frees everything pending now with reason UnderPressure, then closes the list. */
  [Symbol.dispose](): void {
    this.#state.closeNow();
    while (this.pendingItems > 0) this.#freeOne(DeferredFreeReason.UnderPressure);
  }

  toString(): string {
    return `DeferredFreeList "${this.name}" (${this.pendingItems} items, ${this.#pendingPages} pages pending)`;
  }

  /** Schedules one worker turn if there is work and none is scheduled. */
  #wake(): void {
    if (this.#scheduled || this.pendingItems === 0) return;
    this.#scheduled = true;
    this.#schedule(this.#run);
  }

  /** @see freelist_shrink_scan() */
  #scan(nrToScan: number): number {
    let freed = 0;
    while (freed < nrToScan && this.pendingItems > 0) freed += this.#freeOne(DeferredFreeReason.UnderPressure);
    return freed;
  }

  /**
   * Takes the oldest item off the list and frees it; a throw is reported, not retried.
   * @returns its pages (0 when the list was empty). @see free_one_item()
   */
  #freeOne(reason: DeferredFreeReason): number {
    if (this.pendingItems === 0) return 0;
    const entry = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#pendingPages -= entry.nrPages;
    try {
      entry.free(entry.item, reason);
    } catch (err) {
      try {
        this.#onError(err, entry.item);
      } catch (reportErr) {
        reportCallbackError(reportErr);
      }
    }
    // The free function may have queued more; waiters want the list empty, not this item gone.
    this.#state.wake();
    return entry.nrPages;
  }
}
