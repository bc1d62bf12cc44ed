/**
 * soft-cs: command submission with buffer objects: lock, place, synchronise, submit, fence.
 *
 * Overview: a job that names buffer objects ({@link TtmBufferObject}s of the device's VRAM
 * arena) must find their bytes where it runs and must run after the work that last touched
 * them. {@link softCs} is the driver's command-submission path for that: lock every object with
 * one {@link DrmExec} (no deadlock whatever the order), validate each into VRAM (TTM evicts
 * others, with copy jobs on the copy engine, when VRAM is full), encode the job with each
 * object's location at that moment, make the job depend on each object's implicit fences (a
 * reader on the writers, a writer on everything) and on the caller's explicit ones, arm it, add
 * its `finished` fence to every object (write or read usage, from the kernel's `writes`), push
 * it to the context's entity, and unlock. The fence is returned at once; the waiting is the
 * scheduler's.
 *
 * Why locations are fixed at submission: a buffer object moves only after its fences (the job's
 * among them) and its old memory is not reused before the move's copy is done, so the bytes the
 * job was given stay valid until the job has run.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_cs.c` (`amdgpu_cs_parser_bos()`,
 * `amdgpu_cs_sync_rings()`, `amdgpu_cs_submit()`).
 *
 * Contract:
 * - A buffer argument is a {@link TtmBufferObject} (all of it) or `{ bo, offset?, length? }`;
 *   other arguments are as for `SoftDevice.submit` (mapped memory, numbers).
 * - An object of another device is an {@link InvalidArgumentError}, and a working set larger
 *   than VRAM is `ENOMEM`, both before anything is locked. On any failure before the job is
 *   armed nothing is submitted, every lock is released and no fence is added.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * await using device = new SoftDevice({ engines: { compute: 1, copy: 1 }, vramBytes: 1 << 20 });
 * const x = await device.createBuffer({ size: 4096 });
 * const y = await device.createBuffer({ size: 4096 });
 * const done = await device.execute('compute', 'saxpy', { a: 2, x, y }); // y written, x read
 * await done.wait();
 * x.put();
 * y.put();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { DrmExec } from '../../exec/drm-exec.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import type { DrmSchedEntity } from '../../sched/sched-entity.js';
import { TtmBufferObject } from '../../ttm/ttm-bo.js';
import type { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType, TtmOperationCtx } from '../../ttm/ttm-placement.js';
import { SoftJob } from './soft-job.js';
import type { SoftKernelTable } from './soft-kernel-table.js';
import type { SoftBufferRange } from './soft-memory.js';

/** A part of a buffer object as a kernel argument. */
export interface SoftBoRange {
  readonly bo: TtmBufferObject;
  readonly offset?: number;
  readonly length?: number;
}

/** What a submission needs from the device. */
export interface SoftCsHost {
  readonly ttm: TtmDevice;
  readonly kernels: SoftKernelTable;
  /** `bytes` as a job's buffer argument (maps the memory). */
  range(bytes: Uint8Array): SoftBufferRange;
}

/** Options of {@link softCs}. */
export interface SoftCsOptions {
  /** Explicit dependencies: the job runs after each has signalled. */
  readonly dependencies?: readonly DmaFence[];
  /** Aborts locking and validation (not the job). */
  readonly signal?: AbortSignal;
}

const IN_VRAM = [{ memType: TtmMemType.VRAM }] as const;

/** The buffer object of a buffer argument, or undefined when it is something else. */
export function boOf(value: unknown): TtmBufferObject | undefined {
  if (value instanceof TtmBufferObject) return value;
  const bo = (value as { bo?: unknown } | null)?.bo;
  return bo instanceof TtmBufferObject ? bo : undefined;
}

/**
 * Locks, places, synchronises and submits a job on `entity` (see the module overview).
 * @see amdgpu_cs_ioctl()
 */
export async function softCs(
  host: SoftCsHost,
  entity: DrmSchedEntity,
  kernel: string,
  args: Readonly<Record<string, unknown>>,
  options: SoftCsOptions = {},
): Promise<DmaFence> {
  const { ttm, kernels } = host;
  const info = kernels.info(kernel);
  const bos = new Map<TtmBufferObject, boolean>();
  for (const { name, write } of info.buffers) {
    const bo = boOf(args[name]);
    if (bo === undefined) continue;
    if (bo.device !== ttm) {
      throw new InvalidArgumentError(
        `${kernel}(${name}): ${bo.name} belongs to another device, not ${ttm.name}; ` +
          'buffer objects are used on their own device',
      );
    }
    bos.set(bo, (bos.get(bo) ?? false) || write);
  }
  const vram = ttm.manager(TtmMemType.VRAM);
  const total = [...bos.keys()].reduce((sum, bo) => sum + bo.size, 0);
  if (vram === null || total > vram.size) {
    throw new DmaBufError(
      'ENOMEM',
      `${kernel}: its buffer objects need ${total} bytes of VRAM together, ` +
        `the device has ${vram?.size ?? 0}; split the work`,
    );
  }
  const dependencies = options.dependencies ?? [];
  const signal = options.signal;
  await using exec = new DrmExec(signal === undefined ? {} : { signal });
  await exec.untilAllLocked(async (e) => {
    for (const bo of bos.keys()) await e.prepareObj(bo, 1);
  });
  const ctx = new TtmOperationCtx(signal === undefined ? {} : { signal });
  for (const bo of bos.keys()) await bo.validate(IN_VRAM, ctx);
  const job = kernels.encode(kernel, args, (what, value) => {
    const bo = boOf(value);
    if (bo === undefined) return undefined;
    const bytes = ttm.resourceBytes(bo, bo.resource!);
    const r: Partial<SoftBoRange> = value instanceof TtmBufferObject ? {} : (value as SoftBoRange);
    const offset = r.offset ?? 0;
    const length = r.length ?? bo.size - offset;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > bo.size
    ) {
      throw new InvalidArgumentError(
        `${what}: range ${describeValue(offset)} + ${describeValue(length)} runs past ${bo.name}`,
      );
    }
    return host.range(bytes.subarray(offset, offset + length));
  });
  const schedJob = new SoftJob(entity, job.id, job.words);
  try {
    for (const fence of dependencies) schedJob.addDependency(fence);
    for (const [bo, write] of bos) schedJob.addImplicitDependencies(bo.resv, write);
    schedJob.arm();
  } catch (err) {
    schedJob.cleanup();
    throw err;
  }
  for (const [bo, write] of bos) {
    bo.resv.addFence(schedJob.finished, write ? DmaResvUsage.Write : DmaResvUsage.Read);
    bo.moveToLruTail();
  }
  schedJob.push();
  return schedJob.finished;
}
