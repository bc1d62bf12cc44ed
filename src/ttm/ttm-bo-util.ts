/**
 * ttm-bo-util: moving a buffer object's contents, ghost objects, and purging.
 *
 * Overview: a driver's `move` callback picks one of the moves here. {@link ttmBoMoveNull} just
 * swaps the resource (the pages stay where they are, as between two types that use a tt);
 * {@link ttmBoMoveMemcpy} copies the bytes on the CPU, after the buffer is idle; a pipelined move
 * queues the copy on the device's {@link TtmCopyEngine} and hands the fence to
 * {@link ttmBoMoveAccelCleanup}, which leaves the old memory with a ghost object (freed when the
 * copy fence signals) or, when evicting from VRAM, frees it at once and parks the fence in the
 * source manager's eviction slots so the next allocation there waits for the copy.
 * {@link ttmBoPipelineGutting} drops the contents. (The eviction walk is in `ttm-bo-evict.ts`.)
 *
 * Models `drivers/gpu/drm/ttm/ttm_bo_util.c` (kernel-locking-mm §3.5, §3.7):
 * `ttm_bo_move_memcpy`, `ttm_bo_move_sync_cleanup`, `ttm_bo_move_null`,
 * `ttm_buffer_object_transfer`, `ttm_bo_move_accel_cleanup` (`ttm_bo_move_to_ghost`,
 * `ttm_bo_move_pipeline_evict`), and `ttm_bo_pipeline_gutting`.
 *
 * Contract:
 * - Every move ends with the buffer's resource replaced by the new one and the old one freed,
 *   now or (pipelined) once nothing reads it any more; bytes are never lost or read after free.
 * - A memcpy move waits for the buffer to be idle first (EBUSY with `noWaitGpu`), so no GPU
 *   work and no pending copy can race the CPU copy.
 *
 * @example
 * ```ts
 * import { TtmBufferObject, TtmDevice, TtmMemType, ttmBoMoveMemcpy } from 'dmabuf';
 * // A driver whose move always copies on the CPU.
 * await using device = new TtmDevice({ vramBytes: 1 << 20, funcs: { move: (bo, _evict, ctx, res) => ttmBoMoveMemcpy(bo, ctx, res) } });
 * const bo = await TtmBufferObject.initValidate(device, { size: 4096, placement: [{ memType: TtmMemType.VRAM }] });
 * bo.put();
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import type { DmaFence } from '../fence/dma-fence.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import {
  TtmMemType,
  TtmPlaceFlags,
  ttmResourceFree,
  type TtmPlace,
  type TtmPlacement,
  type TtmResource,
} from './ttm-resource.js';
import { TTM_NUM_MEM_TYPES } from './ttm-lru.js';
import { TtmTt, TtmTtFlags } from './ttm-tt.js';
// biome-ignore lint/suspicious/noImportCycles: the ttm re-cut of issue 11 removes this circle
import { TtmBufferObject, type TtmOperationCtx } from './ttm-bo.js';

const KNOWN_FLAGS =
  TtmPlaceFlags.Contiguous |
  TtmPlaceFlags.TopDown |
  TtmPlaceFlags.Temporary |
  TtmPlaceFlags.Desired |
  TtmPlaceFlags.Fallback;
const MEM_TYPE_NAMES = ['System', 'TT', 'VRAM', 'Priv'];

/** Names a memory type for messages: System, TT, VRAM, Priv, Priv+n. */
export function memTypeName(memType: number): string {
  return MEM_TYPE_NAMES[memType] ?? `Priv+${memType - TtmMemType.Priv}`;
}

/** Formats a placement for messages, e.g. `[VRAM(desired), TT]`. */
export function describePlacement(placement: TtmPlacement): string {
  const names = placement.map((p) => {
    const flags: string[] = [];
    const f = p.flags ?? 0;
    if (f & TtmPlaceFlags.Contiguous) flags.push('contiguous');
    if (f & TtmPlaceFlags.TopDown) flags.push('topdown');
    if (f & TtmPlaceFlags.Temporary) flags.push('temporary');
    if (f & TtmPlaceFlags.Desired) flags.push('desired');
    if (f & TtmPlaceFlags.Fallback) flags.push('fallback');
    if (p.fpfn || p.lpfn) flags.push(`pages ${p.fpfn ?? 0}..${p.lpfn || 'end'}`);
    return flags.length === 0 ? memTypeName(p.memType) : `${memTypeName(p.memType)}(${flags.join(', ')})`;
  });
  return `[${names.join(', ')}]`;
}

/** Checks a placement's shape. @throws {InvalidArgumentError} naming the bad place. */
export function checkPlacement(placement: unknown, what: string): asserts placement is TtmPlacement {
  if (!Array.isArray(placement))
    throw new InvalidArgumentError(`${what}: placement must be an array of places, got ${describeValue(placement)}`);
  placement.forEach((place: unknown, i) => {
    const p = place as TtmPlace | null;
    if (p === null || typeof p !== 'object')
      throw new InvalidArgumentError(`${what}: place ${i} must be an object, got ${describeValue(place)}`);
    if (!Number.isInteger(p.memType) || p.memType < 0 || p.memType >= TTM_NUM_MEM_TYPES) {
      throw new InvalidArgumentError(
        `${what}: place ${i} memType must be an integer in 0..${TTM_NUM_MEM_TYPES - 1}, got ${describeValue(p.memType)}`,
      );
    }
    const flags = p.flags ?? 0;
    if (!Number.isInteger(flags) || (flags & ~KNOWN_FLAGS) !== 0)
      throw new InvalidArgumentError(`${what}: place ${i} has unknown flags ${describeValue(p.flags)}`);
    for (const key of ['fpfn', 'lpfn'] as const) {
      const v = p[key];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
        throw new InvalidArgumentError(
          `${what}: place ${i} ${key} must be a page number >= 0, got ${describeValue(v)}`,
        );
    }
    if (p.lpfn && (p.fpfn ?? 0) >= p.lpfn)
      throw new InvalidArgumentError(`${what}: place ${i} has an empty page range ${p.fpfn ?? 0}..${p.lpfn}`);
  });
}

/** Replaces the resource without touching the bytes, freeing the old one. @see ttm_bo_move_null() */
export function ttmBoMoveNull(bo: TtmBufferObject, newRes: TtmResource): void {
  const old = bo.resource;
  if (old !== null) ttmResourceFree(bo, old);
  bo.resource = newRes;
}

/** Frees the old resource of an idle buffer and assigns the new one. @see ttm_bo_move_sync_cleanup() */
export function ttmBoMoveSyncCleanup(bo: TtmBufferObject, newRes: TtmResource): void {
  if (!newRes.manager.useTt) bo.destroyTt();
  ttmBoMoveNull(bo, newRes);
}

/**
 * Copies the bytes on the CPU into `newRes` (zeros when the source has no pages), after waiting
 * for the buffer to be idle. @see ttm_bo_move_memcpy()
 */
export async function ttmBoMoveMemcpy(bo: TtmBufferObject, ctx: TtmOperationCtx, newRes: TtmResource): Promise<void> {
  // Idle is the common case: skip the await (a microtask turn per move).
  if (!bo.resv.testSignaled(DmaResvUsage.Bookkeep)) await bo.waitIdle(ctx);
  const device = bo.device;
  const old = bo.resource;
  const src = old === null ? null : sourceBytes(bo, old);
  const dst = device.resourceBytes(bo, newRes);
  if (src === null) dst.fill(0);
  else if (src !== dst && (src.buffer !== dst.buffer || src.byteOffset !== dst.byteOffset)) dst.set(src);
  ttmBoMoveSyncCleanup(bo, newRes);
}

/** The bytes to copy from `res`, or null when it reads as zeros (an unpopulated tt). */
function sourceBytes(bo: TtmBufferObject, res: TtmResource): Uint8Array | null {
  if (res.manager.useTt) return bo.tt?.populated === true ? bo.tt.bytes() : null;
  return bo.device.resourceBytes(bo, res);
}

/**
 * The device's default move: null moves where the pages need not move, a pipelined copy when
 * the device has a copy engine, a memcpy otherwise.
 */
export async function ttmBoMoveDefault(
  bo: TtmBufferObject,
  evict: boolean,
  ctx: TtmOperationCtx,
  newRes: TtmResource,
): Promise<void> {
  const old = bo.resource;
  const src = old === null ? null : sourceBytes(bo, old);
  // Between two types that use the tt the pages stay put; into a tt, no pages read as zeros.
  if (newRes.manager.useTt && (src === null || old!.manager.useTt)) {
    ttmBoMoveNull(bo, newRes);
    return;
  }
  const engine = bo.device.copyEngine;
  if (engine === null) {
    await ttmBoMoveMemcpy(bo, ctx, newRes);
    return;
  }
  // The copy (or clear: VRAM is never handed out with a previous owner's bytes) runs after every
  // fence of the buffer, including the eviction fences of the range it lands in.
  const dst = bo.device.resourceBytes(bo, newRes);
  const fence = engine.copy(src === null ? null : () => src, () => dst, bo.resv.getFences(DmaResvUsage.Bookkeep));
  await ttmBoMoveAccelCleanup(bo, fence, evict, true, newRes);
}

/**
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

/**
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
