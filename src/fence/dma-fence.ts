/**
 * dma-fence: a one-shot completion object with a timeline position.
 *
 * Overview: a {@link DmaFence} stands for work that will finish once: a GPU job, a copy, a worker
 * task. Whoever does the work owns the fence and calls {@link DmaFence.signal} (after
 * {@link DmaFence.setError} if it failed); anyone else may add synchronous callbacks, poll, or
 * `await fence.wait()`. Each fence belongs to a context (a timeline, from
 * {@link fenceContextAlloc}) and has a seqno ordering it within that context. What a fence is
 * made of is described by a {@link DmaFenceOps} table, as in the kernel: the two name getters are
 * mandatory, `enableSignaling`, `signaled` and `setDeadline` optional. Code that only needs a
 * completion object skips the table: `new DmaFence('upload')` names the timeline and gets a
 * context of its own (seqno 1), `new DmaFence('ring0', { context, seqno })` places it on one.
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
 *   `waitAny` answers "which one?", so its timeout rejects with {@link FenceTimeoutError}
 *   (the outcome rules are in `base/errors`).
 * - Status words are the kernel's (`sync_file` info, sw_sync): `'active'`, `'signaled'`, `'error'`;
 *   {@link DmaFence.status} and {@link DmaFence.describe} use them.
 * - Arguments and options are checked before anything changes ({@link InvalidArgumentError}).
 * - Seqnos compare with 32-bit wrap-around unless the fence was made 64-bit (chains are).
 * - For the lock validator, every wait may block (`mightWait`) and `signal()` runs its callbacks
 *   inside a signalling section. A fence created `longRunning` (seed 001) may never signal: a
 *   plain `addCallback` on it is a validator report, `lrAddCallback` acknowledges the risk.
 *
 * @example
 * ```ts
 * import { DmaFence, fenceContextAlloc } from 'dmabuf';
 * const upload = new DmaFence('upload'); // no ops table needed
 * upload.addCallback((f) => console.log(`done: ${f.describe()}`));
 * setTimeout(() => upload.signal(), 5);
 * console.log(await upload.wait({ timeout: 1000 })); // true
 * // A driver keeps its own table, and its own timeline:
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'queue-0' };
 * const job = new DmaFence(ops, fenceContextAlloc(), 1);
 * console.log(job.status, job.describe()); // 'active' '… queue-0 example active'
 * ```
 */

import { BugError, DmaBufError, FenceTimeoutError, reportCallbackError, type ErrnoCode } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { lockdep } from '../base/lockdep-hooks.js';
import {
  defineOptions,
  defineOptionsCheck,
  ERRNO_EXPECTED,
  invalidArgument,
  isErrnoName,
  optionalBoolean,
  optionalIndex,
  optionalSignal,
  optionalString,
  optionalTimeout,
  requiredFinite,
  requiredIndex,
  requiredPositiveInteger,
} from '../base/options.js';
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

/**
 * Where a fence is: `'active'` (not yet signaled), `'signaled'`, or `'error'` (signaled with an
 * error). The kernel's words: `sync_file` info reports 0 "active", 1 "signaled", < 0 an error.
 */
export type FenceStatus = 'active' | 'signaled' | 'error';

/** Options for waiting on fences. */
export interface FenceWaitOptions {
  /** Milliseconds to wait; 0 polls once; omitted (or Infinity) waits for ever. */
  readonly timeout?: number;
  /** Aborts the wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** Options for constructing a fence with an ops table. */
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

/** Options for a fence made from a name alone (`new DmaFence('upload', { ... })`). */
export interface DmaFenceNamedInit extends DmaFenceInit {
  /** The timeline to put the fence on; a fresh context (a timeline of its own) by default. */
  readonly context?: number;
  /** Position on that timeline; 1 by default. */
  readonly seqno?: number;
  /** Driver name reported by `driverName` and `describe()`; `'dmabuf'` by default. */
  readonly driver?: string;
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
  requiredPositiveInteger(count, 'fenceContextAlloc', 'count');
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
  if (typeof ops !== 'object' || ops === null || Array.isArray(ops)) {
    const expected = 'a DmaFenceOps table { getDriverName, getTimelineName, ... } or a timeline name';
    throw invalidArgument('DmaFence', 'ops', ops, expected);
  }
  const table = ops as Record<string, unknown>;
  if (table['getDriverName'] === undefined && table['getTimelineName'] === undefined) {
    throw invalidArgument('DmaFence', 'ops', ops, 'a DmaFenceOps table { getDriverName, getTimelineName, ... }');
  }
  for (const name of ['getDriverName', 'getTimelineName']) {
    if (typeof table[name] !== 'function') {
      throw invalidArgument('DmaFence', `ops.${name}`, table[name], 'a function (it is mandatory)');
    }
  }
  for (const name of ['enableSignaling', 'signaled', 'setDeadline']) {
    if (table[name] !== undefined && typeof table[name] !== 'function') {
      throw invalidArgument('DmaFence', `ops.${name}`, table[name], 'a function or absent (it is optional)');
    }
  }
  validatedOps.add(ops);
  lastValidatedOps = ops;
}

// Checked without allocating: the constructor is a hot path, and booleans read after the check
// cannot turn into anything harmful.
const checkInit = defineOptionsCheck('DmaFence', { seqno64: optionalBoolean, longRunning: optionalBoolean });
const parseNamedInit = defineOptions('DmaFence', {
  seqno64: optionalBoolean,
  longRunning: optionalBoolean,
  context: optionalIndex,
  seqno: optionalIndex,
  driver: optionalString,
});

/** Ops tables of named fences, one per (driver, timeline) pair, capped so unique names cannot grow it for ever. */
const namedOps = new Map<string, DmaFenceOps>();
const NAMED_OPS_CACHED = 1024;

function opsForName(driver: string, timeline: string): DmaFenceOps {
  const key = `${driver}\0${timeline}`;
  let ops = namedOps.get(key);
  if (ops === undefined) {
    ops = Object.freeze({ getDriverName: () => driver, getTimelineName: () => timeline });
    validatedOps.add(ops);
    if (namedOps.size < NAMED_OPS_CACHED) namedOps.set(key, ops);
  }
  return ops;
}

/** The wait options, checked once per call (only when given: a plain `wait()` skips this). */
/** The named form of the constructor: `new DmaFence('upload', { context, seqno, driver, ... })`. */
function namedFence(
  name: unknown,
  init: unknown,
  seqno: unknown,
  extra: unknown,
): { ops: DmaFenceOps; context: number; seqno: number; flags: number } {
  // Neither a table nor a name: validateOps throws, naming both.
  if (name !== undefined && typeof name !== 'string') validateOps(name);
  if (seqno !== undefined || extra !== undefined) {
    // (x, context, seqno) is the ops form: what is wrong is x, which is no table.
    throw invalidArgument('DmaFence', 'ops', name, 'a DmaFenceOps table when context and seqno are given');
  }
  const named = parseNamedInit(init);
  return {
    ops: opsForName(named.driver ?? 'dmabuf', (name as string | undefined) ?? 'fence'),
    context: named.context ?? fenceContextAlloc(),
    seqno: named.seqno ?? 1,
    flags: (named.seqno64 === true ? FLAG_SEQNO64 : 0) | (named.longRunning === true ? FLAG_LONG_RUNNING : 0),
  };
}

const parseWaitOptions = defineOptions('DmaFence.wait', { timeout: optionalTimeout, signal: optionalSignal });
const parseWaitAnyOptions = defineOptions('DmaFence.waitAny', { timeout: optionalTimeout, signal: optionalSignal });

// The resolver of the promise a plain wait just created. The Promise constructor runs its
// executor synchronously, so a shared executor can pass the resolver out through this slot.
let capturedResolver: Resolver | null = null;
function captureResolver(resolve: Resolver): void {
  capturedResolver = resolve;
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
   * A fence that needs no ops table: `name` is its timeline's name (default `'fence'`), and it
   * sits on a context of its own at seqno 1 unless `init` places it.
   * @throws {InvalidArgumentError} for a name that is not a string or bad `init` options.
   */
  constructor(name?: string, init?: DmaFenceNamedInit);
  /**
   * A fence of a driver's kind, described by its ops table (`dma_fence_init`).
   * @param ops validated once per table: the name getters are mandatory.
   * @param context from {@link fenceContextAlloc}; 0 is reserved for stubs.
   * @param seqno position on the timeline, a non-negative safe integer.
   * @throws {InvalidArgumentError} for an invalid ops table, a context or seqno that is not a
   *   non-negative safe integer, or bad `init` options.
   */
  constructor(ops: DmaFenceOps, context: number, seqno: number, init?: DmaFenceInit);
  constructor(
    opsOrName?: DmaFenceOps | string,
    context?: number | DmaFenceNamedInit,
    seqno?: number,
    init?: DmaFenceInit,
  ) {
    if (typeof opsOrName !== 'object') {
      // The named form, out of line: the ops form below is the drivers' hot path.
      const named = namedFence(opsOrName, context, seqno, init);
      this.ops = named.ops;
      this.context = named.context;
      this.seqno = named.seqno;
      this.#flags = named.flags;
      return;
    }
    validateOps(opsOrName);
    if (init !== undefined) checkInit(init);
    this.ops = opsOrName;
    this.context = requiredIndex(context, 'DmaFence', 'context');
    this.seqno = requiredIndex(seqno, 'DmaFence', 'seqno');
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
    if (timestamp !== undefined) requiredFinite(timestamp, 'DmaFence.signal', 'timestamp');
    if ((this.#flags & FLAG_SIGNALED) !== 0) return false;
    this.#flags |= FLAG_SIGNALED;
    this.#timestamp = timestamp ?? getClock().now();
    const callbacks = this.#callbacks;
    // The validator sees the callbacks as running inside a signalling section (kernel: signal()
    // is itself annotated); only worth opening when something runs in it.
    const hooks = lockdep;
    const cookie =
      hooks !== null && (callbacks !== null || this.#waiters !== null)
        ? hooks.beginSignalling(this.isLongRunning)
        : null;
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
    if (!(error instanceof Error) && !isErrnoName(error)) {
      throw invalidArgument('DmaFence.setError', 'error', error, `an Error or ${ERRNO_EXPECTED}`);
    }
    if ((this.#flags & FLAG_SIGNALED) !== 0) {
      throw new BugError(`${this.describe()}: setError after signal; the error must be set before the fence signals`);
    }
    if (typeof error !== 'string') {
      this.#error = error;
      return;
    }
    const names = `${this.ops.getTimelineName(this)} ${this.ops.getDriverName(this)}`;
    this.#error = new DmaBufError(error, `fence ${this.context}:${this.seqno} (${names}) failed with ${error}`);
  }

  /** The error set by the signaller, readable once set (meaningful after signal). */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * `'active'`, `'signaled'`, or `'error'` (signaled with an error). Polls like {@link isSignaled}.
   * @see dma_fence_get_status()
   */
  get status(): FenceStatus {
    if (!this.isSignaled()) return 'active';
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
    if ((this.#flags & FLAG_LONG_RUNNING) !== 0 && lockdep !== null)
      lockdep.plainCallbackOnLongRunning(this.describe());
    return this.lrAddCallback(callback);
  }

  /**
   * {@link addCallback} for code that accepts that the fence may never signal: the only way to
   * add a callback to a long-running fence without a validator report. Works on any fence.
   */
  lrAddCallback(callback: FenceCallback): boolean {
    if (typeof callback !== 'function') {
      throw invalidArgument('DmaFence.addCallback', 'callback', callback, 'a function');
    }
    if ((this.#flags & FLAG_SIGNALED) !== 0) return false;
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
    if (typeof callback !== 'function') {
      throw invalidArgument('DmaFence.removeCallback', 'callback', callback, 'a function');
    }
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
   * @throws rejects with {@link InvalidArgumentError} for options that are not `{ timeout?, signal? }`
   *   with a timeout >= 0 and a real AbortSignal; nothing is registered then.
   * @see dma_fence_wait_timeout()
   */
  wait(options?: FenceWaitOptions): Promise<boolean> {
    let timeout: number | undefined;
    let abort: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        ({ timeout, signal: abort } = parseWaitOptions(options));
      } catch (err) {
        return Promise.reject(err);
      }
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
      // One module-level executor hands the resolver out: no closure is created per wait.
      const promise = new Promise<boolean>(captureResolver);
      const resolve = capturedResolver!;
      capturedResolver = null;
      const waiters = this.#waiters;
      if (waiters === null) this.#waiters = resolve;
      else if (typeof waiters === 'function') this.#waiters = [waiters, resolve];
      else waiters.push(resolve);
      return promise;
    }
    return waitWithCleanup([this], timeout, abort).then(indexToBoolean);
  }

  /**
   * Waits until any of `fences` signals. Enables signaling on all of them.
   * @returns the index of the first signaled fence (in array order).
   * @throws rejects with {@link FenceTimeoutError} when `timeout` ran out (`timeout: 0` with none
   *   signaled too): the call answers "which one?", and none is an error, not an index; with
   *   `signal.reason` when aborted; with {@link InvalidArgumentError} for an empty list, a member
   *   that is not a fence, or bad options (nothing is registered then).
   * @see dma_fence_wait_any_timeout()
   */
  static waitAny(fences: readonly DmaFence[], options?: FenceWaitOptions): Promise<number> {
    let timeout: number | undefined;
    let abort: AbortSignal | undefined;
    try {
      if (!Array.isArray(fences) || fences.length === 0) {
        throw invalidArgument('DmaFence.waitAny', 'fences', fences, 'a non-empty array of DmaFence');
      }
      for (let i = 0; i < fences.length; i++) {
        if (!(fences[i] instanceof DmaFence)) {
          throw invalidArgument('DmaFence.waitAny', `fences[${i}]`, fences[i], 'a DmaFence');
        }
      }
      ({ timeout, signal: abort } = parseWaitAnyOptions(options));
    } catch (err) {
      return Promise.reject(err);
    }
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
    if (timeout === 0) return Promise.reject(waitAnyTimeout(fences, 0));
    return waitWithCleanup(fences, timeout, abort, waitAnyTimeout);
  }

  /**
   * Passes a deadline hint to the fence's issuer (`ops.setDeadline`), unless it has signaled.
   * @param deadline clock milliseconds; a time in the past means "as soon as possible".
   * @see dma_fence_set_deadline()
   */
  setDeadline(deadline: number): void {
    requiredFinite(deadline, 'DmaFence.setDeadline', 'deadline');
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

  /**
   * One line: `context:seqno timeline driver active`, or `context:seqno signaled` /
   * `context:seqno error (message)` once signaled. Reads the flag only: describing never polls.
   * @see dma_fence_describe()
   */
  describe(): string {
    const head = `${this.context}:${this.seqno}`;
    if (!this.signaledFlag) return `${head} ${this.ops.getTimelineName(this)} ${this.ops.getDriverName(this)} active`;
    const error = this.#error;
    return error === undefined ? `${head} signaled` : `${head} error (${error.message})`;
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
    checkPair('DmaFence.isLater', f1, f2);
    return seqnoIsLater(f1.seqno, f2.seqno, f1.isSeqno64);
  }

  /** `f1 === f2` or {@link isLater}. @see dma_fence_is_later_or_same() */
  static isLaterOrSame(f1: DmaFence, f2: DmaFence): boolean {
    checkPair('DmaFence.isLaterOrSame', f1, f2);
    return f1 === f2 || seqnoIsLater(f1.seqno, f2.seqno, f1.isSeqno64);
  }

  /**
   * The later of two fences on one timeline, or `null` when that later fence has signaled
   * (then both have, as far as ordering goes). @see dma_fence_later()
   */
  static later(f1: DmaFence, f2: DmaFence): DmaFence | null {
    checkPair('DmaFence.later', f1, f2);
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

  /**
   * A new fence, already signaled at `timestamp` (default now), on the stub context.
   * @see dma_fence_allocate_private_stub()
   */
  static allocatePrivateStub(timestamp?: number): DmaFence {
    if (timestamp !== undefined) requiredFinite(timestamp, 'DmaFence.allocatePrivateStub', 'timestamp');
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

function checkPair(fn: string, f1: unknown, f2: unknown): void {
  if (!(f1 instanceof DmaFence)) throw invalidArgument(fn, 'f1', f1, 'a DmaFence');
  if (!(f2 instanceof DmaFence)) throw invalidArgument(fn, 'f2', f2, 'a DmaFence');
  if (f1.context !== f2.context) {
    throw new BugError(`${fn}: fences on different timelines cannot be ordered (${f1.describe()} vs ${f2.describe()})`);
  }
}

/** The rejection of a `waitAny` whose time ran out, naming the fences it waited for. */
function waitAnyTimeout(fences: readonly DmaFence[], timeout: number): FenceTimeoutError {
  const shown = fences.slice(0, 4).map((f) => f.describe());
  const more = fences.length > 4 ? ` and ${fences.length - 4} more` : '';
  return new FenceTimeoutError(
    `DmaFence.waitAny: none of ${fences.length} fence(s) signaled within ${timeout} ms (${shown.join('; ')}${more}); ` +
      'wait longer, or use wait() on each fence for a yes/no answer',
  );
}
