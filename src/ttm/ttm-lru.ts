/**
 * ttm-lru: the intrusive LRU lists of TTM and the bulk moves that keep a group's resources
 * together on them.
 *
 * Overview: a {@link TtmLruList} is a circular, doubly-linked list with a sentinel head whose
 * nodes ({@link TtmLruItem}) are resources, cursor hitches, or the head itself; moving a node is
 * O(1) and hitches are invisible to every accessor. A {@link TtmLruBulkMove} keeps the resources
 * of buffers sharing one reservation (the buffers of a VM) contiguous per (memory type,
 * priority), so {@link TtmLruBulkMove.tail} marks them all recently used with one splice per
 * range. Resources, managers and cursors are in `ttm-resource.ts`, which changes these lists.
 *
 * Models the list half of `drivers/gpu/drm/ttm/ttm_resource.c`: `struct ttm_lru_item`,
 * `struct ttm_lru_bulk_move`, `ttm_lru_bulk_move_add/del/tail/fini`, `list_bulk_move_tail()`.
 *
 * Contract:
 * - A node is on at most one list; an unlinked node points at itself.
 * - Bulk-move members of one (memory type, priority) are contiguous on their LRU between
 *   `first` and `last` and share one reservation object; membership is recorded on the
 *   resource, so `del` of a non-member does nothing, and a pinned or swapped resource is never
 *   a member.
 * - The caller holds the shared reservation for every bulk-move operation, as in the kernel.
 *
 * @example
 * ```ts
 * import { DmaResv, PAGE_SIZE, TtmLruBulkMove, TtmMemType, TtmRangeManager } from 'dmabuf';
 * import { TtmLruList } from './ttm-lru.js';
 * import { ttmResourceAlloc } from './ttm-resource.js';
 * const vram = new TtmRangeManager({ unevictable: new TtmLruList() }, { size: 64 * PAGE_SIZE });
 * const vm = new DmaResv();
 * const bulk = new TtmLruBulkMove();
 * const owner = (bulkMove: TtmLruBulkMove | null) =>
 *   ({ size: PAGE_SIZE, priority: 0, pinCount: 0, bulkMove, resource: null, resv: vm });
 * const a = ttmResourceAlloc(owner(bulk), { memType: TtmMemType.VRAM }, vram);
 * ttmResourceAlloc(owner(null), { memType: TtmMemType.VRAM }, vram); // not in the bulk move
 * bulk.tail(); // the bulk move's resources become the most recently used
 * console.log(vram.lru[0]!.last === a); // true
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { invalidArgument, requiredString } from '../base/options.js';
import { TTM_NUM_MEM_TYPES } from './ttm-placement.js';
import type { TtmResource, TtmResourceCursor, TtmResourceOwner } from './ttm-resource.js';

/** LRU priorities per manager; 0 is evicted first. @see TTM_MAX_BO_PRIORITY */
export const TTM_MAX_BO_PRIORITY = 4;

// Internal state shared with ttm-resource.ts (never exported from the package).
/** @internal The bulk move a resource is in. */
export const BULK = Symbol('bulk');
/** @internal Its (memory type, priority) slot there. */
export const SLOT = Symbol('bulk-slot');
/** @internal The cursors registered with a bulk move. */
export const CURSORS = Symbol('cursors');
/** @internal The bulk move a cursor's hitch is in. */
export const CURSOR_BULK = Symbol('cursor-bulk');
/** @internal Steps a cursor's hitch behind a bulk range before it moves. */
export const MOVE_BEHIND = Symbol('move-behind-last');

/**
 * A node of an intrusive, circular, doubly-linked LRU list: a resource, a cursor's hitch, or a
 * list's sentinel head. Unlinked nodes point at themselves, so unlinking needs no checks.
 * @see struct ttm_lru_item
 */
export class TtmLruItem {
  /** @internal Neighbours; change them only through the list operations of `ttm-lru.ts`. */
  prev: TtmLruItem = this;
  /** @internal */
  next: TtmLruItem = this;
  /** @internal The list this node is on. */
  list: TtmLruList | null = null;

  /** @throws {InvalidArgumentError} for a kind other than 'resource', 'hitch' or 'head'. */
  constructor(readonly kind: 'resource' | 'hitch' | 'head') {
    if (kind !== 'resource' && kind !== 'hitch' && kind !== 'head') {
      throw invalidArgument('TtmLruItem', 'kind', kind, "'resource', 'hitch' or 'head'");
    }
  }

  /** The list this node is on, or null when unlinked. */
  get lruList(): TtmLruList | null {
    return this.list;
  }
}

/** @internal Takes `item` off its list. @see list_del_init() */
export function unlink(item: TtmLruItem): void {
  item.prev.next = item.next;
  item.next.prev = item.prev;
  item.prev = item;
  item.next = item;
  item.list = null;
}

/** @internal Moves `item` (linked or not) to just after `pos`. @see list_move() */
export function linkAfter(item: TtmLruItem, pos: TtmLruItem): void {
  if (item === pos) return;
  unlink(item);
  const next = pos.next;
  item.prev = pos;
  item.next = next;
  pos.next = item;
  next.prev = item;
  item.list = pos.list;
}

/** @internal Moves `item` to the tail of `list`. @see list_move_tail() */
export function linkTail(item: TtmLruItem, list: TtmLruList): void {
  if (list.head.prev !== item) linkAfter(item, list.head.prev);
}

/**
 * An LRU list with a sentinel head. Least recently used first; hitches are invisible to every
 * accessor. Changed only by the resource functions of `ttm-resource.ts` and by bulk moves.
 */
export class TtmLruList implements Iterable<TtmResource> {
  /** @internal The sentinel. */
  readonly head: TtmLruItem = new TtmLruItem('head');
  readonly name: string;

  /** @throws {InvalidArgumentError} for a name that is not a string. */
  constructor(name = 'lru') {
    this.name = requiredString(name, 'TtmLruList', 'name');
    this.head.list = this;
  }

  /** No resource on the list (parked hitches do not count). */
  get isEmpty(): boolean {
    return this.first === null;
  }

  /** The least recently used resource, or null. @see ttm_lru_first_res_or_null() */
  get first(): TtmResource | null {
    for (let item = this.head.next; item !== this.head; item = item.next)
      if (item.kind === 'resource') return item as TtmResource;
    return null;
  }

  /** The most recently used resource, or null. */
  get last(): TtmResource | null {
    for (let item = this.head.prev; item !== this.head; item = item.prev)
      if (item.kind === 'resource') return item as TtmResource;
    return null;
  }

  /** Resources on the list; O(n), for tests and asserts. */
  get length(): number {
    let n = 0;
    for (let item = this.head.next; item !== this.head; item = item.next) if (item.kind === 'resource') n++;
    return n;
  }

  /** Exactly one resource on the list. @see list_is_singular() */
  isSingular(): boolean {
    const first = this.first;
    return first !== null && first === this.last;
  }

  /** Resources in LRU order. Do not change the list while iterating; walk with a cursor for that. */
  *[Symbol.iterator](): IterableIterator<TtmResource> {
    for (let item = this.head.next; item !== this.head; item = item.next)
      if (item.kind === 'resource') yield item as TtmResource;
  }
}

/** @internal A pinned owner's resource, or a swapped owner's current one, is on the unevictable list. */
export function isUnevictable(res: TtmResource, bo: TtmResourceOwner): boolean {
  return bo.pinCount > 0 || (bo.swapped === true && bo.resource === res);
}

function checkBelow(what: string, name: string, value: unknown, limit: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= limit) {
    throw new InvalidArgumentError(`${what}: ${name} must be an integer 0..${limit - 1}, got ${describeValue(value)}`);
  }
  return value;
}
/** @internal */
export const checkMemType = (what: string, memType: unknown): number =>
  checkBelow(what, 'memType', memType, TTM_NUM_MEM_TYPES);
/** @internal */
export const checkPriority = (what: string, priority: unknown): number =>
  checkBelow(what, 'priority', priority, TTM_MAX_BO_PRIORITY);

/** @internal The owner of a live resource. @throws {BugError} otherwise. */
export function ownerOf(what: string, res: TtmResource): TtmResourceOwner {
  if (res.bo === null) throw new BugError(`${what}: ${res} has no owner (bo is null)`);
  if (res.list === null)
    throw new BugError(`${what}: ${res} is not live (never initialised, or finished); allocate a new one`);
  return res.bo;
}

type BulkPos = { first: TtmResource | null; last: TtmResource | null };

function nextRes(res: TtmResource): TtmResource {
  for (let item = res.next; item.kind !== 'head'; item = item.next)
    if (item.kind === 'resource') return item as TtmResource;
  throw new BugError(`TtmLruBulkMove: range broken after ${res} (list ${res.list?.name})`);
}

function prevRes(res: TtmResource): TtmResource {
  for (let item = res.prev; item.kind !== 'head'; item = item.prev)
    if (item.kind === 'resource') return item as TtmResource;
  throw new BugError(`TtmLruBulkMove: range broken before ${res} (list ${res.list?.name})`);
}

/** A bulk move's argument must be a resource (an LRU item of kind 'resource'). */
function checkResource(fn: string, res: unknown): void {
  if (!(res instanceof TtmLruItem) || res.kind !== 'resource') throw invalidArgument(fn, 'res', res, 'a TtmResource');
}

/**
 * Keeps the resources of buffers sharing one reservation contiguous on their LRUs, one range
 * per (memory type, priority), so {@link TtmLruBulkMove.tail} bumps them all in O(1) per range.
 * The caller holds the shared reservation for every operation, as in the kernel.
 * @see struct ttm_lru_bulk_move @see ttm_lru_bulk_move_init()
 */
export class TtmLruBulkMove {
  readonly #pos: BulkPos[] = Array.from({ length: TTM_NUM_MEM_TYPES * TTM_MAX_BO_PRIORITY }, () => ({
    first: null,
    last: null,
  }));
  /** @internal Cursors whose hitch may sit inside one of the ranges. */
  readonly [CURSORS] = new Set<TtmResourceCursor>();

  /**
   * Adds `res` at the tail of its range (moving it right after the range's last); a member is
   * just moved to its range's tail. Does nothing for a pinned owner or swapped resource.
   * @throws {BugError} when the owner's resv differs from the range's, or `res` is in another bulk move.
   * @see ttm_lru_bulk_move_add() @see ttm_resource_add_bulk_move()
   */
  add(res: TtmResource): void {
    checkResource('TtmLruBulkMove.add', res);
    const bo = ownerOf('TtmLruBulkMove.add', res);
    if (isUnevictable(res, bo)) return;
    const priority = checkPriority('TtmLruBulkMove.add', bo.priority);
    const slot = checkMemType('TtmLruBulkMove.add', res.memType) * TTM_MAX_BO_PRIORITY + priority;
    const member = res[BULK];
    if (member === this && res[SLOT] === slot) {
      this.#posTail(this.#pos[slot]!, res);
      return;
    }
    if (member !== null && member !== this)
      throw new BugError(`TtmLruBulkMove.add: ${res} is in another bulk move; del it there first`);
    const pos = this.#pos[slot]!;
    if (pos.first !== null) {
      if (pos.first.bo?.resv !== bo.resv) {
        throw new BugError(
          `TtmLruBulkMove.add: ${res} has another reservation object than the range it joins; ` +
            'all members must share one resv',
        );
      }
      if (pos.first.manager !== res.manager)
        throw new BugError(
          `TtmLruBulkMove.add: ${res} is on ${res.manager.name}, the range on ${pos.first.manager.name}`,
        );
    }
    if (member === this) this.del(res);
    const lru = res.manager.lru[priority]!;
    if (pos.first === null) {
      if (res.list !== lru) linkTail(res, lru);
      pos.first = res;
      pos.last = res;
    } else {
      this.#posTail(pos, res);
    }
    res[BULK] = this;
    res[SLOT] = slot;
  }

  /**
   * Takes `res` out of its range: the range shrinks at either end, and a middle member is moved
   * right after the range's last. Does nothing for a non-member.
   * @see ttm_lru_bulk_move_del() @see ttm_resource_del_bulk_move()
   */
  del(res: TtmResource): void {
    checkResource('TtmLruBulkMove.del', res);
    if (res[BULK] !== this) return;
    const pos = this.#pos[res[SLOT]]!;
    if (pos.first === res && pos.last === res) {
      pos.first = null;
      pos.last = null;
    } else if (pos.first === res) {
      pos.first = nextRes(res);
    } else if (pos.last === res) {
      pos.last = prevRes(res);
    } else if (pos.last !== null) {
      linkAfter(res, pos.last);
    }
    res[BULK] = null;
  }

  /** Whether `res` is in one of this bulk move's ranges. */
  has(res: TtmResource): boolean {
    checkResource('TtmLruBulkMove.has', res);
    return res[BULK] === this;
  }

  /**
   * Moves every range to the tail of its LRU, keeping its order. Cursors whose hitch is in a
   * range step behind its last first, so they go on with what followed the range instead of
   * jumping to the tail with it. @see ttm_lru_bulk_move_tail()
   */
  tail(): void {
    for (const cursor of [...this[CURSORS]]) cursor[MOVE_BEHIND](this);
    for (let slot = 0; slot < this.#pos.length; slot++) {
      const { first, last } = this.#pos[slot]!;
      if (first === null || last === null) continue;
      const lru = first.manager.lru[slot % TTM_MAX_BO_PRIORITY]!;
      if (first.list !== lru || last.list !== lru)
        throw new BugError(`TtmLruBulkMove.tail: range ${first}..${last} is not on ${lru.name}`);
      const head = lru.head;
      if (last.next === head) continue;
      // @see list_bulk_move_tail(): cut first..last out, splice it in before the head.
      first.prev.next = last.next;
      last.next.prev = first.prev;
      const tail = head.prev;
      tail.next = first;
      first.prev = tail;
      last.next = head;
      head.prev = last;
    }
  }

  /** The range of one (memory type, priority). */
  range(memType: number, priority: number): { first: TtmResource | null; last: TtmResource | null } {
    const pos =
      this.#pos[
        checkMemType('TtmLruBulkMove.range', memType) * TTM_MAX_BO_PRIORITY +
          checkPriority('TtmLruBulkMove.range', priority)
      ]!;
    return { first: pos.first, last: pos.last };
  }

  /** Detaches the cursors still registered. @see ttm_lru_bulk_move_fini() */
  fini(): void {
    for (const cursor of [...this[CURSORS]]) cursor[CURSOR_BULK] = null;
    this[CURSORS].clear();
  }

  // @see ttm_lru_bulk_move_pos_tail()
  #posTail(pos: BulkPos, res: TtmResource): void {
    if (pos.last === res || pos.last === null) return;
    if (pos.first === res) pos.first = nextRes(res);
    linkAfter(res, pos.last);
    pos.last = res;
  }
}
