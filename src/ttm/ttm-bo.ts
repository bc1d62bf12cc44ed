/**
 * ttm-bo: buffer objects that live in budgeted memory types and move between them.
 *
 * Overview: a {@link TtmBufferObject} is a buffer of a fixed size whose contents sit in one
 * {@link TtmResource} at a time: a range of the device's VRAM arena, or the object's system
 * pages ({@link TtmTt}) for System, TT and other types that use a tt. {@link TtmBufferObject.validate}
 * moves it into the first workable place of a placement, evicting other buffers when the memory
 * type is full (two passes: first without eviction, then forcing space, trying fallback places);
 * the whole path (allocation, the eviction walk over a manager's LRU, the eviction itself, the
 * move with its bounce) is in this file, in the order validate calls it.
 * The reservation ({@link DmaResv}, possibly shared by a group of buffers) is the object's lock
 * and carries the fences of the work using it; a buffer released while that work runs becomes a
 * zombie that its device's delayed delete frees once the last fence signals (seed 004).
 *
 * A buffer object sees its device through {@link TtmBoDevice}, an interface this file owns
 * (`TtmDevice` implements it), and calls the driver through {@link TtmDeviceFuncs}, whose
 * defaults are in `ttm-device-funcs.ts`. The moves a driver's `move` picks from are in
 * `ttm-bo-util.ts`; the delayed-delete strategies in `ttm-bo-delayed-delete.ts`.
 *
 * Models `drivers/gpu/drm/ttm/ttm_bo.c` of the 7.0-era kref baseline (kernel-locking-mm §3.3,
 * §3.5, §3.6): `ttm_bo_init_reserved/validate`, `ttm_bo_reserve/unreserve`, `ttm_bo_validate`,
 * `ttm_bo_alloc_resource`, `ttm_bo_mem_space`, `ttm_bo_evict_alloc`, `ttm_bo_evict_cb`,
 * `ttm_bo_evict`, `ttm_bo_evict_first`, `ttm_bo_handle_move_mem`, `ttm_bo_pin/unpin`,
 * `ttm_bo_set_bulk_move`, `ttm_bo_wait_ctx`, `ttm_bo_put` / `ttm_bo_release` and
 * `ttm_bo_delayed_delete`; and from `ttm_bo_util.c` the LRU walk with its cursor locking
 * (`ttm_lru_walk_for_evict`), ghost objects (`ttm_buffer_object_transfer`) and
 * `ttm_bo_pipeline_gutting`, which validate and evict need.
 *
 * Contract:
 * - Everything that reads or changes placement, pins or contents needs the reservation held
 *   ({@link BugError} otherwise); so do the `resource` and `tt` setters used by move code.
 * - `validate` rejects with `DmaBufError`: ENOMEM when nothing fits even after eviction
 *   (ENOSPC with the device's `propagateEnospc`), EINVAL for a pinned buffer that would have to
 *   move, EBUSY for a manager that is busy or a `noWaitGpu` wait, and `signal.reason` when
 *   aborted. It never rejects with EDEADLK: a ww deadlock met while evicting counts as no space.
 *   A failed validate leaves the buffer where it was with its contents intact.
 * - Eviction skips pinned buffers, the evictor itself, and buffers whose eviction the driver
 *   says does not help; every buffer it processes is locked and referenced meanwhile. A walk
 *   first only trylocks; with a ww ticket, further walks may each sleep on one lock.
 * - Pinned buffers never move and are never evicted; their resource sits on the device's
 *   unevictable list. Unpinning an unpinned buffer is a {@link BugError}.
 * - The reference count is a {@link Kref}. The last {@link TtmBufferObject.put} frees an idle
 *   buffer at once; a busy one (or one whose lock is held) becomes a zombie (`deleted`): the
 *   count restarts at one, owned by the delayed delete, which frees its memory once the last
 *   fence of its own reservation signals. Eviction may free a zombie's memory earlier. Any use
 *   after the buffer was destroyed is a {@link BugError}.
 * - {@link TtmBufferObject.kmap} returns the bytes only while no kernel (move) fence is
 *   pending; contents are never lost by a move, eviction or failed validate.
 *
 * @example
 * ```ts
 * import { TtmBufferObject, TtmDevice, TtmMemType } from 'dmabuf';
 * await using device = new TtmDevice({ vramBytes: 1 << 20 });
 * const bo = await TtmBufferObject.initReserved(device, { size: 64 << 10, placement: [{ memType: TtmMemType.VRAM }] });
 * bo.kmap().fill(7); // the bytes live in the device's VRAM arena
 * await bo.validate([{ memType: TtmMemType.System }]); // copied to system pages
 * console.log(bo.resource?.memType === TtmMemType.System, bo.kmap()[0]); // true 7
 * bo.unreserve();
 * bo.put(); // idle: freed at once
 * ```
 */

import {
  AlreadyLockedError,
  BugError,
  DmaBufError,
  InvalidArgumentError,
  WwDeadlockError,
  describeValue,
} from '../base/errors.js';
import { Kref } from '../base/lifecycle.js';
import {
  checkInterruptible,
  defineOptions,
  instanceOf,
  invalidArgument,
  isPlainObject,
  optional,
  optionalBoolean,
  optionalSignal,
  optionalString,
  requiredBoolean,
} from '../base/options.js';
import type { DmaHeap } from '../heap/dma-heap.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import { WwAcquireCtx } from '../locking/ww-mutex.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';
import type { TtmCopyEngine } from './ttm-copy-engine.js';
import { TTM_MAX_BO_PRIORITY, TtmLruBulkMove } from './ttm-lru.js';
import {
  TtmMemType,
  TtmOperationCtx,
  TtmPlaceFlags,
  checkPlacement,
  describePlacement,
  type TtmPlace,
  type TtmPlacement,
} from './ttm-placement.js';
import {
  TTM_NUM_MOVE_FENCES,
  describeResource,
  ttmResourceAlloc,
  ttmResourceCompatible,
  ttmResourceFree,
  ttmResourceMoveToLruTail,
  TtmResource,
  TtmResourceManager,
  type TtmResourceOwner,
} from './ttm-resource.js';
import { TtmTt, TtmTtFlags } from './ttm-tt.js';

/** Kinds of buffer object. @see enum ttm_bo_type */
export const TtmBoType = { Device: 'device', Kernel: 'kernel', Sg: 'sg' } as const;
export type TtmBoType = (typeof TtmBoType)[keyof typeof TtmBoType];

/** How long a wait for idle may take before it counts as busy (the kernel's 15 s). */
export const TTM_BO_WAIT_TIMEOUT_MS = 15_000;

/** What a driver's move returns: nothing when done, or a bounce place (`-EMULTIHOP`). */
// biome-ignore lint/suspicious/noConfusingVoidType: a driver's move that returns nothing is done, as in C
export type TtmMoveResult = void | { readonly hop: TtmPlace };

/** One driver move as the buffer object sees it: the bounce place asked for, or undefined when done. */
type MoveStep = { readonly hop: TtmPlace } | undefined;

/**
 * @internal
 * A move function may carry, under this key, a form of itself that returns undefined when the
 * move finished before it returned and a promise otherwise; buffer objects call that form, so
 * a move that needed no wait costs no promise and no microtask turn. Its effects and errors
 * must be those of the function itself (the default move, `ttmBoMoveDefault`, has one).
 */
export const TTM_MOVE_NOW: unique symbol = Symbol('ttm move, synchronous when it can');

/** @internal The form of a move stored under {@link TTM_MOVE_NOW}. */
export type TtmMoveNow = (
  bo: TtmBufferObject,
  evict: boolean,
  ctx: TtmOperationCtx,
  newRes: TtmResource,
) => Promise<void> | undefined;

/**
 * Driver callbacks; every member is optional (the device fills in the defaults of
 * `ttm-device-funcs.ts`). @see struct ttm_device_funcs
 */
export interface TtmDeviceFuncs {
  /** Whether evicting `bo` helps `place`; `ttmBoEvictionValuable` by default. */
  evictionValuable?(bo: TtmBufferObject, place: TtmPlace): boolean;
  /**
   * Where to evict `bo` to; an empty placement purges it. Default: VRAM to TT (System as
   * fallback), anything else to System.
   */
  evictFlags?(bo: TtmBufferObject): TtmPlacement;
  /** Moves `bo` into `newRes` (see `ttm-bo-util.ts`); the device's default copies or pipelines. */
  move?(
    bo: TtmBufferObject,
    evict: boolean,
    ctx: TtmOperationCtx,
    newRes: TtmResource,
  ): Promise<TtmMoveResult> | TtmMoveResult;
  /** The last reference of `bo` is gone (before any delayed delete). */
  releaseNotify?(bo: TtmBufferObject): void;
  /** `bo`'s memory is about to be freed. */
  deleteMemNotify?(bo: TtmBufferObject): void;
}

/**
 * The device as a buffer object sees it (`TtmDevice` implements it): managers, pages, driver
 * callbacks, and the bookkeeping a buffer reports to. @see struct ttm_device
 */
export interface TtmBoDevice {
  /** The driver callbacks, defaults filled in. */
  readonly funcs: Required<TtmDeviceFuncs>;
  /** Where System and TT pages come from. */
  readonly heap: DmaHeap;
  /** The engine for pipelined moves, if any. */
  readonly copyEngine: TtmCopyEngine | null;
  /** validate() rejects with ENOSPC instead of ENOMEM. */
  readonly propagateEnospc: boolean;
  /** The manager of `memType`, or null. @see ttm_manager_type() */
  manager(memType: number): TtmResourceManager | null;
  /** The bytes of `res`, which belongs to `bo`. */
  resourceBytes(bo: TtmBufferObject, res: TtmResource): Uint8Array;
  /** @internal A number for a default buffer name. */
  nextBoId(): number;
  /** @internal A buffer object was constructed (ghosts included). */
  boCreated(bo: TtmBufferObject): void;
  /** @internal A buffer object was destroyed. */
  boDestroyed(bo: TtmBufferObject): void;
  /** @internal Takes over a zombie (holding its one reference) until its memory is freed. */
  queueDelayedDelete(bo: TtmBufferObject): void;
  /** @internal A zombie's memory was freed. */
  reclaimed(bo: TtmBufferObject): void;
  /** @internal A move of `bytes` finished. */
  countMove(bytes: number): void;
  /** @internal An eviction finished. */
  countEviction(): void;
  /** @internal Records a failed driver callback; never throws. */
  reportFailure(what: string, error: unknown): void;
  /** @internal The kernel's WARN: recorded, never thrown. */
  warn(message: string): void;
}

/** What a buffer object is created with. */
export interface TtmBoInit {
  /** Bytes, > 0; rounded up to whole pages. */
  readonly size: number;
  readonly type?: TtmBoType;
  /** A reservation shared with other buffers; the object's own one when omitted. */
  readonly resv?: DmaResv;
  /** 0..3; lower priorities are evicted first. */
  readonly priority?: number;
  readonly name?: string;
  /** Joins this bulk move (the buffers of a bulk move share one reservation). */
  readonly bulkMove?: TtmLruBulkMove;
}

/** {@link TtmBoInit} plus where to place the new buffer. */
export interface TtmBoInitPlaced extends TtmBoInit {
  readonly placement: TtmPlacement;
}

/** Options of {@link TtmBufferObject.reserve}. */
export interface TtmReserveOptions {
  /** The wait honours `signal` (default true); false declares it uninterruptible (no signal then). */
  readonly interruptible?: boolean;
  /** Trylock only: EBUSY when the lock is taken (not allowed with a ticket). */
  readonly noWait?: boolean;
  readonly ticket?: WwAcquireCtx | null;
  readonly signal?: AbortSignal;
}

const INIT_KEYS = new Set(['size', 'type', 'resv', 'priority', 'name', 'bulkMove', 'placement']);
const BO_TYPES = new Set<string>(Object.values(TtmBoType));

const parseReserveOptions = defineOptions('TtmBufferObject.reserve', {
  interruptible: optionalBoolean,
  noWait: optionalBoolean,
  ticket: (value, fn, name) => {
    if (value === undefined || value === null || value instanceof WwAcquireCtx) return value;
    throw invalidArgument(fn, name, value, 'a WwAcquireCtx, null or omitted');
  },
  signal: optionalSignal,
});
const parseSlowpathOptions = defineOptions('TtmBufferObject.reserveSlowpath', { signal: optionalSignal });
const checkCtx = instanceOf(TtmOperationCtx);
const checkBulk = optional(instanceOf(TtmLruBulkMove));
const checkName = optionalString;

/** A buffer object. @see struct ttm_buffer_object */
export class TtmBufferObject implements TtmResourceOwner {
  readonly device: TtmBoDevice;
  /** Bytes, a page multiple. */
  readonly size: number;
  readonly type: TtmBoType;
  readonly name: string;
  /** LRU priority 0..3 (0 is evicted first). */
  readonly priority: number;
  readonly #ownResv: DmaResv;
  #resv: DmaResv;
  #resource: TtmResource | null = null;
  #tt: TtmTt | null = null;
  #pinCount = 0;
  #bulkMove: TtmLruBulkMove | null = null;
  readonly #kref: Kref;
  #deleted = false;
  /** The delayed delete holds the zombie's one reference. */
  #zombieRef = false;
  #destroyed = false;
  /** For a ghost: the object whose old memory it frees (holds a reference on it). */
  readonly #ghostOf: TtmBufferObject | null;

  /**
   * A buffer with one reference, no resource, no tt, unlocked (`ttm_bo_kunit_init`).
   * Use {@link TtmBufferObject.initReserved} or {@link TtmBufferObject.initValidate} to place it;
   * `ghostOf` is for `ttmBufferObjectTransfer()`.
   * @throws {InvalidArgumentError} for a bad size, type, priority or option.
   */
  constructor(device: TtmBoDevice, init: TtmBoInit, ghostOf: TtmBufferObject | null = null) {
    if (typeof (device as Partial<TtmBoDevice> | null)?.boCreated !== 'function') {
      throw invalidArgument('TtmBufferObject', 'device', device, 'a TtmDevice');
    }
    if (ghostOf !== null && !(ghostOf instanceof TtmBufferObject)) {
      throw invalidArgument('TtmBufferObject', 'ghostOf', ghostOf, 'a TtmBufferObject or null');
    }
    if (!isPlainObject(init)) {
      throw invalidArgument(
        'TtmBufferObject',
        'init',
        init,
        'an options object { size, type?, resv?, priority?, name?, bulkMove? }',
      );
    }
    for (const key of Object.keys(init)) {
      if (!INIT_KEYS.has(key)) {
        throw new InvalidArgumentError(
          `TtmBufferObject: unknown option ${JSON.stringify(key)} ` +
            `(got ${describeValue(init[key as keyof TtmBoInit])}); ` +
            `the known options are ${[...INIT_KEYS].join(', ')}; check the spelling`,
          { argument: `init.${key}` },
        );
      }
    }
    const { size } = init;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
      throw new InvalidArgumentError(
        `TtmBufferObject: size must be a positive integer number of bytes, got ${describeValue(size)}`,
      );
    }
    const type = init.type ?? TtmBoType.Device;
    if (!BO_TYPES.has(type))
      throw new InvalidArgumentError(
        `TtmBufferObject: type must be 'device', 'kernel' or 'sg', got ${describeValue(type)}`,
      );
    const priority = init.priority ?? 0;
    if (!Number.isInteger(priority) || priority < 0 || priority >= TTM_MAX_BO_PRIORITY) {
      throw new InvalidArgumentError(
        `TtmBufferObject: priority must be an integer in 0..${TTM_MAX_BO_PRIORITY - 1}, got ${describeValue(priority)}`,
      );
    }
    if (init.resv !== undefined && !(init.resv instanceof DmaResv)) {
      throw new InvalidArgumentError(`TtmBufferObject: resv must be a DmaResv, got ${describeValue(init.resv)}`);
    }
    checkName(init.name, 'TtmBufferObject', 'init.name');
    checkBulk(init.bulkMove, 'TtmBufferObject', 'init.bulkMove');
    this.device = device;
    this.size = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    this.type = type;
    this.priority = priority;
    this.name = init.name ?? `bo#${device.nextBoId()} (${this.size} bytes)`;
    this.#kref = new Kref(() => this.#release(), this.name);
    this.#ownResv = new DmaResv({ name: this.name });
    this.#resv = init.resv ?? this.#ownResv;
    this.#ghostOf = ghostOf;
    device.boCreated(this);
    if (init.bulkMove !== undefined) this.#bulkMove = init.bulkMove;
  }

  /**
   * Creates and validates a buffer. It is returned locked when it has its own reservation; with
   * a shared `resv` the caller must hold that lock. On failure the buffer is released.
   * @see ttm_bo_init_reserved()
   */
  static async initReserved(
    device: TtmBoDevice,
    init: TtmBoInitPlaced,
    ctx = new TtmOperationCtx(),
  ): Promise<TtmBufferObject> {
    if (!isPlainObject(init)) {
      throw invalidArgument('TtmBufferObject.initReserved', 'init', init, 'a TtmBoInitPlaced { size, placement, ... }');
    }
    checkPlacement(init.placement, 'TtmBufferObject.initReserved');
    checkCtx(ctx, 'TtmBufferObject.initReserved', 'ctx');
    const bo = new TtmBufferObject(device, init);
    const own = init.resv === undefined;
    if (own) {
      if (!bo.#resv.tryLock()) throw new BugError(`${bo.name}: a fresh reservation could not be locked`);
    } else if (!bo.#resv.isLocked) {
      bo.put();
      throw new BugError(
        `TtmBufferObject.initReserved: the shared reservation ${bo.#resv.toString()} must be locked by the caller`,
      );
    }
    try {
      await bo.validate(init.placement, ctx);
    } catch (error) {
      if (own) bo.#resv.unlock();
      bo.put();
      throw error;
    }
    return bo;
  }

  /** {@link initReserved}, then unlocked. @see ttm_bo_init_validate() */
  static async initValidate(
    device: TtmBoDevice,
    init: TtmBoInitPlaced,
    ctx = new TtmOperationCtx(),
  ): Promise<TtmBufferObject> {
    const bo = await TtmBufferObject.initReserved(device, init, ctx);
    if (init.resv === undefined) bo.unreserve();
    return bo;
  }

  /** The reservation guarding this buffer (maybe shared). */
  get resv(): DmaResv {
    return this.#resv;
  }

  /** The buffer's own reservation (`base._resv`), used once it is released. */
  get ownResv(): DmaResv {
    return this.#ownResv;
  }

  get resource(): TtmResource | null {
    return this.#resource;
  }

  /** Replaces the resource pointer; for move code (`ttm_bo_assign_mem`). Needs the lock. */
  set resource(res: TtmResource | null) {
    this.#assertLocked('set resource');
    this.#resource = res;
    if (res !== null) res.bo = this;
  }

  get tt(): TtmTt | null {
    return this.#tt;
  }

  /** Replaces the tt; for move and ghost code. Needs the lock. */
  set tt(tt: TtmTt | null) {
    this.#assertLocked('set tt');
    this.#tt = tt;
  }

  get pinCount(): number {
    return this.#pinCount;
  }

  get bulkMove(): TtmLruBulkMove | null {
    return this.#bulkMove;
  }

  /** A released buffer waiting for its fences (a zombie). */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** Destroyed: every use is a bug. */
  get released(): boolean {
    return this.#destroyed;
  }

  /** A ghost: holds another buffer's old memory until a move fence signals. */
  get isGhost(): boolean {
    return this.#ghostOf !== null;
  }

  get refcount(): number {
    return this.#kref.count;
  }

  get swapped(): boolean {
    return this.#tt !== null && (this.#tt.flags & TtmTtFlags.Swapped) !== 0;
  }

  /** Takes a reference. @throws {BugError} once released (a zombie included). @see ttm_bo_get() */
  get(): this {
    if (this.#kref.count <= 0 || this.#deleted || this.#destroyed)
      throw new BugError(`${this.name}: get() after the last put (use after free)`);
    this.#kref.get();
    return this;
  }

  /** Takes a reference unless the count already reached zero (zombies still count). @see ttm_bo_get_unless_zero() */
  getUnlessZero(): boolean {
    return this.#kref.getUnlessZero();
  }

  /** Drops a reference; the last one releases the buffer. @see ttm_bo_put() */
  put(): void {
    // A zombie's last reference belongs to its delayed delete, never to a caller.
    if (this.#zombieRef && this.#kref.count === 1)
      throw new BugError(`${this.name}: put() without a reference (double put)`);
    this.#kref.put();
  }

  /**
   * Takes the reservation lock. Rejects with `DmaBufError('EBUSY')` for `noWait` when it is
   * taken (or with a ticket), `WwDeadlockError` (EDEADLK) / `AlreadyLockedError` (EALREADY) from
   * the ww lock, or `signal.reason`. @see ttm_bo_reserve()
   */
  reserve(options?: TtmReserveOptions): Promise<void> {
    // Not async: the reservation's own promise is handed back (for a free lock, one already
    // resolved), so an uncontended reserve costs its caller one microtask turn, not two.
    try {
      const { interruptible, noWait, ticket: given, signal } = parseReserveOptions(options);
      checkInterruptible('TtmBufferObject.reserve', interruptible, signal);
      this.#assertAlive('reserve');
      const ticket = (given as WwAcquireCtx | null | undefined) ?? null;
      if (noWait === true) {
        if (ticket !== null)
          throw new DmaBufError(
            'EBUSY',
            `${this.name}: reserve() with noWait cannot use a ticket; trylock without one or sleep with it`,
          );
        if (!this.#resv.tryLock())
          throw new DmaBufError('EBUSY', `${this.name}: reservation is held by someone else (noWait)`);
        return Promise.resolve();
      }
      return this.#resv.lock(ticket, signal === undefined ? undefined : { signal });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Takes the lock after a back-off, holding nothing else in `ticket`. @see ttm_bo_reserve_slowpath() */
  async reserveSlowpath(ticket: WwAcquireCtx, options?: { signal?: AbortSignal }): Promise<void> {
    const { signal } = parseSlowpathOptions(options);
    this.#assertAlive('reserveSlowpath');
    await this.#resv.lockSlow(ticket, signal === undefined ? undefined : { signal });
  }

  /** Moves the buffer to its LRU tail (recently used) and unlocks. @see ttm_bo_unreserve() */
  unreserve(): void {
    this.moveToLruTail();
    this.#resv.unlock();
  }

  /** Marks the buffer recently used. Needs the lock. @see ttm_bo_move_to_lru_tail() */
  moveToLruTail(): void {
    this.#assertLocked('moveToLruTail');
    if (this.#resource !== null) ttmResourceMoveToLruTail(this.#resource);
  }

  /**
   * Moves the buffer into the first workable place of `placement`, evicting others when needed.
   * An empty placement purges the contents. See the module contract for the outcomes.
   * @see ttm_bo_validate()
   */
  async validate(placement: TtmPlacement, ctx = new TtmOperationCtx()): Promise<void> {
    checkPlacement(placement, `${this.name}: validate`);
    checkCtx(ctx, 'TtmBufferObject.validate', 'ctx');
    this.#assertLocked('validate');
    if (placement.length === 0) {
      await ttmBoPipelineGutting(this);
      return;
    }
    let forceSpace = false;
    let noSpace = false;
    do {
      if (this.#resource !== null && ttmResourceCompatible(this.#resource, placement, forceSpace)) return;
      if (this.#pinCount > 0) {
        throw new DmaBufError(
          'EINVAL',
          `${this.name} is pinned in ${describeResource(this.#resource)} and cannot move to ` +
            `${describePlacement(placement)}; unpin it first`,
        );
      }
      const res = forceSpace ? await this.allocResource(placement, ctx, true) : this.#allocFirstPass(placement, ctx);
      forceSpace = !forceSpace;
      if (res === 'ENOSPC') {
        noSpace = true;
        continue;
      }
      noSpace = false;
      const moving = this.#moveToNow(res, false, ctx);
      if (moving !== undefined) await moving;
    } while (noSpace && forceSpace);
    if (noSpace) {
      throw new DmaBufError(
        this.device.propagateEnospc ? 'ENOSPC' : 'ENOMEM',
        `${this.name}: no space in ${describePlacementSpace(this.device, placement, this.size)} even after ` +
          'evicting; free or unpin buffers, or add a fallback place',
      );
    }
    if (this.#resource === null || this.#resource.memType === TtmMemType.System) this.#ensureTt();
  }

  /**
   * One pass over `placement`: allocate in the first place with room; when forcing space, evict
   * from a full manager other than System until the request fits. A resource from a manager with
   * pipelined evictions still running gets their fences as kernel fences, so nothing touches the
   * range before the copy out of it finished. Needs the lock. @see ttm_bo_alloc_resource()
   */
  async allocResource(
    placement: TtmPlacement,
    ctx: TtmOperationCtx,
    forceSpace: boolean,
  ): Promise<TtmResource | 'ENOSPC'> {
    checkPlacement(placement, `${this.name}: allocResource`);
    checkCtx(ctx, 'TtmBufferObject.allocResource', 'ctx');
    requiredBoolean(forceSpace, 'TtmBufferObject.allocResource', 'forceSpace');
    this.#assertLocked('allocResource');
    this.#resv.reserveFences(TTM_NUM_MOVE_FENCES);
    let from = 0;
    for (;;) {
      const found = this.#allocPass(placement, ctx, forceSpace, from);
      if (typeof found !== 'number') return found;
      // Place `found` is full and may be made room in: evict, then go on after it if that failed.
      const place = placement[found]!;
      const man = this.device.manager(place.memType)!;
      const evicted = await this.#evictAlloc(man, place, ctx, this.#resv.lockingCtx);
      if (evicted !== 'EBUSY' && this.#addPipelinedEvictionFencesOrFree(man, evicted, ctx)) return evicted;
      from = found + 1;
    }
  }

  /**
   * The first pass of {@link allocResource} (no forcing, so never evicting), run synchronously:
   * when space is there, as it is for most allocations, nothing is awaited.
   */
  #allocFirstPass(placement: TtmPlacement, ctx: TtmOperationCtx): TtmResource | 'ENOSPC' {
    this.#assertLocked('allocResource');
    this.#resv.reserveFences(TTM_NUM_MOVE_FENCES);
    return this.#allocPass(placement, ctx, false, 0) as TtmResource | 'ENOSPC';
  }

  /**
   * The places of `placement` from index `from`, in order, without waiting: the first resource
   * allocated, 'ENOSPC' when none had room, or the index of a full place where room may be made
   * by evicting (only when forcing space).
   */
  #allocPass(
    placement: TtmPlacement,
    ctx: TtmOperationCtx,
    forceSpace: boolean,
    from: number,
  ): TtmResource | 'ENOSPC' | number {
    for (let i = from; i < placement.length; i++) {
      const place = placement[i]!;
      const man = this.device.manager(place.memType);
      if (man === null || !man.useType) continue;
      const flags = place.flags ?? 0;
      if (forceSpace ? (flags & TtmPlaceFlags.Desired) !== 0 : (flags & TtmPlaceFlags.Fallback) !== 0) continue;
      const res = ttmResourceAlloc(this, place, man);
      if (res === 'EBUSY') throw new DmaBufError('EBUSY', `${this.name}: manager ${man.name} is busy`);
      if (res === 'ENOSPC') {
        if (forceSpace && place.memType !== TtmMemType.System) return i;
        continue;
      }
      if (this.#addPipelinedEvictionFencesOrFree(man, res, ctx)) return res;
    }
    return 'ENOSPC';
  }

  /** {@link addPipelinedEvictionFences}, freeing `res` when the caller may not wait for them. */
  #addPipelinedEvictionFencesOrFree(man: TtmResourceManager, res: TtmResource, ctx: TtmOperationCtx): boolean {
    if (this.#addPipelinedEvictionFences(man, ctx.noWaitGpu)) return true;
    ttmResourceFree(this, res);
    return false;
  }

  /**
   * Evicts from `man`'s LRU until `place` fits: a trylock walk first, then walks that may sleep
   * on one ticket lock each, repeated while they evict. @see ttm_bo_evict_alloc()
   */
  async #evictAlloc(
    man: TtmResourceManager,
    place: TtmPlace,
    ctx: TtmOperationCtx,
    ticket: WwAcquireCtx | null,
  ): Promise<TtmResource | 'EBUSY'> {
    const walk: TtmEvictWalk = { evictor: this, place, ctx, ticket, trylockOnly: true, evicted: 0, res: null };
    let progress = await ttmLruWalkForEvict(walk, man);
    if (progress === 0 && ticket !== null) {
      walk.trylockOnly = false;
      do {
        walk.ticket = ticket;
        walk.evicted = 0;
        progress = await ttmLruWalkForEvict(walk, man);
      } while (progress === 0 && walk.evicted > 0);
    }
    return walk.res ?? 'EBUSY';
  }

  /**
   * @returns false when a copy out of `man` is still running and the caller may not wait.
   * @see ttm_bo_add_pipelined_eviction_fences()
   */
  #addPipelinedEvictionFences(man: TtmResourceManager, noWaitGpu: boolean): boolean {
    // A plain scan first: every allocation passes here, and almost always nothing is pending.
    const slots = man.evictionFences;
    let pending = false;
    for (const f of slots) if (f !== null && !f.isSignaled()) pending = true;
    if (!pending) return true;
    if (noWaitGpu) return false;
    for (const fence of slots)
      if (fence !== null && !fence.isSignaled()) this.#resv.addFence(fence, DmaResvUsage.Kernel);
    return true;
  }

  /**
   * Allocates space per `placement` with the two passes: free space first, then forcing space.
   * @see ttm_bo_mem_space()
   */
  async memSpace(placement: TtmPlacement, ctx: TtmOperationCtx): Promise<TtmResource | 'ENOSPC'> {
    checkPlacement(placement, `${this.name}: memSpace`);
    checkCtx(ctx, 'TtmBufferObject.memSpace', 'ctx');
    const res = this.#allocFirstPass(placement, ctx);
    return res !== 'ENOSPC' ? res : this.allocResource(placement, ctx, true);
  }

  /**
   * Evicts this buffer (needs the lock) to where `funcs.evictFlags` says; an empty placement
   * purges it. @throws {DmaBufError} ENOSPC when there is nowhere to go. @see ttm_bo_evict()
   */
  async evict(ctx = new TtmOperationCtx()): Promise<void> {
    checkCtx(ctx, 'TtmBufferObject.evict', 'ctx');
    this.#assertLocked('evict');
    const placement = this.device.funcs.evictFlags(this);
    checkPlacement(placement, `${this.name}: evictFlags()`);
    if (placement.length === 0) {
      await this.waitIdle(ctx);
      await ttmBoPipelineGutting(this);
    } else {
      // memSpace() inlined: its first pass needs no await, which saves a hop per eviction.
      let res = this.#allocFirstPass(placement, ctx);
      if (res === 'ENOSPC') res = await this.allocResource(placement, ctx, true);
      if (res === 'ENOSPC')
        throw new DmaBufError('ENOSPC', `${this.name}: no space to evict to in ${describePlacement(placement)}`);
      const moving = this.#moveToNow(res, true, ctx);
      if (moving !== undefined) await moving;
    }
    this.device.countEviction();
  }

  /**
   * Moves the contents into `res` (allocated for this buffer), through a bounce place when the
   * driver's move asks for one; frees `res` when the move fails. @see ttm_bo_handle_move_mem()
   */
  async moveTo(res: TtmResource, evict: boolean, ctx: TtmOperationCtx): Promise<void> {
    if (!(res instanceof TtmResource)) throw invalidArgument('TtmBufferObject.moveTo', 'res', res, 'a TtmResource');
    requiredBoolean(evict, 'TtmBufferObject.moveTo', 'evict');
    checkCtx(ctx, 'TtmBufferObject.moveTo', 'ctx');
    const moving = this.#moveToNow(res, evict, ctx);
    if (moving !== undefined) await moving;
  }

  /**
   * {@link moveTo} without its argument checks, as far as it gets synchronously: undefined when
   * the move finished before returning (an idle buffer and a move that did not wait), else a
   * promise for the rest. Saves eviction and validate an async frame per level of the move.
   */
  #moveToNow(res: TtmResource, evict: boolean, ctx: TtmOperationCtx): Promise<void> | undefined {
    let step: MoveStep | Promise<MoveStep>;
    try {
      step = this.#handleMoveMem(res, evict, ctx);
    } catch (error) {
      this.#freeUnmoved(res);
      throw error;
    }
    return step === undefined ? undefined : this.#moveToLater(res, evict, ctx, step);
  }

  /** The rest of {@link moveTo}: waits for the driver's move and bounces through its hop place. */
  async #moveToLater(
    res: TtmResource,
    evict: boolean,
    ctx: TtmOperationCtx,
    step: { hop: TtmPlace } | Promise<MoveStep>,
  ): Promise<void> {
    try {
      let result = await step;
      if (result !== undefined) {
        // -EMULTIHOP: go through the driver's temporary place, then try the final move again.
        const hop = await this.memSpace([result.hop], ctx);
        if (hop === 'ENOSPC')
          throw new DmaBufError(
            'ENOSPC',
            `${this.name}: no space for the bounce place ${describePlacement([result.hop])}`,
          );
        if ((await this.#handleMoveMem(hop, evict, ctx)) !== undefined) {
          ttmResourceFree(this, hop);
          throw new BugError(`${this.name}: the driver asked for a second hop; a bounce move must be direct`);
        }
        result = await this.#handleMoveMem(res, evict, ctx);
        if (result !== undefined) throw new BugError(`${this.name}: the driver asked for another hop after bouncing`);
      }
    } catch (error) {
      this.#freeUnmoved(res);
      throw error;
    }
  }

  /** After a failed move: frees `res` unless the buffer got it or it is already freed. */
  #freeUnmoved(res: TtmResource): void {
    if (this.#resource !== res && res.bo !== null) ttmResourceFree(this, res);
  }

  /**
   * One move through the driver (`ttm_bo_handle_move_mem`): the hop the driver asks for, or
   * undefined when done; synchronously when the driver's move did not return a promise (a
   * move carrying {@link TTM_MOVE_NOW} is called through that form).
   */
  #handleMoveMem(res: TtmResource, evict: boolean, ctx: TtmOperationCtx): MoveStep | Promise<MoveStep> {
    const device = this.device;
    const oldUseTt = this.#resource === null || this.#resource.manager.useTt;
    const newUseTt = res.manager.useTt;
    if (newUseTt) {
      this.#ensureTt();
      if (res.memType !== TtmMemType.System) this.#tt!.populate(device.heap);
    }
    let result: TtmMoveResult | PromiseLike<TtmMoveResult>;
    try {
      this.#resv.reserveFences(1);
      const now = (device.funcs.move as { [TTM_MOVE_NOW]?: TtmMoveNow })[TTM_MOVE_NOW];
      result = now !== undefined ? now(this, evict, ctx, res) : device.funcs.move(this, evict, ctx, res);
    } catch (error) {
      this.#moveFailed(oldUseTt);
      throw error;
    }
    if (typeof (result as PromiseLike<TtmMoveResult> | null | undefined)?.then === 'function')
      return this.#handleMoveMemLater(result as PromiseLike<TtmMoveResult>, oldUseTt, ctx);
    return this.#moveDone(result as TtmMoveResult, ctx);
  }

  /** {@link handleMoveMem} once the driver's move returned a promise. */
  async #handleMoveMemLater(
    pending: PromiseLike<TtmMoveResult>,
    oldUseTt: boolean,
    ctx: TtmOperationCtx,
  ): Promise<MoveStep> {
    let result: TtmMoveResult;
    try {
      result = await pending;
    } catch (error) {
      this.#moveFailed(oldUseTt);
      throw error;
    }
    return this.#moveDone(result, ctx);
  }

  /** A driver's move failed: a tt created for it is dropped again when the buffer stays out of a tt. */
  #moveFailed(oldUseTt: boolean): void {
    if (!oldUseTt && this.#resource !== null && !this.#resource.manager.useTt) this.destroyTt();
  }

  /** A driver's move returned: its hop, or the move is counted. */
  #moveDone(result: TtmMoveResult, ctx: TtmOperationCtx): MoveStep {
    if (result !== undefined && result !== null) return result;
    ctx.bytesMoved += this.size;
    this.device.countMove(this.size);
    return undefined;
  }

  /** Pins the buffer where it is (needs the lock). @see ttm_bo_pin() */
  pin(): void {
    this.#assertLocked('pin');
    const res = this.#resource;
    if (res !== null && this.#bulkMove !== null && this.#pinCount === 0) this.#bulkMove.del(res);
    if (this.#pinCount++ === 0 && res !== null) ttmResourceMoveToLruTail(res);
  }

  /** Drops one pin. @throws {BugError} when not pinned. @see ttm_bo_unpin() */
  unpin(): void {
    this.#assertLocked('unpin');
    if (this.#pinCount === 0) throw new BugError(`${this.name}: unpin() of a buffer that is not pinned`);
    if (--this.#pinCount === 0 && this.#resource !== null) {
      if (this.#bulkMove !== null) this.#bulkMove.add(this.#resource);
      ttmResourceMoveToLruTail(this.#resource);
    }
  }

  /** Joins (or with null leaves) a bulk move. Needs the lock. @see ttm_bo_set_bulk_move() */
  setBulkMove(bulk: TtmLruBulkMove | null): void {
    if (bulk !== null && !(bulk instanceof TtmLruBulkMove)) {
      throw invalidArgument('TtmBufferObject.setBulkMove', 'bulk', bulk, 'a TtmLruBulkMove or null');
    }
    this.#assertLocked('setBulkMove');
    if (this.#bulkMove === bulk) return;
    const res = this.#resource;
    if (res !== null && this.#bulkMove !== null && this.#pinCount === 0) this.#bulkMove.del(res);
    this.#bulkMove = bulk;
    if (res !== null && bulk !== null && this.#pinCount === 0) bulk.add(res);
  }

  /**
   * Waits until every fence of the reservation signaled: EBUSY at once with `noWaitGpu`, or
   * after 15 s. @see ttm_bo_wait_ctx()
   */
  async waitIdle(ctx = new TtmOperationCtx()): Promise<void> {
    checkCtx(ctx, 'TtmBufferObject.waitIdle', 'ctx');
    this.#assertAlive('waitIdle');
    if (this.#resv.testSignaled(DmaResvUsage.Bookkeep)) return;
    if (ctx.noWaitGpu)
      throw new DmaBufError('EBUSY', `${this.name} is busy and the operation may not wait (noWaitGpu)`);
    const options: { usage: DmaResvUsage; timeout: number; signal?: AbortSignal } = {
      usage: DmaResvUsage.Bookkeep,
      timeout: TTM_BO_WAIT_TIMEOUT_MS,
    };
    if (ctx.signal !== undefined) options.signal = ctx.signal;
    if (!(await this.#resv.wait(options)))
      throw new DmaBufError('EBUSY', `${this.name} stayed busy for ${TTM_BO_WAIT_TIMEOUT_MS} ms`);
  }

  /**
   * The contents (needs the lock): the VRAM range or the system pages, populated (zeroed) on
   * first use. @throws {DmaBufError} EBUSY while a move fence is pending. @see ttm_bo_kmap()
   */
  kmap(): Uint8Array {
    this.#assertLocked('kmap');
    const res = this.#resource;
    if (res === null)
      throw new BugError(`${this.name} has no placement (never validated, or purged); validate it first`);
    if (!this.#resv.testSignaled(DmaResvUsage.Kernel)) {
      throw new DmaBufError(
        'EBUSY',
        `${this.name}: a move into ${describeResource(res)} is still running; await bo.waitIdle() first`,
      );
    }
    return this.device.resourceBytes(this, res);
  }

  /** Creates the tt when missing (zeroed when populated). @see ttm_tt_create() */
  #ensureTt(): void {
    this.#tt ??= new TtmTt(this.size, TtmTtFlags.ZeroAlloc);
  }

  /** Drops the system pages and the tt. @see ttm_bo_tt_destroy() */
  destroyTt(): void {
    this.#tt?.destroy();
    this.#tt = null;
  }

  /** Frees tt and resource now. @see ttm_bo_cleanup_memtype_use() */
  cleanupMemtypeUse(): void {
    const held = this.#resource !== null || this.#tt?.populated === true;
    try {
      this.device.funcs.deleteMemNotify(this);
    } finally {
      this.destroyTt();
      if (this.#resource !== null) {
        ttmResourceFree(this, this.#resource);
        this.#resource = null;
      }
      if (this.#deleted && held) this.device.reclaimed(this);
    }
  }

  #release(): void {
    const device = this.device;
    if (!this.#deleted) {
      if (this.#bulkMove !== null) {
        device.warn(`${this.name}: released while still in a bulk move; it leaves the bulk move`);
        if (this.#resource !== null && this.#pinCount === 0) this.#bulkMove.del(this.#resource);
        this.#bulkMove = null;
      }
      this.#individualizeResv();
      try {
        device.funcs.releaseNotify(this);
      } catch (error) {
        device.reportFailure(`${this.name}: releaseNotify`, error);
      }
      const busy = !this.#ownResv.testSignaled(DmaResvUsage.Bookkeep);
      if (busy || this.type === TtmBoType.Sg || !this.#resv.tryLock()) {
        for (const fence of this.#ownResv.getFences(DmaResvUsage.Bookkeep)) fence.enableSwSignaling();
        this.#deleted = true;
        if (this.#pinCount > 0) {
          device.warn(`${this.name}: released while pinned; the pins are dropped`);
          this.#pinCount = 0;
          if (this.#resource !== null) ttmResourceMoveToLruTail(this.#resource);
        }
        // Resurrected as a zombie: its one reference belongs to the delayed delete.
        this.#kref.init();
        this.#zombieRef = true;
        device.queueDelayedDelete(this);
        return;
      }
      if (this.#pinCount > 0) {
        device.warn(`${this.name}: released while pinned; the pins are dropped`);
        this.#pinCount = 0;
      }
      try {
        this.cleanupMemtypeUse();
      } finally {
        this.#resv.unlock();
      }
    }
    this.#destroyed = true;
    device.boDestroyed(this);
    this.#ghostOf?.put();
  }

  /** Gives a buffer on a shared reservation its own copy of the fences. @see ttm_bo_individualize_resv() */
  #individualizeResv(): void {
    if (this.#resv === this.#ownResv) return;
    if (!this.#ownResv.tryLock()) throw new BugError(`${this.name}: own reservation is locked at release`);
    try {
      this.#ownResv.copyFences(this.#resv);
    } finally {
      this.#ownResv.unlock();
    }
    if (this.type !== TtmBoType.Sg) this.#resv = this.#ownResv;
  }

  /**
   * The delayed-delete work item: waits for the buffer's own fences, locks, frees, drops the
   * zombie's reference. @see ttm_bo_delayed_delete()
   */
  async delayedDelete(): Promise<void> {
    await this.#ownResv.wait({ usage: DmaResvUsage.Bookkeep });
    await this.#resv.lock();
    try {
      this.cleanupMemtypeUse();
    } finally {
      this.#resv.unlock();
      // A failing notification is reported by the caller; the zombie still goes.
      this.#putZombie();
    }
  }

  /** One step of the periodic scanner: frees the zombie when idle and unlocked. @returns true when done. */
  tryDelayedDelete(): boolean {
    if (!this.#ownResv.testSignaled(DmaResvUsage.Bookkeep) || !this.#resv.tryLock()) return false;
    try {
      this.cleanupMemtypeUse();
    } finally {
      this.#resv.unlock();
      this.#putZombie();
    }
    return true;
  }

  /** Drops the zombie's own reference once its memory is freed: the buffer is destroyed. */
  #putZombie(): void {
    this.#zombieRef = false;
    this.#kref.put();
  }

  describe(): string {
    const state = this.#destroyed ? 'destroyed' : this.#deleted ? 'zombie' : `refs ${this.#kref.count}`;
    const pins = this.#pinCount > 0 ? `, pinned x${this.#pinCount}` : '';
    return `${this.name}: ${describeResource(this.#resource)}, ${state}${pins}`;
  }

  toString(): string {
    return `TtmBufferObject(${this.describe()})`;
  }

  #assertAlive(op: string): void {
    if (this.#destroyed || this.#kref.count <= 0)
      throw new BugError(`${this.name}: ${op} after the buffer was released (use after free)`);
  }

  #assertLocked(op: string): void {
    this.#assertAlive(op);
    if (!this.#resv.isLocked)
      throw new BugError(`${this.name}: ${op} needs the reservation lock held; reserve() the buffer first`);
  }
}

/** @internal State of one eviction walk. @see struct ttm_bo_evict_walk */
export interface TtmEvictWalk {
  readonly evictor: TtmBufferObject;
  readonly place: TtmPlace;
  readonly ctx: TtmOperationCtx;
  /** The ww ticket for one sleeping lock; cleared once used. */
  ticket: WwAcquireCtx | null;
  trylockOnly: boolean;
  /** Buffers evicted (or zombies freed) by this walk. */
  evicted: number;
  /** The evictor's resource, once allocated. */
  res: TtmResource | null;
}

/**
 * @internal
 * Walks `man`'s LRU (priority 0 first) evicting until the evictor's resource fits. Each buffer
 * is trylocked (or, once per walk with a ticket, lock-waited) and referenced while processed.
 * @returns 1 when the resource was allocated (in `walk.res`), 0 when not.
 * @throws a walk error (abort, or an unexpected failure); a ww deadlock ends the walk with 0
 *   ("no space": the caller has to leave its transaction), so EDEADLK never escapes.
 * @see ttm_lru_walk_for_evict() @see ttm_bo_evict_cb()
 */
export async function ttmLruWalkForEvict(walk: TtmEvictWalk, man: TtmResourceManager): Promise<number> {
  using cursor = man.cursor();
  for (let res = cursor.next(); res !== null; res = cursor.next()) {
    const owner = res.bo;
    if (!(owner instanceof TtmBufferObject) || owner === walk.evictor) continue;
    const bo = owner;
    const { ctx } = walk;
    let locked = bo.resv.tryLock();
    let mustUnlock = locked;
    if (!locked && bo.resv === ctx.resv && ctx.allowResEvict) locked = true;
    if (!locked && (walk.ticket === null || ctx.noWaitGpu || walk.trylockOnly)) continue;
    if (!bo.getUnlessZero()) {
      if (mustUnlock) bo.resv.unlock();
      continue;
    }
    try {
      if (!locked) {
        try {
          await bo.resv.lock(walk.ticket, ctx.signal === undefined ? undefined : { signal: ctx.signal });
        } catch (error) {
          if (error instanceof AlreadyLockedError) continue;
          // The caller has to leave its transaction; to validate this is "no space".
          if (error instanceof WwDeadlockError) return 0;
          throw error;
        }
        walk.ticket = null;
        mustUnlock = true;
      }
      try {
        // The buffer may have moved while we slept on its lock.
        if (bo.resource === null || bo.resource.manager !== man) continue;
        if (await evictOne(walk, bo, man)) return 1;
      } finally {
        if (mustUnlock) bo.resv.unlock();
      }
    } finally {
      bo.put();
    }
  }
  return 0;
}

/** The eviction callback: frees `bo`'s space and retries the evictor's allocation. @returns true when it fits now. */
async function evictOne(walk: TtmEvictWalk, bo: TtmBufferObject, man: TtmResourceManager): Promise<boolean> {
  if (bo.pinCount > 0 || !bo.device.funcs.evictionValuable(bo, walk.place)) return false;
  try {
    await evictOrReap(bo, walk.ctx);
  } catch (error) {
    // Skipped, not fatal: this buffer is busy or has nowhere to go; try the next one.
    if (error instanceof DmaBufError && (error.code === 'EBUSY' || error.code === 'ENOSPC' || error.code === 'ENOMEM'))
      return false;
    throw error;
  }
  walk.evicted++;
  const res = ttmResourceAlloc(walk.evictor, walk.place, man);
  if (typeof res === 'string') return false;
  walk.res = res;
  return true;
}

/** Frees a locked buffer's memory: a zombie's at once once idle, a live buffer's by evicting it. */
async function evictOrReap(bo: TtmBufferObject, ctx: TtmOperationCtx): Promise<void> {
  if (bo.deleted) {
    await bo.waitIdle(ctx);
    bo.cleanupMemtypeUse();
  } else {
    await bo.evict(ctx);
  }
}

/**
 * Evicts the least recently used buffer of `man` (or frees it, for a zombie), reserving it as
 * `ctx` says (a trylock with `noWaitGpu`). @returns false when `man`'s LRU is empty.
 * @see ttm_bo_evict_first()
 */
export async function ttmBoEvictFirst(man: TtmResourceManager, ctx = new TtmOperationCtx()): Promise<boolean> {
  if (!(man instanceof TtmResourceManager))
    throw invalidArgument('ttmBoEvictFirst', 'man', man, 'a TtmResourceManager');
  checkCtx(ctx, 'ttmBoEvictFirst', 'ctx');
  const cursor = man.cursor();
  const res = cursor.next();
  cursor.fini();
  if (res === null) return false;
  const bo = res.bo;
  if (!(bo instanceof TtmBufferObject))
    throw new BugError(
      `ttmBoEvictFirst: ${res} on ${man.name} belongs to no buffer object; free it with ttmResourceFree`,
    );
  if (!bo.getUnlessZero()) return true;
  try {
    await bo.reserve({ noWait: ctx.noWaitGpu, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) });
    try {
      if (bo.resource?.manager === man) await evictOrReap(bo, ctx);
    } finally {
      bo.resv.unlock();
    }
  } finally {
    bo.put();
  }
  return true;
}

/**
 * @internal
 * Creates a ghost: a locked buffer object that takes over `bo`'s resource (and tt when asked)
 * and holds a reference on `bo` until it is destroyed. @see ttm_buffer_object_transfer()
 */
export function ttmBufferObjectTransfer(bo: TtmBufferObject, takeTt: boolean): TtmBufferObject {
  bo.get();
  const ghost = new TtmBufferObject(
    bo.device,
    { size: bo.size, type: bo.type, name: `ghost of ${bo.name}`, priority: bo.priority },
    bo,
  );
  if (!ghost.resv.tryLock()) throw new BugError(`${ghost.name}: a fresh reservation could not be locked`);
  ghost.resv.reserveFences(1);
  const res = bo.resource;
  if (res !== null) {
    if (bo.bulkMove !== null && bo.pinCount === 0) bo.bulkMove.del(res);
    bo.resource = null;
    ghost.resource = res;
    ghost.moveToLruTail();
  }
  if (takeTt) {
    ghost.tt = bo.tt;
    bo.tt = null;
  }
  return ghost;
}

/**
 * @internal
 * Drops the buffer's contents: it ends with no resource and an unpopulated (zero-reading) tt.
 * A busy buffer hands its memory to a ghost that frees it when its fences signal.
 * @see ttm_bo_pipeline_gutting()
 */
export async function ttmBoPipelineGutting(bo: TtmBufferObject): Promise<void> {
  if (bo.resv.testSignaled(DmaResvUsage.Bookkeep)) {
    if (bo.tt === null) bo.tt = new TtmTt(bo.size, TtmTtFlags.ZeroAlloc);
    else {
      bo.tt.unpopulate();
      bo.tt.flags |= TtmTtFlags.ZeroAlloc;
    }
    if (bo.resource !== null) {
      ttmResourceFree(bo, bo.resource);
      bo.resource = null;
    }
    return;
  }
  const ghost = ttmBufferObjectTransfer(bo, true);
  bo.tt = new TtmTt(bo.size, TtmTtFlags.ZeroAlloc);
  const fences = bo.resv.getFences(DmaResvUsage.Bookkeep);
  ghost.resv.reserveFences(Math.max(1, fences.length));
  for (const fence of fences) ghost.resv.addFence(fence, DmaResvUsage.Bookkeep);
  ghost.unreserve();
  ghost.put();
}

/** For messages: each place of `placement` with its manager's fill, and why it cannot take `size`. */
function describePlacementSpace(device: TtmBoDevice, placement: TtmPlacement, size: number): string {
  const parts = placement.map((place) => {
    const man = device.manager(place.memType);
    const what = describePlacement([place]).slice(1, -1);
    if (man === null) return `${what}: no manager for this type`;
    if (!man.useType) return `${what}: manager not in use`;
    if (man.size < size) return `${what}: ${size} bytes never fit (${man.size} bytes in all)`;
    return `${what}: ${man.usage} of ${man.size} bytes used`;
  });
  return parts.join('; ');
}
