/**
 * The two heap designs the `churn` scenario compares (`--compare deferred-free=on,off`).
 *
 * Overview:
 * - `on`: dmabuf's {@link DmaHeap}: a buffer's last put queues it on the deferred-free list; a
 *   background worker zeroes it and gives it to the page pool (seed 002, as in the kernel's v9
 *   series).
 * - `off`: {@link InlineFreeHeap}, the same heap without the deferred-free helper: the same
 *   {@link PagePool} and {@link ShrinkerRegistry} and the same budget rule, but the free path
 *   zeroes the buffer and pools it before it returns (what a heap does when the helper is not
 *   used, as ION did). DmaHeap has no switch for this, so the baseline is built here from the
 *   same parts; only the place of the zeroing differs.
 *
 * Contract (both): `allocate` hands out zeroed memory of the size class that fits (whole pages
 * above 1 MiB), shrinks the heap's caches for the pages it lacks when a miss would exceed the
 * budget and throws `DmaBufError('ENOMEM')` when that is not enough; `stats()` adds up exactly
 * (`live + pooled + pending = held`).
 *
 * @example
 * ```ts
 * import { churnHeap } from './churn-heaps.js';
 * await using heap = churnHeap('off', 16 << 20);
 * const buf = heap.allocate(10_000);
 * heap.free(buf); // zeroed and pooled before free returns
 * console.log(heap.stats().pooledBytes); // 16384
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import type { DmaBuf } from '../../heap/dma-buf.js';
import { DmaHeap } from '../../heap/dma-heap.js';
import { PAGE_SIZE, PagePool } from '../../heap/page-pool.js';
import { ShrinkerRegistry } from '../../heap/shrinker.js';

/** A buffer as the churn uses it. */
export interface ChurnBuffer {
  /** Bytes of memory (the request rounded up to its size class). */
  readonly size: number;
  /** A view of the requested bytes. */
  bytes(): Uint8Array;
}

/** What the churn reads from a heap. */
export interface ChurnHeapStats {
  readonly liveBytes: number;
  readonly pooledBytes: number;
  readonly pendingBytes: number;
  readonly heldBytes: number;
  readonly hits: number;
  readonly misses: number;
}

/** A heap under churn: one of the two designs. */
export interface ChurnHeap extends AsyncDisposable {
  /** One line for the report. */
  readonly design: string;
  readonly shrinkers: ShrinkerRegistry;
  allocate(size: number): ChurnBuffer;
  free(buffer: ChurnBuffer): void;
  stats(): ChurnHeapStats;
  /** Resolves when no freed buffer waits for the worker. */
  drain(): Promise<void>;
}

/** The design for a value of the `deferred-free` knob. */
export function churnHeap(deferredFree: string, budgetBytes: number): ChurnHeap {
  return deferredFree === 'off' ? new InlineFreeHeap(budgetBytes) : new DeferredFreeHeap(budgetBytes);
}

/** `on`: dmabuf's DmaHeap as it is. */
class DeferredFreeHeap implements ChurnHeap {
  readonly design = 'DmaHeap: frees queue on the deferred-free list, a background worker zeroes and pools them';
  readonly #heap: DmaHeap;

  constructor(budgetBytes: number) {
    this.#heap = new DmaHeap({ name: 'churn', budgetBytes });
  }

  get shrinkers(): ShrinkerRegistry {
    return this.#heap.shrinkers;
  }

  allocate(size: number): ChurnBuffer {
    return this.#heap.allocate(size);
  }

  free(buffer: ChurnBuffer): void {
    (buffer as DmaBuf).put();
  }

  stats(): ChurnHeapStats {
    return this.#heap.stats();
  }

  drain(): Promise<void> {
    return this.#heap.drain();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#heap[Symbol.asyncDispose]();
  }
}

/** A handed-out buffer of the inline heap. */
class InlineBuffer implements ChurnBuffer {
  constructor(
    readonly memory: ArrayBuffer,
    readonly requested: number,
  ) {}

  get size(): number {
    return this.memory.byteLength;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.memory, 0, this.requested);
  }
}

/** `off`: the page pool and budget of DmaHeap, with the zeroing in the free path. */
export class InlineFreeHeap implements ChurnHeap {
  readonly design = 'the same pool and budget without the deferred-free helper: the free path zeroes and pools';
  readonly shrinkers = new ShrinkerRegistry();
  readonly #pool = new PagePool({ name: 'churn-inline-pool' });
  readonly #registration: Disposable;
  readonly #budget: number;
  #liveBytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
    this.#registration = this.shrinkers.register(this.#pool.shrinker);
  }

  allocate(size: number): ChurnBuffer {
    const cls = this.#pool.classFor(size);
    const bytes = cls?.bytes ?? Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    let memory = cls === undefined ? undefined : (this.#pool.take(bytes) as ArrayBuffer | undefined);
    if (memory !== undefined) this.#hits++;
    else {
      const over = this.#held() + bytes - this.#budget;
      if (over > 0 && bytes <= this.#budget) this.shrinkers.shrink(Math.ceil(over / PAGE_SIZE));
      if (this.#held() + bytes > this.#budget) {
        throw new DmaBufError(
          'ENOMEM',
          `InlineFreeHeap: ${bytes} bytes do not fit the ${this.#budget}-byte ` +
            `budget (${this.#held()} held after shrinking)`,
        );
      }
      memory = new ArrayBuffer(bytes);
      this.#misses++;
    }
    this.#liveBytes += bytes;
    return new InlineBuffer(memory, size);
  }

  free(buffer: ChurnBuffer): void {
    const { memory } = buffer as InlineBuffer;
    this.#liveBytes -= memory.byteLength;
    if (this.#pool.classFor(memory.byteLength)?.bytes !== memory.byteLength) return;
    new Uint8Array(memory).fill(0);
    this.#pool.give(memory);
  }

  stats(): ChurnHeapStats {
    const pooledBytes = this.#pool.pooledBytes;
    return {
      liveBytes: this.#liveBytes,
      pooledBytes,
      pendingBytes: 0,
      heldBytes: this.#liveBytes + pooledBytes,
      hits: this.#hits,
      misses: this.#misses,
    };
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#registration[Symbol.dispose]();
    this.#pool[Symbol.dispose]();
  }

  #held(): number {
    return this.#liveBytes + this.#pool.pooledBytes;
  }
}
