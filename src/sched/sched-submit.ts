/**
 * The standard driver submit path: lock the buffers, wait implicitly, arm, publish, push.
 *
 * Overview: a GPU job that reads and writes buffers must run after the work that last touched
 * them, and later work must find the job's fence on those buffers. Every kernel driver spells this
 * out in its submit ioctl; {@link submitJob} is that sequence once:
 * 1. lock every buffer's reservation with a {@link DrmExec} (deadlock-free, backing off and
 *    retrying on contention) and reserve one fence slot on each;
 * 2. add the implicit dependencies: a write waits for every reader and writer of the buffer, a
 *    read only for its writers;
 * 3. arm the job (its fences exist from here on);
 * 4. add the job's `finished` fence to every reservation, as a write or a read;
 * 5. push the job, then unlock everything.
 * So a second client reading a buffer waits for exactly the job that last wrote it, and a later
 * writer waits for both.
 *
 * Models the common part of drivers' submit ioctls (`drm_sched_job_add_implicit_dependencies()`
 * under `drm_exec`, `dma_resv_add_fence()`, `drm_sched_entity_push_job()`).
 *
 * Contract:
 * - A buffer named twice counts once, as a write if either naming writes.
 * - Failing before arm (an aborted lock, a killed entity) leaves the job un-armed and the caller's:
 *   call `job.cleanup()`. Nothing is published then. Once armed the job is always pushed.
 * - Every lock is released when the promise settles, whatever happened.
 *
 * @example
 * ```ts
 * import { DmaResv, DrmGpuScheduler, DrmGpuSchedStat, DrmSchedEntity, DrmSchedJob, Kref, submitJob } from 'dmabuf';
 * class Buffer {
 *   readonly resv = new DmaResv({ name: 'buffer' });
 *   readonly #ref = new Kref(() => this.resv[Symbol.dispose](), 'buffer');
 *   get(): void { this.#ref.get(); }
 *   put(): void { this.#ref.put(); }
 * }
 * const sched = new DrmGpuScheduler({
 *   name: 'gfx',
 *   ops: { runJob: () => null, timedOutJob: () => DrmGpuSchedStat.Reset, freeJob: () => {} },
 * });
 * const entity = new DrmSchedEntity({ schedulers: [sched] });
 * const [src, dst] = [new Buffer(), new Buffer()];
 * const job = new DrmSchedJob(entity);
 * await submitJob(job, [{ obj: src, write: false }, { obj: dst, write: true }]);
 * await job.finished.wait();
 * entity.fini();
 * sched.fini();
 * ```
 */

import { BugError, describeValue, InvalidArgumentError } from '../base/errors.js';
import { defineOptions, invalidArgument, optionalSignal } from '../base/options.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import { DrmExec, type DrmExecObject } from '../exec/drm-exec.js';
import { DrmSchedJob } from './sched-job.js';

const parseSubmitOptions = defineOptions('submitJob', { signal: optionalSignal });

/** A buffer a job uses, and how. */
export interface DrmSchedBufferAccess {
  readonly obj: DrmExecObject;
  /** The job writes the buffer (else it only reads it). */
  readonly write: boolean;
}

/** Options for {@link submitJob}. */
export interface SubmitJobOptions {
  /** Aborts the locking phase (before arm); the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/**
 * Locks `buffers`, makes `job` wait for their implicit fences, arms it, adds its `finished`
 * fence to each (write or read usage), pushes it, unlocks.
 * @throws rejects with {@link InvalidArgumentError} (a job that is not a DrmSchedJob, bad buffers or
 *   options) or {@link BugError} (a job already armed or pushed) before anything is locked.
 * @throws rejects before arm with the lock's or the entity's error; the job is then not armed.
 */
export async function submitJob(
  job: DrmSchedJob,
  buffers: readonly DrmSchedBufferAccess[],
  options?: SubmitJobOptions,
): Promise<void> {
  if (!(job instanceof DrmSchedJob)) throw invalidArgument('submitJob', 'job', job, 'a DrmSchedJob');
  if (job.state !== 'initialized') {
    throw new BugError(`submitJob: ${job} is ${job.state}; submit a fresh job (as made by new DrmSchedJob)`);
  }
  const { signal } = parseSubmitOptions(options);
  if (!Array.isArray(buffers)) {
    throw new InvalidArgumentError(
      `submitJob: buffers must be an array of { obj, write }, got ${describeValue(buffers)}`,
    );
  }
  const writes = new Map<DrmExecObject, boolean>();
  for (const b of buffers) {
    if (typeof b !== 'object' || b === null || typeof b.write !== 'boolean' || typeof b.obj?.resv !== 'object') {
      throw new InvalidArgumentError(
        `submitJob: each buffer must be { obj: an object with a resv, write: boolean }, got ${describeValue(b)}`,
      );
    }
    writes.set(b.obj, (writes.get(b.obj) ?? false) || b.write);
  }
  const objects = [...writes.keys()];
  await using exec = new DrmExec(signal !== undefined ? { signal } : {});
  await exec.untilAllLocked(async (exec) => {
    await exec.prepareArray(objects, 1);
  });
  for (const [obj, write] of writes) job.addImplicitDependencies(obj.resv, write);
  job.arm();
  for (const [obj, write] of writes) obj.resv.addFence(job.finished, write ? DmaResvUsage.Write : DmaResvUsage.Read);
  job.push();
}
