/**
 * soft-device: the embedded GPU, made of worker threads over shared memory.
 *
 * Overview: a {@link SoftDevice} has named engines (`gfx`, `compute`, `copy` by default), each
 * one or more rings with a worker thread behind every ring ({@link SoftEngine}). Memory the
 * engines may touch is mapped once ({@link SoftDevice.map}); kernels are the built-ins or user
 * modules ({@link SoftDevice.registerKernels}). {@link SoftDevice.submit} queues a job for an
 * engine and returns its finished fence at once; the job is written into a ring when its
 * dependencies have signalled and a ring has a free slot, and its fence signals (with the job's
 * error, if any) when the engine has run it. Hangs and crashes reset the engine; past
 * `maxResets` resets the device is lost: every pending fence signals with `ENODEV` and every
 * later call fails with `ENODEV`.
 *
 * Models an amdgpu-like device (`amdgpu_device.c`: init and fini, the reset counter, the
 * "device lost" state after a failed recovery). Until the scheduler (drm_sched) fronts the
 * engines, a first-in first-out queue per engine stands in for it: it keeps submission order
 * per engine, waits for dependencies, spreads jobs over the engine's rings (the one with the
 * most free slots, as `drm_sched_pick_best` picks the least loaded scheduler), and, as
 * drm_sched does, does not pass a dependency's error on to the job.
 *
 * Contract:
 * - Jobs of one engine start in submission order; on an engine with several rings, jobs may
 *   finish out of order (pin a job with `ring` to keep order on one ring). A job's fence is on
 *   the engine's context with seqnos 1, 2, 3... in submission order.
 * - Bad input is refused at submit with a typed error and changes nothing: an unknown kernel,
 *   bad arguments, memory of another device or unmapped ({@link InvalidArgumentError},
 *   `ENOENT`), an unknown engine.
 * - A kernel that throws fails its job with `EIO`; a hang (no progress for `hangTimeoutMs`)
 *   fails the running job with `ETIMEDOUT`, a dying worker fails it with `EIO`; the engine is
 *   reset and later jobs run. Other engines are not disturbed.
 * - Every fence settles: device loss signals all pending work with `ENODEV`;
 *   {@link SoftDevice.destroy} waits for pending work (hangs still end through the watchdog),
 *   or with `cancel: true` signals it with `ECANCELED` at once. Afterwards workers are gone,
 *   nothing keeps the process alive, and every method fails with `DmaBufError` `ENODEV`.
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

import { DmaBufError, InvalidArgumentError, describeValue, type ErrnoCode } from '../../base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../fence/dma-fence.js';
import type { DmaBuf } from '../../heap/dma-buf.js';
import type { EngineMessage, EngineReport } from './soft-engine-worker.js';
import { SoftEngine, type SoftEngineHost, type SoftResetCause } from './soft-engine.js';
import { SoftKernelTable } from './soft-kernel-table.js';
import { SoftMemoryMap, type SoftMemory } from './soft-memory.js';
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
}

/** Options of {@link SoftDevice.submit}. */
export interface SoftSubmitOptions {
  /** Fences the job waits for before it is written into a ring (errors are not passed on). */
  readonly dependencies?: readonly DmaFence[];
  /** Run on this ring of the engine (its index), keeping order with the ring's other jobs. */
  readonly ring?: number;
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

interface QueuedJob {
  readonly id: number;
  readonly words: readonly number[];
  readonly dependencies: readonly DmaFence[] | undefined;
  readonly ring: number | undefined;
  readonly fence: DmaFence;
}

/** The stand-in for the scheduler: one FIFO per engine (see the module overview). */
class EngineQueue {
  readonly kind: string;
  readonly engines: readonly SoftEngine[];
  readonly context = fenceContextAlloc();
  readonly ops: DmaFenceOps;
  #seqno = 0;
  #jobs: QueuedJob[] = [];
  #head = 0;
  #waitingOn: DmaFence | null = null;

  constructor(deviceName: string, kind: string, engines: readonly SoftEngine[]) {
    this.kind = kind;
    this.engines = engines;
    const timeline = `${deviceName}.${kind}`;
    this.ops = Object.freeze({ getDriverName: () => 'soft', getTimelineName: () => timeline });
  }

  get queued(): number {
    return this.#jobs.length - this.#head;
  }

  push(id: number, words: readonly number[], options: SoftSubmitOptions | undefined): DmaFence {
    const fence = new DmaFence(this.ops, this.context, ++this.#seqno);
    const job: QueuedJob = { id, words, dependencies: options?.dependencies, ring: options?.ring, fence };
    // Nothing queued before it and nothing to wait for: straight into a ring.
    if (this.#head === this.#jobs.length && job.dependencies === undefined) {
      const engine = this.#pick(job.ring);
      if (engine !== undefined) {
        this.#emit(engine, job);
        return fence;
      }
    }
    this.#jobs.push(job);
    this.pump();
    return fence;
  }

  #emit(engine: SoftEngine, job: QueuedJob): void {
    const hw = engine.emit(job.id, job.words);
    const fence = job.fence;
    const done = this.onDone;
    hw.addCallback((finished) => {
      if (finished.error !== undefined) fence.setError(finished.error);
      fence.signal();
      done();
    });
  }

  /** Called after each job's fence signalled (the device counts unfinished jobs). */
  onDone: () => void = () => {};

  /** Writes ready jobs into rings with room, in order; stops at the first that must wait. */
  pump(): void {
    while (this.#head < this.#jobs.length) {
      const job = this.#jobs[this.#head]!;
      const blocker = job.dependencies?.find((f) => !f.isSignaled());
      if (blocker !== undefined) {
        if (this.#waitingOn !== blocker) {
          this.#waitingOn = blocker;
          blocker.addCallback(() => {
            this.#waitingOn = null;
            this.pump();
          });
        }
        return;
      }
      const engine = this.#pick(job.ring);
      if (engine === undefined) return; // refilled on progress
      this.#jobs[this.#head++] = undefined as unknown as QueuedJob;
      this.#emit(engine, job);
    }
    this.#jobs = [];
    this.#head = 0;
  }

  #pick(ring: number | undefined): SoftEngine | undefined {
    if (ring !== undefined) {
      const engine = this.engines[ring]!;
      return engine.ring.fences.credits > 0 ? engine : undefined;
    }
    let best: SoftEngine | undefined;
    for (const engine of this.engines) {
      const credits = engine.ring.fences.credits;
      if (credits > 0 && (best === undefined || credits > best.ring.fences.credits)) best = engine;
    }
    return best;
  }

  /** Signals every queued job's fence with `code` (loss, cancelled teardown). */
  cancel(code: ErrnoCode, why: string): void {
    const jobs = this.#jobs.slice(this.#head);
    this.#jobs = [];
    this.#head = 0;
    for (const job of jobs) {
      job.fence.setError(new DmaBufError(code, `soft job ${job.fence.seqno} on ${this.kind} ${why} (${code})`));
      job.fence.signal();
      this.onDone();
    }
  }
}

let nextDevice = 0;

/** The embedded soft GPU (see the module overview). */
export class SoftDevice implements AsyncDisposable {
  readonly name: string;
  /** Every ring's engine, grouped by engine kind in option order. */
  readonly engines: readonly SoftEngine[];
  readonly #memory: SoftMemoryMap;
  readonly #kernels: SoftKernelTable;
  readonly #queues = new Map<string, EngineQueue>();
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
          `SoftDevice ${name}: engine ${JSON.stringify(kind)} needs a lower-case name and 1 .. 64 rings, got ${describeValue(count)}`,
        );
      }
    }
    const hangTimeoutMs = options.hangTimeoutMs ?? 10_000;
    if (typeof hangTimeoutMs !== 'number' || !(hangTimeoutMs > 0)) {
      throw new InvalidArgumentError(
        `SoftDevice ${name}: hangTimeoutMs must be a positive number of ms (or Infinity), got ${describeValue(hangTimeoutMs)}`,
      );
    }
    const maxResets = options.maxResets ?? 4;
    if (!Number.isSafeInteger(maxResets) || maxResets < 0) {
      throw new InvalidArgumentError(
        `SoftDevice ${name}: maxResets must be a non-negative integer, got ${describeValue(maxResets)}`,
      );
    }
    this.#maxResets = maxResets;
    const platform = options.platform ?? defaultWorkerPlatform();
    this.#memory = new SoftMemoryMap(name, (message) => this.#broadcast(message));
    this.#kernels = new SoftKernelTable(name, this.#memory);
    const host: SoftEngineHost = {
      platform,
      workerOptions: options.workerResourceLimits === undefined ? {} : { resourceLimits: options.workerResourceLimits },
      workerState: () => ({ memory: this.#memory.snapshot(), kernelModules: this.#kernels.modules }),
      engineReset: (engine, cause) => this.#engineReset(engine, cause),
      engineReport: (engine, report) => this.#engineReport(engine, report),
      engineProgress: (engine) => this.#queues.get(engine.kind)?.pump(),
    };
    const all: SoftEngine[] = [];
    const ringSize = options.ringSize ?? 64;
    for (const [kind, count] of entries) {
      const rings = Array.from({ length: count }, (_, i) => new SoftEngine(host, kind, i, ringSize, hangTimeoutMs));
      all.push(...rings);
      const queue = new EngineQueue(name, kind, rings);
      queue.onDone = this.#jobDone;
      this.#queues.set(kind, queue);
    }
    this.engines = all;
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
    return this.#kernels.names;
  }

  /** The rings of engine `kind`. @throws {InvalidArgumentError} for an unknown engine. */
  rings(kind: string): readonly SoftEngine[] {
    return this.#queue(kind).engines;
  }

  /**
   * Makes `memory` visible to every engine (once per buffer).
   * @throws {InvalidArgumentError} for memory that is not shared; `ENODEV` once lost or destroyed.
   */
  map(memory: SharedArrayBuffer | DmaBuf): SoftMemory {
    this.#checkAlive('map');
    return this.#memory.map(memory);
  }

  /**
   * Registers the kernels `url` exports (see `defineKernel`) on every engine.
   * @returns their names, once every engine has loaded the module.
   * @throws rejects with {@link InvalidArgumentError} for a module without kernels, a name
   *   already known, or a module an engine failed to load; `ENODEV` once lost or destroyed.
   */
  async registerKernels(url: URL | string): Promise<string[]> {
    this.#checkAlive('registerKernels');
    const module = await this.#kernels.load(url);
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
   * Queues `kernel` with `args` on engine `engine`.
   * @returns the job's fence: it signals once the job ran, with its error if it failed.
   * @throws {InvalidArgumentError} for an unknown engine, kernel or ring, or bad arguments;
   *   `DmaBufError` `ENOENT` for unmapped memory, `ENODEV` once lost or destroyed.
   */
  submit(
    engine: string,
    kernel: string,
    args?: Readonly<Record<string, unknown>>,
    options?: SoftSubmitOptions,
  ): DmaFence {
    this.#checkAlive('submit');
    const queue = this.#queue(engine);
    const job = this.#kernels.encode(kernel, args);
    if (options !== undefined) {
      const { dependencies, ring } = options;
      if (ring !== undefined && (!Number.isSafeInteger(ring) || ring < 0 || ring >= queue.engines.length)) {
        throw new InvalidArgumentError(
          `${this.name}: ${engine} has rings 0 .. ${queue.engines.length - 1}, got ring ${describeValue(ring)}`,
        );
      }
      if (
        dependencies !== undefined &&
        (!Array.isArray(dependencies) || !dependencies.every((f) => f instanceof DmaFence))
      ) {
        throw new InvalidArgumentError(
          `${this.name}: dependencies must be an array of DmaFence, got ${describeValue(dependencies)}`,
        );
      }
    }
    this.#unfinished++;
    return queue.push(job.id, job.words, options);
  }

  readonly #jobDone = (): void => {
    if (--this.#unfinished === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  };

  /**
   * Declares the device lost: every engine stops, every pending job signals with `ENODEV`,
   * and every later call fails with `ENODEV`. Idempotent.
   */
  async lose(reason = 'lost by request'): Promise<void> {
    if (this.#lostReason !== undefined || this.#state === 'destroyed') return;
    if (this.#state === 'alive') this.#state = 'lost';
    this.#lostReason = reason;
    await this.#stopAll('ENODEV', `device ${this.name} lost: ${reason}`);
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
    await this.#stopAll('ECANCELED', `device ${this.name} destroyed`);
    this.#state = 'destroyed';
  }

  /** Waits until every submitted job has signalled (the watchdog still ends hangs). */
  async #drain(): Promise<void> {
    if (this.#unfinished === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  async #stopAll(code: ErrnoCode, why: string): Promise<void> {
    for (const queue of this.#queues.values()) queue.cancel(code, why);
    await Promise.all(this.engines.map((e) => e.stop(code)));
    for (const load of this.#kernelLoads.values()) load.reject(new DmaBufError(code, `registerKernels: ${why}`));
    this.#kernelLoads.clear();
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

  #queue(kind: string): EngineQueue {
    const queue = this.#queues.get(kind);
    if (queue === undefined) {
      throw new InvalidArgumentError(
        `${this.name}: no engine ${describeValue(kind)}; this device has ${[...this.#queues.keys()].join(', ')}`,
      );
    }
    return queue;
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
