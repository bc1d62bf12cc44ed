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
 *   down; if buffers other than zombies are still alive it rejects with a {@link BugError}
 *   listing them (their memory stays accounted). Idempotent.
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

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { toDisposable } from '../base/lifecycle.js';
import { WorkQueue } from '../base/workqueue.js';
import { DmaHeap } from '../heap/dma-heap.js';
import { PAGE_SIZE } from '../heap/page-pool.js';
import { TtmLruList } from './ttm-lru.js';
import { TTM_NUM_MEM_TYPES, TtmMemType, TtmOperationCtx, memTypeName } from './ttm-placement.js';
import type { TtmLruHost, TtmResource, TtmResourceManager } from './ttm-resource.js';
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

const OPTION_KEYS = new Set([
  'name',
  'funcs',
  'systemBytes',
  'ttBytes',
  'vramBytes',
  'heap',
  'copyEngine',
  'maxActive',
  'delayedDelete',
  'scanIntervalMs',
  'propagateEnospc',
  'quiet',
]);

function checkBytes(name: string, value: unknown, allowInfinity: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (allowInfinity && value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value % PAGE_SIZE !== 0) {
    throw new InvalidArgumentError(
      `TtmDevice: ${name} must be a positive multiple of ${PAGE_SIZE} bytes, got ${describeValue(value)}`,
    );
  }
  return value;
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
  #fini: Promise<void> | null = null;

  /** @throws {InvalidArgumentError} for bad options. @see ttm_device_init() */
  constructor(options: TtmDeviceOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError(`TtmDevice: options must be an object, got ${describeValue(options)}`);
    for (const key of Object.keys(options)) {
      if (!OPTION_KEYS.has(key))
        throw new InvalidArgumentError(`TtmDevice: unknown option '${key}' (known: ${[...OPTION_KEYS].join(', ')})`);
    }
    this.name = options.name ?? `ttm${TtmDevice.#nextId++}`;
    const systemBytes = checkBytes('systemBytes', options.systemBytes, true) ?? Infinity;
    const ttBytes = checkBytes('ttBytes', options.ttBytes, false);
    const vramBytes = checkBytes('vramBytes', options.vramBytes, false);
    const mode = options.delayedDelete ?? 'per-object';
    if (mode !== 'per-object' && mode !== 'per-object-idle' && mode !== 'periodic-scan') {
      throw new InvalidArgumentError(
        "TtmDevice: delayedDelete must be 'per-object', 'per-object-idle' or 'periodic-scan', " +
          `got ${describeValue(mode)}`,
      );
    }
    const interval = options.scanIntervalMs ?? 10;
    if (typeof interval !== 'number' || !(interval > 0) || !Number.isFinite(interval)) {
      throw new InvalidArgumentError(
        `TtmDevice: scanIntervalMs must be a positive number of milliseconds, got ${describeValue(interval)}`,
      );
    }
    if (options.heap !== undefined && !(options.heap instanceof DmaHeap))
      throw new InvalidArgumentError(`TtmDevice: heap must be a DmaHeap, got ${describeValue(options.heap)}`);
    this.scanIntervalMs = interval;
    this.propagateEnospc = options.propagateEnospc === true;
    this.#quiet = options.quiet === true;
    this.funcs = ttmDeviceFuncsResolve(options.funcs ?? {});
    this.wq = new WorkQueue(`ttm-${this.name}`, {
      ...(options.maxActive === undefined ? {} : { maxActive: options.maxActive }),
      onError: (failure) => this.reportFailure(`delayed delete of ${failure.name}`, failure.error),
    });
    this.delayedDelete =
      mode === 'per-object'
        ? new TtmPerObjectDelete(this)
        : mode === 'per-object-idle'
          ? new TtmPerObjectIdleDelete(this)
          : new TtmPeriodicScanDelete(this, interval);
    this.#ownsHeap = options.heap === undefined;
    this.heap = options.heap ?? new DmaHeap({ name: `${this.name}-system` });
    const engine = options.copyEngine ?? false;
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
    return this.#managers[memType] ?? null;
  }

  /** Installs (or removes) the manager of a type. @see ttm_set_driver_manager() */
  setManager(memType: number, man: TtmResourceManager | null): void {
    if (!Number.isInteger(memType) || memType < 0 || memType >= TTM_NUM_MEM_TYPES) {
      throw new InvalidArgumentError(
        `TtmDevice.setManager: memType must be an integer in 0..${TTM_NUM_MEM_TYPES - 1}, ` +
          `got ${describeValue(memType)}`,
      );
    }
    this.#managers[memType] = man;
  }

  /** The bytes of `res`, which belongs to `bo`: its tt (populated on demand) or the VRAM arena. */
  resourceBytes(bo: TtmBufferObject, res: TtmResource): Uint8Array {
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
    const offset = res.start * PAGE_SIZE;
    return this.vram.subarray(offset, offset + res.size);
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
    this.#reclaimListeners.add(cb);
    return toDisposable(() => this.#reclaimListeners.delete(cb));
  }

  /**
   * Evicts every buffer of `memType`'s manager, then waits for its pipelined eviction fences.
   * @see ttm_resource_manager_evict_all()
   */
  async evictAll(memType: number, ctx = new TtmOperationCtx()): Promise<void> {
    const man = this.manager(memType);
    if (man === null)
      throw new InvalidArgumentError(`TtmDevice ${this.name}: no manager for memory type ${memTypeName(memType)}`);
    while (await ttmBoEvictFirst(man, ctx));
    await man.waitEvictionFences();
  }

  /**
   * Waits for every delayed delete, disposes what the device owns, and reports buffers still
   * alive. @see ttm_device_fini()
   */
  fini(): Promise<void> {
    return (this.#fini ??= this.#teardown());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.fini();
  }

  async #teardown(): Promise<void> {
    TtmDevice.#live.delete(this);
    await this.delayedDelete.drain();
    await this.wq.drain();
    await this.wq[Symbol.asyncDispose]();
    if (this.copyEngine !== null) await this.copyEngine.idle();
    const alive = [...this.#bos];
    if (this.#ownsEngine) await this.copyEngine![Symbol.asyncDispose]();
    if (alive.length > 0) {
      throw new BugError(
        `TtmDevice ${this.name}: torn down with ${alive.length} buffer object(s) still referenced: ${alive
          .slice(0, 10)
          .map((bo) => bo.describe())
          .join('; ')}${alive.length > 10 ? '; ...' : ''}. put() every buffer before fini()`,
      );
    }
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
    if (this.#fini !== null) throw new BugError(`TtmDevice ${this.name}: creating ${bo.name} after fini()`);
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
