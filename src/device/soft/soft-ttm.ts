/**
 * soft-ttm: the soft device's TTM driver functions: moves and evictions as copy jobs.
 *
 * Overview: the soft device's VRAM is one `SharedArrayBuffer` arena managed by a `TtmDevice`;
 * system pages (TT, System) are shared `DmaBuf`s from the device's heap. TTM decides where a
 * buffer object goes; {@link softTtmFuncs} says how its bytes get there: a `copy` job (or a
 * `fill` with zeros, for a buffer with no pages yet) on the device's copy engine, queued through
 * the scheduler behind every fence of the buffer, whose fence TTM then hangs the old memory on
 * (`ttmBoMoveAccelCleanup`: a ghost object, or the VRAM manager's eviction fences). The move
 * returns without waiting: it is pipelined, and the fence that ends it is signalled by the main
 * thread's interrupt handler when the copy engine's worker thread has done the copy. Between
 * types that keep their pages in a tt (System and TT) nothing moves.
 *
 * A buffer shared with other threads (`SoftDevice.shareBuffer`) adds the dma-buf rules: a static
 * importer pins it (eviction passes it over, an explicit move fails with `EBUSY`); before a move
 * the importers' fences are brought into the buffer's reservation object, so the copy runs after
 * their accesses, and a move fence is published first, so their next accesses wait for it; once
 * the resource changed, `moved()` tells the importers (dynamic attachments get `moveNotify`).
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.c` (`amdgpu_bo_move()` with
 * `amdgpu_move_blit()` on the buffer-funcs ring, scheduled by `drm_sched`, and
 * `amdgpu_ttm_bo_eviction_valuable()`), with the dma-buf `move_notify` of
 * `amdgpu_dma_buf.c`.
 *
 * Contract:
 * - No bytes are lost: the copy job waits for every fence of the buffer (its own readers and
 *   writers, other threads' accesses), and the old memory is not reused before the copy's fence.
 * - A copy that fails (the copy engine hung or was lost) leaves its fence with the error; TTM
 *   treats the move as done, as the kernel does with a failed blit fence.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * import { TtmMemType } from 'dmabuf';
 * await using device = new SoftDevice({ engines: { copy: 1 }, vramBytes: 1 << 20 });
 * const bo = await device.createBuffer({ size: 4096 });
 * await bo.reserve();
 * await bo.validate([{ memType: TtmMemType.TT }]); // a copy job on the copy engine
 * await bo.waitIdle();
 * bo.unreserve();
 * bo.put();
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../fence/dma-fence.js';
import type { DmaBufShare } from '../../heap/dma-buf-export.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import type { TtmBufferObject, TtmDeviceFuncs } from '../../ttm/ttm-bo.js';
import { ttmBoMoveAccelCleanup, ttmBoMoveNull, ttmBoSourceBytes } from '../../ttm/ttm-bo-util.js';
import { ttmBoEvictionValuable } from '../../ttm/ttm-device-funcs.js';
import type { TtmOperationCtx, TtmPlace } from '../../ttm/ttm-placement.js';
import type { TtmResource } from '../../ttm/ttm-resource.js';
import type { SoftBufferRange } from './soft-memory.js';

/** What the TTM functions need from the device. */
export interface SoftTtmHost {
  /** `bytes` (of a mapped or mappable shared buffer) as a job's buffer argument. */
  range(bytes: Uint8Array): SoftBufferRange;
  /** Queues a kernel job for TTM on the copy engine, after `dependencies`; returns its fence. */
  ttmJob(kernel: 'copy' | 'fill', args: Readonly<Record<string, unknown>>, dependencies: readonly DmaFence[]): DmaFence;
  /** The share of `bo` when it is exported to other threads. */
  shareOf(bo: TtmBufferObject): DmaBufShare | undefined;
}

const moveOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'soft',
  getTimelineName: () => 'ttm-move',
});
const moveContext = fenceContextAlloc();
let moveSeqno = 0;

/**
 * The TTM driver functions of a soft device.
 * @see amdgpu_bo_move()
 */
export function softTtmFuncs(host: SoftTtmHost): TtmDeviceFuncs {
  return {
    evictionValuable(bo: TtmBufferObject, place: TtmPlace): boolean {
      // A static importer in another thread pins it where it is.
      if (host.shareOf(bo)?.pinned === true) return false;
      return ttmBoEvictionValuable(bo, place);
    },

    async move(bo: TtmBufferObject, evict: boolean, _ctx: TtmOperationCtx, newRes: TtmResource): Promise<void> {
      const old = bo.resource;
      const src = old === null ? null : ttmBoSourceBytes(bo, old);
      if (newRes.manager.useTt && (src === null || old!.manager.useTt)) {
        ttmBoMoveNull(bo, newRes);
        return;
      }
      const share = host.shareOf(bo);
      if (share?.pinned === true) {
        throw new DmaBufError(
          'EBUSY',
          `${bo.name} is pinned by a static importer in another thread; it cannot move until they detach`,
        );
      }
      // Published before looking at the importers: an access starting now sees it and waits.
      const moving = share === undefined ? null : new DmaFence(moveOps, moveContext, ++moveSeqno);
      if (share !== undefined) {
        share.publishFence(moving!, DmaResvUsage.Kernel);
        share.pullLocked();
      }
      const dst = host.range(bo.device.resourceBytes(bo, newRes));
      const dependencies = bo.resv.getFences(DmaResvUsage.Bookkeep);
      const fence =
        src === null
          ? host.ttmJob('fill', { dst, value: 0 }, dependencies)
          : host.ttmJob('copy', { src: host.range(src), dst }, dependencies);
      try {
        await ttmBoMoveAccelCleanup(bo, fence, evict, true, newRes);
      } catch (err) {
        moving?.signal();
        throw err;
      }
      if (share !== undefined) {
        share.moved();
        if (!fence.addCallback(() => moving!.signal())) moving!.signal();
      }
    },
  };
}
