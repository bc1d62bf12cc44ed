/**
 * A hand-driven hardware ring for scheduler behaviour tests: `runJob` records the job and returns
 * a fresh hardware fence that the test completes whenever (and in whatever order) it likes.
 * Every backend call is logged, so tests can assert orders ("freeJob in run order") directly.
 */
import { afterEach, beforeEach } from 'node:test';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaBufError, type ErrnoCode } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { ManualExecutor } from '../../src/sched/sched-executor.js';
import type { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DrmSchedJob } from '../../src/sched/sched-job.js';
import {
  DrmGpuScheduler,
  DrmGpuSchedStat,
  type DrmGpuSchedulerInit,
  type DrmSchedBackendOps,
} from '../../src/sched/sched-main.js';

const hwOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'test-ring',
  getTimelineName: () => 'test-ring-hw',
});

/** One logged backend call. */
export interface RingEvent {
  readonly op: 'run' | 'free' | 'timedOut' | 'cancel' | 'prepare';
  readonly job: DrmSchedJob;
}

/** Options for {@link TestRing}: scheduler options plus overrides of the default backend ops. */
export type TestRingInit = Omit<Partial<DrmGpuSchedulerInit>, 'ops'> & {
  readonly ops?: Partial<DrmSchedBackendOps>;
  /** Answer of the default timedOutJob. */
  readonly timeoutStatus?: DrmGpuSchedStat;
};

/** A scheduler over a manual ring, stepped with a {@link ManualExecutor}. */
export class TestRing {
  readonly executor = new ManualExecutor();
  readonly sched: DrmGpuScheduler;
  readonly context = fenceContextAlloc();
  readonly log: RingEvent[] = [];
  /** Hardware fences by job, for jobs that ran. */
  readonly hw = new Map<DrmSchedJob, DmaFence>();
  #seqno = 0;

  constructor(init: TestRingInit = {}) {
    const status = init.timeoutStatus ?? DrmGpuSchedStat.Reset;
    const ops: DrmSchedBackendOps = {
      runJob: (job) => {
        this.log.push({ op: 'run', job });
        const fence = new DmaFence(hwOps, this.context, ++this.#seqno);
        this.hw.set(job, fence);
        return fence;
      },
      timedOutJob: (job) => {
        this.log.push({ op: 'timedOut', job });
        return status;
      },
      freeJob: (job) => {
        this.log.push({ op: 'free', job });
      },
      ...init.ops,
    };
    const { ops: _ops, timeoutStatus: _status, ...rest } = init;
    this.sched = new DrmGpuScheduler({ name: 'test-ring', executor: this.executor, ...rest, ops });
  }

  /** Runs the scheduler's queued work until it is idle. */
  drain(): number {
    return this.executor.drain();
  }

  /** Signals `job`'s hardware fence (with `error` first, if given), then drains. */
  complete(job: DrmSchedJob, error?: ErrnoCode): void {
    const fence = this.hw.get(job);
    if (fence === undefined) throw new Error(`${job} never ran on the test ring`);
    if (error !== undefined) fence.setError(new DmaBufError(error, `${job} failed on the test ring`));
    fence.signal();
    this.drain();
  }

  /** Jobs of one kind of call, in call order. */
  calls(op: RingEvent['op']): DrmSchedJob[] {
    return this.log.filter((e) => e.op === op).map((e) => e.job);
  }
}

/** Makes, arms and pushes a job on `entity` with `credits` and dependencies `deps`. */
export function pushJob(entity: DrmSchedEntity, init?: { credits?: number; deps?: readonly DmaFence[] }): DrmSchedJob {
  const job = new DrmSchedJob(entity, init?.credits !== undefined ? { credits: init.credits } : {});
  for (const d of init?.deps ?? []) job.addDependency(d);
  job.arm();
  job.push();
  return job;
}

/** The errno name of a fence's error, if it has one. */
export function errorCode(fence: DmaFence): string | undefined {
  return (fence.error as DmaBufError | undefined)?.code;
}

/** Installs a fresh VirtualClock before each case of the enclosing suite (handed to `use`) and removes it after. */
export function withVirtualClock(use: (clock: VirtualClock) => void): void {
  let restore: Disposable | undefined;
  beforeEach(() => {
    const clock = new VirtualClock();
    restore = useClock(clock);
    use(clock);
  });
  afterEach(() => restore?.[Symbol.dispose]());
}
