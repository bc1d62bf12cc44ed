/**
 * soft-engine-worker: the engine itself, the code that runs in each engine's worker thread.
 *
 * Overview: an engine worker is the soft device's command processor. It reads job descriptors
 * from its ring in shared memory in seqno order, runs each job's kernel on views of device
 * memory, writes the job's status into its slot, publishes the completed seqno and wakes the
 * host. When the ring is empty it waits on the write pointer with `Atomics.waitAsync`, so its
 * event loop stays free for the host's few messages: memory mappings (`map` / `unmap`) and
 * kernel modules to load (`kernels`). A job that names a mapping or a kernel that has not
 * arrived yet waits for it (the host posted it before publishing the job, so it is on its way).
 *
 * Models the fetch-execute loop of a GPU's command processor writing the fence value back to
 * memory and raising an end-of-pipe interrupt.
 *
 * Contract:
 * - Jobs complete in seqno order, one at a time; `Running` names the job being executed (or the
 *   last one, when not after `Completed`), `Completed` the last finished one, and `Completed` is
 *   stored after the job's status.
 * - The host is woken (`Atomics.notify` on `Completed`) when the engine is about to go idle, and
 *   while it is busy at least every 64 jobs or 20 µs: coalesced, like a GPU's interrupts.
 * - Before waiting for work the engine sets `Idle`, and the host rings the doorbell (notifies
 *   `Submitted`) only then, so a busy engine is never woken for nothing.
 * - A kernel that throws completes its job with status `EIO`; the loop goes on.
 * - A fresh worker (after an engine reset) resumes at `Completed + 1`: the host decides there
 *   what happens to the job that was running when the previous worker died.
 * - The worker never exits by itself; the host terminates it.
 *
 * @example
 * ```ts
 * // Started by the soft device, not imported by applications:
 * //   platform.spawn(new URL('./soft-engine-worker.js', import.meta.url), data, events)
 * import type { EngineWorkerData } from 'dmabuf/soft';
 * const data: Partial<EngineWorkerData> = { name: 'gfx.0' };
 * console.log(data.name);
 * ```
 */

import { ERRNO } from '../../base/errors.js';
import { waitForChange } from '../../fence/shared-wait.js';
import {
  PARAM_ELEMENT_BYTES,
  isSoftKernel,
  viewOf,
  type SoftKernel,
  type SoftKernelArgs,
  type SoftKernelParam,
  type SoftKernelParams,
} from './soft-kernel.js';
import { BUILTIN_KERNELS } from './soft-kernels.js';
import { RingWord, SlotWord, seqnoAfter, slotArg, slotOf, slotWord } from './soft-ring-layout.js';
import type { WorkerEndpoint } from './soft-worker-platform.js';

/** A module of user kernels and the ids the host gave its exports. */
export interface KernelModule {
  readonly url: string;
  readonly ids: Readonly<Record<string, number>>;
}

/** What an engine worker starts with. */
export interface EngineWorkerData {
  readonly name: string;
  readonly ring: SharedArrayBuffer;
  /** Device memory mapped so far, by id. */
  readonly memory: readonly (readonly [number, SharedArrayBuffer])[];
  /** User kernel modules registered so far. */
  readonly kernelModules: readonly KernelModule[];
}

/** Host to worker. */
export type EngineMessage =
  | { readonly type: 'map'; readonly id: number; readonly buffer: SharedArrayBuffer }
  | { readonly type: 'unmap'; readonly id: number }
  | { readonly type: 'kernels'; readonly module: KernelModule };

/** Worker to host. */
export type EngineReport =
  | { readonly type: 'ready' }
  | { readonly type: 'kernels-loaded'; readonly url: string; readonly error?: string };

/** Runs an engine on `endpoint`'s ring until the host terminates the worker. */
export async function main(endpoint: WorkerEndpoint, data: EngineWorkerData): Promise<void> {
  const engine = new EngineLoop(endpoint, data);
  endpoint.onMessage((message) => engine.message(message as EngineMessage));
  for (const module of data.kernelModules) engine.loadKernels(module);
  endpoint.postMessage({ type: 'ready' } satisfies EngineReport);
  await engine.run();
}

const BUILTIN_IDS: readonly SoftKernel[] = Object.values(BUILTIN_KERNELS);

/** A kernel with its parameter list unpacked. */
interface LoadedKernel {
  readonly kernel: SoftKernel;
  readonly params: readonly (readonly [string, SoftKernelParam])[];
}

function loaded(kernel: SoftKernel): LoadedKernel {
  return { kernel, params: Object.entries(kernel.params) };
}

class EngineLoop {
  readonly #endpoint: WorkerEndpoint;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #size: number;
  readonly #memory = new Map<number, SharedArrayBuffer>();
  /** Kernels by id, with their parameter lists unpacked once. */
  readonly #kernels = new Map<number, LoadedKernel>();
  /** Jobs completed since the host was last woken, and when that was (see {@link #complete}). */
  #unannounced = 0;
  #announcedAt = 0;
  /** Resolvers of jobs waiting for a mapping or a kernel that has not arrived yet. */
  readonly #arrivals: (() => void)[] = [];

  constructor(endpoint: WorkerEndpoint, data: EngineWorkerData) {
    this.#endpoint = endpoint;
    this.#i32 = new Int32Array(data.ring);
    this.#f64 = new Float64Array(data.ring);
    this.#size = this.#i32[RingWord.Size]!;
    for (const [id, buffer] of data.memory) this.#memory.set(id, buffer);
    for (const [i, kernel] of BUILTIN_IDS.entries()) this.#kernels.set(i + 1, loaded(kernel));
  }

  message(message: EngineMessage): void {
    switch (message.type) {
      case 'map':
        this.#memory.set(message.id, message.buffer);
        this.#arrived();
        break;
      case 'unmap':
        this.#memory.delete(message.id);
        break;
      case 'kernels':
        this.loadKernels(message.module);
        break;
    }
  }

  loadKernels(module: KernelModule): void {
    import(module.url).then(
      (exports: Record<string, unknown>) => {
        for (const [name, id] of Object.entries(module.ids)) {
          const kernel = exports[name];
          if (isSoftKernel(kernel)) this.#kernels.set(id, loaded(kernel));
        }
        this.#arrived();
        this.#endpoint.postMessage({ type: 'kernels-loaded', url: module.url } satisfies EngineReport);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err.message : String(err);
        this.#endpoint.postMessage({ type: 'kernels-loaded', url: module.url, error } satisfies EngineReport);
      },
    );
  }

  #arrived(): void {
    for (const wake of this.#arrivals.splice(0)) wake();
  }

  async run(): Promise<void> {
    const i32 = this.#i32;
    let next = (Atomics.load(i32, RingWord.Completed) + 1) | 0;
    for (;;) {
      const submitted = Atomics.load(i32, RingWord.Submitted);
      while (!seqnoAfter(next, submitted)) {
        const waiting = this.#execute(next);
        if (waiting !== undefined) await waiting;
        next = (next + 1) | 0;
      }
      this.#announce();
      // Going idle: say so, so the host rings the doorbell; look once more, then wait.
      Atomics.store(i32, RingWord.Idle, 1);
      if (Atomics.load(i32, RingWord.Submitted) === submitted) {
        const change = waitForChange(i32, RingWord.Submitted, submitted);
        if (change !== undefined) await change;
      }
      Atomics.store(i32, RingWord.Idle, 0);
    }
  }

  /** Runs job `seqno`; returns a promise only when it has to wait for a mapping or a kernel. */
  #execute(seqno: number): Promise<void> | undefined {
    const i32 = this.#i32;
    const slot = slotOf(seqno, this.#size);
    Atomics.store(i32, RingWord.Running, seqno);
    const kernel = this.#kernels.get(i32[slotWord(slot, SlotWord.Kernel)]!);
    if (kernel === undefined) return this.#later(seqno);
    const args: Record<string, SoftKernelArgs<SoftKernelParams>[string]> = {};
    let word = 0;
    for (const [name, kind] of kernel.params) {
      if (kind === 'number') {
        args[name] = this.#f64[slotArg(slot, word++)]!;
        continue;
      }
      const buffer = this.#memory.get(this.#f64[slotArg(slot, word)]!);
      if (buffer === undefined) return this.#later(seqno);
      const offset = this.#f64[slotArg(slot, word + 1)]!;
      const length = this.#f64[slotArg(slot, word + 2)]!;
      word += 3;
      if (offset + length > buffer.byteLength || length % PARAM_ELEMENT_BYTES[kind] !== 0) {
        return this.#complete(slot, seqno, ERRNO.EINVAL);
      }
      args[name] = viewOf(kind, buffer, offset, length);
    }
    // A heartbeat only (one writer: this engine); no need for an atomic read-modify-write.
    i32[RingWord.Started]!++;
    let status = 0;
    try {
      kernel.kernel.run(args);
    } catch {
      status = ERRNO.EIO;
    }
    return this.#complete(slot, seqno, status);
  }

  /** Wakes the host for the completions since the last wake. */
  #announce(): void {
    if (this.#unannounced === 0) return;
    this.#unannounced = 0;
    this.#announcedAt = performance.now();
    Atomics.notify(this.#i32, RingWord.Completed);
  }

  #later(seqno: number): Promise<void> {
    return new Promise<void>((resolve) => this.#arrivals.push(resolve)).then(() => this.#execute(seqno));
  }

  /**
   * Publishes job `seqno` as done. The host is woken at once when the engine is about to go
   * idle (see {@link run}), and in between after 64 jobs or 20 µs, whichever comes first: an
   * interrupt per job would cost the host a wake per job, none until idle would hold long
   * jobs' fences back behind short ones.
   */
  #complete(slot: number, seqno: number, status: number): undefined {
    const i32 = this.#i32;
    i32[slotWord(slot, SlotWord.Status)] = status;
    // `Running` keeps this seqno: at or below `Completed` it means idle.
    Atomics.store(i32, RingWord.Completed, seqno);
    if (++this.#unannounced >= 64 || performance.now() - this.#announcedAt > 0.02) this.#announce();
    return undefined;
  }
}
