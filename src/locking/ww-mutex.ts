/**
 * ww-mutex: wound/wait mutexes, deadlock-free locking of many objects in any order.
 *
 * Overview: two async tasks that lock A then B and B then A across an `await` deadlock with any
 * ordinary mutex. With wound/wait mutexes each transaction takes a ticket, a {@link WwAcquireCtx}
 * whose stamp orders it (a lower stamp is older and wins). When two transactions collide, the
 * younger one is told to back off with a {@link WwDeadlockError}: it unlocks everything it holds,
 * waits for the contended lock with {@link WwMutex.lockSlow}, and starts over. Two algorithms
 * decide who backs off, chosen per {@link WwClass}:
 * - wait-die: a younger requester dies at once when the lock is held (or awaited) by an older
 *   transaction; an older requester waits. The reservation class uses this.
 * - wound-wait: an older requester wounds a younger holder, which backs off at its next
 *   contended lock; a younger requester waits. Fewer back-offs, more work per back-off.
 *
 * Models `kernel/locking/ww_mutex.h`, the ww paths of `kernel/locking/mutex.c` and
 * `include/linux/ww_mutex.h`.
 *
 * Contract:
 * - {@link WwDeadlockError} only when the context holds at least one lock: a context holding
 *   nothing waits instead, so the slow lock after a back-off always succeeds.
 * - A back-off error is the kernel's -EDEADLK as a value: each mutex rejects every back-off for
 *   one reason with the same {@link WwDeadlockError} (made on first use), which names the mutex
 *   (`contended`) and the reason, and carries no stack and nothing of the transaction. Do not
 *   modify it.
 * - A context that already holds the mutex gets {@link AlreadyLockedError} from `lock`;
 *   `tryLock` just returns false and does no deadlock detection.
 * - Waiters with a context are queued by stamp, oldest first; waiters without one keep FIFO order
 *   among them. On unlock the lock passes straight to the first waiter.
 * - A `null` context makes the mutex a plain one: never EDEADLK, never EALREADY.
 * - The kernel's debug checks are {@link BugError}s: locking after `done()`, another lock after
 *   EDEADLK before backing off, `lockSlow` on any other lock or with locks held, a class
 *   mismatch, `fini` with locks held or twice, unlocking a free mutex.
 * - An aborted wait rejects with `signal.reason` and leaves the queue as if it never joined.
 * - A context is one task: it has at most one lock pending. A `lock` or `tryLock` while another
 *   lock of the same context waits (`Promise.all([a.lock(ctx), b.lock(ctx)])`) is a
 *   {@link BugError} and changes nothing; await each lock before the next.
 * - Ownership belongs to the context (JavaScript has no task identity): whoever holds the
 *   context owns its locks. Uncontended `lock`/`unlock` allocate nothing and arm no timer.
 * - `acquire(ctx?)` is `lock(ctx?)` returning a {@link LockGuard} for `using`.
 *
 * @example
 * ```ts
 * import { WwAcquireCtx, WwClass, WwDeadlockError, WwMutex } from 'dmabuf';
 * const accounts = new WwClass('accounts', 'wait-die');
 * const a = new WwMutex(accounts, 'a');
 * const b = new WwMutex(accounts, 'b');
 * async function lockBoth(first: WwMutex, second: WwMutex): Promise<void> {
 *   using ctx = new WwAcquireCtx(accounts);
 *   let order = [first, second];
 *   for (;;) {
 *     const held: WwMutex[] = [];
 *     try {
 *       for (const m of order) {
 *         if (m.holder !== ctx) await m.lock(ctx);
 *         held.push(m);
 *       }
 *       break;
 *     } catch (err) {
 *       if (!(err instanceof WwDeadlockError)) throw err;
 *       for (const m of held) m.unlock();
 *       const contended = err.contended as WwMutex;
 *       await contended.lockSlow(ctx); // wait for it holding nothing, then retry with it held
 *       order = [contended, ...order.filter((m) => m !== contended)];
 *     }
 *   }
 *   ctx.done();
 *   await new Promise((resolve) => setTimeout(resolve, 1)); // work while holding both
 *   first.unlock();
 *   second.unlock();
 * }
 * await Promise.all([lockBoth(a, b), lockBoth(b, a)]); // both finish: no deadlock
 * ```
 */

import { AlreadyLockedError, BugError, WwDeadlockError } from '../base/errors.js';
import { LockGuard } from '../base/lifecycle.js';
import { rejectSoon } from '../base/reject-soon.js';
import { LockClass, lockdep } from '../base/lockdep-hooks.js';
import {
  defineOptions,
  invalidArgument,
  oneOf,
  optionalBoolean,
  optionalSignal,
  requiredName,
  requiredString,
} from '../base/options.js';
import { Waiter } from '../base/waiter.js';

/** Who backs off on a collision: the younger requester (`'wait-die'`) or the younger holder (`'wound-wait'`). */
export type WwAlgorithm = 'wait-die' | 'wound-wait';

/** Options for waiting on a lock. */
export interface WwLockOptions {
  /** Aborts the wait: the promise rejects with `signal.reason` and the waiter leaves the queue. */
  readonly signal?: AbortSignal;
}

/** Options for an acquire context. */
export interface WwAcquireCtxOptions {
  /** Inject back-offs on purpose (the kernel's DEBUG_WW_MUTEX_SLOWPATH); defaults to the class setting. */
  readonly deadlockInjection?: boolean;
}

/**
 * A family of wound/wait mutexes and their tickets (`struct ww_class`). Mutexes and contexts of
 * different classes never mix.
 * @see DEFINE_WD_CLASS() / DEFINE_WW_CLASS()
 */
export class WwClass {
  readonly name: string;
  readonly algorithm: WwAlgorithm;
  readonly isWaitDie: boolean;
  /** New contexts inject back-offs (for tests of the back-off paths). Off by default. */
  deadlockInjection = false;
  /** The class the lock validator orders: one for all mutexes of this ww class. */
  readonly lockClass: LockClass;
  #stamp = 0;

  /** @throws {InvalidArgumentError} for an empty name or an unknown algorithm. */
  constructor(name: string, algorithm: WwAlgorithm) {
    requiredName(name, 'WwClass', 'name');
    checkAlgorithm(algorithm, 'WwClass', 'algorithm');
    this.name = name;
    this.algorithm = algorithm;
    this.isWaitDie = algorithm === 'wait-die';
    this.lockClass = new LockClass(name, 'ww');
  }

  /** @internal Issues the next ticket; the first is 1. */
  static nextStamp(wwClass: WwClass): number {
    if (!(wwClass instanceof WwClass)) throw invalidArgument('WwClass.nextStamp', 'wwClass', wwClass, 'a WwClass');
    return ++wwClass.#stamp;
  }
}

const checkAlgorithm = oneOf(['wait-die', 'wound-wait'] as const);
const parseCtxOptions = defineOptions('WwAcquireCtx', { deadlockInjection: optionalBoolean });
const parseLockOptions = defineOptions('WwMutex.lock', { signal: optionalSignal });
const parseLockSlowOptions = defineOptions('WwMutex.lockSlow', { signal: optionalSignal });
const parseAcquireOptions = defineOptions('WwMutex.acquire', { signal: optionalSignal });

// Context state shared between the two classes of this module; the key is not exported.
const STATE = Symbol('ww-acquire-ctx-state');

interface CtxState {
  acquired: number;
  wounded: boolean;
  done: boolean;
  finished: boolean;
  contending: WwMutex | null;
  inject: boolean;
  injectInterval: number;
  injectCountdown: number;
  /**
   * The wait this context is queued in, if any: called with {@link RECHECK} it re-runs the kill
   * check (the kernel's wake-up); called with anything else it cancels the wait with that reason.
   */
  sleeper: ((reason: unknown) => void) | null;
}

/**
 * A transaction's ticket (`struct ww_acquire_ctx`): its stamp decides who backs off, and it
 * counts the locks taken through it.
 * @see ww_acquire_init()
 */
export class WwAcquireCtx implements Disposable {
  readonly wwClass: WwClass;
  /** The ticket: lower is older, and older wins. */
  readonly stamp: number;
  /** @internal */
  readonly [STATE]: CtxState;

  /** @throws {InvalidArgumentError} without a WwClass, or for options other than `{ deadlockInjection? }`. */
  constructor(wwClass: WwClass, options?: WwAcquireCtxOptions) {
    if (!(wwClass instanceof WwClass)) throw invalidArgument('WwAcquireCtx', 'wwClass', wwClass, 'a WwClass');
    const { deadlockInjection } = parseCtxOptions(options);
    this.wwClass = wwClass;
    this.stamp = WwClass.nextStamp(wwClass);
    this[STATE] = {
      acquired: 0,
      wounded: false,
      done: false,
      finished: false,
      contending: null,
      inject: deadlockInjection ?? wwClass.deadlockInjection,
      injectInterval: 1,
      injectCountdown: this.stamp & 0xf,
      sleeper: null,
    };
  }

  /** Number of mutexes held through this context. */
  get acquired(): number {
    return this[STATE].acquired;
  }

  /** The lock that last answered {@link WwDeadlockError}, until it is acquired again. */
  get contendingLock(): WwMutex | null {
    return this[STATE].contending;
  }

  /**
   * Cancels the lock wait this context is queued in, if any: the waiting `lock()` rejects with
   * `reason` and the queue is left as if it never joined. For owners of a transaction that must
   * stop it from outside (a DrmExec being finished); one call, no listener per wait.
   * @returns whether a wait was cancelled.
   */
  cancelWait(reason: unknown): boolean {
    const sleeper = this[STATE].sleeper;
    if (sleeper === null) return false;
    sleeper(reason);
    return true;
  }

  /** Whether {@link done} was called. */
  get isDone(): boolean {
    return this[STATE].done;
  }

  /** Whether {@link fini} was called. */
  get isFinished(): boolean {
    return this[STATE].finished;
  }

  /** Marks the end of the acquire phase; taking another lock with this context is then a bug. @see ww_acquire_done() */
  done(): void {
    const s = this[STATE];
    this.#checkLive('done');
    if (s.done) throw new BugError(`${this}: done() called twice`);
    s.done = true;
  }

  /**
   * Ends the context. Every lock taken through it must have been unlocked.
   * @throws {BugError} with locks still held, or when called twice.
   * @see ww_acquire_fini()
   */
  fini(): void {
    const s = this[STATE];
    this.#checkLive('fini');
    if (s.acquired !== 0) {
      throw new BugError(`${this}: fini() with ${s.acquired} lock(s) still held; unlock them first`);
    }
    s.finished = true;
  }

  /** Finishes the context unless already finished (so `using` works). */
  [Symbol.dispose](): void {
    if (!this[STATE].finished) this.fini();
  }

  toString(): string {
    return `WwAcquireCtx(${this.wwClass.name}#${this.stamp})`;
  }

  #checkLive(what: string): void {
    if (this[STATE].finished) throw new BugError(`${this}: ${what}() after fini()`);
  }
}

/**
 * A queued lock request, settled once: granted by the hand-off (with its value: nothing for
 * lock(), the guard for acquire()), or refused (back-off, abort, cancellation). Settling tells
 * the validator, when it is on, whether the lock is now held.
 */
class WwWaiter extends Waiter<unknown> {
  constructor(
    readonly ctx: WwAcquireCtx | null,
    /** The validator's token for this request, when it is on. */
    readonly token: object | undefined,
    readonly value: unknown,
  ) {
    super();
  }

  override resolve(): boolean {
    if (this.settled) return false;
    if (this.token !== undefined) lockdep?.acquired(this.token);
    return super.resolve(this.value);
  }

  override reject(reason: unknown): boolean {
    if (this.settled) return false;
    if (this.token !== undefined) lockdep?.abandon(this.token);
    return super.reject(reason);
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * @internal The promise every lock with a context returns when it took the mutex at once
 * (`lock`, `lockSlow`, and `DmaResv.lock` through them). A caller that locks many objects
 * (DrmExec) compares against it to go on without an `await` of its own; any other promise it
 * simply awaits, so a wrapper returning its own promise stays correct, only slower.
 */
export const wwLockGranted: Promise<void> = RESOLVED;

// The guard-returning lock for DmaResv.acquire (whose guard unlocks the reservation, not the
// bare mutex), reaching WwMutex's private path; assigned in WwMutex's static block.
let acquireWith: (
  mutex: WwMutex,
  ctx: WwAcquireCtx | null | undefined,
  signal: AbortSignal | undefined,
  release: () => void,
  what: string,
) => Promise<LockGuard>;

/**
 * @internal `WwMutex.acquire` with the guard's release chosen by the caller (a reservation object
 * unlocks itself, not just its mutex). Options are the caller's to check.
 */
export function wwMutexAcquire(
  mutex: WwMutex,
  ctx: WwAcquireCtx | null | undefined,
  signal: AbortSignal | undefined,
  release: () => void,
  what: string,
): Promise<LockGuard> {
  return acquireWith(mutex, ctx, signal, release, what);
}

/**
 * How far a lock request with a context got at once: `undefined`, the mutex is held now; an
 * `Error`, it was refused now (a back-off, a bug, a bad argument) and nothing was queued or
 * changed; a `Promise`, the request waits in the queue (or an aborted signal refused it).
 */
type WwLockAttempt = undefined | Error | Promise<void>;

// The back-off that a lock with a context answered last, and its error, for wwBackOffOf().
let lastBackOff: Promise<void> | null = null;
let lastBackOffError: WwDeadlockError | null = null;

/**
 * @internal When `promise` is what the latest lock refused at once returned (a back-off that
 * rejects on the next microtask), its {@link WwDeadlockError}; otherwise undefined. Lets DrmExec
 * record the contention at once instead of awaiting the rejection in a frame of its own.
 */
export function wwBackOffOf(promise: Promise<void>): WwDeadlockError | undefined {
  return promise === lastBackOff ? lastBackOffError! : undefined;
}

/** Passed to a context's sleeper to re-run its kill check rather than cancel it. */
const RECHECK = Symbol('recheck');

/**
 * The kernel's deadlock injection schedule: the countdown starts at `stamp & 0xf`; when it
 * expires the lock just taken backs off, and countdown and interval grow x3.5.
 */
function injectionFires(s: CtxState): boolean {
  if (s.injectCountdown-- !== 0) return false;
  const interval = s.injectInterval;
  const next = interval > 0x3fffffff ? 0xffffffff : interval * 2 + interval + Math.floor(interval / 2);
  s.injectInterval = next;
  s.injectCountdown = next;
  return true;
}

/** The validator's view of an uncontended acquisition: granted at once, in the caller's context. */
function lockdepGranted(token: object): void {
  lockdep?.acquired(token);
  lockdep?.enter(token);
}

/** Why a transaction backs off: an index into {@link BACK_OFF_REASONS} (and a mutex's cached errors). */
const BackOffReason = { HolderOlder: 0, OlderWaiting: 1, OlderAhead: 2, Wounded: 3, Injected: 4 } as const;
type BackOffReason = (typeof BackOffReason)[keyof typeof BackOffReason];
const BACK_OFF_REASONS = [
  'wait-die: the holder is older',
  'wait-die: an older transaction is already waiting',
  'wait-die: an older transaction waits ahead',
  'wound-wait: wounded by an older transaction',
  'injected back-off',
] as const;

/** Is `a` younger (less important) than `b`? */
function younger(a: WwAcquireCtx, b: WwAcquireCtx): boolean {
  return a.stamp > b.stamp;
}

/**
 * A wound/wait mutex (`struct ww_mutex`).
 * @see ww_mutex_init()
 */
export class WwMutex {
  readonly wwClass: WwClass;
  readonly name: string;
  #locked = false;
  #holder: WwAcquireCtx | null = null;
  #waiters: WwWaiter[] = [];
  /** The back-off errors of this mutex, one per reason, made on first use (see #deadlock). */
  #backOffs: WwDeadlockError[] | null = null;

  /** @throws {InvalidArgumentError} without a WwClass, or for a name that is not a string. */
  constructor(wwClass: WwClass, name = 'ww_mutex') {
    if (!(wwClass instanceof WwClass)) throw invalidArgument('WwMutex', 'wwClass', wwClass, 'a WwClass');
    this.wwClass = wwClass;
    this.name = requiredString(name, 'WwMutex', 'name');
  }

  /** Whether someone holds the mutex. @see ww_mutex_is_locked() */
  get isLocked(): boolean {
    return this.#locked;
  }

  /** The context of the holder; null when free or held without a context. */
  get holder(): WwAcquireCtx | null {
    return this.#holder;
  }

  /** Number of queued waiters. */
  get waiters(): number {
    return this.#waiters.length;
  }

  toString(): string {
    return `WwMutex(${this.name})`;
  }

  /**
   * Takes the mutex, waiting if needed.
   * @param ctx the transaction's ticket; null or omitted for a plain lock.
   * @returns a promise that resolves once the mutex is held (already resolved when uncontended).
   * @throws rejects with {@link WwDeadlockError} (back off: only when `ctx` holds other locks),
   *   {@link AlreadyLockedError} (`ctx` holds this mutex), `signal.reason` when aborted,
   *   {@link BugError} for a debug-check violation (a lock of `ctx` already pending included), or
   *   {@link InvalidArgumentError} for a `ctx` that is not an acquire context or bad options.
   * @see ww_mutex_lock() / ww_mutex_lock_interruptible()
   */
  lock(ctx?: WwAcquireCtx | null, options?: WwLockOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        signal = parseLockOptions(options).signal;
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (ctx !== undefined && ctx !== null) return this.#lockWithCtx(ctx, signal, 'lock');
    const token = lockdep !== null ? this.#lockdepRequest(null, false) : undefined;
    if (token instanceof Error) return Promise.reject(token);
    if (!this.#locked) {
      this.#locked = true;
      if (token !== undefined) lockdepGranted(token);
      return RESOLVED;
    }
    return this.#enqueue(null, signal, token, undefined) as Promise<void>; // no context: never dies
  }

  /**
   * {@link lock}, resolving to a guard that unlocks when disposed: `using guard = await
   * m.acquire(ctx)`. The guard comes through the lock's own promise (no wrapper), so the
   * validator sees the mutex held in the caller's continuation, as with `await m.lock(ctx)`.
   * @throws rejects as {@link lock} does.
   */
  acquire(ctx?: WwAcquireCtx | null, options?: WwLockOptions): Promise<LockGuard> {
    let signal: AbortSignal | undefined;
    try {
      signal = parseAcquireOptions(options).signal;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#acquire(ctx, signal, () => this.unlock(), String(this));
  }

  static {
    acquireWith = (mutex, ctx, signal, release, what) => mutex.#acquire(ctx, signal, release, what);
  }

  #acquire(
    ctx: WwAcquireCtx | null | undefined,
    signal: AbortSignal | undefined,
    release: () => void,
    what: string,
  ): Promise<LockGuard> {
    const guard = new LockGuard(release, what);
    // Made before the lock is recorded: the validator hands the held lock to the next promise.
    const granted = Promise.resolve(guard);
    const locked =
      ctx !== undefined && ctx !== null
        ? this.#lockWithCtx(ctx, signal, 'acquire', guard, granted)
        : this.#lockPlain(signal, guard, granted);
    return locked as Promise<LockGuard>;
  }

  /** The context-free lock resolving to `value` (`granted` when uncontended), for acquire(). */
  #lockPlain(signal: AbortSignal | undefined, value: unknown, granted: Promise<unknown>): Promise<unknown> {
    const token = lockdep !== null ? this.#lockdepRequest(null, false) : undefined;
    if (token instanceof Error) return Promise.reject(token);
    if (!this.#locked) {
      this.#locked = true;
      if (token !== undefined) lockdepGranted(token);
      return granted;
    }
    return this.#enqueue(null, signal, token, value) as Promise<void>; // no context: never dies
  }

  // Split from lock() so that both stay small enough for V8 to inline into hot callers.
  #lockWithCtx(
    ctx: WwAcquireCtx,
    signal: AbortSignal | undefined,
    op: string,
    value?: unknown,
    granted: Promise<unknown> = RESOLVED,
  ): Promise<void> {
    const attempt = this.#attempt(ctx, signal, op, value);
    if (attempt === undefined) return granted as Promise<void>;
    if (attempt instanceof Promise) return attempt;
    if (!(attempt instanceof WwDeadlockError)) return Promise.reject(attempt);
    // A back-off is the protocol, not a failure: see rejectSoon for why it is not Promise.reject.
    const backOff = rejectSoon(attempt);
    lastBackOff = backOff;
    lastBackOffError = attempt;
    return backOff;
  }

  /** A lock request with a context, as far as it gets at once ({@link WwLockAttempt}). */
  #attempt(ctx: WwAcquireCtx, signal: AbortSignal | undefined, op: string, value: unknown): WwLockAttempt {
    if (!(ctx instanceof WwAcquireCtx)) {
      return invalidArgument(`WwMutex.${op}`, 'ctx', ctx, 'a WwAcquireCtx, null or omitted');
    }
    const s = ctx[STATE];
    if (ctx === this.#holder) return new AlreadyLockedError(`${this} is already held by ${ctx}`);
    const bug = this.#checkCtx(ctx, s, 'lock');
    if (bug !== undefined) return bug;
    const token = lockdep !== null ? this.#lockdepRequest(ctx, false) : undefined;
    if (token instanceof Error) return token;
    if (s.acquired === 0) s.wounded = false; // nobody can wound a context that holds nothing
    if (!this.#locked) {
      this.#take(ctx, s);
      if (token !== undefined) lockdepGranted(token);
      if (this.#waiters.length > 0) this.#checkWaiters(ctx);
      if (s.inject && s.acquired > 1 && injectionFires(s)) {
        this.unlock();
        return this.#deadlock(ctx, BackOffReason.Injected);
      }
      return undefined;
    }
    return this.#enqueue(ctx, signal, token, value);
  }

  /**
   * Waits for the contended lock after a back-off, holding nothing (`ww_mutex_lock_slow`).
   * @throws rejects with {@link BugError} unless this is `ctx.contendingLock` and `ctx` holds nothing.
   */
  lockSlow(ctx: WwAcquireCtx, options?: WwLockOptions): Promise<void> {
    if (!(ctx instanceof WwAcquireCtx)) {
      return Promise.reject(invalidArgument('WwMutex.lockSlow', 'ctx', ctx, 'the WwAcquireCtx that backed off'));
    }
    let signal: AbortSignal | undefined;
    try {
      signal = parseLockSlowOptions(options).signal;
    } catch (err) {
      return Promise.reject(err);
    }
    const s = ctx[STATE];
    if (s.contending !== this) {
      const what = s.contending === null ? 'no lock reported EDEADLK to it' : `the contended lock is ${s.contending}`;
      return Promise.reject(
        new BugError(
          `${this}.lockSlow(${ctx}): ${what}; lockSlow is ` + `only for the lock that answered WwDeadlockError`,
        ),
      );
    }
    if (s.acquired > 0) {
      return Promise.reject(
        new BugError(
          `${this}.lockSlow(${ctx}): ${s.acquired} lock(s) ` + `still held; unlock everything before the slow lock`,
        ),
      );
    }
    return this.#lockWithCtx(ctx, signal, 'lockSlow');
  }

  /**
   * Takes the mutex only if it is free. No deadlock detection and no EALREADY: a context that
   * holds it just gets false. @see ww_mutex_trylock()
   */
  tryLock(ctx?: WwAcquireCtx | null): boolean {
    if (ctx !== undefined && ctx !== null) {
      if (!(ctx instanceof WwAcquireCtx)) {
        throw invalidArgument('WwMutex.tryLock', 'ctx', ctx, 'a WwAcquireCtx, null or omitted');
      }
      const s = ctx[STATE];
      const bug = this.#checkCtx(ctx, s, 'tryLock');
      if (bug !== undefined) throw bug;
      if (this.#locked) return false;
      const token = lockdep !== null ? this.#lockdepRequest(ctx, true) : undefined;
      if (token instanceof Error) throw token;
      if (s.acquired === 0) s.wounded = false;
      this.#take(ctx, s);
      if (token !== undefined) lockdepGranted(token);
      if (this.#waiters.length > 0) this.#checkWaiters(ctx);
      return true;
    }
    if (this.#locked) return false;
    const token = lockdep !== null ? this.#lockdepRequest(null, true) : undefined;
    if (token instanceof Error) throw token;
    this.#locked = true;
    if (token !== undefined) lockdepGranted(token);
    return true;
  }

  /** Tells the validator about a request; a report in 'throw' mode comes back as the error. */
  #lockdepRequest(ctx: WwAcquireCtx | null, trylock: boolean): object | Error {
    try {
      return lockdep!.request(this.wwClass.lockClass, this, ctx, trylock);
    } catch (err) {
      return err instanceof Error ? err : new BugError(String(err));
    }
  }

  /**
   * Releases the mutex and hands it to the first waiter, if any.
   * @throws {BugError} when the mutex is not locked.
   * @see ww_mutex_unlock()
   */
  unlock(): void {
    if (!this.#locked) throw new BugError(`${this}: unlock() of a mutex that is not locked`);
    const holder = this.#holder;
    if (holder !== null) {
      const s = holder[STATE];
      if (s.acquired === 0) throw new BugError(`${this}: unlock() with ${holder} holding nothing`);
      s.acquired--;
      this.#holder = null;
    }
    this.#locked = false;
    if (lockdep !== null) lockdep.release(this);
    this.#handOff();
  }

  /** The debug checks of `ww_mutex_lock_acquired`, done before anything changes. */
  #checkCtx(ctx: WwAcquireCtx, s: CtxState, op: string): BugError | undefined {
    if (s.finished) return new BugError(`${this}.${op}: ${ctx} was already finished with fini()`);
    if (s.done) return new BugError(`${this}.${op}: ${ctx} already called done(); no more locks may be taken with it`);
    if (ctx.wwClass !== this.wwClass) {
      return new BugError(
        `${this}.${op}: class mismatch, the mutex is ` + `${this.wwClass.name} and ${ctx} is ${ctx.wwClass.name}`,
      );
    }
    if (s.sleeper !== null) {
      return new BugError(
        `${this}.${op}: ${ctx} already has a lock pending; a context is one task with one pending lock ` +
          'at a time, so await each lock before the next (no Promise.all over one context)',
      );
    }
    if (s.contending !== null && op === 'lock') {
      if (s.contending !== this) {
        return new BugError(
          `${this}.lock: ${ctx} backed off from ${s.contending}; unlock ` +
            `everything and lockSlow(${s.contending.name}) before taking other locks`,
        );
      }
      if (s.acquired > 0) {
        return new BugError(
          `${this}.lock: ${ctx} backed off from this lock but ` +
            `still holds ${s.acquired} lock(s); unlock them first`,
        );
      }
    }
    return undefined;
  }

  #take(ctx: WwAcquireCtx, s: CtxState): void {
    this.#locked = true;
    this.#holder = ctx;
    s.acquired++;
    s.contending = null;
  }

  /**
   * Records the back-off on `ctx` and returns its error. A back-off is control flow that busy
   * transactions hit several times each, and an Error costs V8 about 0.4 µs to make even without
   * a stack (more than the rest of the back-off), so each mutex makes one error per reason on
   * first use and answers every back-off for that reason with it, as the kernel answers with the
   * constant -EDEADLK. The error carries no per-call state: the mutex (`contended`) and the reason.
   */
  #deadlock(ctx: WwAcquireCtx, reason: BackOffReason): WwDeadlockError {
    ctx[STATE].contending = this;
    const errors = (this.#backOffs ??= []);
    return (errors[reason] ??= this.#backOffError(reason));
  }

  #backOffError(reason: BackOffReason): WwDeadlockError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // a stack would name the first caller only: misleading when shared
    try {
      return new WwDeadlockError(
        `${this}: back off (${BACK_OFF_REASONS[reason]}); ` +
          `unlock everything held with the acquire context, then lockSlow(${this.name})`,
        this,
      );
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** Kills `ctx` if it holds anything (`__ww_mutex_kill`); a context holding nothing never dies. */
  #kill(ctx: WwAcquireCtx, reason: BackOffReason): WwDeadlockError | undefined {
    return ctx[STATE].acquired > 0 ? this.#deadlock(ctx, reason) : undefined;
  }

  /**
   * Queues a waiter (`__ww_mutex_add_waiter`), unless the kill check says at once that it must die:
   * then nothing is queued and the back-off comes back as the error itself (a waiter without a
   * context never dies, so its callers always get the promise).
   */
  #enqueue(
    ctx: WwAcquireCtx | null,
    signal: AbortSignal | undefined,
    token: object | undefined,
    value: unknown,
  ): Promise<void> | WwDeadlockError {
    if (signal?.aborted) {
      if (token !== undefined) lockdep?.abandon(token);
      return Promise.reject(signal.reason);
    }
    let toWake: WwAcquireCtx[] | null = null;
    let pos = this.#waiters.length;
    if (ctx !== null) {
      const waitDie = this.wwClass.isWaitDie;
      // From the tail: stop behind the first older waiter; everyone younger we pass goes behind us.
      for (let i = this.#waiters.length - 1; i >= 0; i--) {
        const cur = this.#waiters[i]!.ctx;
        if (cur === null) continue;
        if (younger(ctx, cur)) {
          if (waitDie) {
            const err = this.#kill(ctx, BackOffReason.OlderWaiting);
            if (err !== undefined) {
              if (token !== undefined) lockdep?.abandon(token);
              return err;
            }
          }
          break;
        }
        pos = i;
        // wait-die: a younger waiter that holds locks now has an older one ahead and must die.
        if (waitDie && cur[STATE].acquired > 0 && younger(cur, ctx)) (toWake ??= []).push(cur);
      }
      if (!waitDie) this.#wound(ctx, this.#holder);
      // The loop above already compared the request with the waiters ahead of its place.
      const err = this.#checkKill(ctx, null);
      if (err !== undefined) {
        if (token !== undefined) lockdep?.abandon(token);
        if (toWake !== null) this.#wakeAll(toWake);
        return err;
      }
    }
    const waiter = new WwWaiter(ctx, token, value);
    this.#waiters.splice(pos, 0, waiter);
    if (ctx !== null) {
      ctx[STATE].sleeper = (reason) => {
        if (reason === RECHECK) this.#recheck(waiter);
        else if (this.#remove(waiter)) waiter.reject(reason);
      };
    }
    if (signal !== undefined) waiter.abortOn(signal, () => this.#remove(waiter));
    if (toWake !== null) this.#wakeAll(toWake);
    // Last, after every promise of our own: the requester's await must carry the request.
    if (token !== undefined) lockdep?.enter(token);
    return waiter.promise as Promise<void>;
  }

  /**
   * Whether `ctx` must give up its request now (`__ww_mutex_check_kill`): `waiter` is its queued
   * request, or null for one about to be queued (whose place was already compared with the queue).
   */
  #checkKill(ctx: WwAcquireCtx, waiter: WwWaiter | null): WwDeadlockError | undefined {
    const s = ctx[STATE];
    if (s.acquired === 0) return undefined;
    if (!this.wwClass.isWaitDie) return s.wounded ? this.#deadlock(ctx, BackOffReason.Wounded) : undefined;
    const holder = this.#holder;
    if (holder !== null && younger(ctx, holder)) return this.#deadlock(ctx, BackOffReason.HolderOlder);
    if (waiter === null) return undefined;
    for (const cur of this.#waiters) {
      if (cur === waiter) break;
      if (cur.ctx !== null) return this.#deadlock(ctx, BackOffReason.OlderAhead);
    }
    return undefined;
  }

  /** A woken waiter re-checks whether it must die (the kernel's wait loop after a wake-up). */
  #recheck(waiter: WwWaiter): void {
    if (!this.#waiters.includes(waiter)) return;
    const err = this.#checkKill(waiter.ctx!, waiter);
    if (err === undefined) return;
    this.#remove(waiter);
    waiter.reject(err);
  }

  #wakeAll(ctxs: readonly WwAcquireCtx[]): void {
    for (const ctx of ctxs) ctx[STATE].sleeper?.(RECHECK);
  }

  /**
   * Wound-wait: an older `waiterCtx` holding locks wounds a younger holder, which backs off at its
   * next contended lock (or at once, if it is asleep on one). @see __ww_mutex_wound()
   */
  #wound(waiterCtx: WwAcquireCtx, holdCtx: WwAcquireCtx | null): boolean {
    if (holdCtx === null) return false;
    if (waiterCtx[STATE].acquired > 0 && younger(holdCtx, waiterCtx)) {
      const hs = holdCtx[STATE];
      hs.wounded = true;
      hs.sleeper?.(RECHECK);
      return true;
    }
    return false;
  }

  /** The new owner looks at the waiters, who may have to die or be wounded (`__ww_mutex_check_waiters`). */
  #checkWaiters(owner: WwAcquireCtx): void {
    const waitDie = this.wwClass.isWaitDie;
    for (const cur of this.#waiters) {
      const ctx = cur.ctx;
      if (ctx === null) continue;
      if (waitDie) {
        if (ctx[STATE].acquired > 0 && younger(ctx, owner)) ctx[STATE].sleeper?.(RECHECK);
        break;
      }
      if (this.#wound(ctx, owner)) break;
    }
  }

  /** Passes the free mutex to the first waiter, skipping any whose injected back-off fires. */
  #handOff(): void {
    while (!this.#locked && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift()!;
      this.#detach(waiter);
      const ctx = waiter.ctx;
      if (ctx === null) {
        this.#locked = true;
        waiter.resolve();
        return;
      }
      const s = ctx[STATE];
      this.#take(ctx, s);
      if (s.inject && s.acquired > 1 && injectionFires(s)) {
        // Release without recursing into another hand-off; the loop passes the lock on.
        s.acquired--;
        this.#holder = null;
        this.#locked = false;
        waiter.reject(this.#deadlock(ctx, BackOffReason.Injected));
        continue;
      }
      waiter.resolve();
      return;
    }
  }

  /** Takes a waiter out of the queue. @returns false when it was no longer queued. */
  #remove(waiter: WwWaiter): boolean {
    const i = this.#waiters.indexOf(waiter);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    this.#detach(waiter);
    return true;
  }

  /** Drops its context's wake-up hook (settling the waiter drops its abort listener). */
  #detach(waiter: WwWaiter): void {
    if (waiter.ctx !== null) waiter.ctx[STATE].sleeper = null;
  }
}
