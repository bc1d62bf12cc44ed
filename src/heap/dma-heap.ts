/**
 * dma-heap: the "system" heap, handing out {@link DmaBuf}s from a page pool, freeing them late.
 *
 * Overview: {@link DmaHeap.allocate} is synchronous. It rounds the request up to a size class of
 * the heap's {@link PagePool} (4 KiB .. 1 MiB by default; larger requests to whole pages, never
 * pooled), takes a zeroed buffer from the pool when one is there (a hit) and otherwise creates a
 * fresh one (a miss). The last `put()` of a buffer queues it on the heap's
 * {@link DeferredFreeList}: its background worker zeroes the memory and gives it to the pool, so
 * the cost of clearing leaves both the allocation and the free path (seed 002). For each buffer it
 * pools (up to 1,024 kept), the worker also builds the {@link DmaBuf} object that a later hit
 * hands out, so a pool hit allocates nothing: no garbage collection, no fresh page can start
 * inside it. Memory pressure runs the heap's {@link ShrinkerRegistry}, where the deferred list
 * (pending buffers are dropped without zeroing) and the pools (pooled buffers are dropped) are
 * registered, and where users may register more.
 *
 * Models `drivers/dma-buf/dma-heap.c` (allocation checks: the length is page-aligned, zero is
 * `-EINVAL`) and `drivers/dma-buf/heaps/system_heap.c` with the unmerged "deferred-free-helper"
 * and page-pool patches of its v9 series (see kernel-locking-mm §4 and §6.1); mainline's system
 * heap has neither and zeroes at allocation time.
 *
 * Contract:
 * - Accounting is exact at every step: `liveBytes` (buffers handed out, by rounded size) +
 *   `pooledBytes` + `pendingBytes` (released, not yet freed) == `heldBytes`.
 * - Memory handed out is always zero: pooled buffers are zeroed before pooling, fresh ones are
 *   new; a buffer still pending is never handed out.
 * - One piece of memory is reachable through at most one live {@link DmaBuf}, and through no
 *   view its earlier users kept: the worker detaches an `ArrayBuffer` whose memory was handed
 *   out (`bytes()`, `buffer`) with a zero-copy transfer to a new `ArrayBuffer` object before
 *   zeroing and pooling it, off the allocation path (`ArrayBuffer.prototype.transfer` where the
 *   engine has it, `structuredClone` on Node 20: about 2 µs a buffer). Shared memory cannot be
 *   detached; see `DmaBuf` for what that means for views of it.
 * - With `budgetBytes`, an allocation that needs new memory and would take `heldBytes` over the
 *   budget first shrinks (the pages it lacks), then fails with `DmaBufError('ENOMEM')` if still
 *   over; an engine `RangeError` shrinks and retries once before ENOMEM. A failed allocation
 *   changes nothing but what the shrinkers freed.
 * - Every allocation reports `mightReclaim()` to the validator: allocating inside a fence
 *   signalling section is a report, hit or miss.
 * - With `trackLeaks` (or while the validator is on) a buffer the garbage collector reclaims
 *   before its last put is reported (allocation stack included) through {@link DmaHeap.leaks}
 *   and a warning, and its bytes leave `liveBytes`. The heap holds no strong reference to a
 *   live buffer.
 * - `drain({ signal })` waits for pending frees; an abort rejects with `signal.reason`.
 * - `await heap[Symbol.asyncDispose]()` waits for pending frees, drops the pools and retires the
 *   heap; if buffers are still live it then rejects with a {@link BugError} listing them (their
 *   later puts just drop the memory). Idempotent.
 *
 * @example
 * ```ts
 * import { DmaHeap } from 'dmabuf';
 * await using heap = new DmaHeap({ budgetBytes: 64 << 20 });
 * const buf = heap.allocate(10_000); // rounded to 16 KiB
 * buf.bytes().fill(1);
 * buf.put(); // queued: zeroed and pooled in the background
 * await heap.drain();
 * console.log(heap.stats().pooledBytes); // 16384
 * heap.allocate(12_000).put(); // a pool hit
 * ```
 */

import { BugError, DmaBufError, describeValue } from '../base/errors.js';
import { DisposableStore } from '../base/lifecycle.js';
import {
  defineOptions,
  defineSignalOnly,
  invalidArgument,
  optional,
  optionalBoolean,
  optionalFunction,
  optionalIndex,
  requiredName,
} from '../base/options.js';
import { lockdepEnabled, mightReclaim } from '../locking/lockdep.js';
import { ATTACH, DmaBuf, SPARE, TRUSTED_EXPORT, VIEWS_HANDED_OUT } from './dma-buf.js';
import { DeferredFreeList, DeferredFreeReason } from './deferred-free.js';
import { PAGE_SIZE, PagePool } from './page-pool.js';
import { ShrinkerRegistry } from './shrinker.js';

/** Makes fresh memory: zero-filled, exactly `bytes` long; throws RangeError when it cannot. */
export type DmaHeapAllocator = (bytes: number, shared: boolean) => ArrayBuffer | SharedArrayBuffer;

/** Options for {@link DmaHeap}. */
export interface DmaHeapOptions {
  /** Name in messages and of the shrinkers ('system' by default). */
  readonly name?: string;
  /** Most bytes the heap may hold (live + pooled + pending); unlimited when omitted. */
  readonly budgetBytes?: number;
  /** Most bytes each pool (one per memory kind) keeps; the pool's own default when omitted. */
  readonly maxPooledBytes?: number;
  /** Allocate `SharedArrayBuffer`s unless `allocate()` says otherwise (default false). */
  readonly shared?: boolean;
  /** Report buffers garbage-collected without their last put (always on while the validator is). */
  readonly trackLeaks?: boolean;
  /** Replaces `new ArrayBuffer` / `new SharedArrayBuffer` (for tests: inject a RangeError). */
  readonly allocator?: DmaHeapAllocator;
}

/** Options for {@link DmaHeap.allocate}. */
export interface DmaHeapAllocateOptions {
  /** A `SharedArrayBuffer` (true) or an `ArrayBuffer` (false); the heap's default when omitted. */
  readonly shared?: boolean;
}

/** What {@link DmaHeap.stats} returns. */
export interface DmaHeapStats {
  liveBytes: number;
  pooledBytes: number;
  pendingBytes: number;
  heldBytes: number;
  budgetBytes: number | undefined;
  /** Allocations served from a pool. */
  hits: number;
  /** Allocations that made fresh memory. */
  misses: number;
  /** Successful allocations. */
  allocations: number;
  /** Allocations that failed with ENOMEM. */
  enomem: number;
}

/** A buffer the garbage collector reclaimed before its last put. */
export interface DmaBufLeak {
  readonly name: string;
  readonly size: number;
  /** Where it was allocated. */
  readonly stack: string;
}

/** What the leak registry holds per buffer: never the buffer itself. */
interface LeakRecord {
  readonly name: string;
  readonly size: number;
  readonly stack: string;
}

/** A released buffer waiting for the deferred-free worker. */
interface PendingFree {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Its size when released: less now if its user transferred it away meanwhile. */
  readonly bytes: number;
  readonly pool: PagePool;
  /** Views of the memory may exist: detach it before it is reused. */
  readonly detach: boolean;
}

/** A pool cap: a byte count, or Infinity for none. */
const optionalCap = (value: unknown, fn: string, name: string): number | undefined =>
  value === Infinity ? value : optionalIndex(value, fn, name);

const parseOptions = defineOptions('DmaHeap', {
  name: optional(requiredName),
  budgetBytes: optionalIndex,
  maxPooledBytes: optionalCap,
  shared: optionalBoolean,
  trackLeaks: optionalBoolean,
  allocator: optionalFunction,
});
const parseAllocateOptions = defineOptions('DmaHeap.allocate', { shared: optionalBoolean });
const parseDrainOptions = defineSignalOnly('DmaHeap.drain');

/** `ArrayBuffer.prototype.transfer` (ES2024), where the engine has it. */
const nativeTransfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;

/**
 * Takes the memory away from every view and every reference to each buffer and returns it in
 * new `ArrayBuffer` objects, without copying (a transfer): the old objects read as empty
 * afterwards. Without `ArrayBuffer.prototype.transfer` (Node 20), one `structuredClone` moves
 * them all: about 2 µs for one buffer, a third of that each for dozens.
 */
function detachAll(buffers: ArrayBuffer[]): ArrayBuffer[] {
  if (nativeTransfer !== undefined) return buffers.map((buffer) => nativeTransfer.call(buffer));
  return structuredClone(buffers, { transfer: buffers });
}

/**
 * Most spare `DmaBuf` objects a heap keeps (about 200 bytes each: 200 KiB at most): a burst of
 * 1,024 pool hits in one event-loop turn all find one.
 */
const MAX_SPARES = 1024;

const defaultAllocator: DmaHeapAllocator = (bytes, shared) => {
  if (!shared) return new ArrayBuffer(bytes);
  if (typeof SharedArrayBuffer === 'undefined') {
    throw new DmaBufError(
      'EOPNOTSUPP',
      'DmaHeap: SharedArrayBuffer is not available here (a browser page ' +
        'needs cross-origin isolation); allocate with shared: false',
    );
  }
  return new SharedArrayBuffer(bytes);
};

/**
 * A dma-buf heap with a page pool per memory kind and deferred freeing.
 * @see dma_heap_add() @see system_heap_create()
 */
export class DmaHeap implements AsyncDisposable {
  readonly name: string;
  /** Scanned under memory pressure; the deferred list and both pools are registered. */
  readonly shrinkers: ShrinkerRegistry = new ShrinkerRegistry();

  readonly #budget: number | undefined;
  readonly #shared: boolean;
  readonly #trackLeaks: boolean;
  readonly #allocator: DmaHeapAllocator;
  readonly #pool: PagePool;
  readonly #sharedPool: PagePool;
  readonly #deferred: DeferredFreeList;
  /** The shrinker registrations, unregistered together at disposal. */
  readonly #registrations = new DisposableStore();
  #leakRegistry: FinalizationRegistry<LeakRecord> | null = null;
  readonly #leaks: DmaBufLeak[] = [];
  #liveBytes = 0;
  #liveCount = 0;
  #pendingBytes = 0;
  #hits = 0;
  #misses = 0;
  #enomem = 0;
  #disposed = false;

  /** @throws {InvalidArgumentError} for unknown options or values out of their domain. */
  constructor(options?: DmaHeapOptions) {
    const parsed = parseOptions(options);
    const name = parsed.name ?? 'system';
    this.name = name;
    this.#budget = parsed.budgetBytes;
    this.#shared = parsed.shared ?? false;
    this.#trackLeaks = parsed.trackLeaks ?? false;
    this.#allocator = (parsed.allocator as DmaHeapAllocator | undefined) ?? defaultAllocator;
    const maxPooledBytes = parsed.maxPooledBytes;
    const cap = maxPooledBytes === undefined ? {} : { maxPooledBytes };
    this.#pool = new PagePool({ ...cap, shared: false, name: `${name}-pool` });
    this.#sharedPool = new PagePool({ ...cap, shared: true, name: `${name}-pool-shared` });
    // A 1 ms slice per worker turn: one buffer per turn falls behind any program that frees more
    // than one buffer per event-loop turn (bench/heap-alloc.bench.ts, '4 steps/turn').
    this.#deferred = new DeferredFreeList({ name: `${name}-deferred-free`, sliceMs: 1 });
    // Pending buffers first: dropping them saves their zeroing, and they would only fill the pool.
    this.#registrations.add(this.shrinkers.register(this.#deferred.shrinker));
    this.#registrations.add(this.shrinkers.register(this.#pool.shrinker));
    this.#registrations.add(this.shrinkers.register(this.#sharedPool.shrinker));
  }

  /**
   * A zeroed buffer of at least `size` bytes: the smallest pool class that fits, or whole pages
   * above the largest class.
   * @throws {InvalidArgumentError} for a size that is not a positive safe integer, or unknown options.
   * @throws {DmaBufError} `ENOMEM` when the budget or the engine cannot supply it after shrinking.
   * @throws {BugError} after the heap was disposed.
   * @see dma_heap_ioctl_allocate() @see system_heap_allocate()
   */
  allocate(size: number, options?: DmaHeapAllocateOptions): DmaBuf {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
      throw invalidArgument('DmaHeap.allocate', 'size', size, 'a positive integer number of bytes');
    }
    const shared = (options === undefined ? undefined : parseAllocateOptions(options).shared) ?? this.#shared;
    // One look at the validator for both of its uses below. The flags are compared `=== true`:
    // a bare `if (flag)` compiles to a generic truthiness test, and this path is a few loads.
    const validating = lockdepEnabled() === true;
    if (validating) mightReclaim();
    if (this.#disposed === true) throw new BugError(`DmaHeap ${this.name}: allocate() after the heap was disposed`);
    const pool = shared === true ? this.#sharedPool : this.#pool;
    const index = pool.classIndexOf(size);
    const buffer = index < 0 ? undefined : pool.takeAt(index);
    // The pool hit with a spare (see #spares) first and alone: it allocates nothing, and its
    // code stays small (the rest is out of line in #allocateSlow).
    const spare = buffer === undefined ? undefined : this.#spares.pop();
    if (spare === undefined) return this.#allocateSlow(size, shared, pool, index, buffer, validating);
    // The class's size, not buffer.byteLength: that getter is a call for an ArrayBuffer | SharedArrayBuffer.
    const bytes = pool.classBytesAt(index);
    this.#hits++;
    this.#liveBytes += bytes;
    this.#liveCount++;
    const buf = spare[ATTACH](buffer!, bytes, size);
    if (validating || this.#trackLeaks === true) this.#track(buf);
    return buf;
  }

  /** `allocate` without a spare or without a pool hit: builds the `DmaBuf`, makes memory on a miss. */
  #allocateSlow(
    size: number,
    shared: boolean,
    pool: PagePool,
    index: number,
    hit: ArrayBuffer | SharedArrayBuffer | undefined,
    validating: boolean,
  ): DmaBuf {
    let buffer = hit;
    let bytes: number;
    if (buffer !== undefined) {
      bytes = buffer.byteLength;
      this.#hits++;
    } else {
      bytes = index < 0 ? Math.ceil(size / PAGE_SIZE) * PAGE_SIZE : pool.classBytesAt(index);
      buffer = this.#fresh(bytes, size, shared);
      this.#misses++;
    }
    this.#liveBytes += bytes;
    this.#liveCount++;
    const spare = this.#spares.pop();
    const buf =
      spare !== undefined
        ? spare[ATTACH](buffer, bytes, size)
        : new DmaBuf({ heap: this, buffer, requestedSize: size, release: this.#releaseFn }, TRUSTED_EXPORT);
    if (validating || this.#trackLeaks) this.#track(buf);
    return buf;
  }

  /**
   * Runs the shrinkers for `pages` pages (`Infinity`: everything they can free).
   * @returns pages freed. @see shrink_slab()
   */
  shrinkAll(pages: number): number {
    return this.shrinkers.shrink(pages);
  }

  /**
   * Resolves when every released buffer has been zeroed and pooled (or dropped).
   * @throws rejects with `signal.reason` when aborted, or {@link InvalidArgumentError} for bad options.
   */
  drain(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    return parseDrainOptions(options, async (signal) => {
      await this.#deferred.drain({ signal });
      this.#recycleDetached();
    });
  }

  /** Byte counts and counters; `heldBytes` is always the sum of the first three. */
  stats(): DmaHeapStats {
    const pooledBytes = this.#pool.pooledBytes + this.#sharedPool.pooledBytes;
    return {
      liveBytes: this.#liveBytes,
      pooledBytes,
      pendingBytes: this.#pendingBytes,
      heldBytes: this.#liveBytes + pooledBytes + this.#pendingBytes,
      budgetBytes: this.#budget,
      hits: this.#hits,
      misses: this.#misses,
      allocations: this.#hits + this.#misses, // every allocation that did not throw is one or the other
      enomem: this.#enomem,
    };
  }

  /** Buffers reported as garbage-collected without their last put, oldest first. */
  leaks(): readonly DmaBufLeak[] {
    return this.#leaks.slice();
  }

  /** Number of buffers handed out and not yet released. */
  get liveBuffers(): number {
    return this.#liveCount;
  }

  /**
   * Waits for pending frees, drops the pools, unregisters the shrinkers and retires the heap.
   * @throws rejects with {@link BugError} naming the live buffers, after doing all of that.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    await this.#deferred.drain();
    this.#recycleDetached();
    this.#disposed = true;
    // Frees queued while draining (a put from a fence callback) are dropped by dispose.
    this.#deferred[Symbol.dispose]();
    this.#registrations[Symbol.dispose]();
    this.#pool[Symbol.dispose]();
    this.#sharedPool[Symbol.dispose]();
    this.#spares.length = 0;
    if (this.#liveCount > 0) {
      throw new BugError(
        `DmaHeap ${this.name} disposed with ${this.#liveCount} live buffer(s) (${this.#liveBytes} bytes); ` +
          'their memory is dropped at their last put(); put every DmaBuf before disposing its heap',
      );
    }
  }

  toString(): string {
    const s = this.stats();
    return `DmaHeap(${this.name}, live ${s.liveBytes}, pooled ${s.pooledBytes}, pending ${s.pendingBytes} bytes)`;
  }

  /** New memory within the budget, shrinking first when needed and once more on a RangeError. */
  #fresh(bytes: number, size: number, shared: boolean): ArrayBuffer | SharedArrayBuffer {
    const budget = this.#budget;
    let freed = 0;
    if (budget !== undefined) {
      const over = this.#held() + bytes - budget;
      // Shrinking cannot help a request larger than the whole budget: keep the pool then.
      if (over > 0 && bytes <= budget) freed += this.shrinkers.shrink(Math.ceil(over / PAGE_SIZE));
      if (this.#held() + bytes > budget) throw this.#outOfMemory(bytes, size, freed, `the budget is ${budget} bytes`);
    }
    try {
      return this.#callAllocator(bytes, shared);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
    freed += this.shrinkers.shrink(Math.ceil(bytes / PAGE_SIZE));
    try {
      return this.#callAllocator(bytes, shared);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw this.#outOfMemory(
        bytes,
        size,
        freed,
        `the engine refused the memory (${err.message}) after shrinking and one retry`,
        err,
      );
    }
  }

  #callAllocator(bytes: number, shared: boolean): ArrayBuffer | SharedArrayBuffer {
    const buffer = this.#allocator(bytes, shared);
    const isShared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
    if ((!(buffer instanceof ArrayBuffer) && !isShared) || buffer.byteLength !== bytes || isShared !== shared) {
      throw new BugError(
        `DmaHeap ${this.name}: the allocator returned ${describeValue(buffer)} ` +
          `for ${bytes} ${shared ? 'shared' : 'unshared'} bytes; ` +
          `it must return a zero-filled ${shared ? 'SharedArrayBuffer' : 'ArrayBuffer'} of exactly that length`,
      );
    }
    return buffer;
  }

  #outOfMemory(bytes: number, size: number, freedPages: number, why: string, cause?: unknown): DmaBufError {
    this.#enomem++;
    const s = this.stats();
    return new DmaBufError(
      'ENOMEM',
      `DmaHeap ${this.name}: cannot allocate ${bytes} bytes (asked ` +
        `${size}): ${why}; the heap holds ${s.heldBytes} bytes ` +
        `(live ${s.liveBytes}, pooled ${s.pooledBytes}, pending ` +
        `${s.pendingBytes}) with budget ${s.budgetBytes ?? 'unlimited'}, ` +
        `and shrinking freed ${freedPages} pages; put buffers you no longer need or raise budgetBytes`,
      cause === undefined ? undefined : { cause },
    );
  }

  #held(): number {
    return this.#liveBytes + this.#pool.pooledBytes + this.#sharedPool.pooledBytes + this.#pendingBytes;
  }

  // One release function for every buffer of this heap: a closure per allocation cost more than
  // the rest of a pooled allocation (bench/heap-pool.bench.ts).
  readonly #releaseFn = (memory: ArrayBuffer | SharedArrayBuffer, buf: DmaBuf): void => this.#release(memory, buf);

  /** The buffer's last put: poolable memory waits for the worker, the rest is dropped now. */
  #release(memory: ArrayBuffer | SharedArrayBuffer, buf: DmaBuf): void {
    this.#leakRegistry?.unregister(buf);
    const bytes = buf.size;
    const kindPool = memory instanceof ArrayBuffer ? this.#pool : this.#sharedPool;
    // Memory its user transferred away (postMessage, transfer()) is gone: nothing to pool.
    const index = memory.byteLength === bytes ? kindPool.classIndexOf(bytes) : -1;
    const pool = index >= 0 && kindPool.classBytesAt(index) === bytes ? kindPool : null;
    this.#liveCount--;
    if (pool === null || this.#disposed) {
      this.#liveBytes -= bytes;
      return;
    }
    // Moved from live to pending in one step, so the sum never wavers.
    this.#liveBytes -= bytes;
    this.#pendingBytes += bytes;
    this.#deferred.deferredFree<PendingFree>(
      { buffer: memory, bytes, pool, detach: buf[VIEWS_HANDED_OUT] },
      this.#free,
      bytes / PAGE_SIZE,
    );
  }

  /** The deferred-free worker's (or a shrinker's) free function. */
  readonly #free = (item: PendingFree, reason: DeferredFreeReason): void => {
    // Dropped under pressure or after disposal, or transferred away by its user meanwhile.
    if (reason !== DeferredFreeReason.Normal || this.#disposed || item.buffer.byteLength !== item.bytes) {
      this.#pendingBytes -= item.bytes;
      return;
    }
    // Views its last user kept lose the memory before anyone else can get it (issue 10): such
    // buffers are detached together when the worker's slice ends (still pending until then).
    // A buffer whose memory was never handed out, or shared memory, has no views to detach.
    if (item.detach && item.buffer instanceof ArrayBuffer) {
      if (this.#toDetach.push(item) === 1) queueMicrotask(this.#recycleDetached);
      return;
    }
    this.#pendingBytes -= item.bytes;
    this.#recycle(item.buffer, item.pool);
  };

  /** Buffers the worker released whose memory was handed out, waiting to be detached together. */
  #toDetach: PendingFree[] = [];

  readonly #recycleDetached = (): void => {
    // Transferred away by their users since the worker saw them: gone, nothing to detach.
    const items = this.#toDetach.filter((item) => item.buffer.byteLength === item.bytes);
    for (const item of this.#toDetach) this.#pendingBytes -= item.bytes;
    this.#toDetach = [];
    if (items.length === 0 || this.#disposed) return;
    const detached = detachAll(items.map((item) => item.buffer as ArrayBuffer));
    for (let i = 0; i < items.length; i++) this.#recycle(detached[i]!, items[i]!.pool);
  };

  /**
   * Zeroes `buffer` and offers it to `pool`; refused (pool full, disposed), it is dropped. A
   * pooled buffer brings a spare `DmaBuf` for the allocation that will take it.
   */
  #recycle(buffer: ArrayBuffer | SharedArrayBuffer, pool: PagePool): void {
    new Uint8Array(buffer).fill(0);
    if (pool.give(buffer) && this.#spares.length < MAX_SPARES) {
      this.#spares.push(new DmaBuf({ heap: this, release: this.#releaseFn }, SPARE));
    }
  }

  /** `DmaBuf` objects built by the worker for allocations to hand out (see `SPARE` in dma-buf.ts). */
  readonly #spares: DmaBuf[] = [];

  #track(buf: DmaBuf): void {
    if (this.#leakRegistry === null) {
      this.#leakRegistry = new FinalizationRegistry<LeakRecord>((record) => this.#leaked(record));
    }
    // Drop the message line and the heap's own two frames (#track, allocate).
    const stack = (new Error().stack ?? '').split('\n').slice(3, 11).join('\n');
    this.#leakRegistry.register(buf, { name: buf.name, size: buf.size, stack }, buf);
  }

  #leaked(record: LeakRecord): void {
    // The memory went with the buffer: it is no longer held.
    this.#liveBytes -= record.size;
    this.#liveCount--;
    this.#leaks.push({ name: record.name, size: record.size, stack: record.stack });
    const message =
      `DmaHeap ${this.name}: ${record.name} was garbage-collected without its last put(); ` +
      `allocated at:\n${record.stack}`;
    const proc = (
      globalThis as {
        process?: { emitWarning?: (message: string, options?: { type?: string; code?: string }) => void };
      }
    ).process;
    if (typeof proc?.emitWarning === 'function')
      proc.emitWarning(message, { type: 'DmaBufLeakWarning', code: 'DMABUF_LEAK' });
    else console.warn(message);
  }
}
