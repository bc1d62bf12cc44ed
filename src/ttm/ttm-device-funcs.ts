/**
 * ttm-device-funcs: the driver functions a device uses where its driver gives none.
 *
 * Overview: a driver hands `TtmDevice` a {@link TtmDeviceFuncs} whose members are all
 * optional; {@link ttmDeviceFuncsResolve} fills the gaps with the defaults here, so buffer-object
 * code calls every callback without checking. {@link ttmBoEvictionValuable} says evicting a
 * buffer helps when its resource overlaps the requested window; {@link ttmBoEvictFlags} sends
 * VRAM to TT (System as fallback) when the device has a TT manager, and everything else to
 * System; {@link ttmBoMoveDefault} moves nothing where the pages can stay, queues a pipelined
 * copy when the device has a copy engine, and copies on the CPU otherwise. The notifications
 * default to doing nothing.
 *
 * Models the generic helpers a kernel driver plugs into `struct ttm_device_funcs`
 * (kernel-locking-mm §3.1, §3.5): `ttm_bo_eviction_valuable()` of `ttm_bo.c`, and the common
 * shape of a driver's `evict_flags` and `move` (amdgpu, radeon, nouveau). The kernel has no
 * default `move` or `evict_flags`; a device without a driver needs one to be usable.
 *
 * Contract:
 * - A resolved table has every member; a driver's member wins and is called with the driver's
 *   object as `this`.
 * - The defaults only use the buffer's own state and what its device shows through
 *   `TtmBoDevice`, so a driver may call them from its own callbacks.
 *
 * @example
 * ```ts
 * import { TtmDevice, TtmMemType, ttmBoEvictFlags, type TtmBufferObject } from 'dmabuf';
 * // A driver that never evicts to TT, and otherwise keeps the defaults.
 * const funcs = {
 *   evictFlags: (bo: TtmBufferObject) =>
 *     bo.resource?.memType === TtmMemType.VRAM ? [{ memType: TtmMemType.System }] : ttmBoEvictFlags(bo),
 * };
 * await using device = new TtmDevice({ vramBytes: 1 << 20, ttBytes: 1 << 20, funcs });
 * console.log(typeof device.funcs.move); // function: the default move
 * ```
 */

import { invalidArgument, requiredBoolean } from '../base/options.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import {
  TtmMemType,
  TtmPlaceFlags,
  checkPlacement,
  type TtmOperationCtx,
  type TtmPlace,
  type TtmPlacement,
} from './ttm-placement.js';
import { ttmResourceIntersects, type TtmResource } from './ttm-resource.js';
import { TTM_MOVE_NOW, TtmBufferObject, type TtmDeviceFuncs, type TtmMoveNow } from './ttm-bo.js';
import {
  checkMove,
  ttmBoCopyIdle,
  ttmBoMoveAccelCleanup,
  ttmBoMoveMemcpy,
  ttmBoMoveNull,
  ttmBoSourceBytes,
} from './ttm-bo-util.js';

/**
 * Whether evicting `bo` helps a request for `place`: always for System, else when its resource
 * overlaps the place's range. @see ttm_bo_eviction_valuable()
 */
export function ttmBoEvictionValuable(bo: TtmBufferObject, place: TtmPlace): boolean {
  if (!(bo instanceof TtmBufferObject)) throw invalidArgument('ttmBoEvictionValuable', 'bo', bo, 'a TtmBufferObject');
  checkPlacement([place], 'ttmBoEvictionValuable');
  const res = bo.resource;
  if (res === null) return false;
  if (res.memType === TtmMemType.System) return true;
  return ttmResourceIntersects(res, place, bo.size);
}

const VRAM_EVICTION: TtmPlacement = Object.freeze([
  { memType: TtmMemType.TT },
  { memType: TtmMemType.System, flags: TtmPlaceFlags.Fallback },
]);
const SYSTEM: TtmPlacement = Object.freeze([{ memType: TtmMemType.System }]);

/**
 * Where an evicted buffer goes by default: from VRAM to TT (System as fallback) when the device
 * has a TT manager, from anywhere else to System. @see ttm_device_funcs.evict_flags
 */
export function ttmBoEvictFlags(bo: TtmBufferObject): TtmPlacement {
  if (!(bo instanceof TtmBufferObject)) throw invalidArgument('ttmBoEvictFlags', 'bo', bo, 'a TtmBufferObject');
  if (bo.resource?.memType === TtmMemType.VRAM && bo.device.manager(TtmMemType.TT) !== null) return VRAM_EVICTION;
  return SYSTEM;
}

/**
 * The default move: a null move where the pages need not move, a pipelined copy when the
 * device has a copy engine, a memcpy otherwise. @see ttm_device_funcs.move
 */
export async function ttmBoMoveDefault(
  bo: TtmBufferObject,
  evict: boolean,
  ctx: TtmOperationCtx,
  newRes: TtmResource,
): Promise<void> {
  const moving = ttmBoMoveDefaultNow(bo, evict, ctx, newRes);
  if (moving !== undefined) await moving;
}

/**
 * {@link ttmBoMoveDefault} as far as it gets synchronously (its `TTM_MOVE_NOW` form): undefined
 * when the move is done (a null move, or a memcpy of an idle buffer), else the promise of the
 * rest. Same effects, in the same order; errors are thrown instead of rejected.
 */
function ttmBoMoveDefaultNow(
  bo: TtmBufferObject,
  evict: boolean,
  ctx: TtmOperationCtx,
  newRes: TtmResource,
): Promise<void> | undefined {
  checkMove('ttmBoMoveDefault', bo, newRes, ctx);
  requiredBoolean(evict, 'ttmBoMoveDefault', 'evict');
  const old = bo.resource;
  const src = old === null ? null : ttmBoSourceBytes(bo, old);
  // Between two types that use the tt the pages stay put; into a tt, no pages read as zeros.
  if (newRes.manager.useTt && (src === null || old!.manager.useTt)) {
    ttmBoMoveNull(bo, newRes);
    return undefined;
  }
  const engine = bo.device.copyEngine;
  if (engine === null) {
    // An idle buffer is copied here and now, without the extra async frame of ttmBoMoveMemcpy.
    if (!bo.resv.testSignaled(DmaResvUsage.Bookkeep)) return ttmBoMoveMemcpy(bo, ctx, newRes);
    ttmBoCopyIdle(bo, newRes, src);
    return undefined;
  }
  // The copy (or clear: VRAM is never handed out with a previous owner's bytes) runs after every
  // fence of the buffer, including the eviction fences of the range it lands in.
  const dst = bo.device.resourceBytes(bo, newRes);
  const fence = engine.copy(src === null ? null : () => src, () => dst, bo.resv.getFences(DmaResvUsage.Bookkeep));
  return ttmBoMoveAccelCleanup(bo, fence, evict, true, newRes);
}

Object.defineProperty(ttmBoMoveDefault, TTM_MOVE_NOW, { value: ttmBoMoveDefaultNow satisfies TtmMoveNow });

const nothing = (): void => {};

/** @internal A driver's functions with the defaults filled in; each given member keeps its object as `this`. */
export function ttmDeviceFuncsResolve(funcs: TtmDeviceFuncs): Required<TtmDeviceFuncs> {
  return {
    evictionValuable: funcs.evictionValuable?.bind(funcs) ?? ttmBoEvictionValuable,
    evictFlags: funcs.evictFlags?.bind(funcs) ?? ttmBoEvictFlags,
    move: funcs.move?.bind(funcs) ?? ttmBoMoveDefault,
    releaseNotify: funcs.releaseNotify?.bind(funcs) ?? nothing,
    deleteMemNotify: funcs.deleteMemNotify?.bind(funcs) ?? nothing,
  };
}
