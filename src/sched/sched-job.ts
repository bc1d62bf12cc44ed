/**
 * drm_sched_job: one unit of GPU work, from init through arm and push to free.
 *
 * Overview: a driver makes a {@link DrmSchedJob} for an entity (its software queue), adds what
 * the job must wait for ({@link DrmSchedJob.addDependency}, the fences of a reservation, a
 * syncobj point), then {@link DrmSchedJob.arm}s it — the point of no return, where the job gets
 * its `scheduled` and `finished` fences with the entity's next seqno — and
 * {@link DrmSchedJob.push}es it. From then on the scheduler owns it: it calls the backend's
 * `runJob` once the dependencies have signalled and the ring has credits, signals `finished` when
 * the hardware fence does, and hands the job back through `freeJob`. Drivers subclass the job to
 * carry their own data (the kernel embeds `struct drm_sched_job` in the driver's job).
 *
 * Models `drm_sched_job_init()`, `drm_sched_job_add_dependency()` and friends,
 * `drm_sched_job_arm()`, `drm_sched_entity_push_job()` and `drm_sched_job_cleanup()` from
 * `drivers/gpu/drm/scheduler/sched_main.c` and `sched_entity.c`.
 *
 * Contract:
 * - `credits` is an integer >= 1 (the kernel's -EINVAL for 0); a job larger than the scheduler's
 *   credit limit is cut down to the limit and runs alone.
 * - Dependencies keep one fence per fence context, the later one; a `null` dependency is ignored.
 *   Containers (arrays, chains) are kept whole. Adding after push is a {@link BugError}.
 * - Dependency errors do not propagate: a job whose dependency failed still runs. Check
 *   `entity.error` at submission, or `finished.error` of the dependency, as drivers do.
 * - `arm()` may be called once, after which the job must be pushed; `push()` once, after arm.
 *   Arming or pushing to a killed entity throws {@link DrmSchedEntityKilledError} (`ESRCH`) before
 *   anything is queued (the kernel only logs and leaks the job); a job armed before the kill has
 *   its fences completed with `ESRCH` first, so nobody waits on them for ever.
 * - {@link DrmSchedJob.cleanup} releases a job that was never armed; calling it on an armed job
 *   that was not pushed is a {@link BugError} (arm is the point of no return).
 * - The job records when it was pushed, handed to the backend, started on the ring (the later of
 *   `runJob` returning and the previous job of the ring finishing) and finished; the scheduler
 *   charges `finishedAt - startedAt` to the entity's GPU time.
 *
 * @example
 * ```ts
 * import { DrmGpuScheduler, DrmSchedEntity, DrmSchedJob, DrmGpuSchedStat } from 'dmabuf';
 * const sched = new DrmGpuScheduler({
 *   name: 'ring-0',
 *   ops: { runJob: () => null, timedOutJob: () => DrmGpuSchedStat.Reset, freeJob: () => {} },
 * });
 * const entity = new DrmSchedEntity({ schedulers: [sched] });
 * const job = new DrmSchedJob(entity, { credits: 1 });
 * job.arm();
 * job.push();
 * await job.finished.wait();
 * console.log(job.state); // 'done' or 'freed'
 * entity.fini();
 * sched.fini();
 * ```
 */

import { BugError, DmaBufError, describeValue, InvalidArgumentError, NotSubmittedError } from '../base/errors.js';
import { type Check, defineOptions, invalidArgument, optionalPositiveInteger } from '../base/options.js';
import { DmaFence, type FenceCallback } from '../fence/dma-fence.js';
import type { Syncobj } from '../fence/syncobj.js';
import { DmaResv, type DmaResvUsage } from '../resv/dma-resv.js';
import type { DrmSchedPriority } from './sched-rq.js';
import type { DrmSchedFence, DrmSchedFenceMember } from './sched-fence.js';

/**
 * Pushing or arming on a killed (stopped) entity. The kernel logs "Trying to push to a killed
 * entity" and leaks the job; here the caller gets this error and keeps the job.
 */
export class DrmSchedEntityKilledError extends DmaBufError {
  override name = 'DrmSchedEntityKilledError';
  constructor(message: string, options?: ErrorOptions) {
    super('ESRCH', message, options);
  }
}

/** What a job knows of the scheduler it was armed on. */
export interface DrmSchedJobScheduler {
  readonly name: string;
}

/** What the job is given back when its entity arms it. */
export interface DrmSchedArming {
  readonly sched: DrmSchedJobScheduler;
  readonly sFence: DrmSchedFence;
  readonly priority: DrmSchedPriority;
}

/** What a job needs from its entity (`DrmSchedEntity` implements it). */
export interface DrmSchedJobEntity {
  readonly name: string;
  /** Whether the entity has a scheduler to run jobs on (the kernel's `entity->rq != NULL`). */
  readonly hasScheduler: boolean;
  /** @internal Chooses the scheduler, takes the next seqno and makes the fence pair. Throws when killed. */
  armJob(job: DrmSchedJob): DrmSchedArming;
  /** @internal Queues the armed job. Throws {@link DrmSchedEntityKilledError} when killed. */
  pushJob(job: DrmSchedJob): void;
}

/** Options for {@link DrmSchedJob}. */
export interface DrmSchedJobInit {
  /** Ring space the job takes while it runs, an integer >= 1; default 1. */
  readonly credits?: number;
  /** Who submitted it (the kernel's `owner`), for traces. */
  readonly owner?: unknown;
  /** The submitting client's id (the kernel's `drm_client_id`), for traces; default the entity's name. */
  readonly clientId?: string | number;
}

const checkClientId: Check<string | number | undefined> = (value, fn, name) => {
  if (value === undefined || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) {
    return value;
  }
  throw invalidArgument(fn, name, value, 'a string or a finite number (or omitted)');
};

const parseJobInit = defineOptions('DrmSchedJob', {
  credits: optionalPositiveInteger,
  owner: (value: unknown) => value,
  clientId: checkClientId,
});

/**
 * Where a job is in its life. `initialized` → `armed` → `queued` → `running` → `done` →
 * `freed`; a queued job of a killed entity goes `killed` → `freed`; a job given up before arm
 * goes `cleaned`.
 */
export type DrmSchedJobState = 'initialized' | 'armed' | 'queued' | 'running' | 'done' | 'killed' | 'freed' | 'cleaned';

const NO_DEPENDENCIES: DmaFence[] = [];
Object.freeze(NO_DEPENDENCIES);

/** Pushes so far, process-wide: the FIFO policy's tie-break between equal submit times. */
let submitCounter = 0;

/**
 * A job for the GPU scheduler. Subclass it to carry the driver's data.
 * @see struct drm_sched_job
 */
export class DrmSchedJob {
  /** The entity the job was made for (kept after pop, unlike the kernel: traces name the client). */
  readonly entity: DrmSchedJobEntity;
  readonly owner: unknown;
  readonly clientId: string | number;

  #credits: number;
  #state: DrmSchedJobState = 'initialized';
  // Shared empty list until the first dependency: most jobs of a busy ring have none.
  #dependencies: DmaFence[] = NO_DEPENDENCIES;
  #nextDependency = 0;
  #sFence: DrmSchedFence | null = null;
  #sched: DrmSchedJobScheduler | null = null;
  #priority: DrmSchedPriority | undefined = undefined;
  #karma = 0;
  #submitSeq = 0;
  #submittedAt: number | undefined = undefined;
  #scheduledAt: number | undefined = undefined;
  #startedAt: number | undefined = undefined;
  #finishedAt: number | undefined = undefined;
  #hwCallback: FenceCallback | null = null;

  /**
   * @throws {DmaBufError} `ENOENT` when the entity has no scheduler to run on.
   * @throws {InvalidArgumentError} for credits that are not an integer >= 1.
   * @see drm_sched_job_init()
   */
  constructor(entity: DrmSchedJobEntity, init?: DrmSchedJobInit) {
    if (typeof entity !== 'object' || entity === null || typeof entity.armJob !== 'function') {
      throw new InvalidArgumentError(`DrmSchedJob: entity must be a DrmSchedEntity, got ${describeValue(entity)}`);
    }
    const options = parseJobInit(init);
    if (!entity.hasScheduler) {
      throw new DmaBufError(
        'ENOENT',
        `DrmSchedJob: entity ${entity.name} has no usable scheduler (none given, or all finished); ` +
          'give the entity a live scheduler with modifySched() first',
      );
    }
    this.entity = entity;
    this.#credits = options.credits ?? 1;
    this.owner = options.owner;
    this.clientId = options.clientId ?? entity.name;
  }

  /** Where the job is in its life. */
  get state(): DrmSchedJobState {
    return this.#state;
  }

  /** Ring space the job takes while it runs (cut down to the credit limit when larger). */
  get credits(): number {
    return this.#credits;
  }

  /** The fence pair, once armed; null before. */
  get sFence(): DrmSchedFence | null {
    return this.#sFence;
  }

  /**
   * Signals when the backend took the job.
   * @throws {BugError} before arm: the fences do not exist yet.
   */
  get scheduled(): DrmSchedFenceMember {
    return this.#armedFence('scheduled').scheduled;
  }

  /**
   * The job's out-fence: signals when the job is done on the hardware, with its error.
   * @throws {BugError} before arm.
   */
  get finished(): DrmSchedFenceMember {
    return this.#armedFence('finished').finished;
  }

  /** The scheduler chosen at arm, or null before. */
  get sched(): DrmSchedJobScheduler | null {
    return this.#sched;
  }

  /** The entity's priority when the job was armed. */
  get priority(): DrmSchedPriority | undefined {
    return this.#priority;
  }

  /** Times the job was found hung ({@link DrmGpuScheduler.increaseKarma}). */
  get karma(): number {
    return this.#karma;
  }

  /** When the job was pushed (clock milliseconds). */
  get submittedAt(): number | undefined {
    return this.#submittedAt;
  }

  /** When `runJob` returned (the `scheduled` fence's timestamp). */
  get scheduledAt(): number | undefined {
    return this.#scheduledAt;
  }

  /** When the job started on the ring: the later of {@link scheduledAt} and the previous job's finish. */
  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /** When `finished` signalled. */
  get finishedAt(): number | undefined {
    return this.#finishedAt;
  }

  /** Order of the push among all pushes (FIFO's tie-break). */
  get submitSeq(): number {
    return this.#submitSeq;
  }

  /** The stored dependencies, one per fence context. */
  get dependencies(): readonly DmaFence[] {
    return this.#dependencies;
  }

  /**
   * Makes the job wait for `fence`. Of two fences on one context only the later is kept.
   * @param fence a {@link DmaFence}; null or undefined is ignored.
   * @throws {InvalidArgumentError} for anything that is not a fence.
   * @throws {BugError} once the job is pushed.
   * @see drm_sched_job_add_dependency()
   */
  addDependency(fence: DmaFence | null | undefined): void {
    if (fence === null || fence === undefined) return;
    if (!(fence instanceof DmaFence)) {
      throw new InvalidArgumentError(`${this}: addDependency takes a DmaFence, got ${describeValue(fence)}`);
    }
    this.#checkEditable('addDependency');
    const deps = this.#dependencies;
    for (let i = 0; i < deps.length; i++) {
      const old = deps[i]!;
      if (old.context !== fence.context) continue;
      if (DmaFence.isLater(fence, old)) deps[i] = fence;
      return;
    }
    if (deps === NO_DEPENDENCIES) this.#dependencies = [fence];
    else deps.push(fence);
  }

  /**
   * Adds every fence of `resv` with a usage up to `usage`, signalled ones included. The
   * reservation must be locked.
   * @see drm_sched_job_add_resv_dependencies()
   */
  addResvDependencies(resv: DmaResv, usage: DmaResvUsage): void {
    if (!(resv instanceof DmaResv)) {
      throw new InvalidArgumentError(`${this}: addResvDependencies takes a DmaResv, got ${describeValue(resv)}`);
    }
    this.#checkEditable('addResvDependencies');
    for (const entry of resv.fences(usage)) this.addDependency(entry.fence);
  }

  /**
   * The implicit-sync dependencies of an access to a buffer: a write waits for every reader and
   * writer, a read only for writers. The reservation must be locked.
   * @see drm_sched_job_add_implicit_dependencies()
   */
  addImplicitDependencies(resv: DmaResv, write: boolean): void {
    this.addResvDependencies(resv, DmaResv.usageRw(write));
  }

  /**
   * Waits for timeline point `point` of `syncobj` (0: its current fence).
   * @throws {NotSubmittedError} when the point has not been submitted (the kernel's lookup error).
   * @see drm_sched_job_add_syncobj_dependency()
   */
  addSyncobjDependency(syncobj: Syncobj, point: number): void {
    if (typeof syncobj !== 'object' || syncobj === null || typeof syncobj.findFenceNow !== 'function') {
      throw new InvalidArgumentError(`${this}: addSyncobjDependency takes a Syncobj, got ${describeValue(syncobj)}`);
    }
    const fence = syncobj.findFenceNow(point);
    if (fence === undefined) {
      throw new NotSubmittedError(
        `${this}: syncobj point ${point} has not been submitted (no fence); submit it first, ` +
          'or wait for it with findFence({ waitForSubmit: true })',
      );
    }
    this.addDependency(fence);
  }

  /** Whether `fence` itself is among the stored dependencies. @see drm_sched_job_has_dependency() */
  hasDependency(fence: DmaFence): boolean {
    return this.#dependencies.includes(fence);
  }

  /**
   * The point of no return: picks the scheduler and gives the job its fences, with the entity's
   * next seqno. Must be followed by {@link push}.
   * @throws {BugError} when armed twice or after cleanup.
   * @throws {DrmSchedEntityKilledError} when the entity was killed.
   * @see drm_sched_job_arm()
   */
  arm(): void {
    if (this.#state !== 'initialized') {
      throw new BugError(`${this}: arm() on a job that is ${this.#state}; a job is armed exactly once, after init`);
    }
    const armed = this.entity.armJob(this);
    this.#sched = armed.sched;
    this.#sFence = armed.sFence;
    this.#priority = armed.priority;
    this.#state = 'armed';
  }

  /**
   * Hands the armed job to its entity. Do not touch the job afterwards: it may run (and be
   * freed) as soon as the caller yields.
   * @throws {BugError} before arm, or when pushed twice.
   * @throws {DrmSchedEntityKilledError} when the entity was killed since arm; the job's fences are
   *   then completed with `ESRCH` and the job stays the caller's.
   * @see drm_sched_entity_push_job()
   */
  push(): void {
    if (this.#state !== 'armed') {
      const why = this.#state === 'initialized' ? 'arm() it first' : 'a job is pushed exactly once';
      throw new BugError(`${this}: push() on a job that is ${this.#state}; ${why}`);
    }
    this.#submitSeq = ++submitCounter;
    try {
      this.entity.pushJob(this);
    } catch (err) {
      if (err instanceof DrmSchedEntityKilledError) {
        this.#state = 'killed';
        this.#sFence!.markScheduled(null);
        this.#sFence!.markFinished(err);
      }
      throw err;
    }
    if (this.#state === 'armed') this.#state = 'queued';
  }

  /**
   * Releases the job's dependencies. For a job given up before arm, and for drivers' `freeJob`.
   * @throws {BugError} for an armed job that was not pushed (arm is the point of no return), or
   *   a job the scheduler still owns.
   * @see drm_sched_job_cleanup()
   */
  cleanup(): void {
    switch (this.#state) {
      case 'initialized':
        this.#state = 'cleaned';
        break;
      case 'armed':
        throw new BugError(`${this}: cleanup() after arm() and before push(); an armed job must be pushed`);
      case 'queued':
      case 'running':
        throw new BugError(`${this}: cleanup() while the scheduler owns the job; clean up in freeJob`);
      default:
        break;
    }
    this.#dependencies = NO_DEPENDENCIES;
    this.#nextDependency = 0;
  }

  /** The next stored dependency not looked at yet, or undefined; for the scheduler. @internal */
  takeDependency(): DmaFence | undefined {
    const deps = this.#dependencies;
    return this.#nextDependency < deps.length ? deps[this.#nextDependency++] : undefined;
  }

  /**
   * Moves the job on in its life; for the scheduler and entity only. @internal
   * @param at the clock time of the step (`scheduled`: runJob returned; `done`: finished signalled).
   */
  advance(state: 'running' | 'done' | 'killed' | 'freed', at?: number): void {
    this.#state = state;
    if (state === 'done') this.#finishedAt = at;
  }

  /** Records when the entity queued the job; for the entity. @internal */
  markSubmittedAt(at: number): void {
    this.#submittedAt = at;
  }

  /** Records when `runJob` returned; for the scheduler. @internal */
  markScheduledAt(at: number): void {
    this.#scheduledAt = at;
    this.#startedAt = at;
  }

  /** Moves the start to when the previous job of the ring finished, if that was later. @internal */
  startNoEarlierThan(at: number): void {
    if (this.#startedAt !== undefined && at > this.#startedAt) this.#startedAt = at;
  }

  /** The scheduler's callback on the hardware fence while attached. @internal */
  get hwCallback(): FenceCallback | null {
    return this.#hwCallback;
  }

  /** Attaches (or, with null, forgets) the scheduler's hardware-fence callback. @internal */
  setHwCallback(callback: FenceCallback | null): void {
    this.#hwCallback = callback;
  }

  /** Cuts the job's credits down to the scheduler's limit. @internal */
  truncateCredits(limit: number): void {
    if (this.#credits > limit) this.#credits = limit;
  }

  /** One more hang attributed to this job. @internal */
  addKarma(): number {
    return ++this.#karma;
  }

  toString(): string {
    const where = this.#sFence !== null ? ` ${this.#sFence.timelineName}:${this.#sFence.finished.seqno}` : '';
    return `DrmSchedJob(${this.entity.name}${where}, ${this.#state})`;
  }

  #armedFence(which: string): DrmSchedFence {
    if (this.#sFence === null) {
      throw new BugError(`${this}: the ${which} fence exists only after arm(); arm the job first`);
    }
    return this.#sFence;
  }

  #checkEditable(op: string): void {
    if (this.#state !== 'initialized' && this.#state !== 'armed') {
      throw new BugError(`${this}: ${op} on a job that is ${this.#state}; add dependencies before push()`);
    }
  }
}
