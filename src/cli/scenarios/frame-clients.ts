/**
 * Frame clients: the steady, ordinary clients of the `hang` and `long-running` scenarios.
 *
 * Overview: each {@link FrameClient} owns a {@link SoftContext} and its own mapped memory, and
 * submits one "frame" (a `matmul` of a seeded size, tens of microseconds to a fraction of a
 * millisecond of engine time) every `periodMs` (with a seeded jitter) on one engine of a
 * {@link SoftDevice}, keeping at most {@link IN_FLIGHT} frames in flight, like a swap chain.
 * Every frame's latency (submit to its fence's signal) and its outcome go to the client's tally;
 * the fences' signal times also place each job on the engine's timeline for the trace (the ring
 * runs its jobs one after the other, so a job starts when it was submitted or when the job
 * before it on the ring finished, whichever is later; a job refused with `ECANCELED` never
 * ran). A hook lets a scenario replace one frame with a job of its own (the hanging job) and
 * react to a frame's error (a client that recreates its guilty context).
 *
 * Contract:
 * - Every random choice comes from `seededRandom(seed)`: the same seed gives the same sizes,
 *   periods and jitter in every run, so a baseline and a disturbed run see the same workload.
 * - {@link runFrameClients} returns once every client has stopped submitting (at `endMs` on the
 *   recorder's clock, or on abort) and every frame it submitted has settled; it never throws for
 *   a frame's error (that is counted), only for a submit the device refused.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * import { Recorder } from '../recorder.js';
 * import { runFrameClients } from './frame-clients.js';
 * await using gpu = new SoftDevice({ engines: { gfx: 1 } });
 * await gpu.ready();
 * const recorder = new Recorder({ trace: false, durationMs: 100 });
 * const engine = { track: recorder.track('gfx.0', 'engine'), lastFinishMs: 0 };
 * const clients = await runFrameClients({
 *   gpu, engineName: 'gfx', recorder, engine, clients: 2, seed: 1, endMs: 50, signal: new AbortController().signal,
 * });
 * console.log(clients.every((c) => c.tally.frames > 0)); // true
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import { seededRandom } from '../../base/random.js';
import type { SoftContext } from '../../device/soft/soft-ctx.js';
import { SoftDevice, type SoftDeviceOptions } from '../../device/soft/soft-device.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import type { Recorder } from '../recorder.js';
import { Samples } from '../stats.js';

/** Frames a client keeps in flight before it waits for the oldest (a triple-buffered swap chain). */
export const IN_FLIGHT = 3;
/** A client submits a frame about this often (ms), with up to a quarter of it as seeded jitter. */
export const FRAME_PERIOD_MS = 4;

/** What one client saw. */
export interface FrameTally {
  /** Frames that completed without an error. */
  frames: number;
  /** Frames whose fence carried an error, by errno code (`ETIMEDOUT`, `ECANCELED`). */
  readonly errors: Map<string, number>;
  /** Latency of every completed frame, submit to signal, in ms. */
  readonly latencyMs: Samples;
  /** `[finish time, latency]` of every completed frame, ms on the recorder's clock. */
  readonly timeline: [number, number][];
}

/** One steady client. */
export interface FrameClient {
  readonly index: number;
  readonly name: string;
  /** Its current context (a scenario may replace a guilty one). */
  context: SoftContext;
  readonly tally: FrameTally;
}

/** The engine the clients share, as the trace sees it. */
export interface FrameEngine {
  /** The recorder's track of the engine's ring. */
  readonly track: number;
  /** When the last job on the ring finished (ms, recorder clock): where the next one starts. */
  lastFinishMs: number;
}

/** A job a scenario submits instead of a frame; `name` labels its slice. */
export interface ReplacementJob {
  readonly name: string;
  readonly fence: DmaFence;
}

export interface FrameClientsOptions {
  readonly gpu: SoftDevice;
  /** The engine every frame runs on (one ring: the clients share it). */
  readonly engineName: string;
  readonly recorder: Recorder;
  readonly engine: FrameEngine;
  readonly clients: number;
  readonly seed: number;
  /** Stop submitting at this time (ms, recorder clock). */
  readonly endMs: number;
  readonly signal: AbortSignal;
  /** Called before each frame; a fence returned replaces the frame (its latency is not a frame's). */
  readonly replaceFrame?: (client: FrameClient, atMs: number) => ReplacementJob | null;
  /** Called when a frame's fence signals with an error (after it was counted). */
  readonly onError?: (client: FrameClient, code: string, atMs: number) => void;
  /** Called with each completed job (frame or replacement) and where it sat on the engine. */
  readonly onJob?: (client: FrameClient, name: string, startMs: number, endMs: number, error: string | null) => void;
}

/**
 * A soft device made with `options`, booted, with the kernel module at `kernels` registered when
 * given; destroyed again if either step fails, so a scenario that could not start leaves nothing.
 */
export async function bootSoftDevice(options: SoftDeviceOptions, kernels?: URL | string): Promise<SoftDevice> {
  const gpu = new SoftDevice(options);
  try {
    await gpu.ready();
    if (kernels !== undefined) await gpu.registerKernels(kernels);
  } catch (err) {
    await gpu.destroy({ cancel: true });
    throw err;
  }
  return gpu;
}

/** The errno code of a fence's error (`EIO` when it has none). */
export function errnoOf(error: Error): string {
  return error instanceof DmaBufError ? error.code : 'EIO';
}

interface Frame {
  readonly fence: DmaFence;
  readonly done: Promise<void>;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // An 'abort' listener added after the abort would never run.
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Runs `clients` steady clients on `gpu` until `endMs`; see the module overview. */
export async function runFrameClients(options: FrameClientsOptions): Promise<FrameClient[]> {
  const { gpu, recorder, engine, signal } = options;
  const clients: FrameClient[] = Array.from({ length: options.clients }, (_, index) => ({
    index,
    name: `client ${index + 1}`,
    context: gpu.createContext({ name: `client-${index + 1}` }),
    tally: { frames: 0, errors: new Map(), latencyMs: new Samples(), timeline: [] },
  }));

  const settle = (client: FrameClient, name: string, fence: DmaFence, submittedMs: number, frame: boolean): Frame => {
    const done = new Promise<void>((resolve) => {
      const finished = (): void => {
        const endMs = recorder.now();
        const startMs = Math.min(endMs, Math.max(submittedMs, engine.lastFinishMs));
        const error = fence.error;
        const code = error === undefined ? null : errnoOf(error);
        // A refused job (a guilty context's) never reached the ring: it does not move the ring's time.
        if (code !== 'ECANCELED') engine.lastFinishMs = Math.max(engine.lastFinishMs, endMs);
        options.onJob?.(client, name, startMs, endMs, code);
        if (frame) {
          if (code === null) {
            client.tally.frames++;
            client.tally.latencyMs.add(endMs - submittedMs);
            client.tally.timeline.push([endMs, endMs - submittedMs]);
          } else {
            client.tally.errors.set(code, (client.tally.errors.get(code) ?? 0) + 1);
            options.onError?.(client, code, endMs);
          }
        }
        resolve();
      };
      if (!fence.addCallback(finished)) finished();
    });
    return { fence, done };
  };

  const loop = async (client: FrameClient): Promise<void> => {
    const random = seededRandom(options.seed * 7919 + client.index + 1);
    // 32, 48 or 64: a 32 KiB to 48 KiB working set per client.
    const dim = 32 + 16 * Math.floor(random() * 3);
    const memory = gpu.map(new SharedArrayBuffer(3 * dim * dim * 4));
    const a = memory.range(0, dim * dim * 4);
    const b = memory.range(dim * dim * 4, dim * dim * 4);
    const c = memory.range(2 * dim * dim * 4, dim * dim * 4);
    const inputs = new Float32Array(memory.buffer, 0, 2 * dim * dim);
    for (let i = 0; i < inputs.length; i++) inputs[i] = Math.floor(random() * 8);
    const inFlight: Frame[] = [];
    let frameNo = 0;
    // Clients start out of phase, as applications do.
    await sleep(random() * FRAME_PERIOD_MS, signal);
    while (!signal.aborted && recorder.now() < options.endMs) {
      if (inFlight.length >= IN_FLIGHT) await inFlight.shift()!.done;
      const atMs = recorder.now();
      const replacement = options.replaceFrame?.(client, atMs) ?? null;
      if (replacement !== null) {
        inFlight.push(settle(client, replacement.name, replacement.fence, atMs, false));
      } else {
        frameNo++;
        const fence = gpu.submit(
          options.engineName,
          'matmul',
          { m: dim, n: dim, k: dim, row0: 0, row1: dim, a, b, c },
          { context: client.context },
        );
        inFlight.push(settle(client, `${client.name} frame ${frameNo}`, fence, atMs, true));
      }
      await sleep(FRAME_PERIOD_MS * (0.875 + random() * 0.25), signal);
    }
    await Promise.all(inFlight.map((f) => f.done));
  };

  await Promise.all(clients.map(loop));
  return clients;
}
