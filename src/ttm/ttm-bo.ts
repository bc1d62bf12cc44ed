/**
 * ttm-bo: buffer objects that live in budgeted memory types and move between them.
 *
 * Overview: a {@link TtmBufferObject} is a buffer of a fixed size whose contents sit in one
 * {@link TtmResource} at a time: a range of the device's VRAM arena, or the object's system
 * pages ({@link TtmTt}) for System, TT and other types that use a tt. {@link TtmBufferObject.validate}
 * moves it into the first workable place of a placement, evicting other buffers when the memory
 * type is full (two passes: first without eviction, then forcing space, trying fallback places).
 * The reservation ({@link DmaResv}, possibly shared by a group of buffers) is the object's lock
 * and carries the fences of the work using it; a buffer released while that work runs becomes a
 * zombie that a work item frees once the last fence signals (seed 004).
 *
 * Models `drivers/gpu/drm/ttm/ttm_bo.c` of the 7.0-era kref baseline (kernel-locking-mm §3.3,
 * §3.5, §3.6): `ttm_bo_init_reserved/validate`, `ttm_bo_reserve/unreserve`, `ttm_bo_validate`,
 * `ttm_bo_pin/unpin`, `ttm_bo_set_bulk_move`, `ttm_bo_wait_ctx`, `ttm_bo_put` / `ttm_bo_release`
 * and `ttm_bo_delayed_delete`. Allocation with eviction is in `ttm-bo-evict.ts`; moves,
 * ghosts and gutting are in `ttm-bo-util.ts`.
 *
 * Contract:
 * - Everything that reads or changes placement, pins or contents needs the reservation held
 *   ({@link BugError} otherwise); so do the `resource` and `tt` setters used by move code.
 * - `validate` rejects with `DmaBufError`: ENOMEM when nothing fits even after eviction
 *   (ENOSPC with the device's `propagateEnospc`), EINVAL for a pinned buffer that would have to
 *   move, EBUSY for a manager that is busy or a `noWaitGpu` wait, and `signal.reason` when
 *   aborted. It never rejects with EDEADLK: a ww deadlock met while evicting counts as no space.
 *   A failed validate leaves the buffer where it was with its contents intact.
 * - Pinned buffers never move and are never evicted; their resource sits on the device's
 *   unevictable list. Unpinning an unpinned buffer is a {@link BugError}.
 * - The last {@link TtmBufferObject.put} frees an idle buffer at once; a busy one (or one whose
 *   lock is held) becomes a zombie (`deleted`) holding its memory until the last fence of its
 *   own reservation signals. Eviction may free a zombie's memory earlier. Any use after the
 *   buffer was destroyed is a {@link BugError}.
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

import { BugError, DmaBufError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';
import type { WwAcquireCtx } from '../locking/ww-mutex.js';
import {
  TtmMemType,
  ttmResourceCompatible,
  ttmResourceFree,
  ttmResourceMoveToLruTail,
  type TtmPlace,
  type TtmPlacement,
  type TtmResource,
  type TtmResourceOwner,
} from './ttm-resource.js';
import { TTM_MAX_BO_PRIORITY, type TtmLruBulkMove } from './ttm-lru.js';
import { TtmTt, TtmTtFlags } from './ttm-tt.js';
// biome-ignore lint/suspicious/noImportCycles: the ttm re-cut of issue 11 removes this circle
import { checkPlacement, describePlacement, ttmBoPipelineGutting } from './ttm-bo-util.js';
// biome-ignore lint/suspicious/noImportCycles: the ttm re-cut of issue 11 removes this circle
import { ttmBoAllocResource, ttmBoEvict, ttmBoMemSpace } from './ttm-bo-evict.js';
import type { TtmDevice } from './ttm-device.js';

/** Kinds of buffer object. @see enum ttm_bo_type */
export const TtmBoType = { Device: 'device', Kernel: 'kernel', Sg: 'sg' } as const;
export type TtmBoType = (typeof TtmBoType)[keyof typeof TtmBoType];

/** How long a wait for idle may take before it counts as busy (the kernel's 15 s). */
export const TTM_BO_WAIT_TIMEOUT_MS = 15_000;

/** Options of one TTM operation, and what it moved. @see struct ttm_operation_ctx */
export class TtmOperationCtx {
  /** Waits may be interrupted through `signal` (the kernel's interruptible sleeps). */
  interruptible: boolean;
  /** Fail with EBUSY instead of waiting for fences. */
  noWaitGpu: boolean;
  /** May evict buffers sharing `resv`, which the caller already holds. */
  allowResEvict: boolean;
  /** The shared reservation for `allowResEvict`. */
  resv: DmaResv | null;
  /** Aborts waits and lock sleeps. */
  signal: AbortSignal | undefined;
  /** Bytes moved by every move this context saw (statistics). */
  bytesMoved = 0;

  constructor(init?: {
    interruptible?: boolean;
    noWaitGpu?: boolean;
    allowResEvict?: boolean;
    resv?: DmaResv | null;
    signal?: AbortSignal;
  }) {
    this.interruptible = init?.interruptible ?? false;
    this.noWaitGpu = init?.noWaitGpu ?? false;
    this.allowResEvict = init?.allowResEvict ?? false;
    this.resv = init?.resv ?? null;
    this.signal = init?.signal;
  }
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
  readonly interruptible?: boolean;
  /** Trylock only: EBUSY when the lock is taken (not allowed with a ticket). */
  readonly noWait?: boolean;
  readonly ticket?: WwAcquireCtx | null;
  readonly signal?: AbortSignal;
}

const INIT_KEYS = new Set(['size', 'type', 'resv', 'priority', 'name', 'bulkMove', 'placement']);
const BO_TYPES = new Set<string>(Object.values(TtmBoType));

/** A buffer object. @see struct ttm_buffer_object */
export class TtmBufferObject implements TtmResourceOwner {
  readonly device: TtmDevice;
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
  #refcount = 1;
  #deleted = false;
  /** The delayed delete still holds the zombie's reference. */
  #zombieRef = false;
  #destroyed = false;
  /** For a ghost: the object whose old memory it frees (holds a reference on it). */
  readonly #ghostOf: TtmBufferObject | null;

  /**
   * A buffer with one reference, no resource, no tt, unlocked (`ttm_bo_kunit_init`).
   * Use {@link TtmBufferObject.initReserved} or {@link TtmBufferObject.initValidate} to place it.
   * @throws {InvalidArgumentError} for a bad size, type, priority or option.
   */
  constructor(device: TtmDevice, init: TtmBoInit, ghostOf: TtmBufferObject | null = null) {
    if (init === null || typeof init !== 'object')
      throw new InvalidArgumentError(`TtmBufferObject: init must be an object, got ${describeValue(init)}`);
    for (const key of Object.keys(init)) {
      if (!INIT_KEYS.has(key))
        throw new InvalidArgumentError(
          `TtmBufferObject: unknown option '${key}' (known: ${[...INIT_KEYS].join(', ')})`,
        );
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
    this.device = device;
    this.size = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    this.type = type;
    this.priority = priority;
    this.name = init.name ?? `bo#${device.nextBoId()} (${this.size} bytes)`;
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
    device: TtmDevice,
    init: TtmBoInitPlaced,
    ctx = new TtmOperationCtx(),
  ): Promise<TtmBufferObject> {
    checkPlacement(init.placement, 'TtmBufferObject.initReserved');
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
    device: TtmDevice,
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
    return this.#refcount;
  }

  get swapped(): boolean {
    return this.#tt !== null && (this.#tt.flags & TtmTtFlags.Swapped) !== 0;
  }

  /** Takes a reference. @throws {BugError} once released. @see ttm_bo_get() */
  get(): this {
    if (this.#refcount <= 0 || this.#deleted || this.#destroyed)
      throw new BugError(`${this.name}: get() after the last put (use after free)`);
    this.#refcount++;
    return this;
  }

  /** Takes a reference unless the count already reached zero (zombies still count). @see ttm_bo_get_unless_zero() */
  getUnlessZero(): boolean {
    if (this.#refcount <= 0) return false;
    this.#refcount++;
    return true;
  }

  /** Drops a reference; the last one releases the buffer. @see ttm_bo_put() */
  put(): void {
    // A zombie's last reference belongs to its delayed delete, never to a caller.
    if (this.#refcount <= 0 || (this.#zombieRef && this.#refcount === 1))
      throw new BugError(`${this.name}: put() without a reference (double put)`);
    if (--this.#refcount === 0) this.#release();
  }

  /** Drops the zombie's own reference once its memory is freed: the buffer is destroyed. */
  #putZombie(): void {
    this.#zombieRef = false;
    if (--this.#refcount === 0) this.#release();
  }

  /**
   * Takes the reservation lock. Rejects with `DmaBufError('EBUSY')` for `noWait` when it is
   * taken (or with a ticket), `WwDeadlockError` (EDEADLK) / `AlreadyLockedError` (EALREADY) from
   * the ww lock, or `signal.reason`. @see ttm_bo_reserve()
   */
  async reserve(options: TtmReserveOptions = {}): Promise<void> {
    this.#assertAlive('reserve');
    const ticket = options.ticket ?? null;
    if (options.noWait === true) {
      if (ticket !== null)
        throw new DmaBufError(
          'EBUSY',
          `${this.name}: reserve() with noWait cannot use a ticket; trylock without one or sleep with it`,
        );
      if (!this.#resv.tryLock())
        throw new DmaBufError('EBUSY', `${this.name}: reservation is held by someone else (noWait)`);
      return;
    }
    await this.#resv.lock(ticket, options.signal === undefined ? undefined : { signal: options.signal });
  }

  /** Takes the lock after a back-off, holding nothing else in `ticket`. @see ttm_bo_reserve_slowpath() */
  async reserveSlowpath(ticket: WwAcquireCtx, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertAlive('reserveSlowpath');
    await this.#resv.lockSlow(ticket, options);
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
    this.#assertLocked('validate');
    checkPlacement(placement, `${this.name}: validate`);
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
          `${this.name} is pinned in ${this.device.describeResource(this.#resource)} and cannot move to ${describePlacement(placement)}; unpin it first`,
        );
      }
      const res = await this.allocResource(placement, ctx, forceSpace);
      forceSpace = !forceSpace;
      if (res === 'ENOSPC') {
        noSpace = true;
        continue;
      }
      noSpace = false;
      await this.moveTo(res, false, ctx);
    } while (noSpace && forceSpace);
    if (noSpace) {
      throw new DmaBufError(
        this.device.propagateEnospc ? 'ENOSPC' : 'ENOMEM',
        `${this.name}: no space in ${this.device.describePlacementSpace(placement, this.size)} even after evicting; free or unpin buffers, or add a fallback place`,
      );
    }
    if (this.#resource === null || this.#resource.memType === TtmMemType.System) this.#ensureTt();
  }

  /**
   * Moves the contents into `res` (allocated for this buffer), through a bounce place when the
   * driver's move asks for one; frees `res` when the move fails. @see ttm_bo_handle_move_mem()
   */
  async moveTo(res: TtmResource, evict: boolean, ctx: TtmOperationCtx): Promise<void> {
    try {
      let result = await this.#handleMoveMem(res, evict, ctx);
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
      if (this.#resource !== res && res.bo !== null) ttmResourceFree(this, res);
      throw error;
    }
  }

  async #handleMoveMem(res: TtmResource, evict: boolean, ctx: TtmOperationCtx): Promise<{ hop: TtmPlace } | undefined> {
    const device = this.device;
    const oldUseTt = this.#resource === null || this.#resource.manager.useTt;
    const newUseTt = res.manager.useTt;
    if (newUseTt) {
      this.#ensureTt();
      if (res.memType !== TtmMemType.System) this.#tt!.populate(device.heap);
    }
    try {
      this.#resv.reserveFences(1);
      const result = await device.funcs.move(this, evict, ctx, res);
      if (result !== undefined && result !== null) return result;
    } catch (error) {
      if (!oldUseTt && this.#resource !== null && !this.#resource.manager.useTt) this.destroyTt();
      throw error;
    }
    ctx.bytesMoved += this.size;
    device.countMove(this.size);
    return undefined;
  }

  /** Allocates space per `placement` with the two passes. @see ttm_bo_mem_space() */
  memSpace(placement: TtmPlacement, ctx: TtmOperationCtx): Promise<TtmResource | 'ENOSPC'> {
    return ttmBoMemSpace(this, placement, ctx);
  }

  /** One pass over `placement`, evicting when forcing space. @see ttm_bo_alloc_resource() */
  allocResource(placement: TtmPlacement, ctx: TtmOperationCtx, forceSpace: boolean): Promise<TtmResource | 'ENOSPC'> {
    this.#assertLocked('allocResource');
    return ttmBoAllocResource(this, placement, ctx, forceSpace);
  }

  /** Evicts this buffer (needs the lock) to where `funcs.evictFlags` says. @see ttm_bo_evict() */
  async evict(ctx = new TtmOperationCtx()): Promise<void> {
    this.#assertLocked('evict');
    await ttmBoEvict(this, ctx);
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
        `${this.name}: a move into ${this.device.describeResource(res)} is still running; await bo.waitIdle() first`,
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
        this.#refcount = 1;
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

  describe(): string {
    const state = this.#destroyed ? 'destroyed' : this.#deleted ? 'zombie' : `refs ${this.#refcount}`;
    const pins = this.#pinCount > 0 ? `, pinned x${this.#pinCount}` : '';
    return `${this.name}: ${this.device.describeResource(this.#resource)}, ${state}${pins}`;
  }

  toString(): string {
    return `TtmBufferObject(${this.describe()})`;
  }

  #assertAlive(op: string): void {
    if (this.#destroyed || this.#refcount <= 0)
      throw new BugError(`${this.name}: ${op} after the buffer was released (use after free)`);
  }

  #assertLocked(op: string): void {
    this.#assertAlive(op);
    if (!this.#resv.isLocked)
      throw new BugError(`${this.name}: ${op} needs the reservation lock held; reserve() the buffer first`);
  }
}
