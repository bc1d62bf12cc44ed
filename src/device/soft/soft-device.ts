/**
 * soft-device: the embedded GPU, made of worker threads over shared memory.
 *
 * Overview: a {@link SoftDevice} has named engines (`gfx`, `compute`, `copy` by default), each
 * one or more rings with a worker thread behind every ring ({@link SoftEngine}), and each ring
 * fronted by a {@link DrmGpuScheduler} whose credit limit is the ring size and whose entity
 * policy (`policy`: FAIR, FIFO or round-robin) decides whose job goes next. Clients are
 * {@link SoftContext}s (one entity per engine, a shared guilty flag); {@link SoftDevice.submit}
 * queues a job on the default context (or the one given) and returns its `finished` fence at
 * once: the scheduler writes the job into a ring when its dependencies have signalled and a ring
 * has a free slot, and the fence signals, with the job's error if any, when the engine has run
 * it. Memory the engines may touch is either mapped (`map()`, any shared buffer) or, with
 * `vramBytes`, buffer objects of the device's VRAM arena, managed by a `TtmDevice`
 * ({@link SoftDevice.createBuffer}, {@link SoftDevice.execute}); TTM moves and evictions run as
 * copy jobs on the copy engine. Kernels are the built-ins or user modules
 * ({@link SoftDevice.registerKernels}). Buffers and fences cross to other threads with
 * {@link SoftDevice.shareBuffer} and the shared fences of `dmabuf`.
 *
 * Hangs: the scheduler's watchdog resets a ring that makes no progress for `hangTimeoutMs` (the
 * hung job fails with `ETIMEDOUT`, its context becomes guilty, the ring's other jobs run on the
 * fresh engine; see `soft-job.ts`). A worker that dies resets its ring too (the job it ran fails
 * with `EIO`). Past `maxResets` resets the device is lost: every pending fence signals with
 * `ENODEV` and every later call fails with `ENODEV`.
 *
 * Models an amdgpu-like device (`amdgpu_device.c`: init and fini, the reset counter, the
 * "device lost" state after a failed recovery, the TTM device with its VRAM, the kernel's own
 * high-priority entity for buffer moves).
 *
 * Contract:
 * - Jobs of one context on one engine start in submission order (pin a job to a ring with
 *   `ring` to keep order with that ring's other jobs across contexts). Dependencies' errors are
 *   not passed on, as in drm_sched.
 * - Bad input is refused at submit with a typed error and changes nothing: an unknown engine,
 *   kernel or ring, bad arguments, memory of another device or unmapped
 *   ({@link InvalidArgumentError}, `ENOENT`).
 * - A kernel that throws fails its job with `EIO`; the ring goes on without a reset.
 * - Every fence settles: device loss signals all pending work with `ENODEV`;
 *   {@link SoftDevice.destroy} waits for pending work (hangs still end through the watchdog), or
 *   with `cancel: true` ends it at once (queued jobs `ESRCH` as killed entities' jobs, jobs on a
 *   ring `ECANCELED`). Afterwards workers are gone, shares are revoked with `ENODEV`, nothing
 *   keeps the process alive, and every method fails with `DmaBufError` `ENODEV`.
 * - While idle, the device keeps nothing alive: a program that forgets `destroy()` still exits.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * await using device = new SoftDevice({ engines: { compute: 1, copy: 1 } });
 * const memory = device.map(new SharedArrayBuffer(16));
 * const x = memory.range(0, 8);
 * const y = memory.range(8, 8);
 * new Float32Array(memory.buffer, 0, 4).set([1, 2, 2, 3]); // x = [1, 2], y = [2, 3]
 * await device.submit('compute', 'saxpy', { a: 10, x, y }).wait();
 * console.log([...new Float32Array(memory.buffer, 8, 2)]); // [12, 23]
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import { DmaFence } from '../../fence/dma-fence.js';
import type { DmaBuf } from '../../heap/dma-buf.js';
import { DmaHeap } from '../../heap/dma-heap.js';
import { shareDmaBuf, type DmaBufShare } from '../../heap/dma-buf-export.js';
import type { DrmGpuScheduler } from '../../sched/sched-main.js';
import type { DrmSchedPolicy } from '../../sched/sched-rq.js';
import { TtmBufferObject } from '../../ttm/ttm-bo.js';
import type { TtmDelayedDeleteMode } from '../../ttm/ttm-bo-delayed-delete.js';
import { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType, type TtmPlacement } from '../../ttm/ttm-placement.js';
import { boOf, softCs, type SoftCsOptions } from './soft-cs.js';
import { SoftContext, type SoftContextHost, type SoftContextInit } from './soft-ctx.js';
import type { EngineMessage, EngineReport } from './soft-engine-worker.js';
import { SoftEngine, type SoftEngineHost, type SoftResetCause } from './soft-engine.js';
import { SoftJob, createSoftScheduler } from './soft-job.js';
import { SoftKernelTable } from './soft-kernel-table.js';
import { SoftMemoryMap, type SoftBufferRange, type SoftMemory } from './soft-memory.js';
import { softTtmFuncs } from './soft-ttm.js';
import { defaultWorkerPlatform, type SoftWorkerOptions, type WorkerPlatform } from './soft-worker-platform.js';

/** Options of {@link SoftDevice}. */
export interface SoftDeviceOptions {
  /** Name in messages and fence timelines (default `soft0`, `soft1`...). */
  readonly name?: string;
  /** Engines and how many rings (workers) each has; default `{ gfx: 1, compute: 1, copy: 1 }`. */
  readonly engines?: Readonly<Record<string, number>>;
  /** Slots per ring, a power of two (default 64): jobs in flight per ring. */
  readonly ringSize?: number;
  /** A ring that completes nothing for this long is hung and reset (default 10 s; Infinity: never). */
  readonly hangTimeoutMs?: number;
  /** Engine resets the device survives; one more loses it (default 4). */
  readonly maxResets?: number;
  /** Where the workers come from; {@link defaultWorkerPlatform} by default. */
  readonly platform?: WorkerPlatform;
  /** Heap limits per worker (Node), e.g. to test out-of-memory workers. */
  readonly workerResourceLimits?: SoftWorkerOptions['resourceLimits'];
  /** VRAM: a `SharedArrayBuffer` arena of this many bytes managed by a `TtmDevice` (none by default). */
  readonly vramBytes?: number;
  /** Budget of the TT (system pages) manager in bytes; default four times `vramBytes`. */
  readonly ttBytes?: number;
  /**
   * How buffer objects released while busy (zombies) are freed, with `vramBytes` (see
   * `TtmDeviceOptions.delayedDelete`): `'per-object'` (default; a work item per zombie that sleeps
   * until it is idle, seed 004's design), `'per-object-idle'` (the item is queued once the zombie
   * is idle) or `'periodic-scan'` (a 10 ms scan of one list, the design seed 004 replaced).
   */
  readonly delayedDelete?: TtmDelayedDeleteMode;
  /**
   * How every ring's scheduler picks the next client's job: `'fair'` (default: least GPU time
   * weighted by priority), `'fifo'` (oldest job first) or `'rr'` (clients take turns); see
   * `sched-rq.ts`. It decides only when jobs wait for ring slots, so it shows under load.
   */
  readonly policy?: DrmSchedPolicy['name'];
}

/** Options of {@link SoftDevice.submit} and {@link SoftDevice.execute}. */
export interface SoftSubmitOptions {
  /** Fences the job waits for before it is written into a ring (errors are not passed on). */
  readonly dependencies?: readonly DmaFence[];
  /** Run on this ring of the engine (its index), keeping order with the ring's other jobs. */
  readonly ring?: number;
  /** The client; the device's default context when omitted. */
  readonly context?: SoftContext;
  /** Aborts locking and placing buffer objects ({@link SoftDevice.execute} only). */
  readonly signal?: AbortSignal;
}

/** Options of {@link SoftDevice.createBuffer}. */
export interface SoftBufferInit {
  /** Bytes, rounded up to whole pages. */
  readonly size: number;
  readonly name?: string;
  /** Where the buffer starts out (default VRAM). */
  readonly placement?: TtmPlacement;
}

/** Options of {@link SoftDevice.destroy}. */
export interface SoftDestroyOptions {
  /** Signal pending work with `ECANCELED` instead of waiting for it. */
  readonly cancel?: boolean;
}

/** A reset as the device logs it. */
export interface SoftResetRecord extends SoftResetCause {
  readonly engine: string;
}

let nextDevice = 0;

const IN_VRAM: TtmPlacement = Object.freeze([{ memType: TtmMemType.VRAM }]);
const DELAYED_DELETE_MODES: readonly TtmDelayedDeleteMode[] = ['per-object', 'per-object-idle', 'periodic-scan'];

/** The embedded soft GPU (see the module overview). */
export class SoftDevice implements AsyncDisposable {
  readonly name: string;
  /** Every ring's engine, grouped by engine kind in option order. */
  readonly engines: readonly SoftEngine[];
  /** The VRAM arena's TTM device, with `vramBytes`; null otherwise. */
  readonly ttm: TtmDevice | null;
  /** The context `submit` and `execute` use when given none. */
  readonly defaultContext: SoftContext;
  readonly #memory: SoftMemoryMap;
  /**
   * The kernels the device runs, and their encoding into ring words (for code that writes into a
   * ring itself, bypassing the scheduler, as the benchmarks do).
   */
  readonly kernels: SoftKernelTable;
  readonly #rings = new Map<string, SoftEngine[]>();
  readonly #schedulers = new Map<SoftEngine, DrmGpuScheduler<SoftJob>>();
  readonly #contexts = new Set<SoftContext>();
  /** TTM's own context (kernel priority) for moves on the copy engine. */
  readonly #ttmContext: SoftContext;
  readonly #ttmEngine: string;
  readonly #shares = new WeakMap<TtmBufferObject, DmaBufShare>();
  readonly #allShares = new Set<DmaBufShare>();
  readonly #maxResets: number;
  readonly #resetLog: SoftResetRecord[] = [];
  #state: 'alive' | 'lost' | 'destroying' | 'destroyed' = 'alive';
  #lostReason: string | undefined = undefined;
  #destroying: Promise<void> | null = null;
  /** Jobs submitted whose fence has not signalled. */
  #unfinished = 0;
  #idleWaiters: (() => void)[] = [];
  readonly #kernelLoads = new Map<string, { pending: Set<SoftEngine>; resolve(): void; reject(err: Error): void }>();

  /**
   * Starts the device's workers (they boot in the background; jobs may be submitted at once).
   * @throws {InvalidArgumentError} for bad options; {@link DmaBufError} `EOPNOTSUPP` without a
   *   worker platform (import from `dmabuf/node` in Node).
   */
  constructor(options: SoftDeviceOptions = {}) {
    const name = options.name ?? `soft${nextDevice++}`;
    if (typeof name !== 'string')
      throw new InvalidArgumentError(`SoftDevice: name must be a string, got ${describeValue(name)}`);
    this.name = name;
    const engines = options.engines ?? { gfx: 1, compute: 1, copy: 1 };
    const entries = Object.entries(engines);
    if (entries.length === 0) throw new InvalidArgumentError(`SoftDevice ${name}: at least one engine is needed`);
    for (const [kind, count] of entries) {
      if (!Number.isSafeInteger(count) || count < 1 || count > 64 || !/^[a-z][a-z0-9-]*$/.test(kind)) {
        throw new InvalidArgumentError(
          `SoftDevice ${name}: engine ${JSON.stringify(kind)} needs a lower-case name and 1 .. 64 rings, ` +
            `got ${describeValue(count)}`,
        );
      }
    }
    const hangTimeoutMs = options.hangTimeoutMs ?? 10_000;
    if (typeof hangTimeoutMs !== 'number' || !(hangTimeoutMs > 0)) {
      throw new InvalidArgumentError(
        `SoftDevice ${name}: hangTimeoutMs must be a positive number of ms (or Infinity), ` +
          `got ${describeValue(hangTimeoutMs)}`,
      );
    }
    const maxResets = options.maxResets ?? 4;
    if (!Number.isSafeInteger(maxResets) || maxResets < 0) {
      throw new InvalidArgumentError(
        `SoftDevice ${name}: maxResets must be a non-negative integer, got ${describeValue(maxResets)}`,
      );
    }
    this.#maxResets = maxResets;
    const policy = options.policy ?? 'fair';
    if (policy !== 'fair' && policy !== 'fifo' && policy !== 'rr') {
      throw new InvalidArgumentError(
        `SoftDevice ${name}: policy must be 'fair', 'fifo' or 'rr', got ${describeValue(policy)}`,
      );
    }
    const platform = options.platform ?? defaultWorkerPlatform();
    this.#memory = new SoftMemoryMap(name, (message) => this.#broadcast(message));
    this.kernels = new SoftKernelTable(name, this.#memory);
    const host: SoftEngineHost = {
      platform,
      workerOptions: options.workerResourceLimits === undefined ? {} : { resourceLimits: options.workerResourceLimits },
      workerState: () => ({ memory: this.#memory.snapshot(), kernelModules: this.kernels.modules }),
      engineReset: (engine, cause) => this.#engineReset(engine, cause),
      engineReport: (engine, report) => this.#engineReport(engine, report),
    };
    const all: SoftEngine[] = [];
    const ringSize = options.ringSize ?? 64;
    for (const [kind, count] of entries) {
      const rings = Array.from({ length: count }, (_, i) => new SoftEngine(host, kind, i, ringSize));
      all.push(...rings);
      this.#rings.set(kind, rings);
      for (const engine of rings)
        this.#schedulers.set(engine, createSoftScheduler(engine, { timeoutMs: hangTimeoutMs, policy }));
    }
    this.engines = all;
    this.defaultContext = new SoftContext(this.#contextHost, { name: `${name}.default` });
    this.#contexts.add(this.defaultContext);
    this.#ttmContext = new SoftContext(this.#contextHost, { name: `${name}.ttm`, priority: 'kernel' });
    this.#ttmEngine = this.#rings.has('copy') ? 'copy' : entries[0]![0];
    const delayedDelete = options.delayedDelete;
    if (delayedDelete !== undefined) {
      if (!DELAYED_DELETE_MODES.includes(delayedDelete)) {
        throw new InvalidArgumentError(
          `SoftDevice ${name}: delayedDelete must be one of ${DELAYED_DELETE_MODES.join(', ')}, ` +
            `got ${describeValue(delayedDelete)}`,
        );
      }
      if (options.vramBytes === undefined) {
        throw new InvalidArgumentError(
          `SoftDevice ${name}: delayedDelete (${delayedDelete}) needs vramBytes: only buffer objects of the ` +
            "device's VRAM are deleted late",
        );
      }
    }
    this.ttm =
      options.vramBytes === undefined ? null : this.#createTtm(options.vramBytes, options.ttBytes, delayedDelete);
  }

  #createTtm(
    vramBytes: number,
    ttBytes: number | undefined,
    delayedDelete: TtmDelayedDeleteMode | undefined,
  ): TtmDevice {
    return new TtmDevice({
      name: `${this.name}.ttm`,
      vramBytes,
      ttBytes: ttBytes ?? 4 * vramBytes,
      ...(delayedDelete === undefined ? {} : { delayedDelete }),
      // System pages must be shared: the engines copy from and to them.
      heap: new DmaHeap({ name: `${this.name}-system`, shared: true }),
      funcs: softTtmFuncs({
        range: (bytes) => this.#range(bytes),
        ttmJob: (kernel, args, dependencies) => this.#ttmJob(kernel, args, dependencies),
        shareOf: (bo) => this.#shares.get(bo),
      }),
    });
  }

  /** Resolves once every worker has started. */
  async ready(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.ready));
  }

  /** Whether the device was lost (too many resets, or {@link lose}). */
  get lost(): boolean {
    return this.#lostReason !== undefined;
  }

  /** Every engine reset so far, oldest first. */
  get resets(): readonly SoftResetRecord[] {
    return this.#resetLog;
  }

  /** Names of the kernels this device runs. */
  get kernelNames(): string[] {
    return this.kernels.names;
  }

  /** The rings of engine `kind`. @throws {InvalidArgumentError} for an unknown engine. */
  rings(kind: string): readonly SoftEngine[] {
    const rings = this.#rings.get(kind);
    if (rings === undefined) {
      throw new InvalidArgumentError(
        `${this.name}: no engine ${describeValue(kind)}; this device has ${[...this.#rings.keys()].join(', ')}`,
      );
    }
    return rings;
  }

  /** The scheduler in front of `engine`'s ring. */
  scheduler(engine: SoftEngine): DrmGpuScheduler<SoftJob> {
    const sched = this.#schedulers.get(engine);
    if (sched === undefined) throw new InvalidArgumentError(`${this.name}: ${engine} is not one of its engines`);
    return sched;
  }

  /**
   * A new client of the device (see {@link SoftContext}).
   * @throws `ENODEV` once lost or destroyed.
   */
  createContext(init?: SoftContextInit): SoftContext {
    this.#checkAlive('createContext');
    const ctx = new SoftContext(this.#contextHost, init);
    this.#contexts.add(ctx);
    return ctx;
  }

  readonly #contextHost: SoftContextHost = {
    schedulers: (kind) => this.#rings.get(kind)?.map((e) => this.#schedulers.get(e)!),
  };

  /**
   * Makes `memory` visible to every engine (once per buffer).
   * @throws {InvalidArgumentError} for memory that is not shared; `ENODEV` once lost or destroyed.
   */
  map(memory: SharedArrayBuffer | DmaBuf): SoftMemory {
    this.#checkAlive('map');
    return this.#memory.map(memory);
  }

  #range(bytes: Uint8Array): SoftBufferRange {
    return this.#memory.map(bytes.buffer as SharedArrayBuffer).range(bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Registers the kernels `url` exports (see `defineKernel`) on every engine.
   * @returns their names, once every engine has loaded the module.
   * @throws rejects with {@link InvalidArgumentError} for a module without kernels, a name
   *   already known, or a module an engine failed to load; `ENODEV` once lost or destroyed.
   */
  async registerKernels(url: URL | string): Promise<string[]> {
    this.#checkAlive('registerKernels');
    const module = await this.kernels.load(url);
    const pending = new Set(this.engines.filter((e) => !e.stopped));
    for (const engine of pending) engine.hold();
    const releaseAll = (): void => {
      for (const engine of pending) engine.release();
      pending.clear();
    };
    const loaded = new Promise<void>((resolve, reject) => {
      this.#kernelLoads.set(module.url, {
        pending,
        resolve: () => {
          releaseAll();
          resolve();
        },
        reject: (err) => {
          releaseAll();
          reject(err);
        },
      });
    });
    if (pending.size === 0) this.#kernelLoads.get(module.url)!.resolve();
    this.#broadcast({ type: 'kernels', module });
    await loaded;
    return Object.keys(module.ids);
  }

  /**
   * Queues `kernel` with `args` (numbers and mapped memory) on engine `engine`.
   * @returns the job's `finished` fence: it signals once the job ran, with its error if it failed.
   * @throws {InvalidArgumentError} for an unknown engine, kernel or ring, bad arguments or a
   *   buffer object (use {@link execute}); `DmaBufError` `ENOENT` for unmapped memory, `ENODEV`
   *   once lost or destroyed.
   * @see amdgpu_cs_ioctl()
   */
  submit(
    engine: string,
    kernel: string,
    args?: Readonly<Record<string, unknown>>,
    options?: SoftSubmitOptions,
  ): DmaFence {
    this.#checkAlive('submit');
    this.rings(engine);
    const dependencies = this.#checkDependencies(options?.dependencies);
    const job = this.kernels.encode(kernel, args, (what, value) => {
      if (boOf(value) !== undefined) {
        throw new InvalidArgumentError(`${what}: a buffer object needs execute(), which locks and places it`);
      }
      return undefined;
    });
    const entity = this.#context(options?.context).entity(engine, options?.ring);
    const schedJob = new SoftJob(entity, job.id, job.words);
    try {
      for (const fence of dependencies) schedJob.addDependency(fence);
      schedJob.arm();
    } catch (err) {
      schedJob.cleanup();
      throw err;
    }
    schedJob.push();
    return this.#track(schedJob.finished);
  }

  /**
   * Queues a job whose arguments may be buffer objects of this device (see `soft-cs.ts`): they
   * are locked, placed in VRAM, synchronised implicitly and fenced.
   * @returns the job's `finished` fence, once the job is queued.
   * @throws rejects like {@link submit}, and with `ENOMEM` when the buffer objects never fit
   *   VRAM together.
   */
  async execute(
    engine: string,
    kernel: string,
    args: Readonly<Record<string, unknown>> = {},
    options?: SoftSubmitOptions,
  ): Promise<DmaFence> {
    this.#checkAlive('execute');
    const ttm = this.#needTtm('execute');
    this.rings(engine);
    const dependencies = this.#checkDependencies(options?.dependencies);
    const entity = this.#context(options?.context).entity(engine, options?.ring);
    const csOptions: SoftCsOptions = {
      dependencies,
      ...(options?.signal === undefined ? {} : { signal: options.signal }),
    };
    const fence = await softCs(
      { ttm, kernels: this.kernels, range: (bytes) => this.#range(bytes) },
      entity,
      kernel,
      args,
      csOptions,
    );
    return this.#track(fence);
  }

  /**
   * A buffer object in the device's VRAM (or `placement`), unreserved, with one reference.
   * @throws rejects with `ENODEV` once lost or destroyed, {@link InvalidArgumentError} without VRAM.
   */
  async createBuffer(init: SoftBufferInit): Promise<TtmBufferObject> {
    this.#checkAlive('createBuffer');
    const ttm = this.#needTtm('createBuffer');
    return TtmBufferObject.initValidate(ttm, {
      size: init.size,
      placement: init.placement ?? IN_VRAM,
      ...(init.name === undefined ? {} : { name: init.name }),
    });
  }

  /**
   * Shares buffer object `bo` with other threads (see `dma-buf-export.ts`); moves of a shared
   * buffer notify its importers, a static importer pins it. One share per buffer.
   * @throws {InvalidArgumentError} for a buffer of another device.
   */
  shareBuffer(bo: TtmBufferObject): DmaBufShare {
    this.#checkAlive('shareBuffer');
    const ttm = this.#needTtm('shareBuffer');
    if (!(bo instanceof TtmBufferObject) || bo.device !== ttm) {
      throw new InvalidArgumentError(
        `${this.name}: shareBuffer takes a buffer object of this device, got ${describeValue(bo)}`,
      );
    }
    const existing = this.#shares.get(bo);
    if (existing !== undefined && !existing.released) return existing;
    const share = shareDmaBuf({
      name: bo.name,
      size: bo.size,
      resv: bo.resv,
      memory: () => {
        const bytes = ttm.resourceBytes(bo, bo.resource!);
        return { buffer: bytes.buffer as SharedArrayBuffer, offset: bytes.byteOffset };
      },
      get: () => bo.get(),
      put: () => bo.put(),
    });
    this.#shares.set(bo, share);
    this.#allShares.add(share);
    return share;
  }

  #ttmJob(
    kernel: 'copy' | 'fill',
    args: Readonly<Record<string, unknown>>,
    dependencies: readonly DmaFence[],
  ): DmaFence {
    const job = this.kernels.encode(kernel, args);
    const schedJob = new SoftJob(this.#ttmContext.entity(this.#ttmEngine), job.id, job.words);
    for (const fence of dependencies) schedJob.addDependency(fence);
    schedJob.arm();
    schedJob.push();
    return schedJob.finished;
  }

  #track(fence: DmaFence): DmaFence {
    this.#unfinished++;
    if (!fence.addCallback(this.#jobDone)) this.#jobDone();
    return fence;
  }

  readonly #jobDone = (): void => {
    if (--this.#unfinished === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  };

  #checkDependencies(dependencies: unknown): readonly DmaFence[] {
    if (dependencies === undefined) return [];
    if (!Array.isArray(dependencies) || !dependencies.every((f) => f instanceof DmaFence)) {
      throw new InvalidArgumentError(
        `${this.name}: dependencies must be an array of DmaFence, got ${describeValue(dependencies)}`,
      );
    }
    return dependencies;
  }

  #context(ctx: SoftContext | undefined): SoftContext {
    if (ctx === undefined) return this.defaultContext;
    if (!this.#contexts.has(ctx)) {
      throw new InvalidArgumentError(`${this.name}: ${describeValue(ctx)} is not a context of this device`);
    }
    return ctx;
  }

  #needTtm(what: string): TtmDevice {
    if (this.ttm === null) {
      throw new InvalidArgumentError(
        `SoftDevice.${what} on ${this.name}: the device has no VRAM; create it with vramBytes`,
      );
    }
    return this.ttm;
  }

  /**
   * Declares the device lost: every engine stops, every pending job signals with `ENODEV`,
   * and every later call fails with `ENODEV`. Idempotent.
   */
  async lose(reason = 'lost by request'): Promise<void> {
    if (this.#lostReason !== undefined || this.#state === 'destroyed') return;
    if (this.#state === 'alive') this.#state = 'lost';
    this.#lostReason = reason;
    for (const share of this.#allShares) share.revoke('ENODEV');
    for (const load of this.#kernelLoads.values()) load.reject(new DmaBufError('ENODEV', `registerKernels: ${reason}`));
    this.#kernelLoads.clear();
    // Jobs on a ring signal with ENODEV; queued ones fail in runJob on the stopped engine.
    await Promise.all(this.engines.map((e) => e.stop('ENODEV')));
  }

  /**
   * Tears the device down (see the module contract). Idempotent; later calls wait for the first.
   */
  destroy(options?: SoftDestroyOptions): Promise<void> {
    this.#destroying ??= this.#destroy(options?.cancel === true);
    return this.#destroying;
  }

  async #destroy(cancel: boolean): Promise<void> {
    if (this.#state === 'alive') {
      this.#state = 'destroying';
      if (!cancel) await this.#drain();
    }
    for (const share of this.#allShares) share.revoke('ENODEV');
    const contexts = [...this.#contexts, this.#ttmContext];
    if (cancel) await Promise.all(contexts.map((c) => c.kill()));
    else await Promise.all(contexts.map((c) => c.destroy()));
    // Jobs still on a ring (a cancel, a lost device) end with ECANCELED; then the workers go.
    for (const sched of this.#schedulers.values()) sched.fini();
    await Promise.all(this.engines.map((e) => e.stop('ECANCELED')));
    for (const load of this.#kernelLoads.values()) load.reject(new DmaBufError('ENODEV', 'registerKernels: destroyed'));
    this.#kernelLoads.clear();
    if (this.ttm !== null) await this.#finiTtm(this.ttm);
    this.#state = 'destroyed';
  }

  /** Waits until every submitted job has signalled (the watchdog still ends hangs). */
  async #drain(): Promise<void> {
    if (this.#unfinished === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Frees what TTM still holds; the heap goes with it. */
  async #finiTtm(ttm: TtmDevice): Promise<void> {
    try {
      await ttm.fini();
    } finally {
      await ttm.heap[Symbol.asyncDispose]().catch(() => {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  #engineReset(engine: SoftEngine, cause: SoftResetCause): boolean {
    this.#resetLog.push({ engine: engine.name, ...cause });
    if (this.#resetLog.length <= this.#maxResets) return true;
    void this.lose(
      `${this.#resetLog.length} engine resets, more than maxResets ${this.#maxResets} (last: ${cause.reason})`,
    );
    return false;
  }

  #engineReport(engine: SoftEngine, report: EngineReport): void {
    if (report.type !== 'kernels-loaded') return;
    const load = this.#kernelLoads.get(report.url);
    if (load === undefined) return;
    if (report.error !== undefined) {
      this.#kernelLoads.delete(report.url);
      load.reject(
        new InvalidArgumentError(`${this.name}: ${engine.name} could not load ${report.url}: ${report.error}`),
      );
      return;
    }
    if (load.pending.delete(engine)) engine.release();
    if (load.pending.size === 0) {
      this.#kernelLoads.delete(report.url);
      load.resolve();
    }
  }

  #broadcast(message: EngineMessage): void {
    for (const engine of this.engines) engine.post(message);
  }

  #checkAlive(what: string): void {
    if (this.#state === 'alive') return;
    const why =
      this.#lostReason !== undefined
        ? `was lost (${this.#lostReason}); destroy it and create a new device`
        : 'was destroyed; create a new device';
    throw new DmaBufError('ENODEV', `SoftDevice.${what}: ${this.name} ${why}`);
  }

  toString(): string {
    return `SoftDevice(${this.name}, ${this.engines.map((e) => e.name).join(' ')}, ${this.#state})`;
  }
}
