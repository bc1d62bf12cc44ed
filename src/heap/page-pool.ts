/**
 * Page pool: zeroed buffers kept by size class for reuse.
 *
 * Overview: allocating a large `ArrayBuffer` asks the engine for fresh zeroed memory, and a
 * `SharedArrayBuffer` more so; a {@link PagePool} keeps freed buffers, already zeroed, so the
 * next allocation of that size class is a pop. Size classes are 4 KiB pages times a power of two
 * (order 0 = 4 KiB, 4 = 64 KiB, 8 = 1 MiB, the system heap's orders); the default pool has every
 * order from 0 to 8. A pool holds one kind of buffer, plain or shared. What it holds is capped
 * by `maxPooledBytes` and given back to the engine by {@link PagePool.shrink}, directly or
 * through its {@link PagePool.shrinker}.
 *
 * Models `drivers/gpu/drm/ttm/ttm_pool.c` (pool types per order, pages cleared before they are
 * pooled, the round-robin `ttm_pool_shrink()` and the pool shrinker with `seeks = 1`) and the
 * ION / system-heap page pools of the deferred-free series (seed 002). Caching attributes and
 * DMA mapping have no counterpart here; a pool's "kind" (plain or shared) stands in for them.
 *
 * Contract:
 * - Every buffer {@link PagePool.take} returns is all zero. The pool does not zero: a caller of
 *   {@link PagePool.give} promises the buffer is zero. With `verifyZero: true` (a debug mode,
 *   O(size) per call) the pool checks that promise on give and again on take (a write through a
 *   view kept after give shows up there), and throws {@link BugError} when it was broken.
 * - `pooledBytes` is exactly the sum of the byte lengths of the buffers held, and never exceeds
 *   `maxPooledBytes`: a give that would exceed it returns false and keeps nothing.
 * - `give` returns false, keeping nothing, for a buffer of another kind, a size that is not a
 *   size class, a resizable or growable buffer, or when the pool is disposed. Giving a buffer the
 *   pool already holds is a {@link BugError} (a double free).
 * - `shrink(n)` drops whole buffers, one at a time from the next class in a rotation that
 *   persists across calls (empty classes take their turn and yield nothing), until at least
 *   `n` pages are dropped or the pool is empty.
 * - After disposal the pool holds nothing: `take` misses (uncounted) and `give` returns false.
 *
 * @example
 * ```ts
 * import { PagePool } from 'dmabuf';
 * using pool = new PagePool({ maxPooledBytes: 8 << 20 });
 * const cls = pool.classFor(50_000)!; // { order: 4, bytes: 65536 }
 * const buffer = pool.take(cls.bytes) ?? new ArrayBuffer(cls.bytes); // a miss the first time
 * new Uint8Array(buffer).fill(0); // zero before giving back
 * console.log(pool.give(buffer), pool.pooledBytes); // true 65536
 * console.log(pool.take(cls.bytes) === buffer, pool.stats().hits); // true 1
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { defineOptions, optionalBoolean, optionalString, requiredIndex } from '../base/options.js';
import { Shrinker } from './shrinker.js';

/** Bytes in a page: the unit of size classes and shrinker counts. */
export const PAGE_SIZE = 4096;

/** Largest order a pool accepts (2^20 pages = 4 GiB per buffer: more than any engine gives). */
const MAX_ORDER = 20;
const DEFAULT_ORDERS: readonly number[] = Object.freeze([0, 1, 2, 3, 4, 5, 6, 7, 8]);
/** Default cap on pooled memory: 64 MiB, so an idle pool never holds more than that. */
const DEFAULT_MAX_POOLED_BYTES = 64 * 1024 * 1024;

/** Options for a {@link PagePool}. */
export interface PagePoolOptions {
  /** Pool `SharedArrayBuffer`s instead of `ArrayBuffer`s (default false). */
  readonly shared?: boolean;
  /** Cap on pooled bytes (default 64 MiB; `Infinity` for none). */
  readonly maxPooledBytes?: number;
  /** Size-class orders: class bytes = 4 KiB << order (default 0..8). */
  readonly orders?: readonly number[];
  /** Debug mode: check buffers are zero on give and take, BugError otherwise (default false). */
  readonly verifyZero?: boolean;
  /** Names the pool (and its shrinker) in messages (default 'page-pool'). */
  readonly name?: string;
}

const parseOptions = defineOptions('PagePool', {
  shared: optionalBoolean,
  maxPooledBytes: (value, fn, name) =>
    value === undefined || value === Infinity ? value : requiredIndex(value, fn, name),
  orders: (value, fn, name) => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value))
      throw new InvalidArgumentError(
        `${fn}: ${name} must be an array of orders 0..${MAX_ORDER}, got ${describeValue(value)}`,
        { argument: name },
      );
    return value as readonly number[];
  },
  verifyZero: optionalBoolean,
  name: optionalString,
});

/** One size class as reported by {@link PagePool.stats}. */
export interface PagePoolClassStats {
  readonly order: number;
  /** Byte length of the class's buffers. */
  readonly bytes: number;
  /** Buffers of this class held now. */
  readonly pooled: number;
  /** Bytes of this class held now (`bytes * pooled`). */
  readonly pooledBytes: number;
  readonly hits: number;
  readonly misses: number;
}

/** Counters of a {@link PagePool}. */
export interface PagePoolStats {
  hits: number;
  misses: number;
  pooledBytes: number;
  classes: PagePoolClassStats[];
}

/** The memory a pool holds and hands out. */
export type PoolBuffer = ArrayBuffer | SharedArrayBuffer;

interface SizeClass {
  readonly order: number;
  readonly bytes: number;
  readonly buffers: PoolBuffer[];
  hits: number;
  misses: number;
}

/**
 * Zeroed buffers by size class, plain or shared, with a byte cap and a shrinker.
 * @see struct ttm_pool
 */
export class PagePool implements Disposable {
  readonly shared: boolean;
  readonly name: string;
  readonly maxPooledBytes: number;
  readonly verifyZero: boolean;
  /** count = pooled pages, scan = {@link PagePool.shrink}; `seeks` 1 as TTM's pool shrinker. */
  readonly shrinker: Shrinker;
  /** Ascending by order. */
  readonly #classes: SizeClass[];
  /** The classes' byte lengths, ascending. */
  readonly #classBytes: number[];
  /** By order 0..MAX_ORDER: the index of the smallest class of that order or more, -1 for none. */
  readonly #indexByOrder: number[] = [];
  /** The largest class's byte length. */
  readonly #maxBytes: number;
  readonly #byBytes = new Map<number, SizeClass>();
  /** Buffers held now, to catch a double give. */
  // Debug mode only (verifyZero): the buffers pooled now, to catch a double give. DmaBuf already
  // prevents a double put, and the WeakSet costs more than the rest of a pooled hand-off.
  readonly #held = new WeakSet<PoolBuffer>();
  #pooledBytes = 0;
  #hits = 0;
  #misses = 0;
  /** Index of the class the next shrink step starts from. */
  #cursor = 0;
  #disposed = false;

  /** @throws {InvalidArgumentError} for unknown options, orders outside 0..20, duplicates, or a negative cap. */
  constructor(options?: PagePoolOptions) {
    const parsed = parseOptions(options);
    this.shared = parsed.shared === true;
    this.name = parsed.name ?? 'page-pool';
    this.verifyZero = parsed.verifyZero === true;
    this.maxPooledBytes = (parsed.maxPooledBytes as number | undefined) ?? DEFAULT_MAX_POOLED_BYTES;
    const orders = [...(parsed.orders ?? DEFAULT_ORDERS)];
    if (orders.length === 0) {
      throw new InvalidArgumentError(
        `PagePool ${this.name}: orders must name at least one size class, got an array of 0`,
        {
          argument: 'options.orders',
        },
      );
    }
    for (const order of orders) {
      if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) {
        throw new InvalidArgumentError(
          `${this.name}: orders must be integers 0..${MAX_ORDER}, got ${describeValue(order)}`,
        );
      }
    }
    orders.sort((a, b) => a - b);
    // 1 << order, not 2 ** order: V8's ** yields a boxed double, which made every byte count
    // derived from a class (pooledBytes, the heap's liveBytes) a double field too.
    this.#classes = orders.map((order) => ({
      order,
      bytes: PAGE_SIZE * (1 << order),
      buffers: [],
      hits: 0,
      misses: 0,
    }));
    this.#classBytes = this.#classes.map((cls) => cls.bytes);
    this.#maxBytes = this.#classBytes[this.#classBytes.length - 1]!;
    // Ascending, so that the array stays packed small integers: -1 where no class is that large.
    for (let order = 0; order <= MAX_ORDER; order++) {
      this.#indexByOrder.push(this.#classes.findIndex((cls) => cls.order >= order));
    }
    for (const cls of this.#classes) {
      if (this.#byBytes.has(cls.bytes))
        throw new InvalidArgumentError(`${this.name}: order ${cls.order} is listed twice`);
      this.#byBytes.set(cls.bytes, cls);
    }
    const maxOrder = this.#classes[this.#classes.length - 1]!.order;
    // TTM's batch: a few blocks of a middle order for every pool type.
    this.shrinker = new Shrinker(
      this.name,
      { count: () => this.pooledPages, scan: (n) => this.shrink(n) },
      { seeks: 1, batch: 2 ** Math.floor(maxOrder / 2) * this.#classes.length },
    );
  }

  /**
   * The smallest size class of at least `bytes` bytes (0 bytes: the smallest class).
   * @returns undefined above the largest class.
   * @throws {InvalidArgumentError} when `bytes` is not a non-negative integer.
   */
  classFor(bytes: number): { order: number; bytes: number } | undefined {
    const index = this.classIndexOf(requiredIndex(bytes, 'PagePool.classFor', 'bytes'));
    if (index < 0) return undefined;
    const cls = this.#classes[index]!;
    return { order: cls.order, bytes: cls.bytes };
  }

  /**
   * @internal For `DmaHeap.allocate`: the index of {@link PagePool.classFor}'s class, without
   * its argument check (the caller checked `bytes`) and without building its result.
   * @returns -1 above the largest class.
   */
  classIndexOf(bytes: number): number {
    // O(1), no scan: pages rounded up to a power of two give the order, a table gives the class.
    // Integer operations only (the division by PAGE_SIZE compiled to an idiv): bytes is at most
    // the largest class here, 2^32 at order 20, so bytes - 1 fits 32 unsigned bits, and
    // (bytes - 1) >>> 12 is the page count minus one (PAGE_SIZE = 2^12).
    if (bytes > this.#maxBytes) return -1;
    return this.#indexByOrder[bytes <= PAGE_SIZE ? 0 : 32 - Math.clz32((bytes - 1) >>> 12)]!;
  }

  /** @internal Byte length of the class at `index` (from {@link PagePool.classIndexOf}). */
  classBytesAt(index: number): number {
    return this.#classBytes[index]!;
  }

  /** @internal {@link PagePool.take} by class index (from {@link PagePool.classIndexOf}): no lookup by size. */
  takeAt(index: number): PoolBuffer | undefined {
    return this.#takeFrom(this.#classes[index]!);
  }

  /**
   * A zeroed buffer of exactly `classBytes` bytes from the pool, most recently given first.
   * @returns undefined on a miss (the caller allocates).
   * @throws {InvalidArgumentError} when `classBytes` is not one of this pool's class sizes.
   * @throws {BugError} in `verifyZero` mode when the buffer was written after it was given.
   * @see ttm_pool_type_take()
   */
  take(classBytes: number): PoolBuffer | undefined {
    const cls = this.#byBytes.get(classBytes);
    if (cls === undefined) {
      throw new InvalidArgumentError(
        `${this.name}.take: ${describeValue(classBytes)} is not a size class of this pool; round with classFor() first`,
      );
    }
    return this.#takeFrom(cls);
  }

  #takeFrom(cls: SizeClass): PoolBuffer | undefined {
    // `=== true`: on a field, a bare `if (flag)` compiles to a generic truthiness test.
    if (this.#disposed === true) return undefined;
    const buffer = cls.buffers.pop();
    if (buffer === undefined) {
      cls.misses++;
      this.#misses++;
      return undefined;
    }
    if (this.verifyZero === true) this.#held.delete(buffer);
    this.#pooledBytes -= cls.bytes;
    cls.hits++;
    this.#hits++;
    if (this.verifyZero === true && !isZero(buffer)) {
      throw new BugError(
        `${this.name}.take: a pooled ${cls.bytes}-byte buffer is no longer zero: someone ` +
          `wrote to it after giving it back (use after free); the buffer was dropped`,
      );
    }
    return buffer;
  }

  /**
   * Offers a buffer to the pool. The caller guarantees it is all zero (see the contract).
   * @returns true when pooled; false, keeping nothing, for the wrong kind or size, a resizable
   *   buffer, a full pool, or a disposed pool.
   * @throws {InvalidArgumentError} when `buffer` is not an ArrayBuffer or SharedArrayBuffer.
   * @throws {BugError} (verifyZero mode) when the pool already holds it or it is not zero.
   * @see ttm_pool_type_give()
   */
  give(buffer: PoolBuffer): boolean {
    const shared = isShared(buffer);
    if (!shared && !(buffer instanceof ArrayBuffer)) {
      throw new InvalidArgumentError(
        `${this.name}.give: expected an ArrayBuffer or SharedArrayBuffer, got ${describeValue(buffer)}`,
      );
    }
    if (this.verifyZero && this.#held.has(buffer)) {
      throw new BugError(
        `${this.name}.give: this ${buffer.byteLength}-byte buffer is already pooled (given twice: double free)`,
      );
    }
    if (this.#disposed || shared !== this.shared || isResizable(buffer)) return false;
    const cls = this.#byBytes.get(buffer.byteLength);
    if (cls === undefined || this.#pooledBytes + cls.bytes > this.maxPooledBytes) return false;
    if (this.verifyZero && !isZero(buffer)) {
      throw new BugError(
        `${this.name}.give: the ${cls.bytes}-byte buffer is not ` +
          `zero; zero it before giving it back (it was not pooled)`,
      );
    }
    cls.buffers.push(buffer);
    if (this.verifyZero) this.#held.add(buffer);
    this.#pooledBytes += cls.bytes;
    return true;
  }

  /** Bytes held now. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** Pages held now (`pooledBytes / PAGE_SIZE`). */
  get pooledPages(): number {
    return this.#pooledBytes / PAGE_SIZE;
  }

  /** Hits, misses and holdings, overall and per class (ascending order). */
  stats(): PagePoolStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      pooledBytes: this.#pooledBytes,
      classes: this.#classes.map((c) => ({
        order: c.order,
        bytes: c.bytes,
        pooled: c.buffers.length,
        pooledBytes: c.bytes * c.buffers.length,
        hits: c.hits,
        misses: c.misses,
      })),
    };
  }

  /**
   * Drops pooled buffers, one per step from the next class in rotation, until at least `pages`
   * pages are dropped or nothing is left. `Infinity` drops everything.
   * @returns pages dropped (whole buffers, so possibly more than asked).
   * @see ttm_pool_shrink()
   */
  shrink(pages: number): number {
    const target = pages === Infinity ? Infinity : requiredIndex(pages, 'PagePool.shrink', 'pages');
    let dropped = 0;
    while (dropped < target && this.#pooledBytes > 0) {
      const cls = this.#classes[this.#cursor]!;
      this.#cursor = (this.#cursor + 1) % this.#classes.length;
      const buffer = cls.buffers.pop();
      if (buffer === undefined) continue;
      if (this.verifyZero) this.#held.delete(buffer);
      this.#pooledBytes -= cls.bytes;
      dropped += cls.bytes / PAGE_SIZE;
    }
    return dropped;
  }

  /** Drops everything; the pool stays usable as an always-empty pool. @see ttm_pool_fini() */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.shrink(Infinity);
    this.#disposed = true;
  }

  toString(): string {
    return `PagePool "${this.name}" (${this.shared ? 'shared' : 'plain'}, ${this.#pooledBytes} bytes pooled)`;
  }
}

function isShared(buffer: unknown): buffer is SharedArrayBuffer {
  return typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer;
}

function isResizable(buffer: PoolBuffer): boolean {
  // A resizable ArrayBuffer or growable SharedArrayBuffer could change size while pooled.
  const b = buffer as { resizable?: boolean; growable?: boolean };
  return b.resizable === true || b.growable === true;
}

/** Whether every byte is zero; class sizes are multiples of 4, so 32-bit words suffice. */
function isZero(buffer: PoolBuffer): boolean {
  const words = new Uint32Array(buffer);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}
