/**
 * ttm-bo-evict: finding room for a buffer object, evicting others when a memory type is full.
 *
 * Overview: {@link ttmBoAllocResource} makes one pass over a placement. Without `forceSpace` it
 * only takes free space in the non-fallback places; with it, it skips the places marked desired,
 * and when a memory type other than System is full it walks that manager's LRU
 * ({@link ttmLruWalkForEvict}), evicting the least recently used buffers of the lowest priority
 * first, until the request fits. A resource taken from a manager with pipelined evictions still
 * running gets their fences as kernel fences, so nothing touches the range before the copy out
 * of it finished. {@link ttmBoMemSpace} is the two passes in a row, which {@link ttmBoEvict}
 * uses to find where an evicted buffer goes.
 *
 * Models the allocation and eviction half of `drivers/gpu/drm/ttm/ttm_bo.c` (kernel-locking-mm
 * §3.5): `ttm_bo_alloc_resource`, `ttm_bo_add_pipelined_eviction_fences`, `ttm_bo_mem_space`,
 * `ttm_bo_evict_alloc`, `ttm_bo_evict_cb`, `ttm_bo_evict`, `ttm_bo_eviction_valuable`, and
 * `ttm_lru_walk_for_evict` with the cursor locking of `ttm_bo_util.c`.
 *
 * Contract:
 * - The evictor's reservation is held; so is every buffer while it is processed, and it is
 *   referenced (`getUnlessZero`) for that time. Pinned buffers, the evictor itself, and buffers
 *   whose eviction the driver says does not help are skipped.
 * - A walk first only trylocks; with a ww ticket, further walks may each sleep on one lock and
 *   repeat while they evict. A ww deadlock ends the walk as "no space"; EDEADLK never escapes.
 * - Expected outcomes are return codes ('ENOSPC', 'EBUSY'); thrown errors are real failures
 *   (an aborted wait, a driver error) and pass through.
 *
 * @example
 * ```ts
 * import { TtmBufferObject, TtmDevice, TtmMemType, TtmOperationCtx, ttmBoMemSpace } from 'dmabuf';
 * await using device = new TtmDevice({ vramBytes: 64 << 10 });
 * const bo = new TtmBufferObject(device, { size: 16 << 10 });
 * await bo.reserve();
 * const res = await ttmBoMemSpace(bo, [{ memType: TtmMemType.VRAM }], new TtmOperationCtx());
 * console.log(typeof res === 'string' ? res : res.start); // 0
 * if (typeof res !== 'string') await bo.moveTo(res, false, new TtmOperationCtx());
 * bo.unreserve();
 * bo.put();
 * ```
 */

import { AlreadyLockedError, DmaBufError, WwDeadlockError } from '../base/errors.js';
import type { WwAcquireCtx } from '../locking/ww-mutex.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import {
  TTM_NUM_MOVE_FENCES,
  TtmMemType,
  TtmPlaceFlags,
  ttmResourceAlloc,
  ttmResourceFree,
  ttmResourceIntersects,
  type TtmPlace,
  type TtmPlacement,
  type TtmResource,
  type TtmResourceManager,
} from './ttm-resource.js';
// biome-ignore lint/suspicious/noImportCycles: the ttm re-cut of issue 11 removes this circle
import { checkPlacement, describePlacement, ttmBoPipelineGutting } from './ttm-bo-util.js';
// biome-ignore lint/suspicious/noImportCycles: the ttm re-cut of issue 11 removes this circle
import { TtmBufferObject, type TtmOperationCtx } from './ttm-bo.js';

/**
 * One pass over `placement`: allocate, evicting when forcing space; picks up the manager's
 * pipelined-eviction fences as kernel fences. @see ttm_bo_alloc_resource()
 */
export async function ttmBoAllocResource(
  bo: TtmBufferObject,
  placement: TtmPlacement,
  ctx: TtmOperationCtx,
  forceSpace: boolean,
): Promise<TtmResource | 'ENOSPC'> {
  const ticket = bo.resv.lockingCtx;
  bo.resv.reserveFences(TTM_NUM_MOVE_FENCES);
  for (const place of placement) {
    const man = bo.device.manager(place.memType);
    if (man === null || !man.useType) continue;
    const flags = place.flags ?? 0;
    if (forceSpace ? (flags & TtmPlaceFlags.Desired) !== 0 : (flags & TtmPlaceFlags.Fallback) !== 0) continue;
    const mayEvict = forceSpace && place.memType !== TtmMemType.System;
    let res = ttmResourceAlloc(bo, place, man);
    if (res === 'EBUSY') throw new DmaBufError('EBUSY', `${bo.name}: manager ${man.name} is busy`);
    if (res === 'ENOSPC') {
      if (!mayEvict) continue;
      const evicted = await evictAlloc(bo, man, place, ctx, ticket);
      if (evicted === 'EBUSY') continue;
      res = evicted;
    }
    if (!addPipelinedEvictionFences(bo, man, ctx.noWaitGpu)) {
      ttmResourceFree(bo, res);
      continue;
    }
    return res;
  }
  return 'ENOSPC';
}

/** The two passes: free space first, then forcing space. @see ttm_bo_mem_space() */
export async function ttmBoMemSpace(
  bo: TtmBufferObject,
  placement: TtmPlacement,
  ctx: TtmOperationCtx,
): Promise<TtmResource | 'ENOSPC'> {
  const res = await bo.allocResource(placement, ctx, false);
  return res !== 'ENOSPC' ? res : bo.allocResource(placement, ctx, true);
}

/** @returns false when a copy out of `man` is still running and the caller may not wait. */
function addPipelinedEvictionFences(bo: TtmBufferObject, man: TtmResourceManager, noWaitGpu: boolean): boolean {
  const pending = man.evictionFences.filter((f): f is NonNullable<typeof f> => f !== null && !f.isSignaled());
  if (pending.length === 0) return true;
  if (noWaitGpu) return false;
  for (const fence of pending) bo.resv.addFence(fence, DmaResvUsage.Kernel);
  return true;
}

/**
 * Evicts from `man`'s LRU until `place` fits: a trylock walk first, then walks that may sleep
 * on one ticket lock each, repeated while they evict. @see ttm_bo_evict_alloc()
 */
async function evictAlloc(
  bo: TtmBufferObject,
  man: TtmResourceManager,
  place: TtmPlace,
  ctx: TtmOperationCtx,
  ticket: WwAcquireCtx | null,
): Promise<TtmResource | 'EBUSY'> {
  const walk: TtmEvictWalk = { evictor: bo, place, ctx, ticket, trylockOnly: true, evicted: 0, res: null };
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
 * Evicts `bo` (locked by the caller) to where `funcs.evictFlags` says; an empty placement purges
 * it. @throws {DmaBufError} ENOSPC when there is nowhere to go. @see ttm_bo_evict()
 */
export async function ttmBoEvict(bo: TtmBufferObject, ctx: TtmOperationCtx): Promise<void> {
  const placement = bo.device.funcs.evictFlags(bo);
  checkPlacement(placement, `${bo.name}: evictFlags()`);
  if (placement.length === 0) {
    await bo.waitIdle(ctx);
    await ttmBoPipelineGutting(bo);
  } else {
    const res = await ttmBoMemSpace(bo, placement, ctx);
    if (res === 'ENOSPC')
      throw new DmaBufError('ENOSPC', `${bo.name}: no space to evict to in ${describePlacement(placement)}`);
    await bo.moveTo(res, true, ctx);
  }
  bo.device.countEviction();
}

/**
 * Whether evicting `bo` helps a request for `place`: always for System, else when its resource
 * overlaps the place's range. @see ttm_bo_eviction_valuable()
 */
export function ttmBoEvictionValuable(bo: TtmBufferObject, place: TtmPlace): boolean {
  const res = bo.resource;
  if (res === null) return false;
  if (res.memType === TtmMemType.System) return true;
  return ttmResourceIntersects(res, place, bo.size);
}

/** State of one eviction walk. @see struct ttm_bo_evict_walk */
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
 * Walks `man`'s LRU (priority 0 first) evicting until the evictor's resource fits.
 * @returns 1 when the resource was allocated (in `walk.res`), 0 when not.
 * @throws a walk error (abort, or an unexpected failure); a ww deadlock becomes
 *   `DmaBufError('ENOSPC')` only inside, and ends the walk with 0.
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
  const device = bo.device;
  if (bo.pinCount > 0 || !device.funcs.evictionValuable(bo, walk.place)) return false;
  try {
    if (bo.deleted) {
      await bo.waitIdle(walk.ctx);
      bo.cleanupMemtypeUse();
    } else {
      await bo.evict(walk.ctx);
    }
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
