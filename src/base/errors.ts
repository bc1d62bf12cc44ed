/**
 * Errors, and the rules every dmabuf call follows for each kind of outcome.
 *
 * Overview: every error dmabuf throws or rejects with is a {@link DmaBufError} carrying an
 * errno-style `code`, so callers can branch on `err.code === 'EDEADLK'` the way kernel code
 * branches on `-EDEADLK`. Subclasses exist for the outcomes callers catch on purpose
 * ({@link InvalidArgumentError}, {@link FenceTimeoutError}, ...). {@link BugError} is different:
 * it stands where the kernel has `WARN_ON`/`BUG_ON` and means the caller broke a contract.
 *
 * The outcome rules (new layers follow them too; README "Conventions" says the same):
 * 1. Expected outcomes are return values, never errors: `addCallback` on a signaled fence
 *    returns `false`, `tryLock` on a busy lock returns `false`, a second `signal()` returns `false`.
 * 2. Bad input is an {@link InvalidArgumentError} naming the function, the argument, what arrived
 *    and what was expected, thrown before the call changed anything (`base/options` does the
 *    checking: `const parse = defineOptions('Thing.wait', { timeout: optionalTimeout, signal:
 *    optionalSignal })`, then `parse(options)` first thing). Unknown option names are bad input.
 * 3. A call that returns a promise reports every failure by rejecting, bad input included; it
 *    never throws synchronously.
 * 4. Timeouts. A wait that answers a yes/no question ("did it finish in time?") resolves
 *    `false` when its `timeout` runs out: `DmaFence.wait`, `SyncFile.wait`, `DmaResv.wait`. A
 *    call that hands something over (an index, a fence, an access) rejects with
 *    {@link FenceTimeoutError} instead: `DmaFence.waitAny`, `Syncobj.wait`, `Syncobj.findFence`,
 *    `DmaBuf.beginCpuAccess`. `timeout: 0` polls once under the same rule.
 * 5. Cancellation. Every call that can wait takes `signal`; an abort, `AbortSignal.timeout()`
 *    included, always rejects with `signal.reason`, untouched, and leaves no waiter, callback,
 *    timer or listener behind. A signal that has already aborted rejects at once.
 * 6. Broken contracts (unlocking what is not held, a fence added without a reserved slot, use
 *    after dispose) are {@link BugError}s, and the object is left as it was.
 * 7. Status words are the kernel's: a fence is `'active'`, `'signaled'` or `'error'`.
 * 8. Disposal is idempotent, and teardown settles every pending promise.
 *
 * Contract:
 * - Messages name the object, its state and what to do about it.
 * - Errors are created per throw; no shared singleton instances.
 *
 * @example
 * ```ts
 * import { DmaBufError, DmaFence, FenceTimeoutError, InvalidArgumentError } from 'dmabuf';
 * const fence = new DmaFence('job');
 * console.log(await fence.wait({ timeout: 0 })); // false: a yes/no wait answers with a value
 * try {
 *   await DmaFence.waitAny([fence], { timeout: 0 });
 * } catch (err) {
 *   if (err instanceof FenceTimeoutError) console.log(err.code); // 'ETIME': waitAny hands over an index
 * }
 * try {
 *   await fence.wait({ timout: 10 } as never);
 * } catch (err) {
 *   if (err instanceof InvalidArgumentError) console.log(err.argument); // 'options.timout'
 *   if (err instanceof DmaBufError) console.log(err.code); // 'EINVAL'
 * }
 * ```
 */

/** The errno names dmabuf uses. Kernel numbers are in {@link ERRNO}. */
export type ErrnoCode =
  | 'EPERM'
  | 'ENOENT'
  | 'ESRCH'
  | 'EINTR'
  | 'EIO'
  | 'EBADF'
  | 'ENOMEM'
  | 'EBUSY'
  | 'ENODEV'
  | 'EINVAL'
  | 'ENOSPC'
  | 'EDEADLK'
  | 'ENODATA'
  | 'ETIME'
  | 'EOPNOTSUPP'
  | 'ETIMEDOUT'
  | 'EALREADY'
  | 'ECANCELED';

/** Linux errno values, for code that reports kernel-style negative status numbers. */
export const ERRNO: Readonly<Record<ErrnoCode, number>> = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  ENOMEM: 12,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EDEADLK: 35,
  ENODATA: 61,
  ETIME: 62,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  EALREADY: 114,
  ECANCELED: 125,
});

/** Base class of every dmabuf error. */
export class DmaBufError extends Error {
  override name = 'DmaBufError';
  readonly code: ErrnoCode;

  constructor(code: ErrnoCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  /** The kernel's negative errno for this error (`-EINVAL` is -22). */
  get errno(): number {
    return -ERRNO[this.code];
  }
}

/**
 * A broken contract: the kernel's `WARN_ON`/`BUG_ON`. Seeing one means the calling code has a
 * bug (adding a fence without a reserved slot, setting an error after signal, unlocking what is
 * not held); the object it was thrown from is left unchanged and usable.
 */
export class BugError extends DmaBufError {
  override name = 'BugError';
  constructor(message: string, options?: ErrorOptions) {
    super('EINVAL', message, options);
  }
}

/** Options of an {@link InvalidArgumentError}: the standard `cause`, and the argument's name. */
export interface InvalidArgumentErrorOptions extends ErrorOptions {
  /** The argument or option at fault, as the message names it (`'seqno'`, `'options.timeout'`). */
  readonly argument?: string;
}

/**
 * An argument outside its domain (a negative seqno, a non-finite timeout, an unknown option, a
 * `signal` that is not an AbortSignal). Thrown before the call changed anything.
 */
export class InvalidArgumentError extends DmaBufError {
  override name = 'InvalidArgumentError';
  /** The argument or option at fault (`'options.signal'`), when the thrower named one. */
  readonly argument: string | undefined;
  constructor(message: string, options?: InvalidArgumentErrorOptions) {
    super('EINVAL', message, options);
    this.argument = options?.argument;
  }
}

/** A bounded wait ran out of time where the API reports that as an error (`-ETIME`). */
export class FenceTimeoutError extends DmaBufError {
  override name = 'FenceTimeoutError';
  constructor(message: string, options?: ErrorOptions) {
    super('ETIME', message, options);
  }
}

/** A timeline point was asked for before anyone submitted it (the kernel's `-EINVAL` / `-ENOENT`). */
export class NotSubmittedError extends DmaBufError {
  override name = 'NotSubmittedError';
  constructor(message: string, options?: ErrorOptions) {
    super('EINVAL', message, options);
  }
}

/**
 * Wound/wait back-off (`-EDEADLK`): the transaction lost to an older one. Unlock everything held
 * with the acquire context, then slow-lock {@link WwDeadlockError.contended}, then retry.
 */
export class WwDeadlockError extends DmaBufError {
  override name = 'WwDeadlockError';
  /** The lock whose acquisition failed: the one to pass to `lockSlow`. */
  readonly contended: unknown;
  constructor(message: string, contended: unknown, options?: ErrorOptions) {
    super('EDEADLK', message, options);
    this.contended = contended;
  }
}

/** The acquire context already holds this lock (`-EALREADY`). */
export class AlreadyLockedError extends DmaBufError {
  override name = 'AlreadyLockedError';
  constructor(message: string, options?: ErrorOptions) {
    super('EALREADY', message, options);
  }
}

/** @internal Describes a value for an error message: its type and a short rendering. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (value === null || typeof value !== 'object') return `${String(value)} (${typeof value})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  let ctor: unknown;
  try {
    ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
  } catch {
    ctor = undefined; // a hostile getter or a revoked proxy: describe it without its name
  }
  if (typeof ctor !== 'string' || ctor === '') return 'an object';
  return `${/^[AEIOU]/.test(ctor) ? 'an' : 'a'} ${ctor}`;
}

/** @internal Raises an error from a callback without disturbing the caller (like the DOM's `reportError`). */
export function reportCallbackError(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
