/**
 * drm-exec: lock a set of buffers at once, backing off and retrying on contention.
 *
 * Overview: a job that reads and writes several buffers must hold all their reservation locks
 * before it adds its fence to them. Locking them one by one across `await`s deadlocks as soon as
 * two jobs name the same buffers in different orders. {@link DrmExec} wraps the wound/wait
 * protocol of the reservation locks into one loop: {@link DrmExec.untilAllLocked} runs your body,
 * the body locks (or prepares) each object with {@link DrmExec.lockObj} /
 * {@link DrmExec.prepareObj}, and when a lock answers "back off" the error leaves the body,
 * everything is unlocked, and the body runs again, this time with the contended object
 * slow-locked first. When the body completes without contention every object it named is locked,
 * listed in lock order by {@link DrmExec.objects}, and holds the fence slots it reserved. Add the
 * job's fence to each, then {@link DrmExec.fini} (or let `await using` do it) unlocks everything.
 * Objects are anything with a {@link DmaResv} and a reference count ({@link DrmExecObject}); the
 * exec holds one reference on each object it tracks, so nothing it locked can be freed under it.
 *
 * Models `drivers/gpu/drm/drm_exec.c` and `include/drm/drm_exec.h`:
 * `drm_exec_until_all_locked()` + `drm_exec_retry_on_contention()` become one method taking the
 * body as a function, and the back-off travels as a rejected promise instead of a `goto`.
 *
 * Contract:
 * - Objects are locked only inside the body of {@link DrmExec.untilAllLocked}, one at a time
 *   (await each lock), and the body must let {@link WwDeadlockError} propagate, or return, once
 *   it sees one: the retry unlocks everything, so the body must not keep going as if it still held
 *   its locks. A body that swallows the error and returns is retried all the same, as in C.
 * - A re-run body is a fresh attempt: it must name its objects again, and it may name different
 *   ones. The contended object is already locked when it starts; naming it does not lock it twice.
 * - Each exec runs one loop. Once the body has completed without contention the ticket is
 *   `done()` and further locking is a {@link BugError}; {@link DrmExec.unlockObj} still works.
 * - Any other error from the body ends the loop and rejects `untilAllLocked` with that error. The
 *   locks taken so far stay held, as in C where the caller jumps to its error label and calls
 *   `drm_exec_fini()`: dispose the exec (`await using exec = new DrmExec()`) to release them.
 * - Every tracked object holds one reference (`get()` when tracked, `put()` when unlocked), the
 *   contended object too, from the back-off until it is locked again or the exec is finished.
 * - With a `signal`, lock waits reject with `signal.reason` when it aborts, leaving nothing
 *   queued; a lock attempt after the abort rejects at once, even if the lock is free.
 * - {@link DrmExec.fini} is idempotent; it unlocks in reverse lock order, drops every reference,
 *   rejects a lock still waiting (`ECANCELED`) and finishes the ticket. Anything but the getters
 *   afterwards is a {@link BugError}.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaResv, DmaResvUsage, DrmExec, Kref, fenceContextAlloc } from 'dmabuf';
 * class Buffer {
 *   readonly resv = new DmaResv({ name: 'buffer' });
 *   readonly #ref = new Kref(() => this.resv[Symbol.dispose](), 'buffer');
 *   get(): void { this.#ref.get(); }
 *   put(): void { this.#ref.put(); }
 * }
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'queue-0' };
 * const [vertices, texture, target] = [new Buffer(), new Buffer(), new Buffer()];
 * const job = new DmaFence(ops, fenceContextAlloc(), 1);
 * {
 *   await using exec = new DrmExec({ signal: AbortSignal.timeout(1000) });
 *   await exec.untilAllLocked(async (exec) => {
 *     // Each call may reject with WwDeadlockError: let it propagate and the body runs again.
 *     await exec.prepareArray([vertices, texture], 1);
 *     await exec.prepareObj(target, 1);
 *   });
 *   for (const obj of exec.objects) obj.resv.addFence(job, DmaResvUsage.Write);
 * } // unlocked here
 * job.signal();
 * ```
 */

import { AlreadyLockedError, BugError, DmaBufError, WwDeadlockError } from '../base/errors.js';
import { throwCollected } from '../base/lifecycle.js';
import {
  checkInterruptible,
  defineOptions,
  instanceOf,
  invalidArgument,
  optional,
  optionalBoolean,
  optionalSignal,
  requiredFunction,
  requiredIndex,
} from '../base/options.js';
import { WwAcquireCtx, WwClass, wwBackOffOf, wwLockGranted } from '../locking/ww-mutex.js';
import { DmaResv, reservationWwClass } from '../resv/dma-resv.js';

const parseOptions = defineOptions('DrmExec', {
  ignoreDuplicates: optionalBoolean,
  interruptible: optionalBoolean,
  signal: optionalSignal,
  wwClass: optional(instanceOf(WwClass)),
});

function finiFailures(n: number): string {
  return `DrmExec.fini: ${n} releases failed`;
}

// The in-flight mark while a lock runs up to its first await (see lockObj).
const RESOLVED: Promise<void> = Promise.resolve();

/** Unlocks a tracked object and drops its reference, the reference even if the unlock failed. */
function release(obj: DrmExecObject): void {
  try {
    obj.resv.unlock();
  } finally {
    obj.put();
  }
}

/**
 * What a {@link DrmExec} can lock: an object with a reservation and a reference count (the
 * kernel's `struct drm_gem_object`). `get()` and `put()` take and drop one reference.
 */
export interface DrmExecObject {
  readonly resv: DmaResv;
  get(): unknown;
  put(): unknown;
}

/** Options for a {@link DrmExec} (the kernel's `DRM_EXEC_*` flags). */
export interface DrmExecOptions {
  /**
   * Locking an object the exec already holds succeeds quietly instead of rejecting with
   * {@link AlreadyLockedError}; the object stays tracked once. @see DRM_EXEC_IGNORE_DUPLICATES
   */
  readonly ignoreDuplicates?: boolean;
  /**
   * Lock waits honour `signal` (default true). `false` models the uninterruptible lock variants
   * and then no `signal` may be given. @see DRM_EXEC_INTERRUPTIBLE_WAIT
   */
  readonly interruptible?: boolean;
  /** Aborts lock waits: they reject with `signal.reason` and leave nothing queued. */
  readonly signal?: AbortSignal;
  /**
   * The ww class of the objects' reservation locks; the ticket is made from it. Defaults to
   * {@link reservationWwClass}, which every {@link DmaResv} uses unless built with another class.
   */
  readonly wwClass?: WwClass;
}

/** Where an exec is in its life; the kernel encodes this in `contended` and the ticket. */
type Phase = 'idle' | 'locking' | 'locked' | 'failed' | 'finished';

function nameOf(obj: DrmExecObject): string {
  return obj.resv.mutex.name;
}

/**
 * A multi-object locking transaction over reservation locks (`struct drm_exec`).
 * @see drm_exec_init()
 */
export class DrmExec implements AsyncDisposable {
  readonly #ignoreDuplicates: boolean;
  readonly #ticket: WwAcquireCtx;
  /**
   * Why lock waits stop: the caller's abort reason or fini()'s cancellation; undefined while they
   * may go on. A waiting lock is cancelled through the ticket (one listener for the whole exec,
   * not one per wait: busy transactions queue several times each).
   */
  #stopReason: { readonly reason: unknown } | undefined = undefined;
  readonly #userSignal: AbortSignal | undefined;
  readonly #onUserAbort: (() => void) | undefined;
  #phase: Phase = 'idle';
  /** Locked objects in lock order, each holding one reference. */
  #objects: DrmExecObject[] = [];
  /** The object we backed off for, holding a reference, until the next lock slow-locks it. */
  #contended: DrmExecObject | null = null;
  /** The contended object after its slow lock, until the body names it (holds the contended reference). */
  #prelocked: DrmExecObject | null = null;
  /** Counts recorded contentions, so the loop can tell a new one from a stale one. */
  #contentions = 0;
  /** The object whose lock is being waited for, and that wait (settled or not). */
  #pending: DrmExecObject | null = null;
  #inFlight: Promise<void> | null = null;

  /**
   * @throws {InvalidArgumentError} for options other than `{ ignoreDuplicates?, interruptible?,
   *   signal?, wwClass? }`, and for `interruptible: false` together with a `signal`: an
   *   uninterruptible wait cannot honour it, and silently ignoring the signal would hide a hang.
   */
  constructor(options?: DrmExecOptions) {
    const { ignoreDuplicates, interruptible, signal, wwClass } = parseOptions(options);
    checkInterruptible('DrmExec', interruptible, signal);
    this.#ignoreDuplicates = ignoreDuplicates === true;
    this.#ticket = new WwAcquireCtx(wwClass ?? reservationWwClass);
    this.#userSignal = signal;
    if (signal?.aborted) {
      this.#stop(signal.reason);
    } else if (signal !== undefined) {
      this.#onUserAbort = () => this.#stop(signal.reason);
      signal.addEventListener('abort', this.#onUserAbort, { once: true });
    }
  }

  /** The locked objects, in lock order (a copy). @see drm_exec_for_each_locked_object() */
  get objects(): readonly DrmExecObject[] {
    return this.#objects.slice();
  }

  /** The acquire context every lock is taken with. @see drm_exec_ticket() */
  get ticket(): WwAcquireCtx {
    return this.#ticket;
  }

  /** Whether the last lock backed off and the body must be re-run. @see drm_exec_is_contended() */
  get isContended(): boolean {
    return this.#contended !== null;
  }

  /**
   * Runs `body` until it completes with every object it named locked, re-running it after each
   * back-off with everything unlocked and the contended object slow-locked.
   * @returns what the last run of `body` returned. The ticket is then `done()`.
   * @throws rejects with any error from `body` other than a back-off; the locks taken so far stay
   *   held until {@link fini}. {@link BugError} when called twice or after `fini()`.
   * @see drm_exec_until_all_locked() / drm_exec_retry_on_contention() / drm_exec_cleanup()
   */
  async untilAllLocked<T>(body: (exec: DrmExec) => Promise<T>): Promise<T> {
    requiredFunction(body, 'DrmExec.untilAllLocked', 'body');
    this.#checkLive('untilAllLocked');
    if (this.#phase !== 'idle') {
      throw new BugError(
        `DrmExec.untilAllLocked: this exec already ran its loop (${this.#phase}); use a new DrmExec per transaction`,
      );
    }
    this.#phase = 'locking';
    for (;;) {
      const contentionsBefore = this.#contentions;
      let result: T;
      try {
        result = await body(this);
        if (this.#inFlight !== null) await this.#checkSettled();
      } catch (err) {
        if (this.#inFlight !== null) await this.#settleInFlight();
        const retry =
          err instanceof WwDeadlockError &&
          this.#phase === 'locking' &&
          this.#contentions !== contentionsBefore &&
          this.#contended !== null;
        if (!retry) {
          if (this.#phase === 'locking') this.#phase = 'failed';
          throw err;
        }
        this.#backOff();
        continue;
      }
      if ((this.#phase as Phase) === 'finished') {
        throw new DmaBufError(
          'ECANCELED',
          'DrmExec.untilAllLocked: the exec was finished (fini or dispose) while the body ran; nothing is locked',
        );
      }
      if (this.#contended === null) {
        this.#ticket.done();
        this.#phase = 'locked';
        return result;
      }
      if (this.#contentions === contentionsBefore) {
        // Retrying would re-run a body that locks nothing: the C loop would spin for ever.
        this.#phase = 'failed';
        throw new BugError(
          `DrmExec.untilAllLocked: the body returned without locking ` +
            `anything after backing off from ${nameOf(this.#contended)}; ` +
            'a re-run body must lock its objects again',
        );
      }
      this.#backOff();
    }
  }

  /**
   * Locks `obj`'s reservation and tracks it. After a back-off, first slow-locks the contended
   * object; naming that object then does not lock it again.
   * @throws rejects with {@link WwDeadlockError} after recording `obj` as contended (let it leave
   *   the body), {@link AlreadyLockedError} when the exec holds `obj` already (unless
   *   `ignoreDuplicates`), the signal's reason when aborted, {@link BugError} outside the body,
   *   while another lock of this exec is pending, or after `fini()`.
   * @see drm_exec_lock_obj()
   */
  lockObj(obj: DrmExecObject): Promise<void> {
    try {
      this.#checkLockable('lockObj', obj);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#contended !== null || this.#prelocked === obj || this.#stopReason !== undefined) {
      // After a back-off, naming the slow-locked object, or stopped: the general path. It marks
      // a lock as in flight while #lockObj runs up to its first await; its `finally` clears the
      // mark, so a lock that completed synchronously leaves nothing in flight.
      this.#inFlight = RESOLVED;
      const wait = this.#lockObj(obj);
      if (this.#inFlight !== null) this.#inFlight = wait;
      return wait;
    }
    // Every other lock of every transaction comes here. A lock taken at once returns the shared
    // granted promise: tracking the object now spares the async frame most of a lock would cost.
    let locked: Promise<void>;
    try {
      locked = obj.resv.lock(this.#ticket);
    } catch (err) {
      locked = Promise.reject(err); // a subclass's lock() that throws: handled as a rejection
    }
    if (locked === wwLockGranted) {
      try {
        this.#track(obj);
      } catch (err) {
        return Promise.reject(err);
      }
      return RESOLVED;
    }
    const backOff = wwBackOffOf(locked);
    if (backOff !== undefined) {
      // Refused at once: record the contention now; the promise rejects with it a microtask later.
      this.#refused(obj, backOff);
      return locked;
    }
    this.#pending = obj;
    const wait = this.#awaitLock(obj, locked);
    this.#inFlight = wait; // #awaitLock clears it after its await, never before
    return wait;
  }

  /**
   * Locks `obj` and reserves `numFences` fence slots in its reservation. If reserving fails the
   * object is unlocked again. With `ignoreDuplicates`, preparing an object twice reserves more.
   * @throws as {@link lockObj}; {@link BugError} for `numFences` 0 (use `lockObj` to lock only);
   *   whatever `reserveFences` throws.
   * @see drm_exec_prepare_obj()
   */
  async prepareObj(obj: DrmExecObject, numFences: number): Promise<void> {
    requiredIndex(numFences, 'DrmExec.prepareObj', 'numFences');
    this.#checkLockable('prepareObj', obj);
    if (numFences === 0) {
      throw new BugError(
        `DrmExec.prepareObj(${nameOf(obj)}): numFences is 0; reserve ` +
          `at least one slot, or call lockObj to lock without reserving`,
      );
    }
    await this.lockObj(obj);
    try {
      obj.resv.reserveFences(numFences);
    } catch (err) {
      this.unlockObj(obj);
      throw err;
    }
  }

  /**
   * Prepares each object in turn, stopping at the first error.
   * @see drm_exec_prepare_array()
   */
  async prepareArray(objs: readonly DrmExecObject[], numFences: number): Promise<void> {
    if (!Array.isArray(objs)) throw invalidArgument('DrmExec.prepareArray', 'objs', objs, 'an array of DrmExecObject');
    requiredIndex(numFences, 'DrmExec.prepareArray', 'numFences');
    for (const obj of objs) await this.prepareObj(obj, numFences);
  }

  /**
   * Unlocks one tracked object and drops its reference, keeping the others in order. Meant for
   * the most recently locked objects: the search starts at the end.
   * @throws {BugError} when the exec does not hold `obj`, or after `fini()`.
   * @see drm_exec_unlock_obj()
   */
  unlockObj(obj: DrmExecObject): void {
    this.#checkLive('unlockObj');
    const i = this.#objects.lastIndexOf(obj);
    if (i < 0) {
      if (!isExecObject(obj)) {
        throw invalidArgument('DrmExec.unlockObj', 'obj', obj, 'an object with a DmaResv resv and get()/put()');
      }
      throw new BugError(
        `DrmExec.unlockObj: ${nameOf(obj)} is not locked by this ` +
          `exec; only objects listed in exec.objects can be unlocked`,
      );
    }
    obj.resv.unlock();
    this.#objects.splice(i, 1);
    if (this.#prelocked === obj) {
      // The body unlocked the slow-locked object before naming it: naming it later must lock it
      // for real (C would report it locked here).
      this.#prelocked = null;
      obj.put();
    }
    obj.put();
  }

  /**
   * Unlocks everything in reverse lock order, drops every reference, rejects a lock still waiting
   * with `ECANCELED` and finishes the ticket. Idempotent.
   * @throws {AggregateError} or the single error when some `unlock()`/`put()` threw; the rest
   *   were still released.
   * @see drm_exec_fini()
   */
  fini(): void {
    if (this.#phase === 'finished') return;
    this.#phase = 'finished';
    if (this.#onUserAbort !== undefined) this.#userSignal!.removeEventListener('abort', this.#onUserAbort);
    const pending = this.#pending;
    const contended = this.#contended;
    this.#contended = null;
    if (pending !== null) {
      this.#stop(new DmaBufError('ECANCELED', `DrmExec: finished while a lock of ${nameOf(pending)} was pending`));
    }
    // Every step runs whatever the ones before it threw; the failures are thrown together.
    // Plain try/catch rather than collectFailures with closures: fini runs once per transaction.
    let errors: unknown[] | undefined;
    // The pending lock may have been handed over already, with its promise not yet settled.
    if (pending !== null && pending.resv.mutex.holder === this.#ticket && !this.#objects.includes(pending)) {
      try {
        pending.resv.unlock();
      } catch (err) {
        (errors ??= []).push(err);
      }
    }
    const failed = this.#unlockAll();
    if (failed !== undefined) (errors ??= []).push(...failed);
    if (contended !== null) {
      try {
        contended.put();
      } catch (err) {
        (errors ??= []).push(err);
      }
    }
    try {
      this.#ticket.fini();
    } catch (err) {
      (errors ??= []).push(err);
    }
    throwCollected(errors, finiFailures);
  }

  /** {@link fini}, then waits for a lock it cancelled to settle. Idempotent. */
  [Symbol.asyncDispose](): Promise<void> {
    const inFlight = this.#inFlight;
    if (inFlight !== null) return this.#finiThenSettle(inFlight);
    // Nothing to wait for (every transaction that ends normally): no async frame.
    try {
      this.fini();
    } catch (err) {
      return Promise.reject(err);
    }
    return RESOLVED;
  }

  async #finiThenSettle(inFlight: Promise<void>): Promise<void> {
    try {
      this.fini();
    } finally {
      await inFlight.catch(() => undefined);
    }
  }

  toString(): string {
    const contended = this.#contended !== null ? ', contended' : '';
    return `DrmExec(${this.#ticket}, ${this.#phase}, ${this.#objects.length} locked${contended})`;
  }

  // One async frame for the general lock (the contended slow lock inlined): each extra frame is
  // an extra promise and microtask hop.
  async #lockObj(obj: DrmExecObject): Promise<void> {
    try {
      const contended = this.#contended;
      if (contended !== null) {
        // After a back-off: slow-lock the contended object holding nothing (drm_exec_lock_contended()).
        // Cleared first, so a failed slow lock ends the loop instead of retrying it.
        this.#contended = null;
        this.#pending = contended;
        try {
          this.#throwIfStopped();
          // Awaited even when granted at once, as is the lock below: the await hands the held lock
          // on to the body's continuation for the lock validator (skipping either makes the stress
          // tests report recursive locking under DMABUF_LOCKDEP=1, now and then).
          await contended.resv.lockSlow(this.#ticket);
        } catch (err) {
          contended.put();
          throw err;
        }
        if (this.#phase === 'finished') {
          contended.put();
          throw this.#stopReason?.reason;
        }
        this.#track(contended);
        this.#prelocked = contended;
      }
      if (this.#prelocked === obj) {
        // Slow-locked at the start of this run and already tracked; drop the contended reference.
        this.#prelocked = null;
        obj.put();
        return;
      }
      this.#throwIfStopped();
      this.#pending = obj;
      try {
        await obj.resv.lock(this.#ticket);
      } catch (err) {
        if (this.#refused(obj, err)) return;
        throw err;
      }
      if (this.#phase === 'finished') throw this.#stopReason?.reason; // fini() released it already
      this.#track(obj);
    } finally {
      // Only one lock of an exec is ever in flight, so the mark is this call's own.
      this.#inFlight = null;
      this.#pending = null;
    }
  }

  /** The rest of a lock that had to queue: wait for the hand-off, then track the object. */
  async #awaitLock(obj: DrmExecObject, queued: Promise<void>): Promise<void> {
    try {
      try {
        await queued;
      } catch (err) {
        if (this.#refused(obj, err)) return;
        throw err;
      }
      if (this.#phase === 'finished') throw this.#stopReason?.reason; // fini() released it already
      this.#track(obj);
    } finally {
      this.#inFlight = null;
      this.#pending = null;
    }
  }

  /**
   * A lock of `obj` was refused with `err`. A back-off is recorded (the object becomes the
   * contended one, holding a reference). @returns whether to carry on as if locked: a duplicate
   * the exec was told to ignore.
   */
  #refused(obj: DrmExecObject, err: unknown): boolean {
    if (this.#phase === 'finished') return false;
    if (err instanceof WwDeadlockError) {
      obj.get();
      this.#contended = obj;
      this.#contentions++;
      return false;
    }
    return err instanceof AlreadyLockedError && this.#ignoreDuplicates;
  }

  /** Stops lock waits for good: the current one (if any) rejects with `reason`, later ones at once. */
  #stop(reason: unknown): void {
    this.#stopReason ??= { reason };
    this.#ticket.cancelWait(this.#stopReason.reason);
  }

  #throwIfStopped(): void {
    if (this.#stopReason !== undefined) throw this.#stopReason.reason;
  }

  #track(obj: DrmExecObject): void {
    try {
      obj.get();
    } catch (err) {
      obj.resv.unlock();
      throw err;
    }
    this.#objects.push(obj);
  }

  /** Drops every lock before the body runs again (`drm_exec_cleanup()` on contention). */
  #backOff(): void {
    const errors = this.#unlockAll();
    if (errors === undefined) return;
    this.#phase = 'failed';
    throwCollected(errors, (n) => `DrmExec: ${n} releases failed while backing off`);
  }

  /**
   * Unlocks in reverse order and drops every reference (the slow-locked object's extra one too),
   * continuing past failures. @returns what failed. @see drm_exec_unlock_all()
   */
  #unlockAll(): unknown[] | undefined {
    const objects = this.#objects.reverse();
    this.#objects = [];
    const prelocked = this.#prelocked;
    this.#prelocked = null;
    let errors: unknown[] | undefined;
    for (let i = 0; i < objects.length; i++) {
      try {
        release(objects[i]!);
      } catch (err) {
        (errors ??= []).push(err);
      }
    }
    if (prelocked === null) return errors;
    try {
      prelocked.put();
    } catch (err) {
      (errors ??= []).push(err);
    }
    return errors;
  }

  /** A body that returned with a lock still pending forgot an `await`. */
  async #checkSettled(): Promise<void> {
    const obj = this.#pending;
    await this.#settleInFlight();
    throw new BugError(
      `DrmExec.untilAllLocked: the body returned while a lock${obj !== null ? ` of ${nameOf(obj)}` : ''} ` +
        `was still pending; await every lockObj/prepareObj`,
    );
  }

  async #settleInFlight(): Promise<void> {
    const inFlight = this.#inFlight;
    if (inFlight !== null) await inFlight.catch(() => undefined);
  }

  #checkLive(op: string): void {
    if (this.#phase === 'finished')
      throw new BugError(`DrmExec.${op}: the exec was already finished (fini or dispose); use a new DrmExec`);
  }

  #checkLockable(op: string, obj: DrmExecObject): void {
    this.#checkLive(op);
    if (!isExecObject(obj)) {
      throw invalidArgument(`DrmExec.${op}`, 'obj', obj, 'an object with a DmaResv resv and get()/put()');
    }
    if (this.#phase !== 'locking') {
      const why =
        this.#phase === 'idle'
          ? 'outside untilAllLocked(); lock objects inside its body so contention can be retried'
          : `after the loop ended (${this.#phase})`;
      throw new BugError(`DrmExec.${op}(${nameOf(obj)}): called ${why}`);
    }
    if (this.#inFlight !== null) {
      throw new BugError(
        `DrmExec.${op}(${nameOf(obj)}): another lock of this exec is still pending; await each lock before the next`,
      );
    }
    if (this.#contended !== null && this.#objects.length > 0) {
      throw new BugError(
        `DrmExec.${op}(${nameOf(obj)}): the exec backed off from ${nameOf(this.#contended)} but ` +
          `the body kept locking; let the WwDeadlockError leave the body so untilAllLocked can retry`,
      );
    }
  }
}

function isExecObject(obj: unknown): obj is DrmExecObject {
  if (typeof obj !== 'object' || obj === null) return false;
  const candidate = obj as Partial<DrmExecObject>;
  return (
    candidate.resv instanceof DmaResv && typeof candidate.get === 'function' && typeof candidate.put === 'function'
  );
}
