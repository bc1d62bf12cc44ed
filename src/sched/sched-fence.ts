/**
 * drm_sched_fence: the pair of fences every scheduler job hands out.
 *
 * Overview: when a job is armed it gets a {@link DrmSchedFence}, two {@link DmaFence}s on the
 * entity's two timelines. `scheduled` signals once the backend has taken the job (`runJob`
 * returned); `finished` is the job's out-fence, signalled when the hardware fence returned by
 * `runJob` signals, carrying its error. Everyone outside the scheduler (reservations, syncobjs,
 * other jobs) waits on `finished`; a job of the same scheduler may wait only for `scheduled`
 * (pipelining), unless the producer asked for {@link DrmSchedFence.setDontPipeline}.
 *
 * Models `drivers/gpu/drm/scheduler/sched_fence.c` and the fence part of
 * `include/drm/gpu_scheduler.h`.
 *
 * Contract:
 * - Both fences report driver name `"drm_sched"` and the scheduler's name as timeline name. The
 *   name is captured when the job is armed, so a fence exported long ago still describes itself
 *   after its scheduler is finished (the kernel's use-after-free of the timeline name, §7.5 of
 *   the reference, cannot happen).
 * - `scheduled` always signals before `finished` (also for jobs that fail, are killed or
 *   cancelled); the hardware fence ({@link DrmSchedFence.parent}) is published before `scheduled`
 *   signals.
 * - A deadline set on `finished` is kept (the earliest one wins) and forwarded to the hardware
 *   fence as soon as it exists; `scheduled` takes no deadline, and deadlines are not forwarded to
 *   the job's dependencies.
 * - {@link toDrmSchedFence} recognises either fence of a pair and returns `null` for anything
 *   else: that is how the scheduler tells "a job of mine" from a foreign fence.
 *
 * @example
 * ```ts
 * import { DrmSchedFence, fenceContextAlloc, toDrmSchedFence } from 'dmabuf';
 * const owner = {}; // the scheduler that armed the job
 * const pair = new DrmSchedFence(owner, 'gfx-ring', fenceContextAlloc(2), 1);
 * pair.finished.setDeadline(16); // stored: there is no hardware fence yet
 * pair.markScheduled(null);
 * pair.markFinished();
 * console.log(toDrmSchedFence(pair.finished) === pair, pair.finished.describe());
 * ```
 */

import { invalidArgument, requiredFinite, requiredIndex, requiredString } from '../base/options.js';
import { DmaFence, type DmaFenceOps } from '../fence/dma-fence.js';

/** The driver name of every scheduler fence. */
export const DRM_SCHED_DRIVER_NAME = 'drm_sched';

/**
 * One fence of a {@link DrmSchedFence} pair. Subclassed (rather than tagged) so that recognising a
 * scheduler fence is one `instanceof`, the analogue of the kernel comparing ops tables.
 */
export class DrmSchedFenceMember extends DmaFence {
  /** The pair this fence belongs to. */
  readonly sFence: DrmSchedFence;

  constructor(ops: DmaFenceOps, sFence: DrmSchedFence, context: number, seqno: number) {
    super(ops, context, seqno);
    this.sFence = sFence;
  }
}

const scheduledOps: DmaFenceOps<DrmSchedFenceMember> = Object.freeze({
  getDriverName: () => DRM_SCHED_DRIVER_NAME,
  getTimelineName: (fence: DrmSchedFenceMember) => fence.sFence.timelineName,
});

const finishedOps: DmaFenceOps<DrmSchedFenceMember> = Object.freeze({
  getDriverName: () => DRM_SCHED_DRIVER_NAME,
  getTimelineName: (fence: DrmSchedFenceMember) => fence.sFence.timelineName,
  setDeadline: (fence: DrmSchedFenceMember, deadline: number) => fence.sFence.setDeadline(deadline),
});

/**
 * The `scheduled` / `finished` fence pair of one armed job.
 * @see struct drm_sched_fence
 */
export class DrmSchedFence {
  /** Signalled when the backend took the job (`runJob` returned), or when the job was discarded. */
  readonly scheduled: DrmSchedFenceMember;
  /** The job's out-fence: signalled when the hardware fence signals, with its error. */
  readonly finished: DrmSchedFenceMember;
  /** Identity of the scheduler that armed the job: compared for pipelining, never called. */
  readonly owner: object;
  /** The scheduler's name when the job was armed; both fences report it as their timeline. */
  readonly timelineName: string;

  #parent: DmaFence | null = null;
  #deadline: number | undefined = undefined;
  #dontPipeline = false;

  /**
   * @param owner the scheduler (identity only).
   * @param timelineName the scheduler's name, kept for the fences' whole life.
   * @param context the first of the entity's two fence contexts: `scheduled` uses it, `finished`
   *   the next one.
   * @param seqno the job's position on both timelines (the entity's n-th armed job gets n).
   * @see drm_sched_fence_init()
   */
  constructor(owner: object, timelineName: string, context: number, seqno: number) {
    if (typeof owner !== 'object' || owner === null)
      throw invalidArgument('DrmSchedFence', 'owner', owner, 'an object');
    requiredString(timelineName, 'DrmSchedFence', 'timelineName');
    // `finished` takes the context after `context`: both must be fence contexts.
    if (requiredIndex(context, 'DrmSchedFence', 'context') >= Number.MAX_SAFE_INTEGER) {
      throw invalidArgument(
        'DrmSchedFence',
        'context',
        context,
        'an integer from 0 to 2^53-2 (finished uses the next)',
      );
    }
    requiredIndex(seqno, 'DrmSchedFence', 'seqno');
    this.owner = owner;
    this.timelineName = timelineName;
    this.scheduled = new DrmSchedFenceMember(scheduledOps, this, context, seqno);
    this.finished = new DrmSchedFenceMember(finishedOps, this, context + 1, seqno);
  }

  /** The hardware fence `runJob` returned, once it returned one. */
  get parent(): DmaFence | null {
    return this.#parent;
  }

  /** The earliest deadline asked of `finished` so far (clock milliseconds), if any. */
  get deadline(): number | undefined {
    return this.#deadline;
  }

  /** Whether dependents of this job must wait for `finished` even on the same scheduler. */
  get dontPipeline(): boolean {
    return this.#dontPipeline;
  }

  /**
   * Makes every dependent wait for `finished`, never only `scheduled` (the driver's
   * `DRM_SCHED_FENCE_DONT_PIPELINE` flag), e.g. when the job's results must be visible to a
   * job that the hardware could otherwise start early.
   */
  setDontPipeline(): void {
    this.#dontPipeline = true;
  }

  /**
   * Keeps the earliest deadline and passes it on to the hardware fence, when there is one.
   * @throws {InvalidArgumentError} for a deadline that is not a finite number.
   * @see drm_sched_fence_set_deadline_finished()
   */
  setDeadline(deadline: number): void {
    requiredFinite(deadline, 'DrmSchedFence.setDeadline', 'deadline');
    if (this.#deadline !== undefined && this.#deadline <= deadline) return;
    this.#deadline = deadline;
    this.#parent?.setDeadline(deadline);
  }

  /**
   * Publishes the hardware fence (forwarding a stored deadline), then signals `scheduled`.
   * @param parent what `runJob` returned, or null (no hardware fence: failed, or nothing to run).
   * @see drm_sched_fence_scheduled()
   */
  markScheduled(parent: DmaFence | null, timestamp?: number): void {
    if (parent !== null) {
      this.#parent = parent;
      if (this.#deadline !== undefined) parent.setDeadline(this.#deadline);
    }
    this.scheduled.signal(timestamp);
  }

  /** Forgets the hardware fence (reset recovery detached it). */
  detachParent(): void {
    this.#parent = null;
  }

  /**
   * Sets `error` (when given) on `finished` and signals it.
   * @see drm_sched_fence_finished()
   */
  markFinished(error?: Error, timestamp?: number): void {
    if (this.finished.signaledFlag) return;
    if (error !== undefined) this.finished.setError(error);
    this.finished.signal(timestamp);
  }
}

/**
 * The pair behind a scheduler fence (`scheduled` or `finished`), or null for any other fence.
 * @see to_drm_sched_fence()
 */
export function toDrmSchedFence(fence: unknown): DrmSchedFence | null {
  return fence instanceof DrmSchedFenceMember ? fence.sFence : null;
}
