/**
 * Range and size-only resource managers.
 *
 * Overview: {@link TtmRangeManager} hands out contiguous page ranges of a fixed-size space
 * (VRAM): first fit from the bottom, or from the top with `TopDown`, inside the place's
 * `[fpfn, lpfn)`. Free space is a segment tree over the pages; each node keeps the longest free
 * run inside it and the free runs touching its two ends, so finding a fit, taking it and giving
 * it back each cost O(log pages) whatever the number of live allocations. Freed ranges merge
 * with their free neighbours by construction. {@link TtmSysManager} only counts bytes against a
 * budget (system memory and TT, whose pages come from the heap).
 *
 * Models `drivers/gpu/drm/ttm/ttm_range_manager.c` (over `drm_mm`) and `ttm_sys_manager.c`.
 * Differences: the bottom-up search is first fit, where `ttm_range_man_alloc()` asks drm_mm for
 * best fit (`DRM_MM_INSERT_BEST`); top-down takes the highest fit like `DRM_MM_INSERT_HIGH`. No
 * page alignment (`bo->page_alignment` is always 1 here). The system manager of the kernel
 * never fails; this one enforces its `size` so a device can have a system-memory budget.
 *
 * Contract:
 * - `alloc` calls `ttmResourceInit`, `free` calls `ttmResourceFini`, as kernel managers do;
 *   outcomes are `'ENOSPC'`, never a throw.
 * - A range manager's resource covers pages `[start, start + size / PAGE_SIZE)`; live ranges
 *   never overlap and lie inside `[0, size / PAGE_SIZE)`.
 * - `compatible(res, place)`: the resource lies inside `[fpfn, lpfn)`; `intersects(res, place)`:
 *   it overlaps that window (so evicting it can help), as `ttm_range_man_compatible()` /
 *   `ttm_range_man_intersects()` decide.
 *
 * @example
 * ```ts
 * import { DmaResv, PAGE_SIZE, TtmMemType, TtmPlaceFlags, TtmRangeManager } from 'dmabuf';
 * import { TtmLruList } from './ttm-lru.js'; // a device normally owns the LRU lists
 * const vram = new TtmRangeManager({ unevictable: new TtmLruList() }, { size: 16 * PAGE_SIZE });
 * const bo = { size: 4 * PAGE_SIZE, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv: new DmaResv() };
 * const low = vram.alloc(bo, { memType: TtmMemType.VRAM });
 * const high = vram.alloc(bo, { memType: TtmMemType.VRAM, flags: TtmPlaceFlags.TopDown });
 * if (typeof low !== 'string' && typeof high !== 'string') {
 *   console.log(low.start, high.start, vram.largestFree); // 0 12 32768
 * }
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { defineOptionsCheck, optionalBoolean, optionalString } from '../base/options.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import { TtmPlaceFlags, type TtmPlace } from './ttm-placement.js';
import {
  TtmResource,
  TtmResourceManager,
  ttmResourceFini,
  ttmResourceInit,
  type TtmLruHost,
  type TtmResourceOwner,
} from './ttm-resource.js';

/** Pages addressable by the tree (Int32 node values). */
const MAX_PAGES = 2 ** 30;

/**
 * Free/used state of pages `[0, leaves)` in a complete binary tree stored in arrays (node 1 is
 * the root, node i has children 2i and 2i+1). Per node: `run` = longest free run inside it,
 * `pre` / `suf` = free run starting at its first / ending at its last page. A node whose run is
 * 0 or its whole length is uniform, and its children are then rewritten from it before anyone
 * descends (instead of a separate lazy tag), so marking a whole range costs O(log pages).
 */
class PageTree {
  readonly leaves: number;
  readonly run: Int32Array;
  readonly pre: Int32Array;
  readonly suf: Int32Array;
  // Scratch of the two searches (kept on the instance to avoid closures).
  #carry = 0;
  #found = -1;

  constructor(pages: number) {
    let leaves = 1;
    while (leaves < pages) leaves *= 2;
    this.leaves = leaves;
    this.run = new Int32Array(2 * leaves);
    this.pre = new Int32Array(2 * leaves);
    this.suf = new Int32Array(2 * leaves);
    // Leaves past `pages` stay 0: padding is used for ever.
    for (let p = 0; p < pages; p++) this.#set(leaves + p, 1, true);
    for (let level = leaves >> 1, len = 2; level >= 1; level >>= 1, len *= 2) {
      for (let i = level; i < 2 * level; i++) this.#pull(i, len);
    }
  }

  #set(i: number, len: number, free: boolean): void {
    const v = free ? len : 0;
    this.run[i] = v;
    this.pre[i] = v;
    this.suf[i] = v;
  }

  #pull(i: number, len: number): void {
    const half = len >> 1;
    const l = 2 * i;
    const r = l + 1;
    const { run, pre, suf } = this;
    pre[i] = pre[l] === half ? half + pre[r]! : pre[l]!;
    suf[i] = suf[r] === half ? half + suf[l]! : suf[r]!;
    run[i] = Math.max(run[l]!, run[r]!, suf[l]! + pre[r]!);
  }

  /** Rewrites the children of a uniform node from it. */
  #push(i: number, len: number): void {
    const v = this.run[i]!;
    if (i < this.leaves && (v === 0 || v === len)) {
      this.#set(2 * i, len >> 1, v !== 0);
      this.#set(2 * i + 1, len >> 1, v !== 0);
    }
  }

  /** Marks pages `[lo, hi)` free or used. */
  assign(lo: number, hi: number, free: boolean): void {
    const n = hi - lo;
    if (n <= 0) return;
    // A power-of-two run starting at a multiple of its length is exactly one node (buffers of
    // one power-of-two size, packed first-fit, always are): push down the path to it, set it,
    // pull the ancestors back up, with no recursion.
    if ((n & (n - 1)) === 0 && lo % n === 0) {
      const node = (this.leaves + lo) / n;
      for (let shift = 31 - Math.clz32(node); shift > 0; shift--) this.#push(node >> shift, n << shift);
      this.#set(node, n, free);
      for (let i = node >> 1, len = 2 * n; i >= 1; i >>= 1, len *= 2) this.#pull(i, len);
      return;
    }
    this.#assign(lo, hi, free, 1, 0, this.leaves);
  }

  // Every argument explicit: default parameters on this recursion cost an eviction measurable time.
  #assign(lo: number, hi: number, free: boolean, i: number, nodeLo: number, len: number): void {
    if (lo <= nodeLo && nodeLo + len <= hi) {
      this.#set(i, len, free);
      return;
    }
    this.#push(i, len);
    const half = len >> 1;
    const mid = nodeLo + half;
    // Only into the children the range touches.
    if (lo < mid) this.#assign(lo, hi, free, 2 * i, nodeLo, half);
    if (hi > mid) this.#assign(lo, hi, free, 2 * i + 1, mid, half);
    this.#pull(i, len);
  }

  /** Lowest start of `n` free pages inside `[lo, hi)`, or -1. */
  findFirst(n: number, lo: number, hi: number): number {
    this.#carry = 0;
    this.#found = -1;
    this.#first(n, lo, hi, 1, 0, this.leaves);
    return this.#found;
  }

  /** Highest start of `n` free pages inside `[lo, hi)`, or -1. */
  findLast(n: number, lo: number, hi: number): number {
    this.#carry = 0;
    this.#found = -1;
    this.#last(n, lo, hi, 1, 0, this.leaves);
    return this.#found;
  }

  // Visits the nodes covering [lo, hi) left to right, carrying the free run that ends at the
  // node's left edge; the first node that completes a fit, or contains one, decides.
  #first(n: number, lo: number, hi: number, i: number, nodeLo: number, len: number): boolean {
    if (hi <= nodeLo || nodeLo + len <= lo) return false;
    if (lo <= nodeLo && nodeLo + len <= hi) {
      if (this.#carry + this.pre[i]! >= n) {
        this.#found = nodeLo - this.#carry;
        return true;
      }
      if (this.run[i]! >= n) {
        this.#found = this.#descendFirst(n, i, nodeLo, len);
        return true;
      }
      this.#carry = this.run[i] === len ? this.#carry + len : this.suf[i]!;
      return false;
    }
    this.#push(i, len);
    const half = len >> 1;
    return this.#first(n, lo, hi, 2 * i, nodeLo, half) || this.#first(n, lo, hi, 2 * i + 1, nodeLo + half, half);
  }

  #last(n: number, lo: number, hi: number, i: number, nodeLo: number, len: number): boolean {
    if (hi <= nodeLo || nodeLo + len <= lo) return false;
    if (lo <= nodeLo && nodeLo + len <= hi) {
      if (this.#carry + this.suf[i]! >= n) {
        this.#found = nodeLo + len + this.#carry - n;
        return true;
      }
      if (this.run[i]! >= n) {
        this.#found = this.#descendLast(n, i, nodeLo, len);
        return true;
      }
      this.#carry = this.run[i] === len ? this.#carry + len : this.pre[i]!;
      return false;
    }
    this.#push(i, len);
    const half = len >> 1;
    return this.#last(n, lo, hi, 2 * i + 1, nodeLo + half, half) || this.#last(n, lo, hi, 2 * i, nodeLo, half);
  }

  // Leftmost fit lying inside node i (which has one): no fit inside can start after one that
  // crosses its right edge, so children first, then the fit across the middle.
  #descendFirst(n: number, i: number, nodeLo: number, len: number): number {
    while (i < this.leaves) {
      this.#push(i, len);
      const half = len >> 1;
      const l = 2 * i;
      if (this.run[l]! >= n) {
        i = l;
      } else if (this.suf[l]! + this.pre[l + 1]! >= n) {
        return nodeLo + half - this.suf[l]!;
      } else {
        i = l + 1;
        nodeLo += half;
      }
      len = half;
    }
    return nodeLo;
  }

  #descendLast(n: number, i: number, nodeLo: number, len: number): number {
    while (i < this.leaves) {
      this.#push(i, len);
      const half = len >> 1;
      const l = 2 * i;
      if (this.run[l + 1]! >= n) {
        i = l + 1;
        nodeLo += half;
      } else if (this.suf[l]! + this.pre[l + 1]! >= n) {
        return nodeLo + half + this.pre[l + 1]! - n;
      } else {
        i = l;
      }
      len = half;
    }
    return nodeLo;
  }

  /** Whether page `p` is free (O(log pages)). */
  isFree(p: number): boolean {
    let i = 1;
    let len = this.leaves;
    let nodeLo = 0;
    for (;;) {
      const v = this.run[i]!;
      if (v === 0 || v === len) return v !== 0;
      len >>= 1;
      i = 2 * i;
      if (p >= nodeLo + len) {
        i++;
        nodeLo += len;
      }
    }
  }

  /** Describes the first node whose summary disagrees with its children, or null. */
  check(i = 1, len = this.leaves): string | null {
    const { run, pre, suf } = this;
    const v = run[i]!;
    if (v === 0 || v === len)
      return pre[i] === v && suf[i] === v ? null : `uniform node ${i} has pre ${pre[i]} suf ${suf[i]} run ${v}`;
    if (i >= this.leaves) return `leaf ${i} has run ${v}`;
    const half = len >> 1;
    const l = 2 * i;
    const r = l + 1;
    const bad = this.check(l, half) ?? this.check(r, half);
    if (bad !== null) return bad;
    const ePre = pre[l] === half ? half + pre[r]! : pre[l]!;
    const eSuf = suf[r] === half ? half + suf[l]! : suf[r]!;
    const eRun = Math.max(run[l]!, run[r]!, suf[l]! + pre[r]!);
    if (pre[i] !== ePre || suf[i] !== eSuf || v !== eRun) {
      return `node ${i} (len ${len}) holds pre/suf/run ${pre[i]}/${suf[i]}/${v}, children say ${ePre}/${eSuf}/${eRun}`;
    }
    return null;
  }
}

function pagesOf(what: string, size: unknown): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new InvalidArgumentError(
      `${what}: size must be a positive multiple of ${PAGE_SIZE} bytes, got ${describeValue(size)}`,
    );
  }
  return size / PAGE_SIZE;
}

function pfnOf(what: string, name: string, value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `${what}: place.${name} must be a non-negative page number, got ${describeValue(value)}`,
    );
  }
  return value;
}

// The shape of both managers' options: a plain object with known keys (each constructor checks the size).
const anySize = (): undefined => undefined;
const managerShape = { size: anySize, name: optionalString, useTt: optionalBoolean };
const checkRangeOptions = defineOptionsCheck('TtmRangeManager', managerShape);
const checkSysOptions = defineOptionsCheck('TtmSysManager', managerShape);

function checkManagerOptions(fn: 'TtmRangeManager' | 'TtmSysManager', options: unknown): void {
  (fn === 'TtmRangeManager' ? checkRangeOptions : checkSysOptions)(options === undefined ? {} : options);
}

/** Options of a {@link TtmRangeManager}. */
export interface TtmRangeManagerOptions {
  /** Bytes, a multiple of PAGE_SIZE. */
  readonly size: number;
  readonly name?: string;
  /** Default false (VRAM has no tt). */
  readonly useTt?: boolean;
}

/**
 * Contiguous page ranges of `[0, size / PAGE_SIZE)`, first fit bottom-up or highest fit with
 * `TopDown`, inside `[fpfn, lpfn)`. @see ttm_range_man_init()
 */
export class TtmRangeManager extends TtmResourceManager {
  readonly #pages: number;
  readonly #tree: PageTree;
  readonly #live = new Map<TtmResource, number>();
  #usedPages = 0;

  constructor(host: TtmLruHost, options: TtmRangeManagerOptions) {
    checkManagerOptions('TtmRangeManager', options);
    const name = options?.name ?? 'ttm-range';
    const size = options?.size;
    if (
      typeof size !== 'number' ||
      !Number.isSafeInteger(size) ||
      size < 0 ||
      size % PAGE_SIZE !== 0 ||
      size / PAGE_SIZE > MAX_PAGES
    ) {
      throw new InvalidArgumentError(
        `${name}: size must be a multiple of ${PAGE_SIZE} bytes up to ${MAX_PAGES} pages, got ${describeValue(size)}`,
      );
    }
    super(host, { size, useTt: options.useTt ?? false, name });
    this.#pages = size / PAGE_SIZE;
    this.#tree = new PageTree(this.#pages);
  }

  /** @see ttm_range_man_alloc() */
  override alloc(bo: TtmResourceOwner, place: TtmPlace): TtmResource | 'ENOSPC' {
    const what = `${this.name}.alloc`;
    const n = pagesOf(what, bo.size);
    const fpfn = pfnOf(what, 'fpfn', place.fpfn);
    let lpfn = pfnOf(what, 'lpfn', place.lpfn);
    if (lpfn === 0 || lpfn > this.#pages) lpfn = this.#pages;
    if (lpfn - fpfn < n) return 'ENOSPC';
    const topDown = ((place.flags ?? 0) & TtmPlaceFlags.TopDown) !== 0;
    const start = topDown ? this.#tree.findLast(n, fpfn, lpfn) : this.#tree.findFirst(n, fpfn, lpfn);
    if (start < 0) return 'ENOSPC';
    const res = new TtmResource(this);
    ttmResourceInit(bo, place, res);
    res.start = start;
    this.#tree.assign(start, start + n, false);
    this.#live.set(res, start);
    this.#usedPages += n;
    return res;
  }

  /** @throws {BugError} for a resource this manager does not hold. @see ttm_range_man_free() */
  override free(res: TtmResource): void {
    const start = this.#live.get(res);
    if (start === undefined)
      throw new BugError(`${this.name}.free: ${String(res)} is not allocated here (double free?)`);
    ttmResourceFini(this, res);
    const n = res.size / PAGE_SIZE;
    this.#tree.assign(start, start + n, true);
    this.#live.delete(res);
    this.#usedPages -= n;
  }

  /** Inside `[fpfn, lpfn)`. @see ttm_range_man_compatible() */
  override compatible(res: TtmResource, place: TtmPlace, size: number): boolean {
    const fpfn = place.fpfn ?? 0;
    const lpfn = place.lpfn ?? 0;
    return res.start >= fpfn && (lpfn === 0 || res.start + Math.ceil(size / PAGE_SIZE) <= lpfn);
  }

  /** Overlaps `[fpfn, lpfn)`. @see ttm_range_man_intersects() */
  override intersects(res: TtmResource, place: TtmPlace, size: number): boolean {
    const fpfn = place.fpfn ?? 0;
    const lpfn = place.lpfn ?? 0;
    return fpfn < res.start + Math.ceil(size / PAGE_SIZE) && (lpfn === 0 || lpfn > res.start);
  }

  /** Bytes not allocated. */
  get freeBytes(): number {
    return (this.#pages - this.#usedPages) * PAGE_SIZE;
  }

  /** Bytes of the largest contiguous free range. */
  get largestFree(): number {
    return this.#tree.run[1]! * PAGE_SIZE;
  }

  /** Live allocations. */
  get allocatedRanges(): number {
    return this.#live.size;
  }

  /** @see ttm_range_man_debug() */
  override debug(): string {
    const ranges = `${this.allocatedRanges} ranges, ${this.freeBytes} bytes free, largest free ${this.largestFree}`;
    return `${super.debug()}, ${ranges}`;
  }

  /**
   * @internal For tests: checks every tree node against its children and every page against
   * the live allocations. O(pages log pages).
   * @throws {BugError} describing the first inconsistency.
   */
  checkInvariants(): void {
    const bad = this.#tree.check();
    if (bad !== null) throw new BugError(`${this.name}: ${bad}`);
    const used = new Uint8Array(this.#tree.leaves);
    used.fill(1, this.#pages);
    let pages = 0;
    for (const [res, start] of this.#live) {
      const n = res.size / PAGE_SIZE;
      if (start !== res.start || start + n > this.#pages)
        throw new BugError(`${this.name}: ${res} recorded at ${start}`);
      for (let p = start; p < start + n; p++) {
        if (used[p] !== 0) throw new BugError(`${this.name}: page ${p} allocated twice`);
        used[p] = 1;
      }
      pages += n;
    }
    if (pages !== this.#usedPages)
      throw new BugError(`${this.name}: counts ${this.#usedPages} used pages, live ranges hold ${pages}`);
    for (let p = 0; p < this.#tree.leaves; p++) {
      if (this.#tree.isFree(p) !== (used[p] === 0))
        throw new BugError(`${this.name}: tree says page ${p} is ${used[p] === 0 ? 'used' : 'free'}`);
    }
  }
}

/** Options of a {@link TtmSysManager}. */
export interface TtmSysManagerOptions {
  /** Budget in bytes (Infinity for none). */
  readonly size: number;
  readonly name?: string;
  /** Default true. */
  readonly useTt?: boolean;
}

/**
 * A size-only manager: an allocation succeeds while `usage + size <= size`; `start` is 0.
 * @see ttm_sys_man_alloc()
 */
export class TtmSysManager extends TtmResourceManager {
  constructor(host: TtmLruHost, options: TtmSysManagerOptions) {
    checkManagerOptions('TtmSysManager', options);
    super(host, { size: options?.size, useTt: options?.useTt ?? true, name: options?.name ?? 'ttm-sys' });
  }

  override alloc(bo: TtmResourceOwner, place: TtmPlace): TtmResource | 'ENOSPC' {
    pagesOf(`${this.name}.alloc`, bo.size);
    if (this.usage + bo.size > this.size) return 'ENOSPC';
    const res = new TtmResource(this);
    ttmResourceInit(bo, place, res);
    return res;
  }

  /** @see ttm_sys_man_free() */
  override free(res: TtmResource): void {
    ttmResourceFini(this, res);
  }
}
