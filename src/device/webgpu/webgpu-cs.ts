/// <reference types="@webgpu/types" />
/**
 * webgpu-cs: command submission with implicit synchronisation, through the scheduler.
 *
 * Overview: {@link webGpuCs} is what a driver's command-submission ioctl does with a list of
 * buffer objects and a command stream: lock every object with one {@link DrmExec} (wound/wait,
 * no deadlock whatever the order), validate each into VRAM (TTM evicts others under the
 * budget; objects locked here are never evicted for each other), record the commands with the
 * objects' `GPUBuffer` bindings into a {@link WebGpuJob}, make the job depend on each object's
 * implicit fences (a reader on the writers, a writer on everything) and on the caller's explicit
 * ones, arm it, add its `finished` fence to every reservation (write or read usage), push it to
 * the scheduler, and unlock. The `finished` fence is returned at once: fences of other timelines
 * are waited for by the scheduler, not here, and jobs of the same queue only for being scheduled
 * (the queue runs in order).
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_cs.c` (`amdgpu_cs_parser_bos()` locking and
 * validating, `amdgpu_cs_sync_rings()` for implicit sync, `amdgpu_cs_submit()` arming the job,
 * fencing every buffer and pushing it to the entity).
 *
 * Contract:
 * - Every object must belong to `ttm`: one of another device is an {@link InvalidArgumentError}
 *   before anything is locked. An object listed twice counts once, as a writer if either says so.
 * - A working set larger than the VRAM budget is refused with `DmaBufError('ENOMEM')` before
 *   anything is locked or evicted.
 * - On any failure before the job is armed (no space even after eviction, a pinned object
 *   outside VRAM, a lost device, an `encode` that throws, an aborted lock) nothing is submitted,
 *   every lock is released, no fence is added, and the error is rethrown; contents of every
 *   object are intact. Once armed the job is pushed: a failure after that (a dependency that
 *   failed is not one; a lost device is) shows on its `finished` fence.
 * - `encode` is called once, with every object locked and resident in VRAM.
 * - An explicit dependency that signalled with an error does not cancel the job (as in the
 *   kernel, the scheduler only orders); check `fence.error` yourself when it matters.
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
 * await fence.wait(); // the job's finished fence
 * console.log(x.resv.testSignaled(DmaResvUsage.Write)); // true
 * x.put();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { DrmExec } from '../../exec/drm-exec.js';
import type { DrmSchedEntity } from '../../sched/sched-entity.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import { TtmBufferObject } from '../../ttm/ttm-bo.js';
import { TtmOperationCtx } from '../../ttm/ttm-placement.js';
import type { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType } from '../../ttm/ttm-placement.js';
import { describeResource } from '../../ttm/ttm-resource.js';
import type { WebGpuRing } from './webgpu-ring.js';
import { WebGpuJob } from './webgpu-sched.js';
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
  /** The client's entity on the queue's scheduler. */
  readonly entity: DrmSchedEntity;
}

/** Options of one submission. */
export interface WebGpuCsOptions {
  /** Aborts locking and validation (the promise rejects with `signal.reason`); not the job. */
  readonly signal?: AbortSignal;
  /** Explicit dependencies: the job runs after each has signalled. */
  readonly dependencies?: readonly DmaFence[];
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
  const { ttm, ring, entity } = target;
  const list = checkCsBuffers(ttm, buffers);
  const dependencies = options.dependencies ?? [];
  if (!Array.isArray(dependencies))
    throw new InvalidArgumentError(
      `WebGpu submit: dependencies must be an array of DmaFence, got ${describeValue(dependencies)}`,
    );
  if (ring.deadError !== null) throw ring.deadError;
  checkFits(ttm, [...list.keys()]);
  const signal = options.signal;
  await using exec = new DrmExec(signal === undefined ? {} : { signal });
  await exec.untilAllLocked(async (e) => {
    for (const bo of list.keys()) await e.prepareObj(bo, 1);
  });
  const ctx = new TtmOperationCtx(signal === undefined ? {} : { signal });
  for (const bo of list.keys()) await bo.validate(IN_VRAM, ctx);
  const allowed = new Set(list.keys());
  const encoder = ring.device.createCommandEncoder();
  encode(encoder, (bo) => {
    if (!allowed.has(bo))
      throw new InvalidArgumentError(
        `${bo?.name ?? describeValue(bo)} is not in this submission's buffer list; list every buffer the commands use`,
      );
    return vramBinding(bo);
  });
  const job = new WebGpuJob(entity, [encoder.finish()]);
  try {
    for (const fence of dependencies) job.addDependency(fence);
    for (const [bo, write] of list) job.addImplicitDependencies(bo.resv, write);
    job.arm();
  } catch (error) {
    job.cleanup();
    throw error;
  }
  for (const [bo, write] of list) {
    bo.resv.addFence(job.finished, write ? DmaResvUsage.Write : DmaResvUsage.Read);
    bo.moveToLruTail();
  }
  job.push();
  return job.finished;
}
