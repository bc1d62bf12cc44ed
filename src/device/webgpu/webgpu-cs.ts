/// <reference types="@webgpu/types" />
/**
 * webgpu-cs: command submission with implicit synchronisation, straight onto the ring.
 *
 * Overview: {@link webGpuCs} is what a driver's command-submission ioctl does with a list of
 * buffer objects and a command stream: lock every object with one {@link DrmExec} (wound/wait,
 * no deadlock whatever the order), validate each into VRAM (TTM evicts others under the
 * budget; objects locked here are never evicted for each other), wait for the implicit
 * dependencies each object's reservation holds (a reader waits for writes, a writer for
 * everything) unless they come from this ring, whose queue orders them anyway, record the
 * commands with the objects' `GPUBuffer` bindings, submit them on the ring, add the hardware
 * fence to every reservation (write or read usage), and unlock. The fence is returned.
 *
 * Dependencies from other timelines are waited for on the CPU here; the scheduler path
 * (`drm_sched` jobs) turns them into job dependencies instead.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_cs.c` (`amdgpu_cs_parser_bos()` locking and
 * validating, `amdgpu_cs_sync_rings()` for implicit sync, `amdgpu_cs_submit()` fencing every
 * buffer), without a scheduler in between.
 *
 * Contract:
 * - Every object must belong to `ttm`: one of another device is an {@link InvalidArgumentError}
 *   before anything is locked. An object listed twice counts once, as a writer if either says so.
 * - A working set larger than the VRAM budget is refused with `DmaBufError('ENOMEM')` before
 *   anything is locked or evicted.
 * - On any failure (no space even after eviction, a pinned object outside VRAM, a lost device,
 *   an `encode` that throws) nothing is submitted, every lock is released, no fence is added,
 *   and the error is rethrown; contents of every object are intact.
 * - `encode` is called once, with every object locked and resident in VRAM.
 *
 * @example
 * ```ts
 * import { DmaResvUsage } from 'dmabuf';
 * import { WebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * await using gpu = await WebGpuDevice.create({ budgetBytes: 1 << 20 });
 * const x = await gpu.createBuffer({ size: 4096 });
 * const fence = await gpu.submit([{ bo: x, write: true }], (encoder, binding) => {
 *   encoder.clearBuffer(binding(x).buffer);
 * });
 * await fence.wait();
 * console.log(x.resv.testSignaled(DmaResvUsage.Write)); // true
 * x.put();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { DrmExec } from '../../exec/drm-exec.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import { TtmBufferObject } from '../../ttm/ttm-bo.js';
import { TtmOperationCtx } from '../../ttm/ttm-placement.js';
import type { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType } from '../../ttm/ttm-placement.js';
import { describeResource } from '../../ttm/ttm-resource.js';
import type { WebGpuRing } from './webgpu-ring.js';
import { WebGpuVramResource } from './webgpu-vram-mgr.js';

/** One object of a submission and how the commands use it. */
export interface WebGpuCsBuffer {
  readonly bo: TtmBufferObject;
  /** The commands write it (they read it otherwise). */
  readonly write?: boolean;
}

/** The binding of a locked, resident object, handed to `encode`. */
export type WebGpuBindingOf = (bo: TtmBufferObject) => GPUBufferBinding;

/** Records the commands of a submission. */
export type WebGpuEncode = (encoder: GPUCommandEncoder, binding: WebGpuBindingOf) => void;

/** Where a submission runs. */
export interface WebGpuCsTarget {
  readonly ttm: TtmDevice;
  readonly ring: WebGpuRing;
}

/** Options of one submission. */
export interface WebGpuCsOptions {
  /** Aborts lock and dependency waits (the promise rejects with `signal.reason`). */
  readonly signal?: AbortSignal;
}

const IN_VRAM = [{ memType: TtmMemType.VRAM }] as const;

/** Checks the list and folds duplicates (a writer wins). */
export function checkCsBuffers(ttm: TtmDevice, buffers: readonly WebGpuCsBuffer[]): Map<TtmBufferObject, boolean> {
  if (!Array.isArray(buffers))
    throw new InvalidArgumentError(
      `WebGpu submit: buffers must be an array of { bo, write }, got ${describeValue(buffers)}`,
    );
  const out = new Map<TtmBufferObject, boolean>();
  buffers.forEach((entry, i) => {
    const bo = (entry as { bo?: unknown } | null)?.bo;
    if (!(bo instanceof TtmBufferObject))
      throw new InvalidArgumentError(
        `WebGpu submit: buffers[${i}].bo must be a TtmBufferObject, got ${describeValue(bo)}`,
      );
    if (bo.device !== ttm)
      throw new InvalidArgumentError(
        `WebGpu submit: buffers[${i}] (${bo.name}) belongs to another device, not ${ttm.name}; ` +
          'a buffer object can only be used on the device that created it',
      );
    out.set(bo, (out.get(bo) ?? false) || entry.write === true);
  });
  return out;
}

/**
 * Refuses at once a working set that can never be resident together, instead of letting TTM
 * evict everything else first and fail anyway.
 * @throws {DmaBufError} ENOMEM naming the sizes.
 */
export function checkFits(ttm: TtmDevice, bos: readonly TtmBufferObject[]): void {
  const vram = ttm.manager(TtmMemType.VRAM);
  if (vram === null) throw new InvalidArgumentError(`device ${ttm.name} has no VRAM manager`);
  const total = bos.reduce((sum, bo) => sum + bo.size, 0);
  if (total <= vram.size) return;
  const what = bos.length === 1 ? bos[0]!.name : `${bos.length} buffers (${total} bytes together)`;
  throw new DmaBufError(
    'ENOMEM',
    `${what} never fit the VRAM budget of ${vram.size} bytes (${vram.name}); split the work or raise budgetBytes`,
  );
}

/** The binding of `bo`, which must be resident in VRAM (true inside `encode`; needs the lock). */
export function vramBinding(bo: TtmBufferObject): GPUBufferBinding {
  const res = bo.resource;
  if (!(res instanceof WebGpuVramResource))
    throw new InvalidArgumentError(
      `${bo.name} is not resident in VRAM (${describeResource(res)}); validate it into VRAM first`,
    );
  return res.binding();
}

/**
 * Locks, validates, synchronises, submits and fences, as the module overview says.
 * @see amdgpu_cs_ioctl()
 */
export async function webGpuCs(
  target: WebGpuCsTarget,
  buffers: readonly WebGpuCsBuffer[],
  encode: WebGpuEncode,
  options: WebGpuCsOptions = {},
): Promise<DmaFence> {
  if (typeof encode !== 'function')
    throw new InvalidArgumentError(`WebGpu submit: encode must be a function, got ${describeValue(encode)}`);
  const { ttm, ring } = target;
  const list = checkCsBuffers(ttm, buffers);
  if (ring.deadError !== null) throw ring.deadError;
  checkFits(ttm, [...list.keys()]);
  const signal = options.signal;
  await using exec = new DrmExec(signal === undefined ? {} : { signal });
  await exec.untilAllLocked(async (e) => {
    for (const bo of list.keys()) await e.prepareObj(bo, 1);
  });
  const ctx = new TtmOperationCtx(signal === undefined ? {} : { signal });
  for (const bo of list.keys()) await bo.validate(IN_VRAM, ctx);
  for (const [bo, write] of list) {
    const usage = write ? DmaResvUsage.Read : DmaResvUsage.Write;
    for (const fence of bo.resv.getFences(usage)) {
      if (fence.context === ring.context) continue;
      await fence.wait(signal === undefined ? {} : { signal });
    }
  }
  const allowed = new Set(list.keys());
  const encoder = ring.device.createCommandEncoder();
  encode(encoder, (bo) => {
    if (!allowed.has(bo))
      throw new InvalidArgumentError(
        `${bo?.name ?? describeValue(bo)} is not in this submission's buffer list; list every buffer the commands use`,
      );
    return vramBinding(bo);
  });
  const fence = ring.submit([encoder.finish()]);
  for (const [bo, write] of list) {
    bo.resv.reserveFences(1);
    bo.resv.addFence(fence, write ? DmaResvUsage.Write : DmaResvUsage.Read);
    bo.moveToLruTail();
  }
  return fence;
}
