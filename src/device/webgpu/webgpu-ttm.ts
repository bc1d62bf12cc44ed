/// <reference types="@webgpu/types" />
/**
 * webgpu-ttm: the WebGPU device's TTM driver functions: how a buffer object's bytes move
 * between `GPUBuffer` VRAM and system pages.
 *
 * Overview: TTM decides where a buffer object goes (validate, eviction under the VRAM budget,
 * LRU, pinning); {@link webGpuTtmFuncs} says how its bytes get there:
 * - VRAM → System/TT (eviction): the bytes are copied out through a mappable staging buffer
 *   ({@link WebGpuStaging.download}: `copyBufferToBuffer`, `mapAsync`) into the object's tt,
 *   then the `GPUBuffer` is destroyed. The move returns once the bytes are in system memory,
 *   so there is no ghost object and no pipelined eviction fence to track.
 * - System/TT → VRAM (restore): the tt's bytes go to the new `GPUBuffer` with
 *   `queue.writeBuffer`, which snapshots them at the call and lands before any later submission;
 *   the tt is freed at once. A buffer with no pages (new, or purged) needs no write: WebGPU
 *   zeroes a new `GPUBuffer`.
 * - VRAM → VRAM: `copyBufferToBuffer` on the ring, waited for.
 * - Between System and TT the pages stay where they are (a null move).
 * Before copying, a move waits for the object's fences from other timelines (CPU work,
 * scheduler jobs not yet on the queue); work already on this ring is ordered before the copy by
 * the queue itself.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.c`: `amdgpu_bo_move()` picking a move per
 * (old, new) memory type, `amdgpu_move_blit()` for copies on the GPU, and the default
 * `evict_flags` (VRAM to TT, else System).
 *
 * Contract:
 * - No bytes are lost by a move: a failed copy (lost device, rejected submission) rejects the
 *   move and TTM leaves the buffer where it was.
 * - With `ctx.noWaitGpu`, a move that would wait for another timeline's fence rejects with
 *   `DmaBufError('EBUSY')`; a wait longer than 15 s rejects with EBUSY too (as `ttm_bo_wait_ctx`).
 *
 * @example
 * ```ts
 * import { TtmBufferObject, TtmDevice, TtmMemType } from 'dmabuf';
 * import { WebGpuRing, WebGpuStaging, WebGpuVramManager, requestWebGpuDevice, webGpuTtmFuncs } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const staging = new WebGpuStaging(new WebGpuRing(device));
 * const ttm = new TtmDevice({ funcs: webGpuTtmFuncs(staging) });
 * ttm.setManager(TtmMemType.VRAM, new WebGpuVramManager(ttm, device, { size: 1 << 20 }));
 * const bo = await TtmBufferObject.initReserved(ttm, { size: 4096, placement: [{ memType: TtmMemType.System }] });
 * bo.kmap().fill(3);
 * await bo.validate([{ memType: TtmMemType.VRAM }]); // writeBuffer into a new GPUBuffer
 * await bo.validate([{ memType: TtmMemType.System }]); // copied back out through staging
 * console.log(bo.kmap()[4095]); // 3
 * bo.unreserve();
 * bo.put();
 * await ttm.fini();
 * device.destroy();
 * release();
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import { TTM_BO_WAIT_TIMEOUT_MS, type TtmBufferObject, type TtmDeviceFuncs } from '../../ttm/ttm-bo.js';
import type { TtmOperationCtx } from '../../ttm/ttm-placement.js';
import { ttmBoMoveNull, ttmBoMoveSyncCleanup } from '../../ttm/ttm-bo-util.js';
import type { TtmResource } from '../../ttm/ttm-resource.js';
import type { WebGpuStaging } from './webgpu-staging.js';
import { WebGpuVramResource } from './webgpu-vram-mgr.js';

/** The object's unsignaled fences that the ring does not order by itself. */
function foreignFences(bo: TtmBufferObject, context: number): DmaFence[] {
  return bo.resv.getFences(DmaResvUsage.Bookkeep).filter((f) => f.context !== context && !f.isSignaled());
}

/** Waits for fences of other timelines before the bytes are copied. @see ttm_bo_wait_ctx() */
async function waitForeign(bo: TtmBufferObject, ctx: TtmOperationCtx, context: number): Promise<void> {
  const pending = foreignFences(bo, context);
  if (pending.length === 0) return;
  if (ctx.noWaitGpu)
    throw new DmaBufError('EBUSY', `${bo.name} is busy on another timeline and the move may not wait (noWaitGpu)`);
  for (const fence of pending) {
    const done = await fence.wait({
      timeout: TTM_BO_WAIT_TIMEOUT_MS,
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
    if (!done)
      throw new DmaBufError('EBUSY', `${bo.name} stayed busy for ${TTM_BO_WAIT_TIMEOUT_MS} ms (${fence.describe()})`);
  }
}

/**
 * The driver functions of a TTM device whose VRAM manager is a {@link WebGpuVramManager}.
 * @see amdgpu_bo_move()
 */
export function webGpuTtmFuncs(staging: WebGpuStaging): TtmDeviceFuncs {
  const ring = staging.ring;
  return {
    async move(bo: TtmBufferObject, _evict: boolean, ctx: TtmOperationCtx, newRes: TtmResource): Promise<void> {
      const old = bo.resource;
      const fromVram = old instanceof WebGpuVramResource;
      const toVram = newRes instanceof WebGpuVramResource;
      if (!fromVram && !toVram) {
        // Between types that use the tt (or into one from nothing): the pages stay put.
        ttmBoMoveNull(bo, newRes);
        return;
      }
      await waitForeign(bo, ctx, ring.context);
      if (!fromVram && toVram) {
        const tt = bo.tt;
        if (old !== null && tt?.populated === true) staging.upload(newRes.buffer, 0, tt.bytes());
        ttmBoMoveSyncCleanup(bo, newRes);
        return;
      }
      if (fromVram && !toVram) {
        await staging.download(old.buffer, 0, bo.device.resourceBytes(bo, newRes));
        ttmBoMoveNull(bo, newRes);
        return;
      }
      const src = old as WebGpuVramResource;
      const dst = newRes as WebGpuVramResource;
      const encoder = ring.device.createCommandEncoder();
      encoder.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, bo.size);
      const fence = ring.submit([encoder.finish()]);
      await fence.wait();
      if (fence.error !== undefined) throw fence.error;
      ttmBoMoveNull(bo, newRes);
    },
  };
}
