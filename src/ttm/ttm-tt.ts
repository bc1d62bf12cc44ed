/**
 * ttm-tt: the system-memory pages behind a buffer object.
 *
 * Overview: a {@link TtmTt} is what a buffer object has in system memory: one {@link DmaBuf}
 * from the device's {@link DmaHeap}, or nothing yet. Resources in memory types that use a tt
 * (System, TT and driver types with `useTt`) keep their bytes here, so moving a buffer between
 * two such types needs no copy (a null move). A tt may exist unpopulated: the buffer then has
 * no pages and reads as zeros once populated, which is how a purged ("gutted") buffer looks.
 *
 * Models `struct ttm_tt` of `include/drm/ttm/ttm_tt.h` and the parts of `ttm_tt.c` TTM's buffer
 * code uses: create, populate, unpopulate, destroy, the `ZERO_ALLOC` and `SWAPPED` flags.
 * Page-array bookkeeping, caching modes and DMA addresses have no counterpart here.
 *
 * Contract:
 * - Populated pages are zero when handed out (the heap guarantees it), so a populate after an
 *   unpopulate reads as zeros: contents do not survive {@link TtmTt.unpopulate}.
 * - {@link TtmTt.bytes} is exactly `size` bytes long and only valid while populated.
 * - A destroyed tt holds nothing and refuses to populate ({@link BugError}).
 *
 * @example
 * ```ts
 * import { DmaHeap, TtmTt } from 'dmabuf';
 * await using heap = new DmaHeap();
 * const tt = new TtmTt(8192);
 * tt.populate(heap);
 * tt.bytes()[0] = 42;
 * tt.unpopulate(); // contents gone, pages back to the heap
 * tt.populate(heap);
 * console.log(tt.bytes()[0]); // 0
 * tt.destroy();
 * ```
 */

import { BugError } from '../base/errors.js';
import { invalidArgument } from '../base/options.js';
import type { DmaBuf } from '../heap/dma-buf.js';
import { DmaHeap } from '../heap/dma-heap.js';
import { PAGE_SIZE } from '../heap/page-pool.js';

/** Flags of a {@link TtmTt}. @see TTM_TT_FLAG_ZERO_ALLOC */
export const TtmTtFlags = {
  /** Pages must read as zero when populated (always true here; recorded for parity). */
  ZeroAlloc: 1,
  /** The contents were swapped out; the resource sits on the unevictable list. */
  Swapped: 2,
  /** Pages belong to someone else (an imported buffer); never freed or swapped by TTM. */
  External: 4,
} as const;

const ALL_FLAGS = TtmTtFlags.ZeroAlloc | TtmTtFlags.Swapped | TtmTtFlags.External;

/** The system pages of one buffer object. @see struct ttm_tt */
export class TtmTt {
  /** Bytes, a page multiple. */
  readonly size: number;
  /** {@link TtmTtFlags} bits. */
  flags: number;
  #buf: DmaBuf | null = null;
  #destroyed = false;

  /** @throws {InvalidArgumentError} unless `size` is a positive page multiple and `flags` known bits. */
  constructor(size: number, flags = 0) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw invalidArgument('TtmTt', 'size', size, `a positive multiple of ${PAGE_SIZE} bytes`);
    }
    if (
      typeof flags !== 'number' ||
      !Number.isInteger(flags) ||
      flags < 0 ||
      flags > ALL_FLAGS ||
      (flags & ~ALL_FLAGS) !== 0
    ) {
      throw invalidArgument('TtmTt', 'flags', flags, 'TtmTtFlags bits');
    }
    this.size = size;
    this.flags = flags;
  }

  /** Whether pages are attached. @see ttm_tt_is_populated() */
  get populated(): boolean {
    return this.#buf !== null;
  }

  /** The pages, when populated. */
  get buf(): DmaBuf | null {
    return this.#buf;
  }

  /**
   * Attaches zeroed pages from `heap`; a no-op when already populated.
   * @throws {DmaBufError} ENOMEM when the heap cannot provide them. @see ttm_tt_populate()
   */
  populate(heap: DmaHeap): void {
    if (!(heap instanceof DmaHeap)) throw invalidArgument('TtmTt.populate', 'heap', heap, 'a DmaHeap');
    if (this.#destroyed) throw new BugError('TtmTt: populate() after destroy()');
    if (this.#buf !== null) return;
    this.#buf = heap.allocate(this.size);
    this.flags &= ~TtmTtFlags.Swapped;
  }

  /** Gives the pages back; the contents are lost. @see ttm_tt_unpopulate() */
  unpopulate(): void {
    const buf = this.#buf;
    if (buf === null) return;
    this.#buf = null;
    buf.put();
  }

  /** The contents. @throws {BugError} when not populated. */
  bytes(): Uint8Array {
    if (this.#buf === null)
      throw new BugError(`TtmTt: bytes() on an unpopulated tt (${this.size} bytes); populate it first`);
    return this.#buf.bytes();
  }

  /** Unpopulates and retires the tt. Idempotent. @see ttm_tt_destroy() */
  destroy(): void {
    this.unpopulate();
    this.#destroyed = true;
  }
}
