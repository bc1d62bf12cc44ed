/**
 * dma-buf: a reference-counted piece of memory with the fences of the work using it.
 *
 * Overview: a {@link DmaBuf} is what a heap hands out: an `ArrayBuffer` (or a
 * `SharedArrayBuffer`, to share it with workers) of a rounded size, a reference count, and a
 * {@link DmaResv} for implicit synchronisation. Device-like work adds its fences to the
 * reservation object; CPU code brackets its own accesses with {@link DmaBuf.beginCpuAccess},
 * which waits for the fences that access must not overtake, and {@link DmaBuf.endCpuAccess}.
 * The last {@link DmaBuf.put} gives the memory back to its exporter (the heap), which frees it
 * later; from then on the object is a tombstone and every use of it is a bug.
 *
 * Models `struct dma_buf` of `drivers/dma-buf/dma-buf.c`: `dma_buf_export()`, `get_dma_buf()`,
 * `dma_buf_put()` (the file reference), `dma_buf_begin_cpu_access()` / `dma_buf_end_cpu_access()`
 * (the `DMA_BUF_IOCTL_SYNC` start/end pair) and the implicit-sync wait they do.
 *
 * Contract:
 * - The creator owns one reference; {@link DmaBuf.get} adds one, {@link DmaBuf.put} drops one.
 *   `[Symbol.dispose]` is the creator's put, done at most once, and does nothing once the
 *   buffer is released. Use either `using` or an explicit `put()` for the creator's reference.
 * - The count is a {@link Kref} (a `DmaBuf` extends it, as kernel objects embed their kref).
 * - The last put hands the memory to the exporter's release function exactly once and forgets
 *   it: afterwards `buffer`, `bytes()`, `get()`, `put()` and `beginCpuAccess()` throw
 *   {@link BugError} naming the buffer, so released memory is never reachable through it again.
 * - Views taken before the last put (`bytes()`, `buffer`) do not reach the next user of the
 *   memory: the heap detaches an `ArrayBuffer` (a zero-copy transfer) before it recycles it, so
 *   such a view reads as empty and writes nothing. A `SharedArrayBuffer` cannot be detached:
 *   views of a shared buffer stay attached after its put, and a view kept past `put()` writes
 *   into whatever the memory holds next. Drop every view of a shared buffer before its last put.
 * - Work that uses the memory (a job, a worker) holds its own reference until its fence is
 *   added; releasing does not wait for the reservation object to idle.
 * - A CPU read waits for every fence of usage Write or stronger, a CPU write for every fence of
 *   usage Read or stronger (`DmaResv.usageRw`); bookkeeping fences are never waited for. The call
 *   gives an access, so a wait that times out rejects with {@link FenceTimeoutError} (the outcome
 *   rules are in `base/errors`), an aborted one with `signal.reason`; either way no access has
 *   begun.
 * - Begin/end pairs nest and must balance: `endCpuAccess()` without an open access is a bug.
 * - The last put while the reservation lock is held is a bug (the object is left unchanged).
 *
 * @example
 * ```ts
 * import { DmaHeap } from 'dmabuf';
 * await using heap = new DmaHeap();
 * using buf = heap.allocate(4096);
 * await buf.beginCpuAccess({ write: true });
 * buf.bytes().fill(7);
 * buf.endCpuAccess();
 * console.log(buf.size, buf.refcount); // 4096 1
 * ```
 */

import { BugError, FenceTimeoutError } from '../base/errors.js';
import { Kref } from '../base/lifecycle.js';
import { lockdep } from '../base/lockdep-hooks.js';
import {
  defineOptions,
  invalidArgument,
  optionalSignal,
  optionalString,
  optionalTimeout,
  requiredBoolean,
  requiredFunction,
} from '../base/options.js';
import { DmaResv } from '../resv/dma-resv.js';
import type { DmaHeap } from './dma-heap.js';

/** What a {@link DmaBuf} is made from. @see struct dma_buf_export_info */
export interface DmaBufExportInfo {
  /** The heap the memory comes from (its exporter). */
  readonly heap: DmaHeap;
  /** The memory: exactly `size` bytes, zero-filled. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** What the caller asked for; `bytes()` views this many bytes. At most `buffer.byteLength`. */
  readonly requestedSize: number;
  /** Name for messages and for the reservation object; built on first use when omitted. */
  readonly name?: string;
  /**
   * Called once, at the last put, with the memory the buffer owned (`dma_buf_ops.release`).
   * It must not throw.
   */
  readonly release: (buffer: ArrayBuffer | SharedArrayBuffer, buf: DmaBuf) => void;
}

/**
 * How a buffer shared with other threads brackets CPU access (installed by `dma-buf-export.ts`):
 * `begin` waits for this thread's and the other threads' fences and publishes the access as a
 * fence; `end` signals it.
 */
export interface DmaBufAccessHook {
  begin(write: boolean, options: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<void>;
  end(): void;
}

/** Options for {@link DmaBuf.beginCpuAccess}. */
export interface CpuAccessOptions {
  /** True for a CPU write (waits for readers too), false for a read (waits for writers only). */
  readonly write: boolean;
  /** Milliseconds for all fences together; omitted waits for ever. */
  readonly timeout?: number;
  /** Aborts the wait: the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

const parseInfo = defineOptions('DmaBuf', {
  heap: (value, fn, name) => {
    if (typeof value === 'object' && value !== null) return value;
    throw invalidArgument(fn, name, value, 'the exporting DmaHeap');
  },
  buffer: (value) => value, // checked against requestedSize in the constructor
  requestedSize: (value) => value,
  release: requiredFunction,
  name: optionalString,
});

const parseCpuAccess = defineOptions('DmaBuf.beginCpuAccess', {
  write: requiredBoolean,
  timeout: optionalTimeout,
  signal: optionalSignal,
});

/**
 * @internal
 * Passed by `DmaHeap.allocate` as the constructor's second argument: its export info is built
 * by the heap itself, so the per-allocation options check is skipped (it was a third of a pooled
 * allocation's cost).
 */
export const TRUSTED_EXPORT: unique symbol = Symbol('dmabuf.trustedExport');

/**
 * @internal
 * Passed by `DmaHeap` as the constructor's second argument to build a spare: a `DmaBuf` without
 * memory, made off the allocation path (by the heap's deferred-free worker) and handed out by a
 * later allocation through {@link ATTACH}, so that a pool hit allocates nothing (the kernel's
 * slab caches keep objects ready in the same way). A spare is reachable by nobody but its heap
 * until then: nothing can observe the difference from an object constructed at allocation.
 */
export const SPARE: unique symbol = Symbol('dmabuf.spare');

/** @internal A spare's method that gives it its memory, as `DmaHeap.allocate` hands it out. */
export const ATTACH: unique symbol = Symbol('dmabuf.attach');

/**
 * @internal
 * Whether the memory was handed out (`buffer`, `bytes()`): only then can a view outlive the
 * last put, and only then must the heap detach the memory before it reuses it.
 */
export const VIEWS_HANDED_OUT: unique symbol = Symbol('dmabuf.viewsHandedOut');

/** The untrusted constructor's check of an export info. */
function checkExportInfo(info: DmaBufExportInfo): DmaBufExportInfo {
  const parsed = parseInfo(info);
  const buffer = parsed.buffer;
  const requestedSize = parsed.requestedSize;
  if (
    !(buffer instanceof ArrayBuffer) &&
    !(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)
  ) {
    throw invalidArgument('DmaBuf', 'options.buffer', buffer, 'an ArrayBuffer or SharedArrayBuffer');
  }
  if (
    typeof requestedSize !== 'number' ||
    !Number.isSafeInteger(requestedSize) ||
    requestedSize <= 0 ||
    requestedSize > buffer.byteLength
  ) {
    throw invalidArgument(
      'DmaBuf',
      'options.requestedSize',
      requestedSize,
      `an integer from 1 to ${buffer.byteLength} (the buffer's size)`,
    );
  }
  return parsed as unknown as DmaBufExportInfo;
}

/** The next buffer's number (in names): buffers are numbered in the order they are handed out. */
let nextId = 1;

/**
 * A shared buffer: memory, a reference count and a reservation object (`struct dma_buf`).
 * Normally created by `DmaHeap.allocate()`.
 * @see dma_buf_export()
 */
export class DmaBuf extends Kref implements Disposable {
  /** Size of the memory in bytes (the request rounded up to the heap's size class). */
  readonly size: number;
  /** The size the allocation asked for. */
  readonly requestedSize: number;
  /** The exporter. */
  readonly heap: DmaHeap;
  #name: string | undefined;
  // Created on first use: many buffers never see a fence, and a reservation costs an allocation.
  #resv: DmaResv | undefined = undefined;
  /** Numbers buffers in the order they were handed out; 0 for a spare. */
  #id: number;

  #buffer: ArrayBuffer | SharedArrayBuffer | null;
  #handedOut = false;
  #creatorPut = false;
  #cpuAccess = 0;
  #accessHook: DmaBufAccessHook | null = null;
  readonly #release: DmaBufExportInfo['release'];

  /**
   * @throws {InvalidArgumentError} for a buffer that is neither an ArrayBuffer nor a
   *   SharedArrayBuffer, a `requestedSize` that does not fit it, or a `release` that is not a function.
   */
  constructor(info: DmaBufExportInfo);
  /** @internal */
  constructor(info: DmaBufExportInfo, trusted: typeof TRUSTED_EXPORT);
  /** @internal */
  constructor(info: Pick<DmaBufExportInfo, 'heap' | 'release'>, spare: typeof SPARE);
  constructor(info: DmaBufExportInfo, trusted?: typeof TRUSTED_EXPORT | typeof SPARE) {
    super();
    if (trusted === SPARE) {
      this.heap = info.heap;
      this.size = 0;
      this.requestedSize = 0;
      this.#buffer = null;
      this.#release = info.release;
      this.#id = 0;
      return;
    }
    this.#id = nextId++;
    // The check lives outside so that the constructor stays small enough for V8 to inline it.
    const checked = trusted === TRUSTED_EXPORT ? info : checkExportInfo(info);
    this.heap = checked.heap;
    this.#name = checked.name;
    this.size = checked.buffer.byteLength;
    this.requestedSize = checked.requestedSize;
    this.#buffer = checked.buffer;
    this.#release = checked.release;
  }

  /**
   * @internal Gives a spare (see {@link SPARE}) its memory: from here on it is the buffer an
   * allocation of `requestedSize` bytes made now, exactly as if constructed with that export info.
   * `size` is `buffer.byteLength`, which the heap knows (the getter is a call on the hot path).
   * @throws {BugError} on anything but an unused spare.
   */
  [ATTACH](buffer: ArrayBuffer | SharedArrayBuffer, size: number, requestedSize: number): this {
    if (this.#id !== 0) throw new BugError(`DmaBuf: ${this.name} is not a spare; only a spare gets memory attached`);
    this.#id = nextId++;
    (this as { size: number }).size = size;
    (this as { requestedSize: number }).requestedSize = requestedSize;
    this.#buffer = buffer;
    return this;
  }

  /** Name for messages. */
  get name(): string {
    return (this.#name ??= `dmabuf#${this.#id} (${this.heap.name}, ${this.size} bytes)`);
  }

  /** Implicit synchronisation: the fences of the work using this buffer. */
  get resv(): DmaResv {
    return (this.#resv ??= new DmaResv({ name: this.name }));
  }

  /** The whole memory (`size` bytes). @throws {BugError} after the last put. */
  get buffer(): ArrayBuffer | SharedArrayBuffer {
    const buffer = this.#live('buffer');
    this.#handedOut = true;
    return buffer;
  }

  /** @internal See {@link VIEWS_HANDED_OUT}. */
  get [VIEWS_HANDED_OUT](): boolean {
    return this.#handedOut;
  }

  /** Whether the memory is a `SharedArrayBuffer` (usable from workers). */
  get shared(): boolean {
    return this.#buffer !== null && !(this.#buffer instanceof ArrayBuffer);
  }

  /** A byte view of the first `requestedSize` bytes. @throws {BugError} after the last put. */
  bytes(): Uint8Array {
    const view = new Uint8Array(this.#live('bytes()'), 0, this.requestedSize);
    this.#handedOut = true;
    return view;
  }

  /** References held; 0 once released (the Kref's count). */
  get refcount(): number {
    return this.count;
  }

  /** Whether the last put happened. */
  get released(): boolean {
    return this.#buffer === null;
  }

  /** Open CPU accesses (begun, not yet ended). */
  get cpuAccessDepth(): number {
    return this.#cpuAccess;
  }

  /** Takes a reference. @throws {BugError} after the last put. @see get_dma_buf() */
  override get(): this {
    this.#live('get()');
    super.get();
    return this;
  }

  /**
   * Drops a reference; the last one gives the memory back to the heap.
   * @returns true when this put released the buffer.
   * @throws {BugError} after the last put, or at the last put while the reservation lock is held.
   * @see dma_buf_put()
   */
  override put(): boolean {
    this.#live('put()');
    if (this.count === 1 && this.#resv?.isLocked === true) {
      throw new BugError(
        `DmaBuf.put() on ${this.name}: last reference dropped while its reservation lock is held; unlock resv first`,
      );
    }
    return super.put();
  }

  /** The last put: forget the memory, retire the reservation, hand the memory to the exporter. */
  protected override release(): void {
    const buffer = this.#buffer!;
    this.#buffer = null;
    this.#resv?.[Symbol.dispose]();
    this.#release(buffer, this);
  }

  protected override refName(): string {
    return `DmaBuf ${this.name}`;
  }

  /** The creator's put, at most once; nothing once the buffer is released. */
  [Symbol.dispose](): void {
    if (this.#creatorPut || this.#buffer === null) return;
    this.#creatorPut = true;
    this.put();
  }

  /**
   * Waits until the CPU may access the memory: for a read, until every Write (and Kernel) fence
   * signaled; for a write, every Read, Write and Kernel fence. Then counts an open access.
   * @throws rejects with {@link BugError} after the last put (also when it happened during the
   *   wait), {@link FenceTimeoutError} when `timeout` ran out, `signal.reason` when aborted,
   *   {@link InvalidArgumentError} for bad options.
   * @see dma_buf_begin_cpu_access()
   */
  async beginCpuAccess(options: CpuAccessOptions): Promise<void> {
    const { write, timeout: limit, signal } = parseCpuAccess(options);
    this.#live('beginCpuAccess()');
    // The kernel may wait here even when no fence is pending now: tell the validator every time.
    if (lockdep !== null) lockdep.mightWait(false);
    const usage = DmaResv.usageRw(write);
    const waitOptions: { usage: typeof usage; timeout?: number; signal?: AbortSignal } = { usage };
    if (limit !== undefined) waitOptions.timeout = limit;
    if (signal !== undefined) waitOptions.signal = signal;
    if (this.#accessHook !== null) {
      await this.#accessHook.begin(write, waitOptions);
    } else if (!(await this.resv.wait(waitOptions))) {
      const pending = this.resv.getFences(usage).map((f) => f.describe());
      throw new FenceTimeoutError(
        `DmaBuf.beginCpuAccess on ${this.name}: the fences a CPU ` +
          `${write ? 'write' : 'read'} must wait for did not signal within ${limit} ms ` +
          `(${pending.length} pending: ${pending.join('; ')}); retry later or raise the timeout`,
      );
    }
    this.#live('beginCpuAccess() (released while it waited)');
    this.#cpuAccess++;
  }

  /** Closes the access opened by the matching {@link beginCpuAccess}. @see dma_buf_end_cpu_access() */
  endCpuAccess(): void {
    if (this.#cpuAccess === 0) {
      throw new BugError(
        `DmaBuf.endCpuAccess() on ${this.name}: no CPU access is ` +
          `open; call it once after each resolved beginCpuAccess()`,
      );
    }
    this.#cpuAccess--;
    this.#accessHook?.end();
  }

  /**
   * Installs (or, with null, removes) the cross-thread access hook. For `dma-buf-export.ts`,
   * which shares the buffer with other threads.
   * @throws {InvalidArgumentError} for anything but null or an object with `begin` and `end` functions
   *   (a broken hook would fail only at the next CPU access, inside it).
   */
  setAccessHook(hook: DmaBufAccessHook | null): void {
    if (
      hook !== null &&
      (typeof hook !== 'object' || typeof hook.begin !== 'function' || typeof hook.end !== 'function')
    ) {
      throw invalidArgument('DmaBuf.setAccessHook', 'hook', hook, 'null or an object { begin(write, options), end() }');
    }
    this.#accessHook = hook;
  }

  override toString(): string {
    return `DmaBuf(${this.name}, ${this.size} bytes, ${this.#buffer === null ? 'released' : `refcount ${this.count}`})`;
  }

  #live(op: string): ArrayBuffer | SharedArrayBuffer {
    const buffer = this.#buffer;
    if (buffer === null) {
      throw new BugError(
        `DmaBuf.${op} on ${this.name}: the buffer was released by its last ` +
          `put() (use after free); take a reference with get() while you use it`,
      );
    }
    return buffer;
  }
}
