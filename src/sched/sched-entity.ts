/**
 * drm_sched_entity: a software queue of jobs, one per client context and ring.
 *
 * Overview: a {@link DrmSchedEntity} is where a client's jobs wait before the scheduler runs
 * them, strictly in push order. It has a priority, a list of schedulers it may run on (it settles
 * on the least busy one whenever it is idle), two fence timelines (its jobs' `scheduled` and
 * `finished` fences), and optionally a guilty flag shared with the client's other entities. The
 * scheduler asks it for its next job ({@link DrmSchedEntity.popJob}); the entity answers once the
 * head job's dependencies have signalled, and otherwise sleeps until they do. Teardown follows
 * the kernel: {@link DrmSchedEntity.flush} waits until every queued job has been handed to the
 * hardware, {@link DrmSchedEntity.kill} discards what is still queued (each discarded job's
 * `finished` fence gets `ESRCH`, in queue order, each after the previous one and after its own
 * dependencies), {@link DrmSchedEntity.destroy} does both.
 *
 * Models `drivers/gpu/drm/scheduler/sched_entity.c` and `struct drm_sched_entity`.
 *
 * Contract:
 * - Jobs run in push order; a job's dependency on the entity's own earlier jobs is ignored (the
 *   ring is in order), on a job of the same scheduler it waits only for `scheduled` (pipelining,
 *   unless that job failed or asked for `setDontPipeline()`), on anything else for the fence.
 * - Dependency errors do not propagate. {@link DrmSchedEntity.error} is the error of the last job
 *   handed to the hardware, for drivers that refuse work after a failure.
 * - A guilty entity (its flag set by the watchdog's karma) still runs its jobs, but their
 *   `finished` fences carry `ECANCELED` unless the hardware reports its own error.
 * - Pushing to a killed entity throws {@link DrmSchedEntityKilledError}. Kill and fini are
 *   idempotent; discarded jobs never reach `prepareJob` or `runJob`, take no credits, and are
 *   handed to `freeJob`. The discard work runs on a microtask, never inside a fence callback.
 * - A priority change applies when the entity next picks a run queue (at arm with an idle queue)
 *   under FIFO and RR, and at the next pop under FAIR. (The kernel loses it for entities bound to
 *   one scheduler under FIFO and RR; here it is applied.)
 * - {@link DrmSchedEntity.modifySched} takes effect at a later arm, with an empty queue and the
 *   last job finished, as in the kernel.
 *
 * @example
 * ```ts
 * import { DrmGpuScheduler, DrmGpuSchedStat, DrmSchedEntity, DrmSchedJob, DrmSchedPriority } from 'dmabuf';
 * const sched = new DrmGpuScheduler({
 *   name: 'compute',
 *   ops: { runJob: () => null, timedOutJob: () => DrmGpuSchedStat.Reset, freeJob: () => {} },
 * });
 * const client = new DrmSchedEntity({ schedulers: [sched], priority: DrmSchedPriority.High, name: 'client-a' });
 * const job = new DrmSchedJob(client);
 * job.arm();
 * job.push();
 * await client.destroy(); // flush (all jobs handed over), then kill
 * console.log(job.finished.signaledFlag, client.stopped); // true true
 * sched.fini();
 * ```
 */

import { DmaBufError } from '../base/errors.js';
import {
  type Check,
  defineOptions,
  invalidArgument,
  optional,
  optionalBoolean,
  optionalSignal,
  optionalString,
  optionalTimeout,
} from '../base/options.js';
import type { Clock, TimerHandle } from '../base/clock.js';
import { type DmaFence, fenceContextAlloc } from '../fence/dma-fence.js';
import { lockdep } from '../base/lockdep-hooks.js';
import { DrmSchedFence, toDrmSchedFence } from './sched-fence.js';
import {
  type DrmSchedArming,
  DrmSchedEntityKilledError,
  type DrmSchedJob,
  type DrmSchedJobEntity,
} from './sched-job.js';
import { checkSchedPriority, DrmSchedPriority, type DrmSchedRq, DrmSchedRqNode } from './sched-rq.js';

/** What an entity needs from a scheduler (`DrmGpuScheduler` implements it). */
export interface DrmSchedEntityScheduler {
  readonly name: string;
  /** Initialised and not finished (`drm_sched_wqueue_ready()`). */
  readonly ready: boolean;
  /** Load: entities on the run queues plus jobs pushed and not done. */
  readonly score: number;
  readonly clock: Clock;
  /** @internal The run queue an entity of `priority` belongs on. */
  rqFor(priority: DrmSchedPriority): DrmSchedRq;
  /** @internal A job was queued on one of the scheduler's entities. */
  jobPushed(job: DrmSchedJob): void;
  /** Queues the run work (`drm_sched_wakeup()`). */
  wakeup(): void;
  /** @internal The backend's `prepareJob`, or null when it has none. */
  prepareJob(job: DrmSchedJob, entity: DrmSchedEntity): DmaFence | null;
  /** @internal A job of a killed entity was completed: hand it to `freeJob`. */
  discardJob(job: DrmSchedJob): void;
}

/** A client's shared "guilty" flag (the kernel's `atomic_t *guilty`), set by the watchdog's karma. */
export interface DrmSchedGuiltyFlag {
  value: boolean;
}

/** Options for {@link DrmSchedEntity}. */
export interface DrmSchedEntityInit {
  /** Schedulers the entity may run on; the least busy one is picked whenever the entity is idle. */
  readonly schedulers: readonly DrmSchedEntityScheduler[];
  /** Default `DrmSchedPriority.Normal`; a value of {@link DrmSchedPriority} or its name. */
  readonly priority?: DrmSchedPriority | 'kernel' | 'high' | 'normal' | 'low';
  /** Shared with the client's other entities; the watchdog sets it for the entity of a hung job. */
  readonly guilty?: DrmSchedGuiltyFlag;
  /** The client's name, for messages and traces. */
  readonly name?: string;
}

/** Options for {@link DrmSchedEntity.flush}. */
export interface DrmSchedFlushOptions {
  /** Give up after this many milliseconds (default: wait as long as it takes). */
  readonly timeout?: number;
  /** Stops waiting: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
  /** Kill the entity after waiting (the kernel does when the owning process was killed). */
  readonly kill?: boolean;
}

/** An entity's share of the GPU so far. */
export interface DrmSchedEntityStats {
  /** GPU time of its freed jobs, clock milliseconds. */
  readonly runtime: number;
  /** FAIR's weighted runtime. */
  readonly vruntime: number;
  /** Average job duration (exponentially weighted, 1/4), clock milliseconds. */
  readonly avgJobTime: number;
  readonly jobsPushed: number;
  readonly jobsRun: number;
  /** Jobs queued and not yet handed to the hardware. */
  readonly queued: number;
}

/** How long {@link DrmSchedEntity.destroy} waits for the queue to drain (`MAX_WAIT_SCHED_ENTITY_Q_EMPTY`). */
export const DRM_SCHED_ENTITY_DESTROY_WAIT = 1000;

let entityCount = 0;

/**
 * A queue of jobs for one or more schedulers.
 * @see struct drm_sched_entity
 */
export class DrmSchedEntity implements DrmSchedJobEntity, Disposable, AsyncDisposable {
  readonly name: string;
  /** The `scheduled` fences' context; `finished` fences use the next one. */
  readonly fenceContext: number;
  readonly guilty: DrmSchedGuiltyFlag | null;
  /** The run-queue bookkeeping and GPU-time statistics; for the scheduler. */
  readonly node: DrmSchedRqNode<DrmSchedEntity>;

  #schedList: readonly DrmSchedEntityScheduler[] | null;
  #sched: DrmSchedEntityScheduler | null = null;
  #rq: DrmSchedRq | null = null;
  #fenceSeq = 0;
  #queue: (DrmSchedJob | undefined)[] = [];
  #head = 0;
  #dependency: DmaFence | null = null;
  #lastScheduled: DmaFence | null = null;
  #stopped = false;
  #jobsPushed = 0;
  #jobsRun = 0;
  #flushWaiters: (() => void)[] = [];

  readonly #onDependency = (): void => {
    this.#dependency = null;
    if (this.#rq !== null && !this.#stopped) {
      this.#rq.unblock(this.node);
      this.#sched!.wakeup();
    }
  };

  /**
   * @throws {InvalidArgumentError} for a scheduler list that is not an array of schedulers, or a
   *   bad priority. An empty list is accepted (as in the kernel before 2026): such an entity
   *   cannot take jobs (`ENOENT`) until {@link modifySched} gives it one.
   * @see drm_sched_entity_init()
   */
  constructor(init: DrmSchedEntityInit) {
    const parsed = parseEntityInit(init);
    const name = parsed.name ?? `entity-${++entityCount}`;
    const list = parsed.schedulers;
    const priority = parsed.priority ?? DrmSchedPriority.Normal;
    const guilty = parsed.guilty ?? null;
    this.name = name;
    this.guilty = guilty;
    this.node = new DrmSchedRqNode<DrmSchedEntity>(this, priority);
    this.fenceContext = fenceContextAlloc(2);
    const first = list[0];
    if (first?.ready === true) {
      this.#sched = first;
      this.#rq = first.rqFor(priority);
    }
    this.#schedList = list.length > 1 ? list : null;
  }

  /** The priority; see {@link setPriority}. */
  get priority(): DrmSchedPriority {
    return this.node.priority;
  }

  /** The scheduler the entity runs on now, or null. */
  get sched(): DrmSchedEntityScheduler | null {
    return this.#sched;
  }

  /** Whether the entity can take jobs (the kernel's `entity->rq != NULL`). */
  get hasScheduler(): boolean {
    if (this.#sched?.ready === true) return true;
    return this.#schedList?.some((s) => s.ready) ?? false;
  }

  /** Killed: no more pushes; queued jobs were discarded. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Jobs queued and not yet handed to the hardware. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** The fence the head job waits for now, if it is blocked. */
  get dependency(): DmaFence | null {
    return this.#dependency;
  }

  /**
   * The error of the last job handed to the hardware (its `finished` fence), if any. It may change
   * at any time; drivers read it at submission to refuse work after a failure.
   * @see drm_sched_entity_error()
   */
  get error(): Error | undefined {
    return this.#lastScheduled?.error;
  }

  /** The `finished` fence of the last job handed to the hardware. */
  get lastScheduled(): DmaFence | null {
    return this.#lastScheduled;
  }

  /** GPU time and job counts so far. */
  get stats(): DrmSchedEntityStats {
    const n = this.node;
    return {
      runtime: n.runtime,
      vruntime: n.vruntime,
      avgJobTime: n.avgJobTime,
      jobsPushed: this.#jobsPushed,
      jobsRun: this.#jobsRun,
      queued: this.queued,
    };
  }

  /**
   * Changes the priority (see the module contract for when it applies).
   * @see drm_sched_entity_set_priority()
   */
  setPriority(priority: DrmSchedPriority | 'kernel' | 'high' | 'normal' | 'low'): void {
    this.node.priority = checkSchedPriority(priority, `${this}.setPriority`, 'priority');
  }

  /**
   * Replaces the list of schedulers the entity may run on; it moves at a later arm once its queue
   * is empty and its last job finished.
   * @throws {InvalidArgumentError} for an empty or invalid list.
   * @see drm_sched_entity_modify_sched()
   */
  modifySched(schedulers: readonly DrmSchedEntityScheduler[]): void {
    const list = checkSchedList(schedulers, `${this}.modifySched`, 'schedulers');
    if (list.length === 0) {
      throw invalidArgument(`${this}.modifySched`, 'schedulers', schedulers, 'a non-empty array of DrmGpuScheduler');
    }
    this.#schedList = list;
  }

  /** Arms `job`: picks the scheduler and makes the fence pair. For {@link DrmSchedJob.arm}. @internal */
  armJob(job: DrmSchedJob): DrmSchedArming {
    if (this.#stopped) {
      throw new DrmSchedEntityKilledError(`${this} was killed; arm() refused for ${job} (make a new entity)`);
    }
    this.#selectRq();
    const sched = this.#sched;
    if (sched === null || !sched.ready) {
      throw new DmaBufError('ENOENT', `${this}: no usable scheduler to arm ${job} on (finished or none given)`);
    }
    const sFence = new DrmSchedFence(sched, sched.name, this.fenceContext, ++this.#fenceSeq);
    return { sched, sFence, priority: this.node.priority };
  }

  /** Queues the armed `job`. For {@link DrmSchedJob.push}. @internal */
  pushJob(job: DrmSchedJob): void {
    const sched = this.#sched;
    if (this.#stopped || sched === null) {
      throw new DrmSchedEntityKilledError(
        `${this} was killed; push() refused for ${job}: its fences complete with ESRCH and the job stays yours`,
      );
    }
    job.markSubmittedAt(sched.clock.now());
    const first = this.#head === this.#queue.length;
    this.#queue.push(job);
    this.#jobsPushed++;
    sched.jobPushed(job);
    if (first) {
      this.#rq!.add(this.node, job.submittedAt!, job.submitSeq);
      sched.wakeup();
    }
  }

  /** The job at the head of the queue, if any. */
  peekJob(): DrmSchedJob | undefined {
    return this.#queue[this.#head];
  }

  /**
   * Takes the head job if nothing holds it back: walks its dependencies (then the backend's
   * `prepareJob`) and, at the first one still pending, blocks the entity until it signals.
   * For the scheduler's run work. @internal
   * @returns the job, or null when the entity is blocked.
   * @see drm_sched_entity_pop_job()
   */
  popJob(): DrmSchedJob | null {
    const job = this.#queue[this.#head];
    const sched = this.#sched;
    if (job === undefined || sched === null || this.#stopped) return null;
    for (;;) {
      let dep: DmaFence | null | undefined = job.takeDependency();
      if (dep === undefined) dep = sched.prepareJob(job, this);
      if (dep === null || dep === undefined) break;
      // The entity's own fences: the ring is in order, nothing to wait for.
      if (dep.context === this.fenceContext || dep.context === this.fenceContext + 1) continue;
      const sFence = toDrmSchedFence(dep);
      if (sFence !== null && sFence.owner === sched && dep.error === undefined && !sFence.dontPipeline) {
        dep = sFence.scheduled; // same ring: enough that the producer reached the hardware
      }
      if (dep.addCallback(this.#onDependency)) {
        this.#dependency = dep;
        this.#rq?.block(this.node);
        return null;
      }
    }
    if (this.guilty?.value === true) {
      job.finished.setError(new DmaBufError('ECANCELED', `${job}: cancelled, its context was found guilty of a hang`));
    }
    this.#lastScheduled = job.finished;
    this.#queue[this.#head++] = undefined;
    this.#compact();
    this.#jobsRun++;
    const next = this.#queue[this.#head];
    if (next === undefined) this.#rq?.popped(this.node, false);
    else this.#rq?.popped(this.node, true, next.submittedAt!, next.submitSeq);
    if (next === undefined) this.#wakeFlushers();
    return job;
  }

  /**
   * Waits until every queued job has been handed to the hardware (not until they finish), the
   * entity was killed, or its scheduler finished.
   * @returns true when idle; false when `timeout` ran out first.
   * @throws rejects with `signal.reason` when aborted.
   * @throws rejects with {@link InvalidArgumentError} for bad or unknown options, before it waits.
   * @see drm_sched_entity_flush()
   */
  async flush(options?: DrmSchedFlushOptions): Promise<boolean> {
    const { timeout, signal, kill } = parseFlushOptions(options);
    let idle = this.#isIdle();
    if (!idle && timeout !== 0) idle = await this.#waitIdle(timeout, signal);
    if (kill === true) this.kill();
    return idle;
  }

  /**
   * Stops the entity and discards every queued job: each one's `scheduled` and `finished` fences
   * signal (`finished` with `ESRCH`), in queue order, each after the previous job's `finished`
   * and after its own dependencies; then it goes to `freeJob`. Idempotent.
   * @see drm_sched_entity_kill()
   */
  kill(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#rq?.remove(this.node);
    const sched = this.#sched;
    let previous = this.#lastScheduled;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const job = this.#queue[i]!;
      job.advance('killed');
      if (sched !== null) discardAfter(job, previous, sched);
      previous = job.finished;
    }
    this.#queue = [];
    this.#head = 0;
    this.#wakeFlushers();
  }

  /**
   * Kills the entity and lets go of its dependency and last job. Idempotent. Destroy entities
   * before their scheduler.
   * @see drm_sched_entity_fini()
   */
  fini(): void {
    this.kill();
    if (this.#dependency !== null) {
      this.#dependency.removeCallback(this.#onDependency);
      this.#dependency = null;
    }
    this.#lastScheduled = null;
  }

  /**
   * Waits up to {@link DRM_SCHED_ENTITY_DESTROY_WAIT} ms for the queue to drain to the
   * hardware, then {@link fini}. Idempotent.
   * @see drm_sched_entity_destroy()
   */
  async destroy(): Promise<void> {
    if (!this.#stopped) await this.flush({ timeout: DRM_SCHED_ENTITY_DESTROY_WAIT });
    this.fini();
  }

  /** {@link fini}: discards what is queued at once. */
  [Symbol.dispose](): void {
    this.fini();
  }

  /** {@link destroy}: lets the queue drain first. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  toString(): string {
    return `DrmSchedEntity "${this.name}"`;
  }

  /** Picks the run queue at arm: only with an idle queue whose last job finished. @see drm_sched_entity_select_rq() */
  #selectRq(): void {
    if (this.#head !== this.#queue.length) return;
    if (this.#lastScheduled !== null && !this.#lastScheduled.signaledFlag) return;
    let sched = this.#sched;
    const list = this.#schedList;
    if (list !== null) {
      sched = pickBest(list) ?? sched;
      if (list.length === 1) this.#schedList = null;
    }
    if (sched === null) return;
    const rq = sched.rqFor(this.node.priority);
    if (rq === this.#rq) return;
    this.#rq?.remove(this.node);
    this.#sched = sched;
    this.#rq = rq;
  }

  #isIdle(): boolean {
    return this.#stopped || this.#head === this.#queue.length || !this.node.onList || this.#sched?.ready !== true;
  }

  #waitIdle(timeout: number | undefined, abort: AbortSignal | undefined): Promise<boolean> {
    if (abort?.aborted) return Promise.reject(abort.reason);
    const clock: Clock | undefined = this.#sched?.clock;
    return new Promise<boolean>((resolve, reject) => {
      let timer: TimerHandle | null = null;
      const finish = (): void => {
        const i = this.#flushWaiters.indexOf(check);
        if (i >= 0) this.#flushWaiters.splice(i, 1);
        if (timer !== null) clock?.clearTimer(timer);
        abort?.removeEventListener('abort', onAbort);
      };
      const check = (): void => {
        if (!this.#isIdle()) return;
        finish();
        resolve(true);
      };
      const onAbort = (): void => {
        finish();
        reject(abort!.reason);
      };
      this.#flushWaiters.push(check);
      abort?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined && clock !== undefined) {
        timer = clock.setTimer(timeout, () => {
          timer = null;
          finish();
          resolve(this.#isIdle());
        });
      }
    });
  }

  #wakeFlushers(): void {
    if (this.#flushWaiters.length === 0) return;
    for (const check of this.#flushWaiters.slice()) check();
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** @internal The ready scheduler with the lowest score (first wins ties), or null. @see drm_sched_pick_best() */
export function pickBest<S extends DrmSchedEntityScheduler>(list: readonly S[]): S | null {
  let best: S | null = null;
  for (const sched of list) {
    if (!sched.ready) continue;
    if (best === null || sched.score < best.score) best = sched;
  }
  return best;
}

const checkSchedList: Check<readonly DrmSchedEntityScheduler[]> = (list, fn, name) => {
  if (!Array.isArray(list)) throw invalidArgument(fn, name, list, 'an array of DrmGpuScheduler');
  for (const s of list) {
    if (typeof s !== 'object' || s === null || typeof (s as DrmSchedEntityScheduler).rqFor !== 'function') {
      throw invalidArgument(fn, `${name}[]`, s, 'a DrmGpuScheduler');
    }
  }
  return list.slice() as DrmSchedEntityScheduler[];
};

const checkPriority: Check<DrmSchedPriority | undefined> = optional(checkSchedPriority);

const checkGuilty: Check<DrmSchedGuiltyFlag | undefined> = (value, fn, name) => {
  if (value === undefined) return undefined;
  if (typeof value === 'object' && value !== null && typeof (value as DrmSchedGuiltyFlag).value === 'boolean') {
    return value as DrmSchedGuiltyFlag;
  }
  throw invalidArgument(fn, name, value, "an object { value: boolean } shared by the client's entities");
};

const parseEntityInit = defineOptions('DrmSchedEntity', {
  schedulers: checkSchedList,
  priority: checkPriority,
  guilty: checkGuilty,
  name: optionalString,
});

const parseFlushOptions = defineOptions('DrmSchedEntity.flush', {
  timeout: optionalTimeout,
  signal: optionalSignal,
  kill: optionalBoolean,
});

/**
 * Completes a job of a killed entity once `previous` (the job before it) has finished and its own
 * dependencies have signalled: `scheduled`, then `finished` with `ESRCH`, then `freeJob`. Each
 * step runs on a microtask of its own, never inside the fence callback that triggered it.
 * @see drm_sched_entity_kill_jobs_cb()
 */
function discardAfter(job: DrmSchedJob, previous: DmaFence | null, sched: DrmSchedEntityScheduler): void {
  let waitFor = previous;
  let index = 0;
  const deps = job.dependencies;
  const deferred = (): void => queueMicrotask(step);
  function step(): void {
    const hooks = lockdep;
    if (hooks === null) discardStep();
    else hooks.task(discardStep);
  }
  function discardStep(): void {
    if (waitFor !== null) {
      const fence = waitFor;
      waitFor = null;
      if (fence.addCallback(deferred)) return;
    }
    while (index < deps.length) {
      let fence = deps[index++]!;
      // A scheduled fence only says the producer started: wait for it to finish (no corruption).
      const sFence = toDrmSchedFence(fence);
      if (sFence !== null && fence === sFence.scheduled) fence = sFence.finished;
      if (fence.addCallback(deferred)) return;
    }
    const pair = job.sFence!;
    pair.markScheduled(null);
    pair.markFinished(new DmaBufError('ESRCH', `${job} discarded: ${job.entity.name} was killed before it ran`));
    sched.discardJob(job);
  }
  queueMicrotask(step);
}
