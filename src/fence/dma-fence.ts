/**
 * dma-fence: a one-shot completion object with a timeline position.
 *
 * Overview: a {@link DmaFence} stands for work that will finish once: a GPU job, a copy, a worker
 * task. Whoever does the work owns the fence and calls {@link DmaFence.signal} (after
 * {@link DmaFence.setError} if it failed); anyone else may add synchronous callbacks, poll, or
 * `await fence.wait()`. Each fence belongs to a context (a timeline, from
 * {@link fenceContextAlloc}) and has a seqno ordering it within that context. What a fence is
 * made of is described by a {@link DmaFenceOps} table, as in the kernel: the two name getters are
 * mandatory, `enableSignaling`, `signaled` and `setDeadline` optional.
 *
 * Models `drivers/dma-buf/dma-fence.c` and `include/linux/dma-fence.h`.
 *
 * Contract:
 * - Signalling happens once. {@link DmaFence.signal} is synchronous: it marks the fence, records
 *   the timestamp and runs every callback in registration order before it returns; a second call
 *   returns `false` and changes nothing.
 * - The error is set before signalling or never; afterwards {@link DmaFence.setError} is a bug.
 * - `ops.enableSignaling` runs at most once, on the first callback, wait or explicit enable;
 *   returning `false` means "already done" and signals the fence.
 * - {@link DmaFence.addCallback} on a signaled fence returns `false` and never calls back;
 *   {@link DmaFence.removeCallback} returns `false` once the callback has run or started running.
 * - Callbacks run inside `signal()`: they must be short and must not wait. One that throws does
 *   not stop the others; its error is re-raised on a microtask.
 * - A wait settles exactly once: `true` when signaled, `false` on timeout, rejection with
 *   `signal.reason` when aborted; whichever comes first removes its callback, timer and listener.
 * - Seqnos compare with 32-bit wrap-around unless the fence was made 64-bit (chains are).
 * - For the lock validator, every wait may block (`mightWait`) and `signal()` runs its callbacks
 *   inside a signalling section. A fence created `longRunning` (seed 001) may never signal: a
 *   plain `addCallback` on it is a validator report, `lrAddCallback` acknowledges the risk.
 *
 * @example
 * ```ts
 * import { DmaFence, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'queue-0' };
 * const context = fenceContextAlloc();
 * const fence = new DmaFence(ops, context, 1);
 * fence.addCallback((f) => console.log(`done: ${f.describe()}`));
 * setTimeout(() => fence.signal(), 5);
 * await fence.wait({ timeout: 1000 }); // true
 * ```
 */

import { BugError, DmaBufError, ERRNO, InvalidArgumentError, checkIndex, checkTimeout, describeValue, reportCallbackError, type ErrnoCode } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { lockdep } from '../base/lockdep-hooks.js';
import { waitWithCleanup } from './dma-fence-wait.js';

type Resolver = (value: boolean) => void;

/** A function called once, synchronously, when a fence signals. */
export type FenceCallback = (fence: DmaFence) => void;

/**
 * What a fence is made of, shared by every fence of one kind (`struct dma_fence_ops`).
 * Method syntax lets a subclass's table name its own fence type.
 */
export interface DmaFenceOps<F extends DmaFence = DmaFence> {
  /** Name of the driver or subsystem that issued the fence. Mandatory. */
  getDriverName(fence: F): string;
  /** Name of the fence's timeline. Mandatory. */
  getTimelineName(fence: F): string;
  /**
   * Called once, on first interest (callback, wait, explicit enable), to make the fence signal
   * eventually. Return `false` when the work is already done (the core then signals the fence);
   * set an error first with `setError` if it failed. Without this op the fence must signal on its own.
   */
  enableSignaling?(fence: F): boolean;
  /** Fast poll: true once the work is done. Must stay true once it returned true. */
  signaled?(fence: F): boolean;
  /** Hint that the result is wanted by `deadline` (milliseconds, clock time); keep the soonest. */
  setDeadline?(fence: F, deadline: number): void;
}

/** Where a fence is: not yet signaled, signaled, or signaled with an error. */
export type FenceStatus = 'pending' | 'signaled' | 'error';

/** Options for waiting on fences. */
export interface FenceWaitOptions {
  /** Milliseconds to wait; 0 polls once; omitted (or Infinity) waits for ever. */
  readonly timeout?: number;
  /** Aborts the wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** Options for constructing a fence. */
export interface DmaFenceInit {
  /** Compare seqnos as full integers instead of with 32-bit wrap-around (`dma_fence_init64`). */
  readonly seqno64?: boolean;
  /**
   * The work may run for ever (seed 001): waits on it use the long-running signalling map, and a
   * plain {@link DmaFence.addCallback} is a validator report (use {@link DmaFence.lrAddCallback}).
   * Reservation objects refuse it.
   */
  readonly longRunning?: boolean;
}

const FLAG_SEQNO64 = 1;
const FLAG_SIGNALED = 2;
const FLAG_ENABLE_SIGNAL = 4;
const FLAG_LONG_RUNNING = 8;

/** Context 0 belongs to stub fences; allocation starts at 1. */
let nextContext = 1;

/**
 * Allocates `count` consecutive fence contexts and returns the first (`dma_fence_context_alloc`).
 * @throws {InvalidArgumentError} unless `count` is a positive integer.
 */
export function fenceContextAlloc(count = 1): number {
  if (!Number.isSafeInteger(count) || count <= 0) {
    throw new InvalidArgumentError(`fenceContextAlloc: count must be a positive integer, got ${describeValue(count)}`);
  }
  const first = nextContext;
  nextContext += count;
  return first;
}

const validatedOps = new WeakSet<object>();
// Fences are made in runs of one kind; remembering the last table skips the WeakSet lookup.
let lastValidatedOps: unknown;

function validateOps(ops: unknown): void {
  if (ops === lastValidatedOps && ops !== undefined) return;
  if (validatedOps.has(ops as object)) {
    lastValidatedOps = ops;
    return;
  }
  if (typeof ops !== 'object' || ops === null) {
    throw new BugError(`DmaFence: ops must be an object with getDriverName and getTimelineName, got ${describeValue(ops)}`);
  }
  const table = ops as Record<string, unknown>;
  for (const name of ['getDriverName', 'getTimelineName']) {
    if (typeof table[name] !== 'function') {
      throw new BugError(`DmaFence: ops.${name} is mandatory and must be a function, got ${describeValue(table[name])}`);
    }
  }
  for (const name of ['enableSignaling', 'signaled', 'setDeadline']) {
    if (table[name] !== undefined && typeof table[name] !== 'function') {
      throw new BugError(`DmaFence: ops.${name} is optional but must be a function when given, got ${describeValue(table[name])}`);
    }
  }
  validatedOps.add(ops);
  lastValidatedOps = ops;
}

// Shared settled promises: waiting on a signaled fence allocates nothing.
const RESOLVED_TRUE: Promise<boolean> = Promise.resolve(true);
const RESOLVED_FALSE: Promise<boolean> = Promise.resolve(false);

/** Is `a` after `b` on a timeline? 64-bit: plain comparison; otherwise 32-bit wrap-around. */
export function seqnoIsLater(a: number, b: number, seqno64: boolean): boolean {
  if (seqno64) return a > b;
  // Differences of the low 32 bits, read as signed: later by less than 2^31 counts as later.
  return (((a >>> 0) - (b >>> 0)) | 0) > 0;
}

/**
 * A one-shot completion with a timeline position (`struct dma_fence`).
 * @see dma_fence_init()
 */
export class DmaFence {
  /** The fence's operations table. Constant after construction. */
  readonly ops: DmaFenceOps;
  /** Timeline the fence belongs to (0 for stubs). Constant after construction. */
  readonly context: number;
  /** Position on the timeline. Constant after construction. */
  readonly seqno: number;

  #flags: number;
  #error: Error | undefined = undefined;
  #timestamp = 0;
  // One callback is stored bare; more become an array. Most fences have zero or one.
  #callbacks: FenceCallback | FenceCallback[] | null = null;
  // Resolvers of plain waits (no timeout, no abort), kept apart so a wait needs no closure.
  #waiters: Resolver | Resolver[] | null = null;

  /**
   * @param ops validated once per table: the name getters are mandatory.
   * @param context from {@link fenceContextAlloc}; 0 is reserved for stubs.
   * @param seqno position on the timeline, a non-negative safe integer.
   * @throws {BugError} for an invalid ops table.
   * @throws {InvalidArgumentError} for a context or seqno that is not a non-negative safe integer.
   */
  constructor(ops: DmaFenceOps, context: number, seqno: number, init?: DmaFenceInit) {
    validateOps(ops);
    this.ops = ops;
    this.context = checkIndex('DmaFence context', context);
    this.seqno = checkIndex('DmaFence seqno', seqno);
    this.#flags = (init?.seqno64 === true ? FLAG_SEQNO64 : 0) | (init?.longRunning === true ? FLAG_LONG_RUNNING : 0);
  }

  /** Whether the fence was created long-running (seed 001): it may never signal. */
  get isLongRunning(): boolean {
    return (this.#flags & FLAG_LONG_RUNNING) !== 0;
  }

  /** Whether seqnos compare as full integers (chains) rather than with 32-bit wrap-around. */
  get isSeqno64(): boolean {
    return (this.#flags & FLAG_SEQNO64) !== 0;
  }

  /** True for fences that contain others (arrays and chains); they may not be nested in arrays. */
  get isContainer(): boolean {
    return false;
  }

  /** The signaled bit alone, with no polling and no side effects (`dma_fence_test_signaled_flag`). */
  get signaledFlag(): boolean {
    return (this.#flags & FLAG_SIGNALED) !== 0;
  }

  /**
   * Whether the fence has signaled. Polls `ops.signaled` and signals the fence when it says so.
   * Does not enable signaling. @see dma_fence_is_signaled()
   */
  isSignaled(): boolean {
    if ((this.#flags & FLAG_SIGNALED) !== 0) return true;
    const poll = this.ops.signaled;
    if (poll?.call(this.ops, this)) {
      this.signal();
      return true;
    }
    return false;
  }

  /**
   * Marks the fence done and runs its callbacks, in registration order, before returning.
   * @param timestamp signal time in clock milliseconds; defaults to now.
   * @returns `false` when the fence had already signaled (nothing changes then).
   * @see dma_fence_signal_timestamp()
   */
  signal(timestamp?: number): boolean {
    if ((this.#flags & FLAG_SIGNALED) !== 0) return false;
    if (timestamp !== undefined && !Number.isFinite(timestamp)) {
      throw new InvalidArgumentError(`${this.describe()}: signal timestamp must be a finite number, got ${describeValue(timestamp)}`);
    }
    this.#flags |= FLAG_SIGNALED;
    this.#timestamp = timestamp ?? getClock().now();
    const callbacks = this.#callbacks;
    // The validator sees the callbacks as running inside a signalling section (kernel: signal()
    // is itself annotated); only worth opening when something runs in it.
    const hooks = lockdep;
    const cookie = hooks !== null && (callbacks !== null || this.#waiters !== null) ? hooks.beginSignalling(this.isLongRunning) : null;
    if (callbacks !== null) {
      this.#callbacks = null;
      if (typeof callbacks === 'function') {
        runCallback(callbacks, this);
      } else {
        for (let i = 0; i < callbacks.length; i++) runCallback(callbacks[i]!, this);
      }
    }
    const waiters = this.#waiters;
    if (waiters !== null) {
      this.#waiters = null;
      if (typeof waiters === 'function') waiters(true);
      else for (let i = 0; i < waiters.length; i++) waiters[i]!(true);
    }
    if (cookie !== null) hooks!.endSignalling(cookie);
    return true;
  }

  /**
   * Records why the work failed. Must come before {@link signal}.
   * @param error an Error, or an errno name that becomes a {@link DmaBufError}.
   * @throws {BugError} when the fence has already signaled.
   * @see dma_fence_set_error()
   */
  setError(error: Error | ErrnoCode): void {
    if ((this.#flags & FLAG_SIGNALED) !== 0) {
      throw new BugError(`${this.describe()}: setError after signal; the error must be set before the fence signals`);
    }
    if (typeof error === 'string') {
      if (!Object.hasOwn(ERRNO, error)) {
        throw new InvalidArgumentError(`${this.describe()}: setError: unknown errno name ${describeValue(error)}; use one of ${Object.keys(ERRNO).join(', ')}`);
      }
      this.#error = new DmaBufError(error, `${this.describe()} failed with ${error}`);
    } else if (error instanceof Error) {
      this.#error = error;
    } else {
      throw new InvalidArgumentError(`${this.describe()}: setError takes an Error or an errno name, got ${describeValue(error)}`);
    }
  }

  /** The error set by the signaller, readable once set (meaningful after signal). */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Pending, signaled, or signaled with an error. Polls like {@link isSignaled}. @see dma_fence_get_status() */
  get status(): FenceStatus {
    if (!this.isSignaled()) return 'pending';
    return this.#error === undefined ? 'signaled' : 'error';
  }

  /** Signal time in clock milliseconds, or `undefined` before the fence signals. @see dma_fence_timestamp() */
  get timestamp(): number | undefined {
    return (this.#flags & FLAG_SIGNALED) !== 0 ? this.#timestamp : undefined;
  }

  /** Makes sure the fence will signal: runs `ops.enableSignaling` once. @see dma_fence_enable_sw_signaling() */
  enableSwSignaling(): void {
    if ((this.#flags & (FLAG_ENABLE_SIGNAL | FLAG_SIGNALED)) !== 0) {
      this.#flags |= FLAG_ENABLE_SIGNAL;
      return;
    }
    this.#flags |= FLAG_ENABLE_SIGNAL;
    const enable = this.ops.enableSignaling;
    if (enable !== undefined && !enable.call(this.ops, this)) this.signal();
  }

  /** Whether signaling has been enabled (by a callback, a wait or {@link enableSwSignaling}). */
  get signalingEnabled(): boolean {
    return (this.#flags & FLAG_ENABLE_SIGNAL) !== 0;
  }

  /**
   * Adds `callback`, to run once inside {@link signal}. Enables signaling.
   * @returns `false`, without ever calling back, when the fence has already signaled
   *   (including when enabling signaling found the work done): the kernel's `-ENOENT`.
   * @see dma_fence_add_callback()
   */
  addCallback(callback: FenceCallback): boolean {
    if ((this.#flags & FLAG_LONG_RUNNING) !== 0 && lockdep !== null) lockdep.plainCallbackOnLongRunning(this.describe());
    return this.lrAddCallback(callback);
  }

  /**
   * {@link addCallback} for code that accepts that the fence may never signal: the only way to
   * add a callback to a long-running fence without a validator report. Works on any fence.
   */
  lrAddCallback(callback: FenceCallback): boolean {
    if ((this.#flags & FLAG_SIGNALED) !== 0) return false;
    if (typeof callback !== 'function') {
      throw new InvalidArgumentError(`${this.describe()}: addCallback takes a function, got ${describeValue(callback)}`);
    }
    if ((this.#flags & FLAG_ENABLE_SIGNAL) === 0) {
      this.enableSwSignaling();
      if ((this.#flags & FLAG_SIGNALED) !== 0) return false;
    }
    this.#push(callback);
    return true;
  }

  /**
   * Removes a callback that has not run yet (meant for recovery paths such as a timed-out wait).
   * Removes one registration when the same function was added several times.
   * @returns `true` when removed; `false` when it already ran, is running, or was never added.
   * @see dma_fence_remove_callback()
   */
  removeCallback(callback: FenceCallback): boolean {
    const callbacks = this.#callbacks;
    if (callbacks === null) return false;
    if (typeof callbacks === 'function') {
      if (callbacks !== callback) return false;
      this.#callbacks = null;
      return true;
    }
    const i = callbacks.indexOf(callback);
    if (i < 0) return false;
    callbacks.splice(i, 1);
    return true;
  }

  /** Number of callbacks waiting for the signal (waits included). For leak checks and describe(). */
  get pendingCallbacks(): number {
    const callbacks = this.#callbacks;
    const waiters = this.#waiters;
    return (
      (callbacks === null ? 0 : typeof callbacks === 'function' ? 1 : callbacks.length) +
      (waiters === null ? 0 : typeof waiters === 'function' ? 1 : waiters.length)
    );
  }

  #push(callback: FenceCallback): void {
    const callbacks = this.#callbacks;
    if (callbacks === null) this.#callbacks = callback;
    else if (typeof callbacks === 'function') this.#callbacks = [callbacks, callback];
    else callbacks.push(callback);
  }

  /**
   * Waits for the fence. Enables signaling.
   * @returns `true` once signaled; `false` when `timeout` ran out (a `timeout` of 0 only polls).
   * @throws rejects with `signal.reason` when aborted, leaving no callback, timer or listener.
   * @throws rejects with {@link InvalidArgumentError} for a negative or non-numeric timeout.
   * @see dma_fence_wait_timeout()
   */
  wait(options?: FenceWaitOptions): Promise<boolean> {
    let timeout: number | undefined;
    let abort: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        timeout = checkTimeout(options.timeout);
      } catch (err) {
        return Promise.reject(err);
      }
      abort = options.signal;
    }
    if (lockdep !== null) {
      const report = mightWait(this);
      if (report !== undefined) return Promise.reject(report);
    }
    if ((this.#flags & FLAG_SIGNALED) !== 0) return RESOLVED_TRUE;
    if (abort?.aborted) return Promise.reject(abort.reason);
    this.enableSwSignaling();
    if (this.isSignaled()) return RESOLVED_TRUE;
    if (timeout === 0) return RESOLVED_FALSE;
    if (timeout === undefined && abort === undefined) {
      return new Promise<boolean>((resolve) => {
        const waiters = this.#waiters;
        if (waiters === null) this.#waiters = resolve;
        else if (typeof waiters === 'function') this.#waiters = [waiters, resolve];
        else waiters.push(resolve);
      });
    }
    return waitWithCleanup([this], timeout, abort).then(indexToBoolean);
  }

  /**
   * Waits until any of `fences` signals. Enables signaling on all of them.
   * @returns the index of the first signaled fence (in array order), or -1 when `timeout` ran out.
   * @throws {BugError} for an empty list; rejects with `signal.reason` when aborted.
   * @see dma_fence_wait_any_timeout()
   */
  static waitAny(fences: readonly DmaFence[], options?: FenceWaitOptions): Promise<number> {
    if (!Array.isArray(fences) || fences.length === 0) {
      return Promise.reject(new BugError(`DmaFence.waitAny needs at least one fence, got ${describeValue(fences)}`));
    }
    let timeout: number | undefined;
    try {
      timeout = checkTimeout(options?.timeout);
    } catch (err) {
      return Promise.reject(err);
    }
    const abort = options?.signal;
    if (lockdep !== null) {
      for (const fence of fences) {
        const report = mightWait(fence);
        if (report !== undefined) return Promise.reject(report);
      }
    }
    if (abort?.aborted) return Promise.reject(abort.reason);
    for (let i = 0; i < fences.length; i++) {
      const fence = fences[i]!;
      fence.enableSwSignaling();
      if (fence.isSignaled()) return Promise.resolve(i);
    }
    if (timeout === 0) return Promise.resolve(-1);
    return waitWithCleanup(fences, timeout, abort);
  }

  /**
   * Passes a deadline hint to the fence's issuer (`ops.setDeadline`), unless it has signaled.
   * @param deadline clock milliseconds; a time in the past means "as soon as possible".
   * @see dma_fence_set_deadline()
   */
  setDeadline(deadline: number): void {
    if (!Number.isFinite(deadline)) {
      throw new InvalidArgumentError(`${this.describe()}: deadline must be a finite clock time in milliseconds, got ${describeValue(deadline)}`);
    }
    const op = this.ops.setDeadline;
    if (op !== undefined && !this.isSignaled()) op.call(this.ops, this, deadline);
  }

  /** The driver's name while pending; `"detached-driver"` once signaled. @see dma_fence_driver_name() */
  get driverName(): string {
    return this.signaledFlag ? 'detached-driver' : this.ops.getDriverName(this);
  }

  /** The timeline's name while pending; `"signaled-timeline"` once signaled. @see dma_fence_timeline_name() */
  get timelineName(): string {
    return this.signaledFlag ? 'signaled-timeline' : this.ops.getTimelineName(this);
  }

  /** One line: `context:seqno timeline driver [un]signalled`. @see dma_fence_describe() */
  describe(): string {
    const signaled = this.signaledFlag;
    const names = signaled ? '' : ` ${this.ops.getTimelineName(this)} ${this.ops.getDriverName(this)}`;
    const error = this.#error !== undefined ? ` (error: ${this.#error.message})` : '';
    return `${this.context}:${this.seqno}${names} ${signaled ? '' : 'un'}signalled${error}`;
  }

  toString(): string {
    return `DmaFence(${this.describe()})`;
  }

  /**
   * Is `f1` later on their shared timeline than `f2`? Uses `f1`'s seqno width.
   * @throws {BugError} when the fences are on different contexts.
   * @see dma_fence_is_later()
   */
  static isLater(f1: DmaFence, f2: DmaFence): boolean {
    checkSameContext('isLater', f1, f2);
    return seqnoIsLater(f1.seqno, f2.seqno, f1.isSeqno64);
  }

  /** `f1 === f2` or {@link isLater}. @see dma_fence_is_later_or_same() */
  static isLaterOrSame(f1: DmaFence, f2: DmaFence): boolean {
    return f1 === f2 || DmaFence.isLater(f1, f2);
  }

  /**
   * The later of two fences on one timeline, or `null` when that later fence has signaled
   * (then both have, as far as ordering goes). @see dma_fence_later()
   */
  static later(f1: DmaFence, f2: DmaFence): DmaFence | null {
    checkSameContext('later', f1, f2);
    const later = seqnoIsLater(f1.seqno, f2.seqno, f1.isSeqno64) ? f1 : f2;
    return later.isSignaled() ? null : later;
  }

  /**
   * The shared, always-signaled stub fence (context 0, seqno 0), timestamped at first use.
   * @see dma_fence_get_stub()
   */
  static getStub(): DmaFence {
    stub ??= DmaFence.allocatePrivateStub();
    return stub;
  }

  /** A new fence, already signaled at `timestamp` (default now), on the stub context. @see dma_fence_allocate_private_stub() */
  static allocatePrivateStub(timestamp?: number): DmaFence {
    const fence = new DmaFence(stubOps, 0, 0);
    fence.#flags |= FLAG_ENABLE_SIGNAL;
    fence.signal(timestamp);
    return fence;
  }
}

let stub: DmaFence | undefined;

const stubOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'stub',
  getTimelineName: () => 'stub',
});

function runCallback(callback: FenceCallback, fence: DmaFence): void {
  try {
    callback(fence);
  } catch (err) {
    reportCallbackError(err);
  }
}

/** Tells the validator that the caller may block on `fence`; a report in 'throw' mode comes back. */
function mightWait(fence: DmaFence): Error | undefined {
  try {
    lockdep?.mightWait(fence.isLongRunning);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new BugError(String(err));
  }
}

function indexToBoolean(index: number): boolean {
  return index >= 0;
}

function checkSameContext(what: string, f1: DmaFence, f2: DmaFence): void {
  if (f1.context !== f2.context) {
    throw new BugError(`DmaFence.${what}: fences on different timelines cannot be ordered (${f1.describe()} vs ${f2.describe()})`);
  }
}
