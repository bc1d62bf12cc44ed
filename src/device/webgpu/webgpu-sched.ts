/// <reference types="@webgpu/types" />
/**
 * webgpu-sched: the GPU scheduler in front of the WebGPU queue.
 *
 * Overview: every submission of a {@link WebGpuDevice} is a {@link WebGpuJob}: command buffers
 * recorded while their buffer objects were locked and resident, plus the job's dependencies
 * (explicit fences and the implicit ones of each buffer's reservation). A
 * {@link DrmGpuScheduler} per queue holds the job until its dependencies have signalled, then
 * `runJob` hands the command buffers to the {@link WebGpuRing} and returns the ring's hardware
 * fence; the job's `finished` fence follows it, error included. So work that waits for another
 * timeline (a CPU writer, another device) waits in the scheduler, not on the caller's CPU path.
 *
 * Why the commands are recorded at submission and not in `runJob`: the bindings are taken under
 * the reservation locks (the objects are in VRAM then), an `encode` that throws fails the
 * submission synchronously with nothing published, and `runJob` stays a plain `queue.submit`
 * (it runs in a fence-signalling section). The bindings stay valid until the job is done because
 * every move of a buffer object waits for the fences of other timelines first (`webgpu-ttm.ts`),
 * and the job's `finished` fence is one of them.
 *
 * Recovery: WebGPU cannot reset a queue, and a queue that stops making progress is declared lost
 * by the browser or Dawn, not by us. The watchdog (off unless `timeoutMs` is given) therefore
 * answers `NoHang` while the device is alive and `Enodev` once it is lost. On device loss the
 * ring fails its pending hardware fences with `ENODEV`; jobs not yet on the ring fail when
 * `runJob` meets the dead ring. Every `finished` fence signals, every promise settles.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_job.c` (`amdgpu_job_run()` returning the ring's
 * fence, `amdgpu_job_timedout()`, `amdgpu_job_free_cb()`).
 *
 * Contract:
 * - `runJob` submits exactly the job's command buffers, once, in the order the scheduler picks.
 * - A job whose ring is dead finishes with the ring's `ENODEV` error without touching the queue.
 *
 * @example
 * ```ts
 * import { DrmSchedEntity, DrmSchedJob } from 'dmabuf';
 * import { WebGpuJob, WebGpuRing, createWebGpuScheduler, requestWebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const ring = new WebGpuRing(device);
 * const sched = createWebGpuScheduler(ring);
 * const entity = new DrmSchedEntity({ schedulers: [sched], name: 'client' });
 * const job = new WebGpuJob(entity, [device.createCommandEncoder().finish()]);
 * job.arm();
 * job.push();
 * await job.finished.wait(); // after the queue finished the command buffer
 * await entity.destroy();
 * sched.fini();
 * device.destroy();
 * release();
 * ```
 */

import { InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import type { DrmSchedEntity } from '../../sched/sched-entity.js';
import { DrmSchedJob, type DrmSchedJobInit } from '../../sched/sched-job.js';
import { DrmGpuSchedStat, DrmGpuScheduler } from '../../sched/sched-main.js';
import type { WebGpuRing } from './webgpu-ring.js';

/** A queue submission as a scheduler job. @see struct amdgpu_job */
export class WebGpuJob extends DrmSchedJob {
  #commandBuffers: readonly GPUCommandBuffer[] | null;

  /** @throws {InvalidArgumentError} when `commandBuffers` is not an array. */
  constructor(entity: DrmSchedEntity, commandBuffers: readonly GPUCommandBuffer[], init?: DrmSchedJobInit) {
    if (!Array.isArray(commandBuffers))
      throw new InvalidArgumentError(
        `WebGpuJob: commandBuffers must be an array of GPUCommandBuffer, got ${describeValue(commandBuffers)}`,
      );
    super(entity, init);
    this.#commandBuffers = commandBuffers;
  }

  /** Hands the command buffers over once (to `runJob`); null afterwards or once freed. */
  take(): readonly GPUCommandBuffer[] | null {
    const out = this.#commandBuffers;
    this.#commandBuffers = null;
    return out;
  }
}

/** Options of {@link createWebGpuScheduler}. */
export interface WebGpuSchedulerOptions {
  /** Jobs on the queue at once (ring space); default 64. */
  readonly creditLimit?: number;
  /** Watchdog period in ms; default none (see the module overview). */
  readonly timeoutMs?: number;
}

/**
 * A scheduler whose jobs run on `ring`.
 * @see amdgpu_job_run()
 */
export function createWebGpuScheduler(
  ring: WebGpuRing,
  options: WebGpuSchedulerOptions = {},
): DrmGpuScheduler<WebGpuJob> {
  return new DrmGpuScheduler<WebGpuJob>({
    name: ring.name,
    creditLimit: options.creditLimit ?? 64,
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    ops: {
      runJob(job: WebGpuJob): DmaFence {
        const dead = ring.deadError;
        if (dead !== null) throw dead;
        return ring.submit(job.take() ?? []);
      },
      timedOutJob: () => (ring.deadError === null ? DrmGpuSchedStat.NoHang : DrmGpuSchedStat.Enodev),
      freeJob: (job: WebGpuJob) => {
        job.take();
        job.cleanup();
      },
    },
  });
}
