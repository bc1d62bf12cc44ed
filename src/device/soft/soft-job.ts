/**
 * soft-job: the soft device's jobs, and the GPU scheduler in front of each engine.
 *
 * Overview: every job of a {@link SoftDevice} is a {@link SoftJob}: a kernel id and the float64
 * argument words of its ring slot, encoded when the job was submitted (buffer objects resolved
 * to where their bytes were then, under their reservation locks). Each engine ring has a
 * {@link DrmGpuScheduler} whose credit limit is the ring size: entities queue jobs, the
 * scheduler runs a job once its dependencies have signalled and the ring has a free slot, and
 * `runJob` writes it into the ring and returns the ring's hardware fence. So the ring never
 * overflows, and work waiting for another thread or timeline waits in the scheduler.
 *
 * Recovery follows the kernel's per-ring reset (amdgpu's `amdgpu_job_timedout()` with a ring
 * reset that re-emits the innocent jobs): when the scheduler's watchdog finds the ring without
 * progress, `timedOutJob` counts karma against the job (its entity turns guilty: its later jobs
 * finish with `ECANCELED` and are not run, as amdgpu skips a guilty context's jobs), resets the
 * engine (the worker is terminated and replaced), and the hung job's hardware fence signals with
 * `ETIMEDOUT`. The other jobs already in the ring stay there: the fresh engine runs them, so
 * they complete normally (re-run, not errored). If the engine is not executing anything when the
 * watchdog fires (its worker boots, or waits for a kernel module or a mapping) the answer is
 * `NoHang`: slow is not hung.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_job.c` (`amdgpu_job_run()`,
 * `amdgpu_job_timedout()`, `amdgpu_job_free_cb()`) over `drm_sched`.
 *
 * Contract:
 * - `runJob` writes exactly the job's words, once; a job of a guilty entity (its `finished`
 *   already carries `ECANCELED`) is not written, and a job whose engine is gone fails with
 *   `ENODEV` without touching the ring.
 * - After `Reset` the backend owns the timed-out job, as the kernel says: it is cleaned up once
 *   its hardware fence has signalled.
 * - `cancelJob` (scheduler teardown) signals the jobs still on the ring with `ECANCELED`.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * await using device = new SoftDevice({ engines: { compute: 1 } });
 * const sched = device.scheduler(device.rings('compute')[0]!);
 * console.log(sched.creditLimit); // 64: the ring's slots
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import type { DrmSchedEntity } from '../../sched/sched-entity.js';
import { DrmSchedJob, type DrmSchedJobInit } from '../../sched/sched-job.js';
import { DrmGpuSchedStat, DrmGpuScheduler } from '../../sched/sched-main.js';
import type { DrmSchedPolicy } from '../../sched/sched-rq.js';
import type { SoftEngine } from './soft-engine.js';
import type { SoftHwFence } from './soft-fence.js';

/** A job of the soft device: a kernel and its encoded arguments. @see struct amdgpu_job */
export class SoftJob extends DrmSchedJob {
  /** Kernel id (see `SoftKernelTable`). */
  readonly kernel: number;
  /** The float64 words of the ring slot. */
  readonly words: readonly number[];
  /** The hardware fence, once the job was written into a ring. */
  hw: SoftHwFence | null = null;

  constructor(entity: DrmSchedEntity, kernel: number, words: readonly number[], init?: DrmSchedJobInit) {
    super(entity, init);
    this.kernel = kernel;
    this.words = words;
  }
}

/** Options of {@link createSoftScheduler}. */
export interface SoftSchedulerOptions {
  /** The watchdog in milliseconds (Infinity: none). */
  readonly timeoutMs: number;
  /** Entity selection of the scheduler (default `'fair'`). */
  readonly policy?: DrmSchedPolicy['name'];
}

/**
 * The scheduler of `engine`'s ring (credit limit: the ring size).
 * @see amdgpu_job_run() @see amdgpu_job_timedout()
 */
export function createSoftScheduler(engine: SoftEngine, options: SoftSchedulerOptions): DrmGpuScheduler<SoftJob> {
  /** When the current worker reported ready after the last reset (scheduler clock); -Infinity before any reset. */
  let freshSince = Number.NEGATIVE_INFINITY;
  const sched: DrmGpuScheduler<SoftJob> = new DrmGpuScheduler<SoftJob>({
    name: engine.name,
    creditLimit: engine.ring.size,
    timeout: options.timeoutMs,
    policy: options.policy ?? 'fair',
    ops: {
      runJob(job: SoftJob): DmaFence | null {
        // A guilty context's job: amdgpu skips the payload and lets the fence carry ECANCELED.
        if (job.finished.error !== undefined) return null;
        if (engine.stopped) {
          throw new DmaBufError('ENODEV', `${job} cannot run: ${engine.name} was stopped (device lost or destroyed)`);
        }
        const hw = engine.emit(job.kernel, job.words);
        job.hw = hw;
        return hw;
      },
      timedOutJob(job: SoftJob): DrmGpuSchedStat {
        if (engine.stopped) return DrmGpuSchedStat.Enodev;
        const hw = job.hw;
        if (hw === null || hw.signaledFlag || engine.ring.running === 0) return DrmGpuSchedStat.NoHang;
        // A reset in progress already deals with the hang: the job the ring shows as running may be
        // the old worker's (terminating is asynchronous), and blaming the next one would make an
        // innocent context guilty. The watchdog also started counting at the reset, so a fresh
        // worker gets one whole timeout of its own before its first job can be called hung.
        if (engine.resetting || sched.clock.now() - freshSince < options.timeoutMs) return DrmGpuSchedStat.NoHang;
        sched.increaseKarma(job);
        // The backend owns the job now: clean it up once the reset has signalled its fence.
        hw.lrAddCallback(() => job.cleanup());
        void engine
          .reset('ETIMEDOUT', `${job} made no progress for ${options.timeoutMs} ms on ${engine.name}`)
          .then(() => engine.ready)
          .then(() => {
            freshSince = sched.clock.now();
          });
        return DrmGpuSchedStat.Reset;
      },
      freeJob(job: SoftJob): void {
        job.cleanup();
      },
      cancelJob(job: SoftJob): void {
        engine.ring.fences.forceCompletion('ECANCELED');
        void job;
      },
    },
  });
  return sched;
}
