/**
 * ttm-device: one GPU's memory managers, and what its buffer objects report to.
 *
 * Overview: a {@link TtmDevice} owns a resource manager per memory type (System always; TT and
 * a VRAM range manager over one arena when sized in the options; driver types through
 * {@link TtmDevice.setManager}), the device heap that System and TT pages come from, an optional
 * {@link TtmCopyEngine} for pipelined moves, the driver callbacks ({@link TtmDeviceFuncs}, with
 * the defaults of `ttm-device-funcs.ts` filling the gaps), the bounded {@link WorkQueue} of
 * delayed deletes and the delayed-delete strategy that frees released-but-busy buffers
 * (`ttm-bo-delayed-delete.ts`: `'per-object'`, the default and seed 004's design,
 * `'per-object-idle'` or `'periodic-scan'`). It is what its buffer objects see as their
 * {@link TtmBoDevice} and its managers as their {@link TtmLruHost}: it counts buffers, zombies,
 * moves and evictions, and records warnings and failed callbacks.
 *
 * Models `drivers/gpu/drm/ttm/ttm_device.c` (kernel-locking-mm §3.2): `ttm_device_init` with its
 * `alloc_workqueue("ttm", ..., 16)` and system manager, `ttm_device_fini` draining the delayed
 * deletes before the system manager goes (the 2023 ordering fix), and
 * `ttm_resource_manager_evict_all`.
 *
 * Contract:
 * - Manager sizes are the memory budget per type: nothing allocates past them.
 * - A zombie is freed by exactly one path (its work item, the scanner, or an evictor) and its
 *   reference is dropped exactly once.
 * - {@link TtmDevice.fini} waits for every delayed delete (busy buffers included), then tears
 *   down. If buffers other than zombies are still referenced it rejects with a {@link BugError}
 *   naming them and tears nothing down: the device stays coherent and keeps freeing what is put
 *   afterwards (a busy buffer becomes a zombie as usual), it only refuses new buffers; a later
 *   `fini()` tries again and names only what is still referenced. Once it succeeded, `fini()`
 *   resolves at once.
 * - `fini({ signal, timeout })`: the teardown cannot be interrupted (as `ttm_device_fini`), but
 *   waiting for it can. An abort rejects with `signal.reason`; a timeout rejects with a
 *   {@link FenceTimeoutError} saying what the teardown still waits for (each zombie and the
 *   fences it waits on, copy jobs). The teardown goes on; call `fini()` again to wait for it.
 * - No background timer of the device (the periodic scanner's) keeps the process alive.
 * - Failures of driver callbacks or work items are reported in {@link TtmDevice.failures} and
 *   never stop the device.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaResvUsage, TtmBufferObject, TtmDevice, TtmMemType, fenceContextAlloc } from 'dmabuf';
 * const device = new TtmDevice({ vramBytes: 4 << 20 });
 * const bo = await TtmBufferObject.initReserved(device, { size: 1 << 20, placement: [{ memType: TtmMemType.VRAM }] });
 * const job = new DmaFence({ getDriverName: () => 'gpu', getTimelineName: () => 'gfx' }, fenceContextAlloc(), 1);
 * bo.resv.reserveFences(1);
 * bo.resv.addFence(job, DmaResvUsage.Write);
 * bo.unreserve();
 * bo.put(); // busy: a zombie until the job ends
 * console.log(device.stats().zombies); // 1
 * job.signal();
 * await device.fini(); // drains the delayed delete
 * console.log(device.manager(TtmMemType.VRAM)!.usage); // 0
 * ```
 */

import { BugError, FenceTimeoutError, InvalidArgumentError } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { toDisposable } from '../base/lifecycle.js';
import {
  defineOptions,
  instanceOf,
  invalidArgument,
  oneOf,
  optional,
  optionalBoolean,
  optionalPositiveInteger,
  optionalSignal,
  optionalString,
  optionalTimeout,
  requiredFunction,
} from '../base/options.js';
import { Waiter } from '../base/waiter.js';
import { DmaResvUsage } from '../resv/dma-resv.js';
import { WorkQueue } from '../base/workqueue.js';
import { DmaHeap } from '../heap/dma-heap.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import { TtmLruList } from './ttm-lru.js';
import { TTM_NUM_MEM_TYPES, TtmMemType, TtmOperationCtx, memTypeName } from './ttm-placement.js';
import { type TtmLruHost, TtmResource, TtmResourceManager } from './ttm-resource.js';
import { TtmRangeManager, TtmSysManager } from './ttm-range-manager.js';
import { TtmCopyEngine } from './ttm-copy-engine.js';
import { ttmBoEvictFirst, type TtmBoDevice, type TtmBufferObject, type TtmDeviceFuncs } from './ttm-bo.js';
import {
  TtmPerObjectDelete,
  TtmPerObjectIdleDelete,
  TtmPeriodicScanDelete,
  type TtmDelayedDeleteHost,
  type TtmDelayedDeleteMode,
  type TtmDelayedDeleteStrategy,
} from './ttm-bo-delayed-delete.js';
import { ttmDeviceFuncsResolve } from './ttm-device-funcs.js';

/** Options of {@link TtmDevice}. */
export interface TtmDeviceOptions {
  readonly name?: string;
  readonly funcs?: TtmDeviceFuncs;
  /** Budget of the System manager in bytes; unlimited by default. */
  readonly systemBytes?: number;
  /** Creates a TT manager (size-only) of this many bytes. */
  readonly ttBytes?: number;
  /** Creates a VRAM range manager over an arena of this many bytes. */
  readonly vramBytes?: number;
  /** Where System/TT pages come from; a heap owned (and disposed) by the device by default. */
  readonly heap?: DmaHeap;
  /** A copy engine for pipelined moves (`true`: one owned by the device). */
  readonly copyEngine?: TtmCopyEngine | boolean;
  /** Concurrent delayed-delete work items (default 16, as the kernel's queue). */
  readonly maxActive?: number;
  /**
   * How released busy buffers are freed: `'per-object'` (default, the kernel's: a work item per
   * buffer that sleeps until the buffer is idle), `'per-object-idle'` (the work item is queued
   * only once the buffer is idle, so no item sleeps in a slot), or the older `'periodic-scan'`.
   */
  readonly delayedDelete?: TtmDelayedDeleteMode;
  /** Scanner period for `'periodic-scan'` (default 10 ms, the kernel's HZ/100). */
  readonly scanIntervalMs?: number;
  /** validate() rejects with ENOSPC instead of ENOMEM (`TTM_ALLOCATION_PROPAGATE_ENOSPC`). */
  readonly propagateEnospc?: boolean;
  /** Keep warnings in {@link TtmDevice.warnings} without printing them. */
  readonly quiet?: boolean;
}

/** Counters of {@link TtmDevice.stats}. */
export interface TtmDeviceStats {
  /** Live buffer objects, zombies and ghosts included. */
  boCount: number;
  zombies: number;
  ghostCount: number;
  delayedDeleteQueued: number;
  delayedDeleteDone: number;
  evictions: number;
  moves: number;
  bytesMoved: number;
}

/** A callback or work item that failed. */
export interface TtmFailure {
  readonly what: string;
  readonly error: unknown;
}

/** A byte budget: a positive multiple of the page size (Infinity too where `unlimited` allows it). */
function bytes(unlimited: boolean) {
  return (value: unknown, fn: string, name: string): number | undefined => {
    if (value === undefined) return undefined;
    if (unlimited && value === Infinity) return Infinity;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value % PAGE_SIZE === 0) return value;
    throw invalidArgument(
      fn,
      name,
      value,
      `a positive multiple of ${PAGE_SIZE} bytes${unlimited ? ' (or Infinity)' : ''}`,
    );
  };
}

const parseOptions = defineOptions('TtmDevice', {
  name: optionalString,
  funcs: (value, fn, name) => {
    if (value === undefined || (typeof value === 'object' && value !== null)) return value;
    throw invalidArgument(fn, name, value, 'a TtmDeviceFuncs object or omitted');
  },
  systemBytes: bytes(true),
  ttBytes: bytes(false),
  vramBytes: bytes(false),
  heap: optional(instanceOf(DmaHeap)),
  copyEngine: (value, fn, name) => {
    if (value === undefined || typeof value === 'boolean' || value instanceof TtmCopyEngine) return value;
    throw invalidArgument(fn, name, value, 'a TtmCopyEngine, true (one of its own) or false');
  },
  maxActive: optionalPositiveInteger,
  delayedDelete: optional(oneOf(['per-object', 'per-object-idle', 'periodic-scan'] as const)),
  scanIntervalMs: (value, fn, name) => {
    if (value === undefined || (typeof value === 'number' && value > 0 && Number.isFinite(value))) return value;
    throw invalidArgument(fn, name, value, 'a positive finite number of milliseconds');
  },
  propagateEnospc: optionalBoolean,
  quiet: optionalBoolean,
});
const parseFiniOptions = defineOptions('TtmDevice.fini', { signal: optionalSignal, timeout: optionalTimeout });
const checkCtx = instanceOf(TtmOperationCtx);

function checkMemType(fn: string, memType: unknown): number {
  if (typeof memType === 'number' && Number.isInteger(memType) && memType >= 0 && memType < TTM_NUM_MEM_TYPES) {
    return memType;
  }
  throw invalidArgument(fn, 'memType', memType, `an integer in 0..${TTM_NUM_MEM_TYPES - 1}`);
}

/** One device. @see struct ttm_device */
export class TtmDevice implements AsyncDisposable, TtmLruHost, TtmBoDevice, TtmDelayedDeleteHost {
  static readonly #live = new Set<TtmDevice>();
  static #nextId = 1;
  readonly name: string;
  readonly funcs: Required<TtmDeviceFuncs>;
  readonly heap: DmaHeap;
  /** The delayed-delete queue. @see ttm_device.wq */
  readonly wq: WorkQueue;
  /** How released busy buffers are freed (see {@link TtmDeviceOptions.delayedDelete}). */
  readonly delayedDelete: TtmDelayedDeleteStrategy;
  /** Resources of pinned (and swapped) buffers. */
  readonly unevictable = new TtmLruList();
  readonly copyEngine: TtmCopyEngine | null;
  /** The VRAM arena; a VRAM resource's bytes are `vram.subarray(start * PAGE_SIZE, ...)`. */
  readonly vram: Uint8Array | null;
  readonly propagateEnospc: boolean;
  readonly scanIntervalMs: number;
  readonly warnings: string[] = [];
  readonly #quiet: boolean;
  readonly #ownsHeap: boolean;
  readonly #ownsEngine: boolean;
  readonly #managers: (TtmResourceManager | null)[] = new Array<TtmResourceManager | null>(TTM_NUM_MEM_TYPES).fill(
    null,
  );
  readonly #bos = new Set<TtmBufferObject>();
  readonly #failures: TtmFailure[] = [];
  readonly #reclaimListeners = new Set<(bo: TtmBufferObject, atMs: number) => void>();
  #ghosts = 0;
  #nextBo = 1;
  #evictions = 0;
  #moves = 0;
  #bytesMoved = 0;
  /** The teardown running now, or null (none yet, or the last one found buffers still referenced). */
  #fini: Promise<void> | null = null;
  /** fini() ran at least once: new buffers are refused. */
  #finishing = false;
  /** The teardown completed. */
  #finished = false;

  /** @throws {InvalidArgumentError} for bad options. @see ttm_device_init() */
  constructor(options?: TtmDeviceOptions) {
    const parsed = parseOptions(options);
    this.name = parsed.name ?? `ttm${TtmDevice.#nextId++}`;
    const systemBytes = parsed.systemBytes ?? Infinity;
    const ttBytes = parsed.ttBytes;
    const vramBytes = parsed.vramBytes;
    const mode = parsed.delayedDelete ?? 'per-object';
    const interval = (parsed.scanIntervalMs as number | undefined) ?? 10;
    this.scanIntervalMs = interval;
    this.propagateEnospc = parsed.propagateEnospc === true;
    this.#quiet = parsed.quiet === true;
    this.funcs = ttmDeviceFuncsResolve((parsed.funcs as TtmDeviceFuncs | undefined) ?? {});
    const maxActive = parsed.maxActive;
    this.wq = new WorkQueue(`ttm-${this.name}`, {
      ...(maxActive === undefined ? {} : { maxActive }),
      onError: (failure) => this.reportFailure(`delayed delete of ${failure.name}`, failure.error),
    });
    this.delayedDelete =
      mode === 'per-object'
        ? new TtmPerObjectDelete(this)
        : mode === 'per-object-idle'
          ? new TtmPerObjectIdleDelete(this)
          : new TtmPeriodicScanDelete(this, interval);
    this.#ownsHeap = parsed.heap === undefined;
    this.heap = parsed.heap ?? new DmaHeap({ name: `${this.name}-system` });
    const engine = (parsed.copyEngine as TtmCopyEngine | boolean | undefined) ?? false;
    this.#ownsEngine = engine === true;
    this.copyEngine =
      engine === true ? new TtmCopyEngine({ name: `${this.name}-copy` }) : engine === false ? null : engine;
    this.setManager(TtmMemType.System, new TtmSysManager(this, { size: systemBytes, useTt: true, name: 'system' }));
    if (ttBytes !== undefined)
      this.setManager(TtmMemType.TT, new TtmSysManager(this, { size: ttBytes, useTt: true, name: 'tt' }));
    if (vramBytes !== undefined) {
      this.vram = new Uint8Array(
        typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(vramBytes) : new ArrayBuffer(vramBytes),
      );
      this.setManager(TtmMemType.VRAM, new TtmRangeManager(this, { size: vramBytes, name: 'vram' }));
    } else {
      this.vram = null;
    }
    TtmDevice.#live.add(this);
  }

  /** Devices initialised and not yet finished. */
  static devices(): readonly TtmDevice[] {
    return [...TtmDevice.#live];
  }

  /** The delayed-delete design in use. */
  get delayedDeleteMode(): TtmDelayedDeleteMode {
    return this.delayedDelete.mode;
  }

  /** The manager of `memType`, or null. @see ttm_manager_type() */
  manager(memType: number): TtmResourceManager | null {
    return this.#managers[checkMemType('TtmDevice.manager', memType)] ?? null;
  }

  /** Installs (or removes) the manager of a type. @see ttm_set_driver_manager() */
  setManager(memType: number, man: TtmResourceManager | null): void {
    checkMemType('TtmDevice.setManager', memType);
    if (man !== null && !(man instanceof TtmResourceManager)) {
      throw invalidArgument('TtmDevice.setManager', 'man', man, 'a TtmResourceManager or null');
    }
    this.#managers[memType] = man;
  }

  /** The bytes of `res`, which belongs to `bo`: its tt (populated on demand) or the VRAM arena. */
  resourceBytes(bo: TtmBufferObject, res: TtmResource): Uint8Array {
    if (typeof (bo as { kmap?: unknown } | null)?.kmap !== 'function') {
      throw invalidArgument('TtmDevice.resourceBytes', 'bo', bo, 'a TtmBufferObject');
    }
    if (!(res instanceof TtmResource)) {
      throw invalidArgument('TtmDevice.resourceBytes', 'res', res, 'a TtmResource');
    }
    if (res.manager.useTt) {
      if (bo.tt === null) throw new BugError(`${bo.name}: a ${memTypeName(res.memType)} resource without a tt`);
      bo.tt.populate(this.heap);
      return bo.tt.bytes();
    }
    if (this.vram === null || res.manager !== this.#managers[TtmMemType.VRAM]) {
      throw new BugError(
        `${bo.name}: manager ${res.manager.name} keeps no bytes (it neither uses a tt nor is the ` +
          "device's VRAM); give it useTt",
      );
    }
    // A view made directly: subarray() goes through the species constructor lookup, per move.
    return new Uint8Array(this.vram.buffer, this.vram.byteOffset + res.start * PAGE_SIZE, res.size);
  }

  /** Live buffer objects (zombies and ghosts included). */
  get boCount(): number {
    return this.#bos.size;
  }

  /** Zombies waiting for their fences. */
  get zombies(): number {
    return this.delayedDelete.pending;
  }

  /** Callback and work-item failures, oldest first. */
  get failures(): readonly TtmFailure[] {
    return this.#failures;
  }

  stats(): TtmDeviceStats {
    return {
      boCount: this.#bos.size,
      zombies: this.delayedDelete.pending,
      ghostCount: this.#ghosts,
      delayedDeleteQueued: this.delayedDelete.queued,
      delayedDeleteDone: this.delayedDelete.done,
      evictions: this.#evictions,
      moves: this.#moves,
      bytesMoved: this.#bytesMoved,
    };
  }

  /** Calls `cb(bo, clockTime)` whenever a zombie's memory is freed (for latency measurements). */
  onReclaim(cb: (bo: TtmBufferObject, atMs: number) => void): Disposable {
    requiredFunction(cb, 'TtmDevice.onReclaim', 'cb');
    this.#reclaimListeners.add(cb);
    return toDisposable(() => this.#reclaimListeners.delete(cb));
  }

  /**
   * Evicts every buffer of `memType`'s manager, then waits for its pipelined eviction fences.
   * @see ttm_resource_manager_evict_all()
   */
  async evictAll(memType: number, ctx = new TtmOperationCtx()): Promise<void> {
    checkMemType('TtmDevice.evictAll', memType);
    checkCtx(ctx, 'TtmDevice.evictAll', 'ctx');
    const man = this.manager(memType);
    if (man === null)
      throw new InvalidArgumentError(`TtmDevice ${this.name}: no manager for memory type ${memTypeName(memType)}`);
    while (await ttmBoEvictFirst(man, ctx));
    await man.waitEvictionFences();
  }

  /**
   * Waits for every delayed delete, then disposes what the device owns; see the module contract
   * for buffers still referenced, aborts and timeouts.
   * @throws rejects with {@link BugError} naming the buffers still referenced (the device stays
   *   usable for them; call fini() again once they are put), `signal.reason` when aborted,
   *   {@link FenceTimeoutError} saying what the teardown waits for when `timeout` runs out, or
   *   {@link InvalidArgumentError} for options other than `{ signal?, timeout? }`.
   * @see ttm_device_fini()
   */
  fini(options?: { readonly signal?: AbortSignal; readonly timeout?: number }): Promise<void> {
    let signal: AbortSignal | undefined;
    let timeout: number | undefined;
    try {
      ({ signal, timeout } = parseFiniOptions(options));
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#finished) return Promise.resolve();
    this.#finishing = true;
    const teardown = (this.#fini ??= this.#teardown().then(
      () => {
        this.#finished = true;
      },
      (error: unknown) => {
        this.#fini = null; // the next fini() tries again
        throw error;
      },
    ));
    if (signal === undefined && timeout === undefined) return teardown;
    const waiter = new Waiter<void>();
    teardown.then(
      () => waiter.resolve(),
      (error: unknown) => waiter.reject(error),
    );
    waiter.timeoutAfter(timeout, () => waiter.reject(this.#finiTimeout(timeout!)));
    waiter.abortOn(signal);
    return waiter.promise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.fini();
  }

  /**
   * What a teardown still waits for: each zombie with the fences it waits on, and copy jobs.
   * For messages; reads state only.
   */
  describeTeardown(): string {
    const parts: string[] = [];
    const zombies = [...this.#bos].filter((bo) => bo.deleted && !bo.released);
    for (const bo of zombies.slice(0, 8)) {
      const fences = bo.ownResv.getFences(DmaResvUsage.Bookkeep).map((f) => f.describe());
      parts.push(`${bo.name} waits for ${fences.length === 0 ? 'its lock' : fences.join(', ')}`);
    }
    if (zombies.length > 8) parts.push(`${zombies.length - 8} more zombie(s)`);
    const jobs = this.copyEngine?.pendingJobs ?? 0;
    if (jobs > 0) parts.push(`${jobs} copy job(s) on ${this.copyEngine!.name}`);
    if (this.wq.active + this.wq.pending > 0) {
      parts.push(`${this.wq.active} running and ${this.wq.pending} queued delayed-delete item(s)`);
    }
    return parts.length === 0 ? 'nothing' : parts.join('; ');
  }

  #finiTimeout(timeout: number): FenceTimeoutError {
    return new FenceTimeoutError(
      `TtmDevice ${this.name}: fini() still waits after ${timeout} ms for ${this.describeTeardown()}; ` +
        'signal those fences (or put what holds them), then call fini() again; the teardown goes on meanwhile',
    );
  }

  async #teardown(): Promise<void> {
    await this.delayedDelete.drain();
    await this.wq.drain();
    if (this.copyEngine !== null) await this.copyEngine.idle();
    // Zombies put while waiting went through the delayed delete too; drain once more for them.
    await this.delayedDelete.drain();
    const alive = [...this.#bos];
    if (alive.length > 0) {
      throw new BugError(
        `TtmDevice ${this.name}: fini() found ${alive.length} buffer object(s) still referenced: ${alive
          .slice(0, 10)
          .map((bo) => bo.describe())
          .join('; ')}${alive.length > 10 ? '; ...' : ''}. put() them, then call fini() again ` +
          '(the device keeps freeing what is put meanwhile; it takes no new buffers)',
      );
    }
    TtmDevice.#live.delete(this);
    await this.wq[Symbol.asyncDispose]();
    if (this.#ownsEngine) await this.copyEngine![Symbol.asyncDispose]();
    this.manager(TtmMemType.System)?.setUsed(false);
    this.#managers[TtmMemType.System] = null;
    if (this.#ownsHeap) await this.heap[Symbol.asyncDispose]();
  }

  // ---- TtmBoDevice: what buffer objects report ----

  /** @internal */
  nextBoId(): number {
    return this.#nextBo++;
  }

  /** @internal A buffer object was constructed. */
  boCreated(bo: TtmBufferObject): void {
    if (this.#finishing) {
      throw new BugError(
        `TtmDevice ${this.name}: creating ${bo.name} after fini(); a device being torn down takes no new buffers`,
      );
    }
    this.#bos.add(bo);
    if (bo.isGhost) this.#ghosts++;
  }

  /** @internal A buffer object was destroyed. */
  boDestroyed(bo: TtmBufferObject): void {
    this.#bos.delete(bo);
    if (bo.isGhost) this.#ghosts--;
  }

  /** @internal Hands a zombie to the delayed-delete strategy. */
  queueDelayedDelete(bo: TtmBufferObject): void {
    this.delayedDelete.queue(bo);
  }

  /** @internal A zombie's memory was freed. */
  reclaimed(bo: TtmBufferObject): void {
    if (this.#reclaimListeners.size === 0) return;
    const now = getClock().now();
    for (const cb of this.#reclaimListeners) {
      try {
        cb(bo, now);
      } catch (error) {
        this.reportFailure('onReclaim listener', error);
      }
    }
  }

  /** @internal */
  countMove(bytes: number): void {
    this.#moves++;
    this.#bytesMoved += bytes;
  }

  /** @internal */
  countEviction(): void {
    this.#evictions++;
  }

  /** @internal Records a failed callback; never throws. */
  reportFailure(what: string, error: unknown): void {
    this.#failures.push({ what, error });
    this.warn(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** @internal The kernel's WARN: recorded, printed unless quiet, never thrown. */
  warn(message: string): void {
    this.warnings.push(message);
    if (!this.#quiet) console.warn(`dmabuf ttm ${this.name}: ${message}`);
  }
}
