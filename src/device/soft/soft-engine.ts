/**
 * soft-engine: one ring and the worker thread executing it, with hang detection and reset.
 *
 * Overview: a {@link SoftEngine} starts an engine worker (`soft-engine-worker.ts`) on its
 * {@link SoftRing}, passes the device's memory mappings and kernel modules to it, and keeps it
 * healthy. Two things end a worker early, and each is answered with an engine reset
 * ({@link SoftEngine.reset}): a worker that dies (`process.exit`, out of memory, an error outside
 * a kernel), or the scheduler's watchdog finding the ring hung (`soft-job.ts`, through
 * `timedOutJob`). A reset terminates the worker, completes the job it
 * was running with an error (`ETIMEDOUT` for a hang, `EIO` for a crash) and starts a fresh
 * worker on the same ring, which resumes with the next job: the jobs queued behind the guilty
 * one are run, not lost (what the kernel's ring reset does when it re-emits the innocent jobs'
 * commands). The device counts resets and may declare itself lost instead.
 *
 * Models amdgpu's `amdgpu_job_timedout()` and per-ring reset (`amdgpu_ring_reset()` with the
 * re-emission of unprocessed work), with a terminated thread standing for a reset engine.
 *
 * Contract:
 * - A worker keeps the process alive while it boots, not after (it is unref'ed once ready);
 *   pending fences do (see `SoftFenceDriver`).
 * - Events of a worker that was replaced are ignored. Resets are serialized: a reset asked for
 *   while one is running joins it.
 * - {@link SoftEngine.stop} terminates the worker for good; with a code it first signals every
 *   pending fence with it.
 *
 * @example
 * ```ts
 * // Engines are made by SoftDevice; a look at one:
 * import { SoftDevice } from 'dmabuf/node';
 * await using device = new SoftDevice({ engines: { gfx: 1 } });
 * const engine = device.engines[0]!;
 * console.log(engine.name, engine.resets); // gfx.0 0
 * ```
 */

import { DmaBufError, type ErrnoCode } from '../../base/errors.js';
import type { EngineMessage, EngineReport, EngineWorkerData, KernelModule } from './soft-engine-worker.js';
import type { SoftHwFence } from './soft-fence.js';
import { SoftRing } from './soft-ring.js';
import type { SoftWorker, SoftWorkerOptions, WorkerPlatform } from './soft-worker-platform.js';

/** Why an engine was reset. */
export interface SoftResetCause {
  /** The error the guilty job got: `ETIMEDOUT` (hang), `EIO` (crash), or the caller's. */
  readonly code: ErrnoCode;
  /** What happened, for messages and the device's log. */
  readonly reason: string;
  /** Seqno of the job blamed, or 0 when the engine was idle. */
  readonly seqno: number;
}

/** What an engine needs from its device. */
export interface SoftEngineHost {
  readonly platform: WorkerPlatform;
  readonly workerOptions: SoftWorkerOptions;
  /** Memory mappings and kernel modules a new worker starts with. */
  workerState(): { memory: [number, SharedArrayBuffer][]; kernelModules: readonly KernelModule[] };
  /** An engine was reset; `false` when the device gives up (it then stops every engine). */
  engineReset(engine: SoftEngine, cause: SoftResetCause): boolean;
  /** A worker's report (kernel modules loaded). */
  engineReport(engine: SoftEngine, report: EngineReport): void;
}

/** The worker entry, next to this module (`.ts` from sources, `.js` from the package). */
function workerEntry(): URL {
  return new URL(`./soft-engine-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
}

/** One ring and its worker. */
export class SoftEngine {
  /** `<engine>.<index>`, e.g. `compute.1`. */
  readonly name: string;
  /** The engine kind this ring belongs to (`compute`). */
  readonly kind: string;
  readonly ring: SoftRing;
  readonly #host: SoftEngineHost;
  #worker: SoftWorker | null = null;
  #generation = 0;
  /** Reasons to keep the process alive for this worker: see {@link hold}. */
  #holds = 0;
  #booting = false;
  #state: 'running' | 'resetting' | 'stopped' = 'running';
  #resetting: Promise<void> | null = null;
  #resets = 0;
  #lastReset: SoftResetCause | undefined = undefined;
  #ready!: Promise<void>;
  #readyResolve: (() => void) | undefined;

  constructor(host: SoftEngineHost, kind: string, index: number, ringSize: number) {
    this.#host = host;
    this.kind = kind;
    this.name = `${kind}.${index}`;
    this.ring = new SoftRing(this.name, ringSize);
    this.#spawn();
  }

  /** Resolves once the current worker has started (after a reset: the new one). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** True while a reset replaces the worker (the old one is being terminated or the new one started). */
  get resetting(): boolean {
    return this.#state === 'resetting';
  }

  /** Engine resets so far. */
  get resets(): number {
    return this.#resets;
  }

  /** The last reset's cause. */
  get lastReset(): SoftResetCause | undefined {
    return this.#lastReset;
  }

  /** Whether the engine was stopped for good. */
  get stopped(): boolean {
    return this.#state === 'stopped';
  }

  /** Posts a message to the current worker (dropped while none runs: a new one gets the state). */
  post(message: EngineMessage): void {
    this.#worker?.postMessage(message);
  }

  /**
   * Writes a job into the ring (there must be a credit).
   * @throws {DmaBufError} `ENODEV` once stopped.
   */
  emit(kernel: number, words: readonly number[]): SoftHwFence {
    if (this.#state === 'stopped') {
      throw new DmaBufError('ENODEV', `${this.name}: the engine was stopped (device lost or destroyed)`);
    }
    return this.ring.emit(kernel, words);
  }

  #spawn(): void {
    const generation = ++this.#generation;
    if (this.#booting) this.#holds--; // the replaced worker never reported ready
    this.#booting = true;
    this.#ready = new Promise<void>((resolve) => (this.#readyResolve = resolve));
    const state = this.#host.workerState();
    const data: EngineWorkerData = { name: this.name, ring: this.ring.buffer, ...state };
    const current = (): boolean => generation === this.#generation && this.#state === 'running';
    // Booting holds the process open (so awaiting `ready` works); a running worker does not.
    this.#holds++;
    let failure: Error | undefined;
    this.#worker = this.#host.platform.spawn(
      workerEntry(),
      data,
      {
        message: (message) => {
          if (!current()) return;
          const report = message as EngineReport;
          if (report.type === 'ready') {
            this.#booting = false;
            this.release();
            this.#readyResolve?.();
          } else this.#host.engineReport(this, report);
        },
        error: (error) => {
          failure = error;
        },
        exit: (code) => {
          if (!current()) return;
          const why = failure === undefined ? `exited with code ${code}` : `failed: ${failure.message}`;
          void this.reset('EIO', `worker ${this.name} ${why}`);
        },
      },
      { ...this.#host.workerOptions, name: `dmabuf ${this.name}` },
    );
    this.#applyHolds();
  }

  /**
   * Keeps the process alive while the host waits for this engine's worker (it boots, loads a
   * kernel module); {@link release} ends one such wait. Pending fences hold the process anyway.
   */
  hold(): void {
    this.#holds++;
    this.#applyHolds();
  }

  /** Ends a {@link hold}. */
  release(): void {
    if (this.#holds > 0) this.#holds--;
    this.#applyHolds();
  }

  #applyHolds(): void {
    if (this.#holds > 0) this.#worker?.ref();
    else this.#worker?.unref();
  }

  /**
   * Replaces the worker: terminates it, fails the job it was running with `code`, and starts a
   * new worker that resumes after that job. Joins a reset already running.
   */
  reset(code: ErrnoCode, reason: string): Promise<void> {
    if (this.#state === 'resetting') return this.#resetting!;
    if (this.#state === 'stopped') return Promise.resolve();
    this.#state = 'resetting';
    this.#generation++;
    const worker = this.#worker;
    this.#worker = null;
    this.#resetting = (async () => {
      await worker?.terminate();
      if (this.#state !== 'resetting') return; // stopped meanwhile
      const seqno = this.ring.blame(code);
      const cause: SoftResetCause = { code, reason, seqno };
      this.#resets++;
      this.#lastReset = cause;
      this.ring.fences.process(); // the guilty job signals with its error
      if (!this.#host.engineReset(this, cause) || (this.#state as string) === 'stopped') return;
      this.#state = 'running';
      this.#spawn();
    })().finally(() => {
      this.#resetting = null;
    });
    return this.#resetting;
  }

  /**
   * Stops the engine for good: terminates the worker; with `code`, signals every pending fence
   * with it first. Idempotent.
   */
  async stop(code?: ErrnoCode): Promise<void> {
    if (code !== undefined) this.ring.fences.forceCompletion(code);
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#generation++;
    this.#readyResolve?.();
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }

  toString(): string {
    return `SoftEngine(${this.name}, ${this.#state}, ${this.#resets} resets)`;
  }
}
