/**
 * Scenario `render`: clients draw frames on the soft device's gfx engine and a compositor on
 * another thread consumes them, all synchronised implicitly through reservation objects.
 *
 * The question: when clients of different weight share one GPU engine, how long does each wait
 * for its frames, and who gets the engine? `--compare sched-policy=fair,fifo,rr` runs the same
 * seeded clients under the scheduler's three entity policies; `--compare ww=wait-die,wound-wait`
 * under the two ww-mutex algorithms of the buffers' reservation locks (seed 003).
 *
 * The workload, stated so it can be argued with: `clients` clients, each a {@link SoftContext}
 * on one {@link SoftDevice} (a gfx and a copy engine, two ring slots each as amdgpu's default
 * `hw_submission`, so jobs wait in the scheduler and its policy decides). Clients take turns at
 * four kinds: `game` (unthrottled, 300 to 400 passes a frame), `video` (60 fps, 60 to 100
 * passes), `tool` (unthrottled, 60 to 100 passes) and `ui` (120 fps, 15 to 25 passes); a pass
 * draws an 8 KiB frame once, about 25 µs on an engine worker here, so a game frame is about 8 ms
 * of engine time and the two unthrottled clients keep the engine busy. Each client has three
 * target buffers (triple buffering) and draws into one once the compositor has released the
 * frame it held; the compositor releases buffers at its display's refresh (240 Hz), all of one
 * refresh at once, so the clients wake together. A frame reads two of three shared textures
 * (drawn per frame), and one frame in eight first uploads a new version of a texture on the copy
 * engine. Per frame the client locks the target, the textures and the uploaded one with one
 * {@link DrmExec}, in an order drawn per frame (so clients that wake together contend, and back
 * off), on locks of the `ww` knob's class; it takes each job's dependencies from the reservation
 * objects (a read waits for the writes, a write for the reads and writes; the compositor's reads
 * come in with the target's share), submits the jobs through the device's schedulers, adds their
 * fences to the reservations, publishes the target's new fence to the compositor thread and
 * unlocks. The compositor (`render-compositor.ts`, a `worker_threads` worker) waits for each frame
 * through the shared buffer's implicit fences, checks every word of it (`render-pattern.ts`) and
 * reports back. Engine time is what the kernels stamp (a timestamp query), not when the host
 * noticed.
 *
 * Measured: frames per client, frame latency (submit to the compositor seeing the frame) p50 and
 * p99 per client, each client's share of the gfx engine, fairness (Jain's index of each client's
 * engine time against its max-min fair share: 1 is fair), engine occupancy, ww back-offs.
 * Checked: every frame's contents, so a frame that ran before the upload it depended on, overtook
 * the next upload, or was overwritten while the compositor read it fails the scenario.
 *
 * @example
 * ```ts
 * // dmabuf run render --clients 4 --duration 3s --compare sched-policy=fair,fifo,rr
 * import { render } from './render.js';
 * console.log(render.knobs); // ['sched-policy', 'ww']
 * ```
 */

import { seededRandom } from '../../base/random.js';
import { Kref } from '../../base/lifecycle.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { sharedNow } from '../../fence/shared-wait.js';
import { DrmExec } from '../../exec/drm-exec.js';
import { type DmaBufShare, shareDmaBuf } from '../../heap/dma-buf-export.js';
import { WwClass } from '../../locking/ww-mutex.js';
import { DmaResv, DmaResvUsage } from '../../resv/dma-resv.js';
import type { SoftContext } from '../../device/soft/soft-ctx.js';
import { SoftDevice } from '../../device/soft/soft-device.js';
import type { SoftBufferRange, SoftMemory } from '../../device/soft/soft-memory.js';
import { nodeWorkerPlatform } from '../../device/soft/soft-worker-node.js';
import { formatValue } from '../format.js';
import type { Recorder } from '../recorder.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';
import { type CompositorReport, RenderCompositor } from './render-compositor.js';
import { frameKey } from './render-pattern.js';

/** Words of a frame (8 KiB) and of a texture (4 KiB). */
const FRAME_WORDS = 2048;
const TEXTURE_WORDS = 1024;
const TEXTURES = 3;
/** Target buffers per client: triple buffering. */
const DEPTH = 3;
/** Ring slots per engine: amdgpu's default hw_submission limit. */
const RING_SLOTS = 2;
const UPLOAD_CHANCE = 1 / 8;
/** The compositor's display: 240 Hz. Buffers are released at its refreshes. */
const REFRESH_MS = 1000 / 240;
/** Timestamp slots for uploads, used in turn. */
const UPLOAD_STAMPS = 64;
/** Longest wait for a frame's fences or a worker, ms. */
const TIMEOUT_MS = 10_000;

/** What kind of load a client is. */
export interface RenderClientKind {
  readonly kind: string;
  /** Frames per second it aims at; null: as fast as the compositor releases its buffers. */
  readonly fps: number | null;
  /** Passes per frame, inclusive range. */
  readonly passes: readonly [number, number];
}

/** The kinds clients take in turn (client i is kind i mod 4). */
export const RENDER_CLIENT_KINDS: readonly RenderClientKind[] = [
  { kind: 'game', fps: null, passes: [300, 400] },
  { kind: 'video', fps: 60, passes: [60, 100] },
  { kind: 'tool', fps: null, passes: [60, 100] },
  { kind: 'ui', fps: 120, passes: [15, 25] },
];

/** Options of {@link createRender}, for tests that show what the checks catch. */
export interface RenderOptions {
  /**
   * Take the textures' implicit dependencies from their reservation objects (default true).
   * Without, frames race with the copy engine's uploads, and the compositor's check fails.
   */
  readonly textureSync?: boolean;
}

/**
 * A buffer the clients lock (what a GEM object is to `DrmExec`): memory, its reservation object
 * (of the `ww` knob's lock class), a reference count.
 */
class RenderBuffer {
  readonly name: string;
  readonly resv: DmaResv;
  readonly memory: SharedArrayBuffer;
  readonly #ref: Kref;

  constructor(name: string, words: number, wwClass: WwClass) {
    this.name = name;
    this.resv = new DmaResv({ wwClass, name });
    this.memory = new SharedArrayBuffer(words * 4);
    this.#ref = new Kref(() => this.resv[Symbol.dispose](), name);
  }

  get(): void {
    this.#ref.get();
  }

  put(): void {
    this.#ref.put();
  }
}

/** One client's state. */
interface Client {
  readonly index: number;
  readonly name: string;
  readonly kind: RenderClientKind;
  readonly passes: number;
  readonly random: () => number;
  readonly context: SoftContext;
  readonly targets: readonly RenderBuffer[];
  readonly targetMemory: readonly SoftMemory[];
  readonly shares: readonly DmaBufShare[];
  /** Per target: resolves when the compositor released the frame it holds. */
  readonly released: (Promise<void> | null)[];
  readonly release: ((() => void) | null)[];
  /** Submit time (wall-clock ms) of each frame in flight, by frame number. */
  readonly inFlight: Map<number, number>;
  readonly latency: Samples;
  frames: number;
  gpuMs: number;
  jobs: number;
}

/** Jain's index of `xs`: 1 when all are equal, 1/n when one has everything. */
export function jainIndex(xs: readonly number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const squares = xs.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares);
}

/**
 * Max-min fair shares of `capacity` among demands (Infinity: takes whatever is left): the
 * smallest demands are met in full, the rest split what remains equally.
 */
export function maxMinShares(demands: readonly number[], capacity: number): number[] {
  const shares = demands.map(() => 0);
  const order = demands.map((d, i) => [d, i] as const).sort((a, b) => a[0] - b[0]);
  let left = capacity;
  for (let k = 0; k < order.length; k++) {
    const [demand, i] = order[k]!;
    const equal = left / (order.length - k);
    shares[i] = Math.min(demand, equal);
    left -= shares[i]!;
  }
  return shares;
}

/** Waits `ms`, or less when `stop` fires. */
function sleep(ms: number, stop: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), stop]).finally(() =>
    clearTimeout(timer),
  );
}

/** Draws an integer in [lo, hi]. */
function between(random: () => number, [lo, hi]: readonly [number, number]): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Fisher-Yates, seeded. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The engine side of the trace: job slices per engine, GPU time per client. */
class EngineTrace {
  readonly #recorder: Recorder;
  readonly #tracks = new Map<string, number>();
  readonly #lastEnd = new Map<string, number>();
  readonly #busy = new Map<string, number>();
  /** performance.now() minus the recorder's clock: fence timestamps are performance.now() ms. */
  readonly #offset: number;
  readonly failures: string[] = [];

  constructor(recorder: Recorder, engines: readonly string[]) {
    this.#recorder = recorder;
    for (const engine of engines) {
      this.#tracks.set(engine, recorder.track(`engine ${engine}`, 'engine'));
      this.#busy.set(engine, 0);
    }
    this.#offset = performance.now() - recorder.now();
  }

  /**
   * Records `fence`'s job once it signals: a slice from its start on the engine to its end, as
   * the kernel stamped them into `stamps` (wall-clock ms).
   */
  track(
    fence: DmaFence,
    engine: string,
    client: Client,
    name: string,
    stamps: Float64Array,
    onGpu?: (ms: number) => void,
  ): void {
    const done = (): void => {
      if (fence.error !== undefined) {
        this.failures.push(`${client.name} ${name}: ${fence.error.message}`);
        return;
      }
      const origin = performance.timeOrigin + this.#offset;
      const end = Math.max(stamps[1]! - origin, 0);
      // Never before the previous job on the engine ended: slices of a track do not overlap.
      const start = Math.min(end, Math.max(stamps[0]! - origin, this.#lastEnd.get(engine) ?? 0));
      this.#lastEnd.set(engine, end);
      const track = this.#tracks.get(engine)!;
      this.#recorder.slice(track, `${client.name}: ${name}`, start, end, { client: client.name });
      this.#recorder.instant(track, `fence ${engine}#${fence.seqno} signaled`, end, { client: client.name });
      this.#busy.set(engine, (this.#busy.get(engine) ?? 0) + (end - start));
      onGpu?.(end - start);
    };
    if (!fence.addCallback(done)) done();
  }

  /** Busy ms per engine so far. */
  busyMs(): ReadonlyMap<string, number> {
    return this.#busy;
  }
}

/** The scenario with `options` (the registered one uses the defaults). */
export function createRender(options: RenderOptions = {}): Scenario {
  const textureSync = options.textureSync ?? true;
  return {
    name: 'render',
    title: 'clients draw frames on the gfx engine for a compositor thread: latency per client, fairness, occupancy',
    knobs: ['sched-policy', 'ww'],
    devices: ['soft'],
    defaultDurationMs: 3000,
    defaultClients: 4,
    inDefaultSet: true,
    run: (ctx) => runRender(ctx, textureSync),
  };
}

export const render: Scenario = createRender();

async function runRender(ctx: ScenarioContext, textureSync: boolean): Promise<void> {
  const { recorder } = ctx;
  const policy = (ctx.knobs['sched-policy'] ?? 'fair') as 'fair' | 'fifo' | 'rr';
  const algorithm = (ctx.knobs.ww ?? 'wait-die') as 'wait-die' | 'wound-wait';
  const wwClass = new WwClass(`render_ww_class (${algorithm})`, algorithm);
  const kernels = new URL(`./render-kernels${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

  const device = new SoftDevice({
    name: 'render',
    engines: { gfx: 1, copy: 1 },
    ringSize: RING_SLOTS,
    policy,
    platform: nodeWorkerPlatform,
  });
  const trace = new EngineTrace(recorder, ['gfx.0', 'copy.0']);
  const compositorTrack = recorder.track('compositor', 'worker');
  const buffers: RenderBuffer[] = [];
  const shares: DmaBufShare[] = [];
  const clients: Client[] = [];
  const errors: string[] = [];
  let compositor: RenderCompositor | null = null;
  let stopNow: () => void = () => {};
  const stop = new Promise<void>((resolve) => (stopNow = resolve));
  let stopping = false;
  const halt = (): void => {
    stopping = true;
    stopNow();
  };
  const onAbort = (): void => halt();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) halt();
  let backoffs = 0;
  let lockAttempts = 0;
  let uploads = 0;
  let loopStart = 0;
  let loopEnd = 0;
  const allLatency = new Samples();
  const versions = new Array<number>(TEXTURES).fill(0);

  try {
    // The engine workers load the kernels while the buffers are made and the compositor starts.
    const kernelsLoaded = device.registerKernels(kernels);
    kernelsLoaded.catch(() => {}); // awaited below; this only keeps an early failure handled
    const textures = Array.from({ length: TEXTURES }, (_, t) => {
      const tex = new RenderBuffer(`texture ${t}`, TEXTURE_WORDS, wwClass);
      buffers.push(tex);
      return tex;
    });
    const textureMemory = textures.map((tex) => device.map(tex.memory));
    // Two f64 stamps (start, end) per target buffer, then a ring of them for uploads: the jobs'
    // timestamp queries. A slot is reused only long after its job ran.
    const stampMemory = device.map(new SharedArrayBuffer(16 * (ctx.clients * DEPTH + UPLOAD_STAMPS)));
    const stampsAt = (index: number): { range: SoftBufferRange; view: Float64Array } => {
      const view = new Float64Array(stampMemory.buffer, index * 16, 2);
      view.fill(0);
      return { range: stampMemory.range(index * 16, 16), view };
    };
    let nextUploadStamp = 0;
    const uploadStamps = () => stampsAt(ctx.clients * DEPTH + (nextUploadStamp++ % UPLOAD_STAMPS));
    for (let i = 0; i < ctx.clients; i++) {
      const kind = RENDER_CLIENT_KINDS[i % RENDER_CLIENT_KINDS.length]!;
      const random = seededRandom((ctx.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
      const name = `${kind.kind} ${i}`;
      const targets = Array.from({ length: DEPTH }, (_, k) => {
        const target = new RenderBuffer(`${name} target ${k}`, FRAME_WORDS, wwClass);
        buffers.push(target);
        return target;
      });
      const clientShares = targets.map((target) =>
        shareDmaBuf({
          name: target.name,
          size: target.memory.byteLength,
          resv: target.resv,
          memory: () => ({ buffer: target.memory, offset: 0 }),
        }),
      );
      shares.push(...clientShares);
      clients.push({
        index: i,
        name,
        kind,
        passes: between(random, kind.passes),
        random,
        context: device.createContext({ name }),
        targets,
        targetMemory: targets.map((t) => device.map(t.memory)),
        shares: clientShares,
        released: targets.map(() => null),
        release: targets.map(() => null),
        inFlight: new Map(),
        latency: new Samples(),
        frames: 0,
        gpuMs: 0,
        jobs: 0,
      });
    }

    let lastStatus = -Infinity;
    const onReport = (report: CompositorReport): void => {
      const client = clients[Math.floor(report.target / DEPTH)]!;
      const submitted = client.inFlight.get(report.frame);
      client.inFlight.delete(report.frame);
      const slot = report.target % DEPTH;
      const release = client.release[slot];
      client.released[slot] = null;
      client.release[slot] = null;
      release?.();
      if (report.error !== null) {
        errors.push(report.error);
        halt();
        return;
      }
      if (submitted === undefined) return;
      const latency = report.seenAt - submitted;
      client.latency.add(latency);
      allLatency.add(latency);
      client.frames++;
      const at = recorder.now();
      recorder.instant(compositorTrack, `${client.name} frame ${report.frame} seen`, at, {
        client: client.name,
        latencyMs: Math.round(latency * 1000) / 1000,
      });
      // The quantile sorts the samples: a status every 100 ms is plenty.
      if (at - lastStatus >= 100) {
        lastStatus = at;
        ctx.progress(
          Math.min(1, (at - loopStart) / ctx.durationMs),
          `${allLatency.count} frames, p99 ${formatValue(allLatency.quantile(0.99), 'ms')}`,
        );
      }
    };
    const starting = RenderCompositor.start({
      seed: ctx.seed,
      texWords: TEXTURE_WORDS,
      targets: shares,
      timeoutMs: TIMEOUT_MS,
      fenceTimeoutMs: TIMEOUT_MS,
      refreshMs: REFRESH_MS,
      onReport,
      onFailure: (error) => {
        errors.push(`the compositor failed: ${error.message}`);
        halt();
      },
    }).then((started) => {
      compositor = started;
      return started;
    });
    // Settled all, so that nothing started is left behind when one of them failed.
    const setup = await Promise.allSettled([starting, kernelsLoaded, device.ready()]);
    for (const step of setup) if (step.status === 'rejected') throw step.reason;
    const uploadContext = device.createContext({ name: 'loader' });
    // Version 0 of every texture, uploaded before the first frame (frames depend on it implicitly).
    for (const [t, tex] of textures.entries()) {
      await using exec = new DrmExec({ wwClass });
      await exec.untilAllLocked(async (e) => e.prepareObj(tex, 1));
      const fence = device.submit(
        'copy',
        'uploadTexture',
        { tex: textureMemory[t]!.range(), seed: ctx.seed, texture: t, version: 0, stamps: uploadStamps().range },
        { context: uploadContext },
      );
      tex.resv.addFence(fence, DmaResvUsage.Write);
    }
    const present = await starting;

    /** Locks, synchronises and submits one frame (and maybe an upload before it). */
    const submitFrame = async (client: Client, frame: number): Promise<void> => {
      const { random } = client;
      const slot = frame % DEPTH;
      const target = client.targets[slot]!;
      const first = Math.floor(random() * TEXTURES);
      const second = (first + 1 + Math.floor(random() * (TEXTURES - 1))) % TEXTURES;
      const read = [first, second] as const;
      const upload = random() < UPLOAD_CHANCE ? Math.floor(random() * TEXTURES) : -1;
      const objects = [target, textures[first]!, textures[second]!];
      if (upload >= 0 && upload !== first && upload !== second) objects.push(textures[upload]!);
      shuffle(objects, random);
      await using exec = new DrmExec({ wwClass });
      let attempts = 0;
      await exec.untilAllLocked(async (e) => {
        attempts++;
        // Two slots each: a texture may get the upload's fence and the frame's.
        for (const obj of objects) await e.prepareObj(obj, 2);
      });
      lockAttempts += attempts;
      backoffs += attempts - 1;
      if (upload >= 0) {
        const tex = textures[upload]!;
        const version = ++versions[upload]!;
        const stamps = uploadStamps();
        // A write waits for every read and write of the texture.
        const fence = device.submit(
          'copy',
          'uploadTexture',
          { tex: textureMemory[upload]!.range(), seed: ctx.seed, texture: upload, version, stamps: stamps.range },
          { context: client.context, dependencies: textureSync ? tex.resv.getFences(DmaResvUsage.Read) : [] },
        );
        tex.resv.addFence(fence, DmaResvUsage.Write);
        uploads++;
        trace.track(fence, 'copy.0', client, `upload texture ${upload} v${version}`, stamps.view);
      }
      // The compositor's reads of this target (from its thread) join the target's fences.
      client.shares[slot]!.pullLocked();
      const dependencies = [...target.resv.getFences(DmaResvUsage.Read)];
      if (textureSync) for (const t of read) dependencies.push(...textures[t]!.resv.getFences(DmaResvUsage.Write));
      const expect = [versions[first]!, versions[second]!] as const;
      const stamps = stampsAt(client.index * DEPTH + slot);
      client.inFlight.set(frame, sharedNow());
      const fence = device.submit(
        'gfx',
        'renderFrame',
        {
          target: client.targetMemory[slot]!.range(),
          tex0: textureMemory[first]!.range(),
          tex1: textureMemory[second]!.range(),
          key: frameKey(ctx.seed, client.index, frame),
          passes: client.passes,
          stamps: stamps.range,
        },
        { context: client.context, dependencies },
      );
      target.resv.addFence(fence, DmaResvUsage.Write);
      for (const t of read) textures[t]!.resv.addFence(fence, DmaResvUsage.Read);
      client.shares[slot]!.publish();
      client.jobs++;
      trace.track(fence, 'gfx.0', client, `frame ${frame}`, stamps.view, (ms) => {
        client.gpuMs += ms;
      });
      present.present({
        target: client.index * DEPTH + slot,
        client: client.index,
        frame,
        textures: read,
        versions: expect,
      });
    };

    const clientLoop = async (client: Client): Promise<void> => {
      const interval = client.kind.fps === null ? 0 : 1000 / client.kind.fps;
      let due = recorder.now();
      for (let frame = 0; !stopping; frame++) {
        const slot = frame % DEPTH;
        const held = client.released[slot];
        if (held !== null) await Promise.race([held, stop]);
        if (interval > 0) {
          const wait = due - recorder.now();
          if (wait > 0) await sleep(wait, stop);
          due = Math.max(due + interval, recorder.now());
        }
        if (stopping || recorder.now() >= loopEnd) break;
        client.released[slot] = new Promise<void>((resolve) => {
          client.release[slot] = resolve;
        });
        await submitFrame(client, frame);
      }
    };

    loopStart = recorder.now();
    loopEnd = loopStart + ctx.durationMs;
    const ender = setTimeout(halt, ctx.durationMs);
    // Every loop ends before teardown, also when one of them failed.
    const loops = await Promise.allSettled(clients.map((c) => clientLoop(c)));
    clearTimeout(ender);
    halt();
    for (const loop of loops) if (loop.status === 'rejected') throw loop.reason;
    // Let the frames in flight reach the compositor (their buffers are released then).
    const drain = recorder.now() + TIMEOUT_MS;
    while (clients.some((c) => c.inFlight.size > 0) && errors.length === 0 && recorder.now() < drain) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (errors.length === 0 && clients.some((c) => c.inFlight.size > 0)) {
      errors.push(`frames still unseen by the compositor after ${TIMEOUT_MS} ms`);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    const end = recorder.now();
    // Set in a callback of the start, which the compiler does not follow.
    await (compositor as RenderCompositor | null)?.stop();
    for (const share of shares) share.close();
    // After a failure the work left is cancelled; otherwise (an abort too) it is let finish.
    await device.destroy({ cancel: errors.length > 0 });
    for (const buffer of buffers) buffer.put();
    loopEnd = end;
  }
  report(ctx, { clients, trace, allLatency, backoffs, lockAttempts, uploads, loopStart, loopEnd, policy });
  const failures = [...errors, ...trace.failures];
  if (failures.length > 0) {
    throw new Error(`${failures.length} frame(s) failed; the first: ${failures[0]}`);
  }
}

/** What {@link report} summarises. */
interface RenderTotals {
  readonly clients: readonly Client[];
  readonly trace: EngineTrace;
  readonly allLatency: Samples;
  readonly backoffs: number;
  readonly lockAttempts: number;
  readonly uploads: number;
  readonly loopStart: number;
  readonly loopEnd: number;
  readonly policy: string;
}

/** States the metrics, the histogram and the notes of a run. */
function report(ctx: ScenarioContext, totals: RenderTotals): void {
  const { recorder } = ctx;
  const { clients, allLatency } = totals;
  const windowMs = Math.max(1, totals.loopEnd - totals.loopStart);
  const frames = clients.reduce((n, c) => n + c.frames, 0);
  recorder.metric('frames', 'frames composited', frames, 'count', 'higher');
  recorder.metric('frame_rate', 'frames per second (all clients)', (frames * 1000) / windowMs, 'per_s', 'higher');
  recorder.metric('latency_p50', 'frame latency p50 (all clients)', allLatency.quantile(0.5), 'ms', 'lower');
  recorder.metric('latency_p99', 'frame latency p99 (all clients)', allLatency.quantile(0.99), 'ms', 'lower');
  const busy = totals.trace.busyMs();
  const gfxMs = busy.get('gfx.0') ?? 0;
  // Each client's demand on the engine: what its frame rate asks for, or all of it when unthrottled.
  const demands = clients.map((c) =>
    c.kind.fps === null || c.jobs === 0 ? Infinity : (c.kind.fps * (c.gpuMs / Math.max(1, c.frames))) / 1000,
  );
  const fair = maxMinShares(demands, gfxMs / windowMs);
  const got = clients.map((c) => c.gpuMs / windowMs);
  const fairness = jainIndex(got.map((g, i) => (fair[i]! > 0 ? g / fair[i]! : 1)));
  recorder.metric('fairness', "fairness (Jain's index, 1 = fair)", fairness, 'ratio', 'higher');
  for (const c of clients) {
    const id = `c${c.index}`;
    recorder.metric(`frames_${id}`, `${c.name}: frames`, c.frames, 'count', 'higher');
    recorder.metric(`latency_p50_${id}`, `${c.name}: latency p50`, c.latency.quantile(0.5), 'ms', 'lower');
    recorder.metric(`latency_p99_${id}`, `${c.name}: latency p99`, c.latency.quantile(0.99), 'ms', 'lower');
    recorder.metric(
      `gpu_share_${id}`,
      `${c.name}: share of gfx time`,
      (100 * c.gpuMs) / Math.max(1e-9, gfxMs),
      'percent',
    );
  }
  for (const [engine, ms] of busy) {
    recorder.metric(`occupancy_${engine.split('.')[0]}`, `${engine} busy`, (100 * ms) / windowMs, 'percent');
  }
  recorder.metric('ww_backoffs', 'ww back-offs (DrmExec retries)', totals.backoffs, 'count', 'lower');
  recorder.metric('uploads', 'texture uploads (copy engine)', totals.uploads, 'count');
  recorder.histogram('frame-latency', 'frame latency (submit to compositor)', 'ms', allLatency);
  const kinds = clients.map(
    (c) => `${c.name} (${c.kind.fps === null ? 'unthrottled' : `${c.kind.fps} fps`}, ${c.passes} passes)`,
  );
  recorder.note(`clients: ${kinds.join(', ')}; scheduler policy ${totals.policy}`);
  recorder.note(
    `${totals.lockAttempts} DrmExec lock rounds for ${clients.reduce((n, c) => n + c.jobs, 0)} frames; ` +
      'every frame composited was checked word for word',
  );
}
