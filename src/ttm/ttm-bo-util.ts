/**
 * ttm-bo-util: the moves a driver's `move` callback picks from.
 *
 * Overview: {@link ttmBoMoveNull} just swaps the resource (the pages stay where they are, as
 * between two types that use a tt); {@link ttmBoMoveMemcpy} copies the bytes on the CPU, after
 * the buffer is idle; a pipelined move queues the copy on the device's {@link TtmCopyEngine}
 * and hands the fence to {@link ttmBoMoveAccelCleanup}, which leaves the old memory with a ghost
 * object (freed when the copy fence signals) or, when evicting from VRAM, frees it at once and
 * parks the fence in the source manager's eviction slots so the next allocation there waits for
 * the copy. The device's default move (`ttm-device-funcs.ts`) chooses among them; ghosts and
 * gutting, which validate and evict need too, are in `ttm-bo.ts`.
 *
 * Models the move half of `drivers/gpu/drm/ttm/ttm_bo_util.c` (kernel-locking-mm §3.7):
 * `ttm_bo_move_memcpy`, `ttm_bo_move_sync_cleanup`, `ttm_bo_move_null` and
 * `ttm_bo_move_accel_cleanup` (`ttm_bo_move_to_ghost`, `ttm_bo_move_pipeline_evict`).
 *
 * Contract:
 * - Every move ends with the buffer's resource replaced by the new one and the old one freed,
 *   now or (pipelined) once nothing reads it any more; bytes are never lost or read after free.
 * - A memcpy move waits for the buffer to be idle first (EBUSY with `noWaitGpu`), so no GPU
 *   work and no pending copy can race the CPU copy.
 *
 * @example
 * ```ts
 * import { TtmBufferObject, TtmDevice, TtmMemType, ttmBoMoveMemcpy, type TtmDeviceFuncs } from 'dmabuf';
 * // A driver whose move always copies on the CPU.
 * const funcs: TtmDeviceFuncs = { move: (bo, _evict, ctx, res) => ttmBoMoveMemcpy(bo, ctx, res) };
 * await using device = new TtmDevice({ vramBytes: 1 << 20, funcs });
 * const bo = await TtmBufferObject.initValidate(device, { size: 4096, placement: [{ memType: TtmMemType.VRAM }] });
 * bo.put();
 * ```
 */

import { BugError } from '../base/errors.js';
import { invalidArgument, requiredBoolean } from '../base/options.js';
import { DmaFence } from '../fence/dma-fence.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import { TtmOperationCtx } from './ttm-placement.js';
import { TtmResource, ttmResourceFree } from './ttm-resource.js';
import { TtmBufferObject, ttmBufferObjectTransfer } from './ttm-bo.js';

/** @internal The arguments every move helper shares: a buffer object and the resource it moves into. */
export function checkMove(fn: string, bo: unknown, newRes: unknown, ctx?: unknown): void {
  if (!(bo instanceof TtmBufferObject)) throw invalidArgument(fn, 'bo', bo, 'a TtmBufferObject');
  if (!(newRes instanceof TtmResource)) throw invalidArgument(fn, 'newRes', newRes, 'a TtmResource');
  if (ctx !== undefined && !(ctx instanceof TtmOperationCtx)) {
    throw invalidArgument(fn, 'ctx', ctx, 'a TtmOperationCtx');
  }
}

/** Replaces the resource without touching the bytes, freeing the old one. @see ttm_bo_move_null() */
export function ttmBoMoveNull(bo: TtmBufferObject, newRes: TtmResource): void {
  checkMove('ttmBoMoveNull', bo, newRes);
  moveNull(bo, newRes);
}

/** Frees the old resource of an idle buffer and assigns the new one. @see ttm_bo_move_sync_cleanup() */
export function ttmBoMoveSyncCleanup(bo: TtmBufferObject, newRes: TtmResource): void {
  checkMove('ttmBoMoveSyncCleanup', bo, newRes);
  moveSyncCleanup(bo, newRes);
}

// The two above without their argument checks, for the copy below, whose caller checked them.
function moveNull(bo: TtmBufferObject, newRes: TtmResource): void {
  const old = bo.resource;
  if (old !== null) ttmResourceFree(bo, old);
  bo.resource = newRes;
}

function moveSyncCleanup(bo: TtmBufferObject, newRes: TtmResource): void {
  if (!newRes.manager.useTt) bo.destroyTt();
  moveNull(bo, newRes);
}

/**
 * Copies the bytes on the CPU into `newRes` (zeros when the source has no pages), after waiting
 * for the buffer to be idle. @see ttm_bo_move_memcpy()
 */
export async function ttmBoMoveMemcpy(bo: TtmBufferObject, ctx: TtmOperationCtx, newRes: TtmResource): Promise<void> {
  checkMove('ttmBoMoveMemcpy', bo, newRes, ctx);
  // Idle is the common case: skip the await (a microtask turn per move).
  if (!bo.resv.testSignaled(DmaResvUsage.Bookkeep)) await bo.waitIdle(ctx);
  ttmBoCopyIdle(bo, newRes);
}

/**
 * @internal The copy of {@link ttmBoMoveMemcpy} once the buffer is idle, synchronous. Its
 * callers checked the arguments (`checkMove`); `src`, when given, is what
 * {@link ttmBoSourceBytes} returned for the current resource just now (the default move has it).
 */
export function ttmBoCopyIdle(
  bo: TtmBufferObject,
  newRes: TtmResource,
  src: Uint8Array | null = bo.resource === null ? null : ttmBoSourceBytes(bo, bo.resource),
): void {
  const dst = bo.device.resourceBytes(bo, newRes);
  if (src === null) dst.fill(0);
  else if (src !== dst && (src.buffer !== dst.buffer || src.byteOffset !== dst.byteOffset)) dst.set(src);
  moveSyncCleanup(bo, newRes);
}

/** @internal The bytes a move copies out of `res`, or null when they read as zeros (an unpopulated tt). */
export function ttmBoSourceBytes(bo: TtmBufferObject, res: TtmResource): Uint8Array | null {
  if (res.manager.useTt) return bo.tt?.populated === true ? bo.tt.bytes() : null;
  return bo.device.resourceBytes(bo, res);
}

/**
 * Finishes a move whose copy signals `fence`: the fence guards the buffer, and the old memory
 * is freed when nothing reads it any more (a ghost, or the source manager's eviction slots).
 * @see ttm_bo_move_accel_cleanup()
 */
export async function ttmBoMoveAccelCleanup(
  bo: TtmBufferObject,
  fence: DmaFence,
  evict: boolean,
  pipeline: boolean,
  newRes: TtmResource,
): Promise<void> {
  checkMove('ttmBoMoveAccelCleanup', bo, newRes);
  if (!(fence instanceof DmaFence)) throw invalidArgument('ttmBoMoveAccelCleanup', 'fence', fence, 'a DmaFence');
  requiredBoolean(evict, 'ttmBoMoveAccelCleanup', 'evict');
  requiredBoolean(pipeline, 'ttmBoMoveAccelCleanup', 'pipeline');
  const from = bo.resource;
  bo.resv.reserveFences(1);
  bo.resv.addFence(fence, DmaResvUsage.Kernel);
  if (from === null) {
    bo.resource = newRes;
    return;
  }
  if (!evict) {
    const ghost = ttmBufferObjectTransfer(bo, !newRes.manager.useTt);
    ghost.resv.addFence(fence, DmaResvUsage.Kernel);
    ghost.unreserve();
    ghost.put();
  } else if (!from.manager.useTt && pipeline) {
    if (!from.manager.addEvictionFence(fence)) {
      bo.device.warn(`${from.manager.name}: not enough eviction fence slots; waiting for the copy instead`);
      await fence.wait();
    }
    ttmResourceFree(bo, from);
    bo.resource = null;
    if (!newRes.manager.useTt) bo.destroyTt();
  } else {
    // Evicting out of pages that stay with the buffer: wait, then drop the old node.
    await fence.wait();
    if (!newRes.manager.useTt) bo.destroyTt();
    ttmResourceFree(bo, from);
    bo.resource = null;
  }
  if (bo.resource !== null) throw new BugError(`${bo.name}: a resource is still attached after the move`);
  bo.resource = newRes;
}
