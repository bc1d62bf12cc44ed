/**
 * The kernel's mock GPU for the scheduler KUnit tests (`drivers/gpu/drm/scheduler/tests/
 * mock_scheduler.c`), on a virtual clock.
 *
 * A {@link DrmMockScheduler} is a {@link DrmGpuScheduler} (credit limit "U32_MAX", hang limit 1,
 * named "drm-mock-scheduler") over a fake hardware ring: `runJob` gives each job a hardware fence
 * with the ring's next seqno and, for a timed job, a finish time right after the previous job's
 * (or now); a timer at that time completes jobs from the head of the ring, stopping at the first
 * manual job (duration 0) or the first one not due yet. So jobs complete strictly in order, a
 * manual job blocks the timed ones behind it, and {@link DrmMockScheduler.advance} completes
 * manual jobs by seqno. Its timeout handler signals the hung job's hardware fence with
 * `ETIMEDOUT` (flag TIMEDOUT) and answers RESET, or, for a job flagged DONT_RESET, sets
 * RESET_SKIPPED and answers NO_HANG; `cancelJob` signals with `ECANCELED`.
 *
 * Time: one jiffy is one virtual millisecond and {@link HZ} is 1000. "Wait up to N jiffies"
 * becomes {@link waitUntil}: step the virtual clock one millisecond at a time, letting promise
 * reactions and the scheduler's microtask work run between steps, until the condition holds.
 */
import { DmaBufError } from '../../src/base/errors.js';
import { type VirtualClock, settle } from '../../src/base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DrmSchedJob } from '../../src/sched/sched-job.js';
import { DrmGpuScheduler, DrmGpuSchedStat, type DrmSchedObserver } from '../../src/sched/sched-main.js';
import type { DrmSchedPriority } from '../../src/sched/sched-rq.js';
import type { TimerHandle } from '../../src/base/clock.js';

/** Jiffies per second: one jiffy is one virtual millisecond. */
export const HZ = 1000;
/** The kernel's "no timeout". */
export const MAX_SCHEDULE_TIMEOUT = Infinity;

/** `DRM_MOCK_SCHED_JOB_*` flags. */
export const DRM_MOCK_SCHED_JOB_DONE = 0x1;
export const DRM_MOCK_SCHED_JOB_TIMEDOUT = 0x2;
export const DRM_MOCK_SCHED_JOB_DONT_RESET = 0x4;
export const DRM_MOCK_SCHED_JOB_RESET_SKIPPED = 0x8;

const hwOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'drm_mock_sched',
  getTimelineName: () => 'drm-mock-scheduler-hw',
});

/** A mock job: a duration (0 = manual), flags, and its hardware fence once it runs. */
export class DrmMockJob extends DrmSchedJob {
  durationUs = 0;
  finishAt = 0;
  flags = 0;
  hwFence: DmaFence | null = null;
  timer: TimerHandle | null = null;
}

/** The mock GPU and its scheduler. */
export class DrmMockScheduler {
  readonly base: DrmGpuScheduler<DrmMockJob>;
  readonly clock: VirtualClock;
  readonly hwContext = fenceContextAlloc();
  nextSeqno = 0;
  curSeqno = 0;
  /** Jobs on the "GPU", in run order. */
  readonly jobList: DrmMockJob[] = [];

  /** @see drm_mock_sched_new() (`creditLimit`: the kernel's credits test sets 1 after init) */
  constructor(
    clock: VirtualClock,
    timeout: number,
    observer?: DrmSchedObserver<DrmMockJob>,
    creditLimit = 2 ** 32 - 1,
  ) {
    this.clock = clock;
    this.base = new DrmGpuScheduler<DrmMockJob>({
      name: 'drm-mock-scheduler',
      creditLimit,
      hangLimit: 1,
      timeout,
      clock,
      ...(observer !== undefined ? { observer } : {}),
      ops: {
        runJob: (job) => this.#runJob(job),
        timedOutJob: (job) => this.#timedOutJob(job),
        freeJob: (job) => this.#freeJob(job),
        cancelJob: (job) => this.#cancelJob(job),
      },
    });
  }

  /** Completes manual jobs up to `n` seqnos further; returns how many completed. @see drm_mock_sched_advance() */
  advance(n: number): number {
    this.curSeqno += n;
    let found = 0;
    while (this.jobList.length > 0 && this.jobList[0]!.hwFence!.seqno <= this.curSeqno) {
      this.#complete(this.jobList[0]!);
      found++;
    }
    return found;
  }

  /** @see drm_mock_sched_fini() */
  fini(): void {
    this.base.fini();
  }

  #runJob(job: DrmMockJob): DmaFence {
    const fence = new DmaFence(hwOps, this.hwContext, ++this.nextSeqno);
    job.hwFence = fence;
    if (job.durationUs > 0) {
      const last = this.jobList[this.jobList.length - 1];
      const start = last === undefined || last.finishAt === 0 ? this.clock.now() : last.finishAt;
      job.finishAt = start + job.durationUs / 1000;
      job.timer = this.clock.setTimer(job.finishAt - this.clock.now(), () => this.#onTimer());
    }
    this.jobList.push(job);
    return fence;
  }

  /** Completes timed jobs from the head while they are due; stops at a manual or future one. */
  #onTimer(): void {
    const now = this.clock.now();
    while (this.jobList.length > 0) {
      const job = this.jobList[0]!;
      if (job.finishAt === 0 || job.finishAt > now) break;
      this.#complete(job);
    }
  }

  #complete(job: DrmMockJob): void {
    this.jobList.shift();
    job.flags |= DRM_MOCK_SCHED_JOB_DONE;
    this.curSeqno = Math.max(this.curSeqno, job.hwFence!.seqno);
    job.hwFence!.signal();
  }

  #unlink(job: DrmMockJob): void {
    const i = this.jobList.indexOf(job);
    if (i >= 0) this.jobList.splice(i, 1);
  }

  #timedOutJob(job: DrmMockJob): DrmGpuSchedStat {
    if ((job.flags & DRM_MOCK_SCHED_JOB_DONT_RESET) !== 0) {
      job.flags |= DRM_MOCK_SCHED_JOB_RESET_SKIPPED;
      return DrmGpuSchedStat.NoHang;
    }
    const fence = job.hwFence!;
    if (!fence.signaledFlag) {
      this.#unlink(job);
      job.flags |= DRM_MOCK_SCHED_JOB_TIMEDOUT;
      fence.setError(new DmaBufError('ETIMEDOUT', `${job} timed out on the mock GPU`));
      fence.signal();
    }
    job.cleanup();
    return DrmGpuSchedStat.Reset;
  }

  #freeJob(job: DrmMockJob): void {
    job.cleanup();
  }

  #cancelJob(job: DrmMockJob): void {
    if (job.timer !== null) this.clock.clearTimer(job.timer);
    const fence = job.hwFence!;
    if (!fence.signaledFlag) {
      this.#unlink(job);
      fence.setError(new DmaBufError('ECANCELED', `${job} cancelled on the mock GPU`));
      fence.signal();
    }
  }
}

/** @see drm_mock_sched_entity_new() */
export function mockEntity(sched: DrmMockScheduler, priority: DrmSchedPriority, name?: string): DrmSchedEntity {
  return new DrmSchedEntity({ schedulers: [sched.base], priority, ...(name !== undefined ? { name } : {}) });
}

/** @see drm_mock_sched_job_new() (credits 1, client id 1) */
export function mockJob(entity: DrmSchedEntity, durationUs = 0): DrmMockJob {
  const job = new DrmMockJob(entity, { credits: 1, clientId: 1 });
  job.durationUs = durationUs;
  return job;
}

/** Arm and push. @see drm_mock_sched_job_submit() */
export function submit(job: DrmSchedJob): void {
  job.arm();
  job.push();
}

/** The DONE flag: completed on the mock GPU (not the scheduler's `finished`). */
export function isFinished(job: DrmMockJob): boolean {
  return (job.flags & DRM_MOCK_SCHED_JOB_DONE) !== 0;
}

/**
 * Steps `clock` one millisecond at a time, draining promise reactions in between, until `cond`
 * holds or `ms` milliseconds have passed. Returns `cond()`.
 */
export async function waitUntil(clock: VirtualClock, cond: () => boolean, ms: number): Promise<boolean> {
  await settle();
  for (let t = 0; t < ms && !cond(); t++) await clock.tick(1);
  return cond();
}

/** @see drm_mock_sched_job_wait_finished() */
export function waitFinished(sched: DrmMockScheduler, job: DrmMockJob, ms: number): Promise<boolean> {
  return waitUntil(sched.clock, () => isFinished(job), ms);
}

/** @see drm_mock_sched_job_wait_scheduled() */
export function waitScheduled(sched: DrmMockScheduler, job: DrmMockJob, ms: number): Promise<boolean> {
  return waitUntil(sched.clock, () => job.scheduled.signaledFlag, ms);
}
