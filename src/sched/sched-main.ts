/**
 * drm_gpu_scheduler: decides when each job may run on one ring, and recovers when one hangs.
 *
 * Overview: a {@link DrmGpuScheduler} stands for one hardware ring (or firmware queue). Entities
 * queue jobs on it; its run work repeatedly picks an entity by policy (FAIR by default, FIFO or
 * round-robin, see `sched-rq.ts`), takes that entity's head job once its dependencies have
 * signalled and the ring has room (credits), and hands it to the backend's `runJob`, which returns
 * the hardware fence. When that fence signals, the job's `finished` fence signals with its error,
 * the credits come back and the free work hands the job to `freeJob`, in ring order. A watchdog
 * (the kernel's TDR) fires `timedOutJob` when the ring made no progress (no job started, none
 * freed) for `timeout` ms; the backend answers with a {@link DrmGpuSchedStat}. `stop()`,
 * `start(errno)` and `fault()` are the reset-recovery tools, `fini()` the teardown.
 *
 * Models `drivers/gpu/drm/scheduler/sched_main.c` (≈ Linux 6.17, with the FAIR run queue of the
 * 2026 series) and `include/drm/gpu_scheduler.h`.
 *
 * Contract (JavaScript shape of the kernel's):
 * - The run and free work run on the injected executor (default: microtasks), never inside the
 *   call that queued them, and never concurrently. Time (job timestamps, the watchdog) comes from
 *   the injected clock, default the current {@link getClock}.
 * - `runJob` and the completion path run inside a fence signalling section: under the validator
 *   a `runJob` that takes a reservation lock or allocates with reclaim is reported.
 * - `runJob` returns the hardware fence, or null (nothing to wait for: `finished` signals at
 *   once), or throws: the job's `finished` gets the thrown {@link DmaBufError} as is (the
 *   kernel's `ERR_PTR(-E...)`), any other exception wrapped in an `EIO` error with the original as
 *   `cause`. A return value that is neither a fence nor null counts as a thrown {@link BugError}.
 *   `scheduled` signals in every case, before `finished`.
 * - `freeJob` is called once per job, after `finished` signalled, in the order the jobs ran
 *   (killed jobs are freed as they are discarded). Exceptions from `freeJob`, `prepareJob`,
 *   `timedOutJob`, `cancelJob` and observers are recorded in {@link DrmGpuScheduler.failures},
 *   passed to `onError` (default: one `console.warn`), and the scheduler goes on serving.
 * - Credits: `0 <= creditCount <= creditLimit` always; a job needing more than the limit is cut
 *   down to the limit and so runs alone. An entity whose head job does not fit blocks the others.
 * - The watchdog is re-armed at every job start and every free, not per job; `timeout: Infinity`
 *   disables it. `NO_HANG` puts the job back; `ENODEV` stops re-arming; `RESET` leaves the job to
 *   the backend (it must complete the hardware fence and clean up), unless it called `stop()`.
 * - Errors reach `finished` as in the kernel (reference §4.3): the hardware fence's error; the
 *   `runJob` error; `ECANCELED` for a guilty entity's job; `ESRCH` for a killed entity's queued
 *   jobs; `start(errno)`'s errno (or `ECANCELED`) for jobs reset recovery detached; the backend's
 *   `cancelJob` error (or `ECANCELED` without one) at `fini()`. Dependency errors do not
 *   propagate.
 * - `fini()` requires the entities to be gone (a {@link BugError} otherwise, naming them), cancels
 *   and frees every pending job, and leaves every `finished` fence signalled. Fences keep their
 *   timeline name afterwards.
 *
 * @example
 * ```ts
 * import { DmaFence, DrmGpuScheduler, DrmGpuSchedStat, DrmSchedEntity, DrmSchedJob, fenceContextAlloc } from 'dmabuf';
 * const ring = fenceContextAlloc();
 * let seqno = 0;
 * const hw: DmaFence[] = [];
 * const sched = new DrmGpuScheduler({
 *   name: 'gfx',
 *   creditLimit: 2,
 *   timeout: 1000,
 *   ops: {
 *     runJob: () => {
 *       const fence = new DmaFence({ getDriverName: () => 'gpu', getTimelineName: () => 'gfx' }, ring, ++seqno);
 *       hw.push(fence);
 *       return fence;
 *     },
 *     timedOutJob: () => DrmGpuSchedStat.Reset,
 *     freeJob: (job) => job.cleanup(),
 *   },
 * });
 * const entity = new DrmSchedEntity({ schedulers: [sched], name: 'app' });
 * const job = new DrmSchedJob(entity);
 * job.arm();
 * job.push();
 * await job.scheduled.wait();
 * hw[0]!.signal(); // the "GPU" completes it
 * console.log(job.finished.signaledFlag, sched.creditCount); // true 0
 * entity.fini();
 * sched.fini();
 * ```
 */

import { BugError, DmaBufError, describeValue, type ErrnoCode } from '../base/errors.js';
import {
  type Check,
  defineOptions,
  invalidArgument,
  optionalErrno,
  optionalFunction,
  optionalIndex,
  optionalPositiveInteger,
  requiredFunction,
  requiredName,
} from '../base/options.js';
import { type Clock, getClock, type TimerHandle } from '../base/clock.js';
import { lockdep } from '../base/lockdep-hooks.js';
import { DmaFence } from '../fence/dma-fence.js';
import { beginSignalling, endSignalling } from '../locking/lockdep.js';
import { type DrmSchedExecutor, resolveSchedExecutor } from './sched-executor.js';
import type { DrmSchedEntity, DrmSchedEntityScheduler } from './sched-entity.js';
import { DrmSchedJob } from './sched-job.js';
import {
  DRM_SCHED_POLICIES,
  DRM_SCHED_PRIORITY_COUNT,
  DrmSchedPriority,
  type DrmSchedPolicy,
  DrmSchedRq,
  type DrmSchedQueueStats,
  schedAvgTimeUpdate,
} from './sched-rq.js';

/**
 * What the backend answers a timeout with.
 * @see enum drm_gpu_sched_stat
 */
export const DrmGpuSchedStat = Object.freeze({
  /** Reserved; treated as `Reset`. */
  None: 'none',
  /** The GPU hung and was reset; the backend owns the job now (unless it called `stop()`). */
  Reset: 'reset',
  /** The device is gone: the watchdog is not re-armed. */
  Enodev: 'enodev',
  /** False alarm, the job is still running: it goes back to the pending list. */
  NoHang: 'no-hang',
} as const);
export type DrmGpuSchedStat = (typeof DrmGpuSchedStat)[keyof typeof DrmGpuSchedStat];

/**
 * The backend: what the scheduler calls. `J` is the driver's job class (a subclass of
 * {@link DrmSchedJob}); every job pushed to this scheduler's entities must be one.
 * @see struct drm_sched_backend_ops
 */
export interface DrmSchedBackendOps<J extends DrmSchedJob = DrmSchedJob> {
  /**
   * Called once the job's stored dependencies have signalled, until it returns null: another
   * fence to wait for (a page-table update, say), or null when the job is ready. Not called for
   * jobs of killed entities.
   */
  prepareJob?(job: J, entity: DrmSchedEntity): DmaFence | null;
  /**
   * Starts the job; returns the fence the hardware signals when done, or null. Runs in a fence
   * signalling section: no reservation locks, no allocation that may wait for fences.
   */
  runJob(job: J): DmaFence | null;
  /** The watchdog fired with `job` at the head of the pending list. */
  timedOutJob(job: J): DrmGpuSchedStat;
  /** The job is done (its `finished` signalled): release it. Called once per job. */
  freeJob(job: J): void;
  /**
   * Only from `fini()`, for jobs still on the hardware: signal the job's hardware fence with an
   * error (`ECANCELED`) and do not free it; `freeJob` follows.
   */
  cancelJob?(job: J): void;
}

/** Lifecycle hooks for traces and statistics. Each is optional; an absent observer costs one check. */
export interface DrmSchedObserver<J extends DrmSchedJob = DrmSchedJob> {
  /** The job was pushed to one of the scheduler's entities. */
  jobQueued?(job: J): void;
  /** `runJob` returned; the job is on the hardware (`scheduledAt` set). */
  jobRun?(job: J): void;
  /** `finished` signalled (`finishedAt` set; `finished.error` holds the outcome). */
  jobDone?(job: J): void;
  /** The job went to `freeJob`; its GPU time was charged (`startedAt` is final). */
  jobFreed?(job: J): void;
  /** The job's entity was killed: it was discarded with `ESRCH`, and freed. */
  jobKilled?(job: J): void;
  /** The watchdog fired for `job` and the backend answered `status`. */
  timedOut?(job: J, status: DrmGpuSchedStat): void;
}

/** One exception from a backend op or an observer, as recorded by the scheduler. */
export interface DrmSchedFailure {
  readonly op: 'prepareJob' | 'timedOutJob' | 'freeJob' | 'cancelJob' | 'observer';
  readonly job: DrmSchedJob | null;
  readonly error: unknown;
}

/** Options for {@link DrmGpuScheduler}. */
export interface DrmGpuSchedulerInit<J extends DrmSchedJob = DrmSchedJob> {
  /** The ring's name; also the timeline name of every fence of its jobs. */
  readonly name: string;
  readonly ops: DrmSchedBackendOps<J>;
  /** Ring space, an integer >= 1, or Infinity (no flow control, the default). */
  readonly creditLimit?: number;
  /** Watchdog delay in milliseconds; Infinity (the default) disables it. */
  readonly timeout?: number;
  /** Deprecated in the kernel (used only by job resubmission, which is not modelled); default 0. */
  readonly hangLimit?: number;
  /** Entity selection: `'fair'` (default), `'fifo'`, `'rr'`, or a policy object. */
  readonly policy?: DrmSchedPolicy['name'] | DrmSchedPolicy;
  /** Time source for timestamps and the watchdog; default the current {@link getClock}. */
  readonly clock?: Clock;
  /** Where the run and free work execute; default `'microtask'`. */
  readonly executor?: 'microtask' | 'macrotask' | DrmSchedExecutor;
  readonly observer?: DrmSchedObserver<J>;
  /** Receives every recorded failure; default: the first one is printed with `console.warn`. */
  readonly onError?: (failure: DrmSchedFailure) => void;
}

const checkOps: Check<DrmSchedBackendOps> = (value, fn, name) => {
  if (typeof value !== 'object' || value === null) {
    throw invalidArgument(fn, name, value, 'an object with runJob, timedOutJob and freeJob');
  }
  const table = value as Record<string, unknown>;
  for (const op of ['runJob', 'timedOutJob', 'freeJob']) requiredFunction(table[op], fn, `${name}.${op}`);
  for (const op of ['prepareJob', 'cancelJob']) optionalFunction(table[op], fn, `${name}.${op}`);
  return value as DrmSchedBackendOps;
};

const checkCreditLimit: Check<number | undefined> = (value, fn, name) =>
  value === Infinity ? Infinity : optionalPositiveInteger(value, fn, name);

const checkWatchdogTimeout: Check<number | undefined> = (value, fn, name) => {
  if (value === undefined || (typeof value === 'number' && value >= 0)) return value;
  throw invalidArgument(fn, name, value, 'a number of milliseconds >= 0, or Infinity (the default) for no watchdog');
};

const checkPolicy: Check<DrmSchedPolicy> = (value, fn, name) => {
  if (value === undefined) return DRM_SCHED_POLICIES.fair;
  if (typeof value === 'string' && Object.hasOwn(DRM_SCHED_POLICIES, value)) {
    return DRM_SCHED_POLICIES[value as DrmSchedPolicy['name']];
  }
  if (typeof value === 'object' && value !== null && typeof (value as DrmSchedPolicy).keyOnAdd === 'function') {
    return value as DrmSchedPolicy;
  }
  throw invalidArgument(fn, name, value, "'fair', 'fifo', 'rr' or a policy object");
};

const checkClock: Check<Clock | undefined> = (value, fn, name) => {
  if (value === undefined) return undefined;
  const c = value as Partial<Clock> | null;
  if (
    typeof c === 'object' &&
    c !== null &&
    typeof c.now === 'function' &&
    typeof c.setTimer === 'function' &&
    typeof c.clearTimer === 'function'
  ) {
    return value as Clock;
  }
  throw invalidArgument(fn, name, value, 'a Clock { now, setTimer, clearTimer } (or omitted)');
};

const checkExecutor: Check<DrmSchedExecutor> = (value, fn, name) => {
  try {
    return resolveSchedExecutor(value);
  } catch {
    throw invalidArgument(fn, name, value, "'microtask', 'macrotask' or an object with a schedule(fn) method");
  }
};

const checkObserver: Check<DrmSchedObserver | undefined> = (value, fn, name) => {
  if (value === undefined) return undefined;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    for (const hook of ['jobQueued', 'jobRun', 'jobDone', 'jobFreed', 'jobKilled', 'timedOut']) {
      optionalFunction(o[hook], fn, `${name}.${hook}`);
    }
    return value as DrmSchedObserver;
  }
  throw invalidArgument(fn, name, value, 'an object of optional hooks (or omitted)');
};

const parseInit = defineOptions('DrmGpuScheduler', {
  name: requiredName,
  ops: checkOps,
  creditLimit: checkCreditLimit,
  timeout: checkWatchdogTimeout,
  hangLimit: optionalIndex,
  policy: checkPolicy,
  clock: checkClock,
  executor: checkExecutor,
  observer: checkObserver,
  onError: optionalFunction,
});

function checkJob(fn: string, name: string, job: unknown): void {
  if (!(job instanceof DrmSchedJob)) throw invalidArgument(fn, name, job, 'a DrmSchedJob');
}

const checkStart = (errno: unknown): ErrnoCode | undefined => optionalErrno(errno, 'DrmGpuScheduler.start', 'errno');
const checkRemaining = (value: unknown): number => {
  if (typeof value === 'number' && value >= 0 && !Number.isNaN(value)) return value;
  throw invalidArgument('DrmGpuScheduler.resumeTimeout', 'remaining', value, 'a number of milliseconds >= 0');
};

/** Work items on the ordered executor. */
const RUN = 0;
const FREE = 1;

/** Work items run per executor call before yielding (a long backlog does not monopolise a turn). */
const WORK_BUDGET = 64;

/**
 * A GPU scheduler for one ring.
 * @see struct drm_gpu_scheduler, drm_sched_init()
 */
export class DrmGpuScheduler<J extends DrmSchedJob = DrmSchedJob> implements DrmSchedEntityScheduler {
  readonly name: string;
  readonly creditLimit: number;
  readonly hangLimit: number;
  readonly policy: DrmSchedPolicy;
  readonly executor: DrmSchedExecutor;

  readonly #ops: DrmSchedBackendOps<J>;
  readonly #clock: Clock | undefined;
  readonly #observer: DrmSchedObserver<J> | null;
  readonly #onError: ((failure: DrmSchedFailure) => void) | undefined;
  readonly #rqs: DrmSchedRq[];
  readonly #stats: DrmSchedQueueStats = { avgJobTime: 0 };
  #timeout: number;

  #creditCount = 0;
  /** Jobs handed to `runJob` and not yet freed, in run order. */
  #pending: J[] = [];
  /** Jobs pushed and not yet done (part of the score). */
  #inFlight = 0;
  #ready = true;
  #paused = false;
  #freeGuilty = false;
  #truncated = 0;

  #runQueued = false;
  #freeQueued = false;
  #work: number[] = [];
  #pumpScheduled = false;

  /** Watchdog: the time it is due (undefined: disarmed) and the one timer behind it. */
  #tdrDue: number | undefined = undefined;
  #tdrTimer: TimerHandle | null = null;
  #tdrTimerDue = Infinity;

  readonly #failures: DrmSchedFailure[] = [];
  #warned = false;

  readonly #pump = (): void => {
    this.#pumpScheduled = false;
    const hooks = lockdep;
    if (hooks === null) this.#runWork();
    else hooks.task(this.#runWork);
  };

  readonly #runWork = (): void => {
    for (let budget = WORK_BUDGET; budget > 0 && this.#work.length > 0; budget--) {
      const item = this.#work.shift();
      if (item === RUN) {
        this.#runQueued = false;
        this.#runJobWork();
      } else {
        this.#freeQueued = false;
        this.#freeJobWork();
      }
    }
    if (this.#work.length > 0) this.#schedulePump();
  };

  readonly #onTimer = (): void => {
    this.#tdrTimer = null;
    this.#tdrTimerDue = Infinity;
    const due = this.#tdrDue;
    if (due === undefined) return;
    const left = due - this.clock.now();
    if (left > 0) {
      this.#armTimer(left);
      return;
    }
    this.#tdrDue = undefined;
    const hooks = lockdep;
    if (hooks === null) this.#timedOut();
    else hooks.task(() => this.#timedOut());
  };

  /**
   * @throws {InvalidArgumentError} for a missing name or op, a credit limit that is not an integer
   *   >= 1 or Infinity, a negative timeout, an unknown policy or executor.
   * @see drm_sched_init()
   */
  constructor(init: DrmGpuSchedulerInit<J>) {
    const { name, ops, creditLimit, timeout, hangLimit, policy, clock, executor, observer, onError } = parseInit(init);
    this.name = name;
    this.#ops = ops as DrmSchedBackendOps<J>;
    this.creditLimit = creditLimit ?? Infinity;
    this.#timeout = timeout ?? Infinity;
    this.hangLimit = hangLimit ?? 0;
    this.policy = policy;
    this.executor = executor;
    this.#clock = clock;
    this.#observer = (observer as DrmSchedObserver<J> | undefined) ?? null;
    this.#onError = onError as ((failure: DrmSchedFailure) => void) | undefined;
    const queues = policy.queuePerPriority ? DRM_SCHED_PRIORITY_COUNT : 1;
    this.#rqs = Array.from({ length: queues }, () => new DrmSchedRq(policy, this.#stats));
  }

  /** The clock in use: the injected one, or the current {@link getClock}. */
  get clock(): Clock {
    return this.#clock ?? getClock();
  }

  /** Watchdog delay in ms (Infinity: none). {@link tdrQueueImm} sets it to 0 for good. */
  get timeout(): number {
    return this.#timeout;
  }

  /** Credits taken by jobs on the hardware now. */
  get creditCount(): number {
    return this.#creditCount;
  }

  /** Jobs handed to `runJob` and not yet freed. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /** The pending jobs, in run order (a copy). */
  get pendingJobs(): readonly J[] {
    return this.#pending.slice();
  }

  /** Initialised and not finished. @see drm_sched_wqueue_ready() */
  get ready(): boolean {
    return this.#ready;
  }

  /** Submission paused by {@link stop}. @see drm_sched_is_stopped() */
  get stopped(): boolean {
    return this.#paused;
  }

  /** Load, for picking the least busy scheduler: entities on its run queues plus jobs not done. */
  get score(): number {
    let listed = 0;
    for (const rq of this.#rqs) listed += rq.listed;
    return listed + this.#inFlight;
  }

  /** Exponentially weighted average job duration on this ring, clock milliseconds. */
  get avgJobTime(): number {
    return this.#stats.avgJobTime;
  }

  /** Jobs whose credits were cut down to the limit (the kernel warns each time). */
  get truncatedJobs(): number {
    return this.#truncated;
  }

  /** Every failure of a backend op or observer so far, oldest first (a live read-only view). */
  get failures(): readonly DrmSchedFailure[] {
    return this.#failures;
  }

  /** The run queue for an entity of `priority`. @internal */
  rqFor(priority: DrmSchedPriority): DrmSchedRq {
    return this.#rqs[this.policy.queuePerPriority ? priority : 0]!;
  }

  /** For entities: a job was pushed. @internal */
  jobPushed(job: DrmSchedJob): void {
    this.#inFlight++;
    if (this.#observer?.jobQueued !== undefined) this.#observe('jobQueued', job as J);
  }

  /** Queues the run work. @see drm_sched_wakeup() */
  wakeup(): void {
    this.#queueWork(RUN);
  }

  /** For entities: the backend's `prepareJob`. @internal */
  prepareJob(job: DrmSchedJob, entity: DrmSchedEntity): DmaFence | null {
    const prepare = this.#ops.prepareJob;
    if (prepare === undefined) return null;
    try {
      const fence = prepare.call(this.#ops, job as J, entity);
      if (fence === null || fence === undefined) return null;
      if (fence instanceof DmaFence) return fence;
      throw new BugError(`prepareJob returned ${describeValue(fence)}; it must return a DmaFence or null`);
    } catch (err) {
      this.#fail('prepareJob', job, err);
      return null;
    }
  }

  /** For entities: a killed job was completed with ESRCH. @internal */
  discardJob(job: DrmSchedJob): void {
    this.#inFlight--;
    if (this.#observer?.jobKilled !== undefined) this.#observe('jobKilled', job as J);
    this.#free(job as J);
  }

  /**
   * Counts a hang against `job` and marks its entity's guilty flag (kernel-priority jobs are
   * always considered innocent). Call it from `timedOutJob`, as drivers do.
   * @throws {InvalidArgumentError} for anything but a DrmSchedJob.
   * @see drm_sched_increase_karma()
   */
  increaseKarma(job: DrmSchedJob): void {
    checkJob('DrmGpuScheduler.increaseKarma', 'job', job);
    if (job.priority === DrmSchedPriority.Kernel) return;
    job.addKarma();
    const guilty = (job.entity as Partial<DrmSchedEntity>).guilty;
    if (guilty !== null && guilty !== undefined) guilty.value = true;
  }

  /**
   * Fires the watchdog now (a backend that detected a fault itself).
   * @see drm_sched_fault()
   */
  fault(): void {
    if (!this.#ready) return;
    this.#tdrDue = this.clock.now();
    this.#armTimer(0);
  }

  /**
   * Makes every later timeout immediate, for good (to ban a queue), and arms the watchdog.
   * @see drm_sched_tdr_queue_imm()
   */
  tdrQueueImm(): void {
    this.#timeout = 0;
    this.#restartTimeout();
  }

  /**
   * Holds the watchdog off (e.g. while the ring is preempted).
   * @returns the milliseconds it had left, for {@link resumeTimeout} (the full timeout when idle).
   * @see drm_sched_suspend_timeout()
   */
  suspendTimeout(): number {
    const due = this.#tdrDue;
    if (due === undefined || due === Infinity || this.#pending.length === 0) return this.#timeout;
    this.#tdrDue = Infinity;
    return Math.max(0, due - this.clock.now());
  }

  /**
   * Re-arms the watchdog with `remaining` ms (from {@link suspendTimeout}); disarms it when idle.
   * @throws {InvalidArgumentError} for anything but a number of milliseconds >= 0.
   * @see drm_sched_resume_timeout()
   */
  resumeTimeout(remaining: number): void {
    checkRemaining(remaining);
    if (this.#pending.length === 0) {
      this.#cancelTimeout();
      return;
    }
    this.#tdrDue = this.clock.now() + remaining;
    this.#armTimer(remaining);
  }

  /**
   * Stops submission for reset recovery: no job runs or is freed until {@link start}. Jobs whose
   * hardware fence is still pending are detached from it (their credits given back), the others
   * are freed; `bad` (the hung job, if it is this scheduler's) goes back to the head of the
   * pending list, and if it had completed it is freed once the timeout handler returns.
   * Idempotent: a second stop() before {@link start} changes nothing.
   * @throws {InvalidArgumentError} for a `bad` that is not a DrmSchedJob (or null); nothing is stopped then.
   * @see drm_sched_stop()
   */
  stop(bad?: J | null): void {
    if (bad !== undefined && bad !== null) checkJob('DrmGpuScheduler.stop', 'bad', bad);
    // Stopped already: the detached jobs look like jobs without a hardware fence and would be freed unfinished.
    if (this.#paused) return;
    this.#pause();
    const pending = this.#pending;
    if (bad !== undefined && bad !== null && bad.sched === this && !pending.includes(bad)) pending.unshift(bad);
    for (let i = pending.length - 1; i >= 0; i--) {
      const job = pending[i]!;
      const parent = job.sFence!.parent;
      const callback = job.hwCallback;
      if (parent !== null && callback !== null && parent.removeCallback(callback)) {
        job.sFence!.detachParent();
        job.setHwCallback(null);
        this.#creditCount -= job.credits;
        continue;
      }
      pending.splice(i, 1);
      if (job === bad) this.#freeGuilty = true;
      else this.#free(job);
    }
    this.#cancelTimeout();
  }

  /**
   * Restarts submission after {@link stop}: every pending job is re-attached to its hardware fence,
   * and a job without one (detached by `stop`) completes with `errno` (`ECANCELED` when omitted).
   * @throws {InvalidArgumentError} for an errno that is not an errno name; nothing is restarted then.
   * @throws {BugError} when the scheduler was not stopped (nothing changes).
   * @see drm_sched_start()
   */
  start(errno?: ErrnoCode): void {
    checkStart(errno);
    if (!this.#ready) return;
    if (!this.#paused) {
      // Every pending job still has its hardware callback: attaching another would complete it twice.
      throw new BugError(`${this}.start() without stop(); start() restarts submission after a stop() only`);
    }
    const error = errno === undefined ? 'ECANCELED' : errno;
    for (const job of this.#pending.slice()) {
      this.#creditCount += job.credits;
      const parent = job.sFence!.parent;
      if (parent === null) {
        this.#jobDone(job, new DmaBufError(error, `${job} was pending when ${this} was reset`));
        continue;
      }
      const callback = this.#doneCallback(job, parent);
      job.setHwCallback(callback);
      if (!parent.addCallback(callback)) {
        job.setHwCallback(null);
        const e =
          parent.error ?? (errno === undefined ? undefined : new DmaBufError(errno, `${job}: ${this} was reset`));
        this.#jobDone(job, e);
      }
    }
    this.#restartTimeout();
    this.#paused = false;
    this.#queueWork(RUN);
    this.#queueWork(FREE);
  }

  /**
   * Tears the scheduler down: stops submission and the watchdog, cancels every job still on the
   * hardware (`cancelJob`, then `freeJob`, newest first; without `cancelJob` the scheduler
   * completes their `finished` with `ECANCELED` itself). Idempotent.
   * @throws {BugError} while entities still use the scheduler: destroy them first (the kernel's
   *   current rule); nothing is changed then.
   * @see drm_sched_fini()
   */
  fini(): void {
    if (!this.#ready) return;
    const live = this.score - this.#inFlight;
    if (live > 0) {
      throw new BugError(
        `${this}.fini(): ${live} entit${live === 1 ? 'y is' : 'ies are'} still using it; ` +
          'destroy (or fini) every entity before its scheduler',
      );
    }
    this.#pause();
    this.#cancelTimeout();
    const pending = this.#pending;
    while (pending.length > 0) {
      const job = pending[pending.length - 1]!;
      const cancel = this.#ops.cancelJob;
      if (cancel !== undefined) {
        try {
          cancel.call(this.#ops, job);
        } catch (err) {
          this.#fail('cancelJob', job, err);
        }
      }
      if (!job.finished.signaledFlag) {
        const parent = job.sFence!.parent;
        const callback = job.hwCallback;
        if (parent !== null && callback !== null) parent.removeCallback(callback);
        job.setHwCallback(null);
        this.#jobDone(job, new DmaBufError('ECANCELED', `${job} cancelled: ${this} was torn down`));
      }
      pending.pop();
      this.#free(job);
    }
    this.#ready = false;
  }

  /** {@link fini}. */
  [Symbol.dispose](): void {
    this.fini();
  }

  toString(): string {
    return `DrmGpuScheduler "${this.name}"`;
  }

  /** One job per call, as the kernel's run work. @see drm_sched_run_job_work() */
  #runJobWork(): void {
    if (this.#paused) return;
    const entity = this.#selectEntity();
    if (entity === null) return;
    const job = entity.popJob() as J | null;
    if (job === null) {
      this.#queueWork(RUN); // the entity is blocked now; look at the others
      return;
    }
    this.#creditCount += job.credits;
    job.advance('running');
    this.#pending.push(job);
    this.#restartTimeout();

    let fence: DmaFence | null = null;
    let error: Error | undefined;
    const cookie = lockdep !== null ? beginSignalling() : null;
    try {
      const result: unknown = this.#ops.runJob(job);
      if (result instanceof DmaFence) fence = result;
      else if (result !== null && result !== undefined) {
        error = new BugError(
          `${this}: runJob(${job}) returned ${describeValue(result)}; return the hardware DmaFence or null`,
        );
      }
    } catch (err) {
      error = jobError(job, err);
    } finally {
      if (cookie !== null) endSignalling(cookie);
    }
    const now = this.clock.now();
    job.markScheduledAt(now);
    job.sFence!.markScheduled(fence, now);
    if (this.#observer?.jobRun !== undefined) this.#observe('jobRun', job);
    if (fence !== null) {
      const callback = this.#doneCallback(job, fence);
      job.setHwCallback(callback);
      if (!fence.addCallback(callback)) {
        job.setHwCallback(null);
        this.#jobDone(job, fence.error);
      }
    } else {
      this.#jobDone(job, error);
    }
    this.#queueWork(RUN);
  }

  /** The first entity by policy whose head job may run, or null (none ready, or no credits). */
  #selectEntity(): DrmSchedEntity | null {
    for (const rq of this.#rqs) {
      const node = rq.peek();
      if (node === null) continue;
      const entity = node.owner as DrmSchedEntity;
      const job = entity.peekJob()!;
      if (job.credits > this.creditLimit) {
        job.truncateCredits(this.creditLimit);
        this.#truncated++;
      }
      // The head job does not fit: keep its place, try nobody else (the kernel's -ENOSPC).
      if (this.creditLimit - this.#creditCount < job.credits) return null;
      rq.select(node);
      return entity;
    }
    return null;
  }

  #doneCallback(job: J, fence: DmaFence): () => void {
    return () => {
      job.setHwCallback(null);
      this.#jobDone(job, fence.error);
    };
  }

  /** The hardware is done with `job`. @see drm_sched_job_done() */
  #jobDone(job: J, error: Error | undefined): void {
    this.#creditCount -= job.credits;
    this.#inFlight--;
    const hooks = lockdep;
    const cookie = hooks !== null ? hooks.beginSignalling(false) : null;
    const now = this.clock.now();
    job.advance('done', now);
    job.sFence!.markFinished(error, now);
    if (cookie !== null) hooks!.endSignalling(cookie);
    if (this.#observer?.jobDone !== undefined) this.#observe('jobDone', job);
    this.#queueWork(FREE);
  }

  /** Frees every finished job at the head of the pending list, in order. @see drm_sched_free_job_work() */
  #freeJobWork(): void {
    if (this.#paused) return;
    const pending = this.#pending;
    let freed = false;
    while (pending.length > 0 && pending[0]!.finished.signaledFlag) {
      const job = pending.shift()!;
      const next = pending[0];
      if (job.finishedAt !== undefined) {
        // A serial ring: the next job could not start before this one finished.
        next?.startNoEarlierThan(job.finishedAt);
        // Clamped: a hardware fence that signalled before its predecessor's ended before it "started".
        const duration = Math.max(0, job.finishedAt - (job.startedAt ?? job.finishedAt));
        (job.entity as DrmSchedEntity).node.accountJob(duration);
        this.#stats.avgJobTime = schedAvgTimeUpdate(this.#stats.avgJobTime, duration);
      }
      this.#restartTimeout();
      if (this.#observer?.jobFreed !== undefined) this.#observe('jobFreed', job);
      this.#free(job);
      freed = true;
    }
    if (freed) this.#queueWork(RUN);
  }

  #free(job: J): void {
    job.advance('freed');
    try {
      this.#ops.freeJob(job);
    } catch (err) {
      this.#fail('freeJob', job, err);
    }
  }

  /** The watchdog fired. @see drm_sched_job_timedout() */
  #timedOut(): void {
    if (!this.#ready) return;
    const job = this.#pending.shift();
    if (job === undefined) return;
    let status: DrmGpuSchedStat = DrmGpuSchedStat.Reset;
    try {
      status = this.#ops.timedOutJob(job);
    } catch (err) {
      this.#fail('timedOutJob', job, err);
    }
    if (this.#observer?.timedOut !== undefined) {
      try {
        this.#observer.timedOut(job, status);
      } catch (err) {
        this.#fail('observer', job, err);
      }
    }
    if (this.#freeGuilty) {
      this.#freeGuilty = false;
      this.#free(job);
    }
    if (status === DrmGpuSchedStat.NoHang) {
      this.#pending.unshift(job);
      this.#queueWork(FREE);
    }
    if (status !== DrmGpuSchedStat.Enodev) this.#restartTimeout();
  }

  /** `mod_delayed_work(tdr, timeout)` with something pending; cancel when idle. */
  #restartTimeout(): void {
    if (this.#pending.length === 0) {
      this.#cancelTimeout();
      return;
    }
    const timeout = this.#timeout;
    if (timeout === Infinity || this.#paused) return;
    const due = this.clock.now() + timeout;
    this.#tdrDue = due;
    // One timer serves every re-arm: a later due time is picked up when it fires; an earlier one re-arms it.
    if (this.#tdrTimer === null || this.#tdrTimerDue > due) this.#armTimer(timeout);
  }

  #armTimer(delay: number): void {
    if (this.#tdrTimer !== null) this.clock.clearTimer(this.#tdrTimer);
    this.#tdrTimerDue = this.clock.now() + delay;
    this.#tdrTimer = this.clock.setTimer(delay, this.#onTimer);
  }

  #cancelTimeout(): void {
    this.#tdrDue = undefined;
    if (this.#tdrTimer !== null) {
      this.clock.clearTimer(this.#tdrTimer);
      this.#tdrTimer = null;
      this.#tdrTimerDue = Infinity;
    }
  }

  #pause(): void {
    this.#paused = true;
    this.#work.length = 0;
    this.#runQueued = false;
    this.#freeQueued = false;
  }

  #queueWork(item: number): void {
    if (this.#paused) return;
    if (item === RUN) {
      if (this.#runQueued) return;
      this.#runQueued = true;
    } else {
      if (this.#freeQueued) return;
      this.#freeQueued = true;
    }
    this.#work.push(item);
    if (!this.#pumpScheduled) this.#schedulePump();
  }

  #schedulePump(): void {
    this.#pumpScheduled = true;
    this.executor.schedule(this.#pump);
  }

  #observe(event: 'jobQueued' | 'jobRun' | 'jobDone' | 'jobFreed' | 'jobKilled', job: J): void {
    try {
      this.#observer![event]!(job);
    } catch (err) {
      this.#fail('observer', job, err);
    }
  }

  #fail(op: DrmSchedFailure['op'], job: DrmSchedJob | null, error: unknown): void {
    const failure: DrmSchedFailure = { op, job, error };
    this.#failures.push(failure);
    if (this.#onError !== undefined) {
      try {
        this.#onError(failure);
      } catch {
        // An error handler that throws has nowhere to report to; the failure is recorded.
      }
      return;
    }
    if (this.#warned) return;
    this.#warned = true;
    const what = error instanceof Error ? `${error.name}: ${error.message}` : describeValue(error);
    console.warn(
      `${this}: ${op}${job !== null ? `(${job})` : ''} threw ${what}. The scheduler goes on; this and later ` +
        'failures are kept in its failures list (pass onError to handle each one).',
    );
  }
}

/** What a throwing `runJob` puts on `finished`: a DmaBufError as is, anything else as EIO. */
function jobError(job: DrmSchedJob, thrown: unknown): Error {
  if (thrown instanceof DmaBufError) return thrown;
  const what = thrown instanceof Error ? thrown.message : describeValue(thrown);
  return new DmaBufError('EIO', `runJob(${job}) threw: ${what}`, { cause: thrown });
}
