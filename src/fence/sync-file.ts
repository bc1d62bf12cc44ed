/**
 * sync-file: a fence packaged for handing to someone else.
 *
 * Overview: the kernel exports a fence to userspace as a file descriptor, a `sync_file`, which
 * can be polled, merged with another one, queried for the state of every fence inside it, and
 * given a deadline hint. {@link SyncFile} is that object for JavaScript: what one library or
 * worker gives another when it means "this work, whenever it finishes". It holds exactly one
 * fence; a merge holds the flattened result of `unwrapMerge()`.
 *
 * Models `drivers/dma-buf/sync_file.c`, `include/linux/sync_file.h` and the ioctls of
 * `include/uapi/linux/sync_file.h` (`SYNC_IOC_MERGE`, `SYNC_IOC_FILE_INFO`,
 * `SYNC_IOC_SET_DEADLINE`).
 *
 * Contract:
 * - The fence never changes. A merge makes a new file and leaves both inputs usable.
 * - A name given by the user is at most 31 bytes of UTF-8 (the kernel keeps it in a 32-byte,
 *   NUL-terminated buffer) and is kept as given. Without one (or with `''`, which the kernel also
 *   treats as "no name") the name is computed on every read as
 *   `${driver}-${timeline}${context}-${seqno}` from the fence, so it changes to
 *   `detached-driver-signaled-timeline…` once the fence signals, as in the kernel.
 * - {@link SyncFile.info} reports every plain fence inside (see `unwrap()`); its combined
 *   `status` starts as `'signaled'` and becomes the status of the first fence found `'active'`
 *   or `'error'`, then stays. Which of the two wins depends on the order of the fences.
 * - The first {@link SyncFile.poll} puts one callback on the fence, never more (the kernel's
 *   `POLL_ENABLED` bit). There is no poll wait queue in JavaScript, so the callback has nothing
 *   to wake; installing it is what matters, because it enables signaling and so lets fences
 *   that only make progress once watched (arrays, chains) become signaled between polls.
 *   Use {@link SyncFile.wait} to be told when the fence signals.
 * - Disposing removes the poll callback (the kernel's release). Disposal is idempotent; any
 *   other use of a disposed file is a {@link BugError} (a closed descriptor).
 *
 * @example
 * ```ts
 * import { DmaFence, SyncFile, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'gpu', getTimelineName: () => 'ring0' };
 * const ring = fenceContextAlloc();
 * using render = new SyncFile(new DmaFence(ops, ring, 7));
 * using blit = new SyncFile(new DmaFence(ops, fenceContextAlloc(), 1), 'blit');
 * using both = SyncFile.merge('frame', render, blit);
 * console.log(render.name); // `gpu-ring0${ring}-7`
 * console.log(both.info().fences.length, both.info().status); // 2 'active'
 * render.fence.signal();
 * blit.fence.signal();
 * console.log(both.poll(), await both.wait({ timeout: 0 })); // true true
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { defineOptionsCheck, optionalSignal, optionalTimeout } from '../base/options.js';
import { DmaFence, type FenceStatus, type FenceWaitOptions } from './dma-fence.js';
import { unwrap, unwrapMerge } from './dma-fence-unwrap.js';

const parseWaitOptions = defineOptionsCheck('SyncFile.wait', { timeout: optionalTimeout, signal: optionalSignal });

/** The longest user name, in UTF-8 bytes: the kernel's 32-byte buffer minus its terminator. */
export const SYNC_FILE_NAME_MAX = 31;

/** One plain fence inside a sync file (`struct sync_fence_info`). */
export interface SyncFenceInfo {
  /** The fence's timeline name (`obj_name`); `"signaled-timeline"` once it signaled. */
  readonly name: string;
  /** The issuing driver's name; `"detached-driver"` once it signaled. */
  readonly driverName: string;
  /** The fence's status, polled as `DmaFence.status` does. */
  readonly status: FenceStatus;
  /** The fence's error, present when `status` is `'error'`. */
  readonly error?: Error;
  /** Signal time in clock milliseconds, present once signaled (the kernel reports 0 before). */
  readonly timestamp?: number;
}

/** What {@link SyncFile.info} returns (`struct sync_file_info`). */
export interface SyncFileInfo {
  /** The file's name, as {@link SyncFile.name}. */
  readonly name: string;
  /** Combined status: `'signaled'` unless some fence is active or failed; the first such wins. */
  readonly status: FenceStatus;
  /** Every plain fence inside, in unwrap order. */
  readonly fences: readonly SyncFenceInfo[];
}

/** UTF-8 length of `text` (lone surrogates count as the 3-byte replacement character). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** @internal Checks a sync file's name (a string of at most 31 bytes of UTF-8, no NUL). */
export function checkSyncFileName(what: string, name: unknown): string {
  if (typeof name !== 'string') {
    throw new InvalidArgumentError(`${what}: name must be a string, got ${describeValue(name)}`);
  }
  if (name.includes('\0')) {
    throw new InvalidArgumentError(
      `${what}: name ${JSON.stringify(name)} contains a NUL character, which would cut it short`,
    );
  }
  const bytes = utf8Length(name);
  if (bytes > SYNC_FILE_NAME_MAX) {
    throw new InvalidArgumentError(
      `${what}: name ${JSON.stringify(name)} is ${bytes} bytes of ` +
        `UTF-8; at most ${SYNC_FILE_NAME_MAX} fit. Use a shorter name`,
    );
  }
  return name;
}

/**
 * One fence, packaged for handing to others (`struct sync_file`).
 * @see sync_file_create()
 */
export class SyncFile implements Disposable {
  readonly #fence: DmaFence;
  readonly #userName: string;
  #pollCallback: (() => void) | undefined = undefined;
  #disposed = false;

  /**
   * @param fence the fence to hand out: plain or a container.
   * @param name an optional name (at most {@link SYNC_FILE_NAME_MAX} bytes of UTF-8); without
   *   one the name is derived from the fence.
   * @throws {InvalidArgumentError} when `fence` is not a fence or the name does not fit.
   * @see sync_file_create()
   */
  constructor(fence: DmaFence, name?: string) {
    if (!(fence instanceof DmaFence)) {
      throw new InvalidArgumentError(`SyncFile: fence must be a DmaFence, got ${describeValue(fence)}`);
    }
    this.#fence = fence;
    this.#userName = name === undefined ? '' : checkSyncFileName('SyncFile', name);
  }

  /**
   * A new file whose fence is `unwrapMerge(a.fence, b.fence)`: the pending work of both,
   * flattened. `a` and `b` stay valid and unchanged.
   * @throws {InvalidArgumentError} for a bad name or an argument that is not a SyncFile.
   * @throws {BugError} when `a` or `b` was disposed.
   * @see sync_file_merge()
   */
  static merge(name: string, a: SyncFile, b: SyncFile): SyncFile {
    checkSyncFileName('SyncFile.merge', name);
    for (const [label, file] of [
      ['a', a],
      ['b', b],
    ] as const) {
      if (!(file instanceof SyncFile)) {
        throw new InvalidArgumentError(`SyncFile.merge: ${label} must be a SyncFile, got ${describeValue(file)}`);
      }
    }
    return new SyncFile(unwrapMerge(a.fence, b.fence), name);
  }

  /** The fence inside. @see sync_file_get_fence() */
  get fence(): DmaFence {
    this.#checkLive('fence');
    return this.#fence;
  }

  /** The user's name, or one derived from the fence (recomputed on each read). @see sync_file_get_name() */
  get name(): string {
    this.#checkLive('name');
    if (this.#userName !== '') return this.#userName;
    const fence = this.#fence;
    return `${fence.driverName}-${fence.timelineName}${fence.context}-${fence.seqno}`;
  }

  /**
   * The status of the fence itself, without looking inside (the `SYNC_IOC_FILE_INFO` query
   * with `num_fences == 0`). For a signal-on-any array this can be `'signaled'` while
   * {@link info} still reports pending members.
   */
  get status(): FenceStatus {
    this.#checkLive('status');
    return this.#fence.status;
  }

  /** Whether the file was disposed. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * The state of every plain fence inside, and the combined status (see the module contract).
   * Per fence the names are read before the status is polled, as the kernel does, so a fence
   * that a poll finds done still shows its live names in this report.
   * @see sync_file_ioctl_fence_info()
   */
  info(): SyncFileInfo {
    this.#checkLive('info');
    let status: FenceStatus = 'signaled';
    const fences: SyncFenceInfo[] = [];
    for (const leaf of unwrap(this.#fence)) {
      const name = leaf.timelineName;
      const driverName = leaf.driverName;
      const leafStatus = leaf.status;
      const timestamp = leaf.timestamp;
      const entry: { -readonly [K in keyof SyncFenceInfo]: SyncFenceInfo[K] } = {
        name,
        driverName,
        status: leafStatus,
      };
      if (leafStatus === 'error') entry.error = leaf.error!;
      if (timestamp !== undefined) entry.timestamp = timestamp;
      fences.push(entry);
      if (status === 'signaled') status = leafStatus;
    }
    return { name: this.name, status, fences };
  }

  /**
   * Passes a deadline hint (clock milliseconds) to the fence, and through containers to every
   * fence inside. @see sync_file_ioctl_set_deadline()
   */
  setDeadline(deadline: number): void {
    this.#checkLive('setDeadline');
    this.#fence.setDeadline(deadline);
  }

  /**
   * Whether the fence has signaled. The first call arms the fence once (see the contract).
   * @see sync_file_poll()
   */
  poll(): boolean {
    this.#checkLive('poll');
    if (this.#pollCallback === undefined) {
      // A per-file function, so that release removes exactly this file's registration.
      this.#pollCallback = () => {};
      this.#fence.lrAddCallback(this.#pollCallback);
    }
    return this.#fence.isSignaled();
  }

  /**
   * Waits for the fence, as `DmaFence.wait` does.
   * @returns `true` once signaled, `false` when the timeout ran out.
   */
  wait(options?: FenceWaitOptions): Promise<boolean> {
    if (this.#disposed) return Promise.reject(this.#disposedError('wait'));
    if (options === undefined) return this.#fence.wait();
    try {
      parseWaitOptions(options); // checked here so that a bad option names SyncFile.wait
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#fence.wait(options);
  }

  /** Releases the file: takes the poll callback off the fence. Idempotent. @see sync_file_release() */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#pollCallback !== undefined) this.#fence.removeCallback(this.#pollCallback);
  }

  toString(): string {
    return this.#disposed ? 'SyncFile(disposed)' : `SyncFile(${this.name}: ${this.#fence.describe()})`;
  }

  #checkLive(what: string): void {
    if (this.#disposed) throw this.#disposedError(what);
  }

  #disposedError(what: string): BugError {
    return new BugError(
      `SyncFile.${what}: the file was disposed (like a closed descriptor); keep it until you are done with it`,
    );
  }
}
