/**
 * TTM resources: what a buffer occupies in one memory type, the managers that hand it out, and
 * the LRU lists eviction walks.
 *
 * Overview: a {@link TtmResource} is one allocation (a page range of VRAM, or a share of a
 * size-only budget) made by a {@link TtmResourceManager} for a buffer object, its owner. Every
 * live resource sits on exactly one intrusive LRU list: its manager's `lru[priority]` (priority 0
 * is evicted first) or, while its owner is pinned or swapped out, the device's `unevictable`
 * list. Buffers sharing one reservation (the BOs of a VM) can join a {@link TtmLruBulkMove},
 * which keeps their resources contiguous per (memory type, priority) so one splice bumps them
 * all (the lists and bulk moves are in `ttm-lru.ts`). Eviction walks a manager with a
 * restartable {@link TtmResourceCursor}: it parks a hitch item behind the last resource it
 * returned, so the walk may sleep, let the list change, and carry on. Pipelined evictions leave
 * their copy fence in the manager's eviction-fence slots so the next allocation from that manager
 * waits for the copy. Places, placements and memory types are in `ttm-placement.ts`.
 *
 * Models `drivers/gpu/drm/ttm/ttm_resource.c` and `include/drm/ttm/ttm_resource.h` (7.0-era:
 * `unevictable`, `eviction_fences[]`, cursors registered with bulk moves).
 *
 * Contract:
 * - Managers call `ttmResourceInit()` in `alloc` and `ttmResourceFini()` in `free`;
 *   buffer code goes through {@link ttmResourceAlloc} / {@link ttmResourceFree}. A resource is
 *   live between init and fini; `usage` is the sum of live resources' sizes.
 * - A resource of a pinned owner (or the current resource of a swapped one) is on the host's
 *   `unevictable` list and in no bulk range; {@link ttmResourceMoveToLruTail} restores that
 *   when it is called after the owner's state changed.
 * - Bulk-move members of one (memory type, priority) are contiguous on their LRU, between
 *   `first` and `last`, and share one reservation object. Membership is recorded on the
 *   resource, so `del` of a non-member does nothing.
 * - Everything here is synchronous: there is no lru_lock because nothing yields in between.
 *   A cursor keeps its place across awaits; a resource moved to the tail after the cursor
 *   returned it is met again at the tail (as in the kernel).
 *
 * @example
 * ```ts
 * import { DmaResv, PAGE_SIZE, TtmMemType, TtmRangeManager } from 'dmabuf';
 * import { TtmLruList } from './ttm-lru.js';
 * import { ttmResourceAlloc, ttmResourceFree } from './ttm-resource.js'; // what buffer objects call
 * const host = { unevictable: new TtmLruList() };
 * const vram = new TtmRangeManager(host, { size: 64 * PAGE_SIZE });
 * const bo = { size: 2 * PAGE_SIZE, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv: new DmaResv() };
 * const res = ttmResourceAlloc(bo, { memType: TtmMemType.VRAM }, vram);
 * if (typeof res !== 'string') {
 *   console.log(res.start, vram.usage); // 0 8192
 *   ttmResourceFree(bo, res);
 * }
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { invalidArgument, isPlainObject, requiredBoolean } from '../base/options.js';
import { DmaFence } from '../fence/dma-fence.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import type { DmaResv } from '../resv/dma-resv.js';
import {
  BULK,
  CURSORS,
  CURSOR_BULK,
  MOVE_BEHIND,
  SLOT,
  TTM_MAX_BO_PRIORITY,
  TtmLruItem,
  TtmLruList,
  checkMemType,
  checkPriority,
  isUnevictable,
  linkAfter,
  linkTail,
  ownerOf,
  unlink,
  type TtmLruBulkMove,
} from './ttm-lru.js';
import { TtmPlaceFlags, memTypeName, type TtmPlace, type TtmPlacement } from './ttm-placement.js';

/** The manager's usage counter: written only by the resource functions below. */
const USAGE = Symbol('usage');

/** Eviction-fence slots per manager. @see TTM_NUM_MOVE_FENCES */
export const TTM_NUM_MOVE_FENCES = 8;

/** What a resource needs from its buffer object (`TtmBufferObject` implements it). */
export interface TtmResourceOwner {
  readonly size: number; // bytes, a page multiple
  readonly priority: number; // 0..3, 0 is evicted first
  readonly pinCount: number;
  readonly bulkMove: TtmLruBulkMove | null;
  readonly resource: TtmResource | null;
  readonly resv: DmaResv; // bulk moves check that all members share it
  readonly swapped?: boolean; // tt swapped out: the current resource is unevictable
}

/** What a manager needs from its device (`TtmDevice` implements it). */
export interface TtmLruHost {
  readonly unevictable: TtmLruList;
}

/**
 * One allocation in one memory type. Created by a manager's `alloc` (`new TtmResource(this)`,
 * then `ttmResourceInit()`); `size`, `memType` and `placement` are set by that init.
 * @see struct ttm_resource
 */
export class TtmResource extends TtmLruItem {
  /** First page (range managers); 0 for size-only managers. */
  start = 0;
  /** Bytes (the owner's size at init). */
  readonly size: number = 0;
  readonly memType: number = -1;
  /** The place flags it was allocated with. */
  readonly placement: number = 0;
  /** Weak back-pointer to the owner; ghost objects take it over. */
  bo: TtmResourceOwner | null = null;
  readonly manager: TtmResourceManager;
  /** @internal The bulk move whose range holds this resource. */
  [BULK]: TtmLruBulkMove | null = null;
  /** @internal Its (memType, priority) slot in that bulk move. */
  [SLOT] = 0;

  constructor(manager: TtmResourceManager) {
    super('resource');
    if (!(manager instanceof TtmResourceManager)) {
      throw new InvalidArgumentError(`TtmResource: needs its TtmResourceManager, got ${describeValue(manager)}`);
    }
    this.manager = manager;
  }

  override toString(): string {
    return `TtmResource(${this.manager.name} type ${this.memType}, start ${this.start}, ${this.size} bytes)`;
  }
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** Options of a {@link TtmResourceManager}. */
export interface TtmResourceManagerOptions {
  /** Bytes the manager hands out (Infinity for no limit). */
  readonly size: number;
  /** Resources of this type are backed by a tt (system pages). */
  readonly useTt: boolean;
  readonly name?: string;
}

/**
 * A memory type's allocator. Subclasses implement `alloc` / `free` (calling
 * `ttmResourceInit()` / `ttmResourceFini()`); `intersects` / `compatible` default to true.
 * A manager is in use from construction (kernel drivers call `set_used(true)` right after init).
 * @see struct ttm_resource_manager
 */
export abstract class TtmResourceManager {
  readonly host: TtmLruHost;
  readonly size: number;
  readonly useTt: boolean;
  readonly name: string;
  /** One list per priority, {@link TTM_MAX_BO_PRIORITY} of them. */
  readonly lru: readonly TtmLruList[];
  /** @internal */
  [USAGE] = 0;
  #used = true;
  readonly #fences: (DmaFence | null)[] = new Array<DmaFence | null>(TTM_NUM_MOVE_FENCES).fill(null);

  /** @see ttm_resource_manager_init() */
  constructor(host: TtmLruHost, options: TtmResourceManagerOptions) {
    if (!isPlainObject(options)) {
      throw invalidArgument('TtmResourceManager', 'options', options, 'an options object { size, useTt?, name? }');
    }
    const name = options?.name ?? 'ttm-manager';
    if (typeof name !== 'string') throw invalidArgument('TtmResourceManager', 'options.name', name, 'a string');
    if (!(host?.unevictable instanceof TtmLruList)) {
      throw new InvalidArgumentError(`${name}: host must have an 'unevictable' TtmLruList, got ${describeValue(host)}`);
    }
    const size = options?.size;
    if (typeof size !== 'number' || !(size === Infinity || (Number.isSafeInteger(size) && size >= 0))) {
      throw new InvalidArgumentError(
        `${name}: size must be a non-negative integer number of bytes (or Infinity), got ${describeValue(size)}`,
        { argument: 'options.size' },
      );
    }
    this.host = host;
    this.size = size;
    this.useTt = options.useTt === true;
    this.name = name;
    this.lru = Object.freeze(
      Array.from({ length: TTM_MAX_BO_PRIORITY }, (_, p) => new TtmLruList(`${name}.lru[${p}]`)),
    );
  }

  /** Whether allocation may use this manager. */
  get useType(): boolean {
    return this.#used;
  }

  /**
   * Turns the manager on or off.
   * @throws {BugError} when turning it off while an LRU still holds resources (evict first).
   * @see ttm_resource_manager_set_used()
   */
  setUsed(used: boolean): void {
    requiredBoolean(used, 'TtmResourceManager.setUsed', 'used');
    if (!used) {
      const busy = this.lru.filter((l) => !l.isEmpty);
      if (busy.length > 0) {
        const where = busy.map((l) => `${l.name} (${l.length})`).join(', ');
        throw new BugError(`${this.name}.setUsed(false) with resources still on ${where}; evict them first`);
      }
    }
    this.#used = used;
  }

  /** Bytes of the resources live on this manager. */
  get usage(): number {
    return this[USAGE];
  }

  /** Allocates `bo.size` bytes at `place`; `'ENOSPC'` when it does not fit. @see ttm_resource_manager_func.alloc */
  abstract alloc(bo: TtmResourceOwner, place: TtmPlace): TtmResource | 'ENOSPC' | 'EBUSY';
  /** Gives `res` back; must call `ttmResourceFini()`. @see ttm_resource_manager_func.free */
  abstract free(res: TtmResource): void;

  /** Whether evicting `res` can help an allocation at `place`. @see ttm_resource_manager_func.intersects */
  intersects(_res: TtmResource, _place: TtmPlace, _size: number): boolean {
    return true;
  }

  /** Whether `res` already satisfies `place`. @see ttm_resource_manager_func.compatible */
  compatible(_res: TtmResource, _place: TtmPlace, _size: number): boolean {
    return true;
  }

  /** One line of state. @see ttm_resource_manager_debug() */
  debug(): string {
    return `${this.name}: use_type ${this.#used}, use_tt ${this.useTt}, size ${this.size}, usage ${this.usage}`;
  }

  /** The pipelined-eviction fence slots (null = empty). */
  get evictionFences(): readonly (DmaFence | null)[] {
    return this.#fences;
  }

  /**
   * Records the copy fence of a pipelined eviction: a slot holding the same context takes it if
   * it is later (an earlier one is already covered); otherwise the first empty or signaled slot.
   * @returns false when every slot holds an unsignaled fence of another context: wait for
   *   `fence` synchronously instead (the kernel WARNs "not enough fence slots").
   * @see ttm_bo_move_pipeline_evict()
   */
  addEvictionFence(fence: DmaFence): boolean {
    if (!(fence instanceof DmaFence)) {
      throw new InvalidArgumentError(`${this.name}.addEvictionFence: expected a DmaFence, got ${describeValue(fence)}`);
    }
    const slots = this.#fences;
    const same = slots.findIndex((f) => f !== null && f.context === fence.context);
    if (same >= 0) {
      if (DmaFence.isLater(fence, slots[same]!)) slots[same] = fence;
      return true;
    }
    const free = slots.findIndex((f) => f === null || f.isSignaled());
    if (free < 0) return false;
    slots[free] = fence;
    return true;
  }

  /**
   * Waits until every slot's fence signaled (including fences added meanwhile), then empties
   * the slots. @see ttm_resource_manager_evict_all()
   */
  async waitEvictionFences(): Promise<void> {
    for (;;) {
      const pending = this.#fences.filter((f): f is DmaFence => f !== null && !f.isSignaled());
      if (pending.length === 0) break;
      for (const fence of pending) await fence.wait();
    }
    this.#fences.fill(null);
  }

  /** A cursor over the LRUs, priority 0 first. @see ttm_resource_manager_first() */
  cursor(): TtmResourceCursor {
    return new TtmResourceCursor(this);
  }
}

/**
 * A restartable walk over a manager's LRUs. Each `next()` parks the hitch right after the
 * resource it returns, so the walk continues correctly after that resource (or any other) was
 * removed or moved. Resources moved to the tail behind the hitch are met again there.
 * @see struct ttm_resource_cursor
 */
export class TtmResourceCursor implements Disposable {
  readonly #hitch = new TtmLruItem('hitch');
  #priority = 0;
  #memType = 0;
  #state: 'new' | 'walking' | 'done' = 'new';
  /** @internal The bulk move whose range the hitch is in (it moves the hitch before a splice). */
  [CURSOR_BULK]: TtmLruBulkMove | null = null;

  /**
   * @throws {InvalidArgumentError} when `manager` is not a {@link TtmResourceManager}.
   * @see ttm_resource_cursor_init()
   */
  constructor(readonly manager: TtmResourceManager) {
    if (!(manager instanceof TtmResourceManager)) {
      throw invalidArgument('TtmResourceCursor', 'manager', manager, 'a TtmResourceManager');
    }
  }

  /** The priority list being walked. */
  get priority(): number {
    return this.#priority;
  }

  /**
   * The next resource, or null when every priority is done (the cursor then finishes itself).
   * @see ttm_resource_manager_next()
   */
  next(): TtmResource | null {
    if (this.#state === 'done') return null;
    const lru = this.manager.lru;
    if (this.#state === 'new') {
      this.#state = 'walking';
      linkAfter(this.#hitch, lru[0]!.head);
    }
    for (;;) {
      for (let item = this.#hitch.next; item.kind !== 'head'; item = item.next) {
        if (item instanceof TtmResource) {
          this.#checkBulk(item);
          linkAfter(this.#hitch, item);
          return item;
        }
      }
      if (++this.#priority >= TTM_MAX_BO_PRIORITY) break;
      linkAfter(this.#hitch, lru[this.#priority]!.head);
      this.#clearBulk();
    }
    this.fini();
    return null;
  }

  /** Ends the walk: unlinks the hitch. Repeatable. @see ttm_resource_cursor_fini() */
  fini(): void {
    unlink(this.#hitch);
    this.#clearBulk();
    this.#state = 'done';
  }

  [Symbol.dispose](): void {
    this.fini();
  }

  /** @internal Called by {@link TtmLruBulkMove.tail}: step out of the range, behind its last. */
  [MOVE_BEHIND](bulk: TtmLruBulkMove): void {
    if (this[CURSOR_BULK] === bulk) {
      const { last } = bulk.range(this.#memType, this.#priority);
      if (last !== null) linkAfter(this.#hitch, last);
    }
    this.#clearBulk();
    bulk[CURSORS].delete(this);
  }

  // @see ttm_resource_cursor_check_bulk()
  #checkBulk(res: TtmResource): void {
    const bulk = res[BULK];
    if (this[CURSOR_BULK] === bulk) return;
    this.#clearBulk();
    if (bulk !== null) {
      bulk[CURSORS].add(this);
      this[CURSOR_BULK] = bulk;
      this.#memType = res.memType;
    }
  }

  #clearBulk(): void {
    this[CURSOR_BULK]?.[CURSORS].delete(this);
    this[CURSOR_BULK] = null;
  }
}

/**
 * @internal
 * Fills in a fresh resource for `bo` at `place` and links it: to the host's unevictable list
 * when `bo` is pinned (or swapped with `res` as its resource), else to the tail of
 * `manager.lru[bo.priority]`. Adds its size to the manager's usage.
 * @throws {BugError} when `res` is already live. @throws {InvalidArgumentError} for a size
 *   that is not a positive page multiple, or a bad memType / priority.
 * @see ttm_resource_init()
 */
export function ttmResourceInit(bo: TtmResourceOwner, place: TtmPlace, res: TtmResource): void {
  const man = res.manager;
  if (res.list !== null) throw new BugError(`ttmResourceInit: ${res} is already live; free it before reusing it`);
  const size = bo.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new InvalidArgumentError(
      `ttmResourceInit on ${man.name}: owner size must be a positive multiple of ${PAGE_SIZE} bytes, ` +
        `got ${describeValue(size)}`,
    );
  }
  const memType = checkMemType(`ttmResourceInit on ${man.name}`, place.memType);
  const priority = checkPriority(`ttmResourceInit on ${man.name}`, bo.priority);
  const w = res as Writable<TtmResource>;
  w.start = 0;
  w.size = size;
  w.memType = memType;
  w.placement = place.flags ?? 0;
  w.bo = bo;
  linkTail(res, isUnevictable(res, bo) ? man.host.unevictable : man.lru[priority]!);
  man[USAGE] += size;
}

/**
 * @internal
 * Unlinks a live resource and takes its size off the manager's usage; leaves any bulk range.
 * @throws {BugError} when `res` is not live or belongs to another manager.
 * @see ttm_resource_fini()
 */
export function ttmResourceFini(man: TtmResourceManager, res: TtmResource): void {
  if (res.manager !== man)
    throw new BugError(`ttmResourceFini: ${res} belongs to ${res.manager.name}, not ${man.name}`);
  if (res.list === null) throw new BugError(`ttmResourceFini on ${man.name}: ${res} is not live (double free?)`);
  res[BULK]?.del(res);
  unlink(res);
  man[USAGE] -= res.size;
}

/**
 * @internal
 * Allocates from `man` for `bo` at `place` and puts the resource in the owner's bulk move.
 * @returns the resource, or the manager's `'ENOSPC'` / `'EBUSY'`.
 * @see ttm_resource_alloc()
 */
export function ttmResourceAlloc(
  bo: TtmResourceOwner,
  place: TtmPlace,
  man: TtmResourceManager,
): TtmResource | 'ENOSPC' | 'EBUSY' {
  const res = man.alloc(bo, place);
  if (typeof res === 'string') return res;
  if (!(res instanceof TtmResource) || res.manager !== man || res.list === null) {
    throw new BugError(
      `${man.name}.alloc() must return a live resource of its own (made with ttmResourceInit), ` +
        `got ${describeValue(res)}`,
    );
  }
  bo.bulkMove?.add(res);
  return res;
}

/**
 * Takes `res` out of its bulk move and gives it back to its manager.
 * @throws {BugError} on a double free, or when the manager's `free` did not call `ttmResourceFini()`.
 * @see ttm_resource_free()
 */
/** @internal */
// biome-ignore lint/correctness/noUnusedFunctionParameters: the kernel's signature; the owner is not needed here
export function ttmResourceFree(bo: TtmResourceOwner | null, res: TtmResource): void {
  const man = res.manager;
  if (res.list === null) throw new BugError(`ttmResourceFree: ${res} is not live (double free?)`);
  res[BULK]?.del(res);
  man.free(res);
  if (res.list !== null)
    throw new BugError(`${man.name}.free() left ${res} live; a manager's free must call ttmResourceFini`);
}

/**
 * @internal
 * Marks `res` most recently used: tail of the unevictable list (pinned or swapped owner), tail
 * of its owner's bulk range (joining it if needed), or tail of `lru[bo.priority]`.
 * @see ttm_resource_move_to_lru_tail()
 */
export function ttmResourceMoveToLruTail(res: TtmResource): void {
  const bo = ownerOf('ttmResourceMoveToLruTail', res);
  const member = res[BULK];
  if (isUnevictable(res, bo)) {
    member?.del(res);
    linkTail(res, res.manager.host.unevictable);
    return;
  }
  const bulk = bo.bulkMove;
  if (member !== null && member !== bulk) member.del(res);
  if (bulk !== null) bulk.add(res);
  else linkTail(res, res.manager.lru[checkPriority('ttmResourceMoveToLruTail', bo.priority)]!);
}

/**
 * @internal
 * Whether `res` satisfies one of `placement`'s places as is: never for a Temporary resource;
 * Desired places are skipped when evicting, Fallback places when not; a Contiguous place needs
 * a contiguous resource; the manager's `compatible` has the last word.
 * @see ttm_resource_compatible()
 */
export function ttmResourceCompatible(res: TtmResource, placement: TtmPlacement, evicting: boolean): boolean {
  if ((res.placement & TtmPlaceFlags.Temporary) !== 0) return false;
  const skip = evicting ? TtmPlaceFlags.Desired : TtmPlaceFlags.Fallback;
  const size = res.bo?.size ?? res.size;
  for (const place of placement) {
    const flags = place.flags ?? 0;
    if (res.memType !== place.memType || (flags & skip) !== 0) continue;
    if ((flags & TtmPlaceFlags.Contiguous) !== 0 && (res.placement & TtmPlaceFlags.Contiguous) === 0) continue;
    if (res.manager.compatible(res, place, size)) return true;
  }
  return false;
}

/** @internal Whether evicting `res` can make room at `place` (true without a place). @see ttm_resource_intersects() */
export function ttmResourceIntersects(res: TtmResource, place: TtmPlace | null, size: number): boolean {
  return place === null || res.manager.intersects(res, place, size);
}

/** @internal For messages: where a resource is, e.g. `VRAM pages 0..3 (16384 bytes)` or `no placement`. */
export function describeResource(res: TtmResource | null): string {
  if (res === null) return 'no placement';
  const pages = res.manager.useTt ? '' : ` pages ${res.start}..${res.start + res.size / PAGE_SIZE - 1}`;
  return `${memTypeName(res.memType)}${pages} (${res.size} bytes)`;
}
