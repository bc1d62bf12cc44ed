/**
 * Scenario `release-storm`: seed 004's question on a live device. Clients release buffer objects
 * while their jobs still use them, under a VRAM budget that new buffers can only fit by taking
 * the memory of released ones.
 *
 * The question (seed 004): a buffer object put while a job still uses it becomes a zombie that
 * keeps its memory until the job ends; the TTM device's delayed delete frees it then. Since Linux
 * 6.3 that is a work item per zombie, sleeping until its buffer is idle, on a queue running at
 * most 16 at once (`per-object`); before, one list walked every 10 ms (`periodic-scan`). The
 * reviewer asked what a storm of such releases does; `per-object-idle` queues each item only once
 * its buffer is idle, so no sleeping item holds a slot. `--compare
 * delayed-delete=per-object,per-object-idle,periodic-scan` runs the same seeded storm on each.
 *
 * The workload, stated so it can be argued with: a soft device with `gfx`, `compute` and `copy`
 * engines and VRAM of the budget. `clients` clients (default 4), each a loop: create a buffer
 * object in VRAM (sizes drawn per buffer: 1/64 of the budget 40 %, 1/32 30 %, 1/16 20 %, 1/8
 * 10 %), submit a `fill` job writing it and a `reduce` job reading it (a sum), both on one engine drawn
 * per buffer (gfx or compute, so buffers become idle out of their release order), and put it at
 * once, while both jobs are queued or running: every put is a release of a busy buffer. A client
 * keeps at most 8 buffers' jobs in flight (waiting for its oldest before it goes on), so about
 * 1.3 budgets of buffers are in flight: a new buffer fits only once released ones are freed, by
 * the delayed delete or by the allocation itself (TTM's eviction walk waits for a zombie's fences
 * and frees it, as `ttm_bo_evict_cb` does).
 *
 * Measured: reclaim latency (put to memory free again) and its part after the buffer became idle
 * (last job's fence to free), zombies over time and their peak, VRAM held by live buffers, busy
 * zombies and idle zombies (free in principle, not usable yet) over time, allocation latency,
 * allocations that found no room and had to wait for reclaim, allocations refused, buffers per
 * second, the peak of running delayed-delete work items. Checked: every sum matches the fill
 * (a zombie's memory reused before its jobs ended would fail it), no zombie is freed before its
 * jobs signalled, and at the end every zombie was freed, no memory is in use (VRAM, TT, System)
 * and no buffer object is left; otherwise the scenario throws.
 *
 * @example
 * ```ts
 * // dmabuf run release-storm --duration 3s --compare delayed-delete=per-object,per-object-idle,periodic-scan
 * import { releaseStorm } from './release-storm.js';
 * console.log(releaseStorm.knobs); // ['delayed-delete']
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import { seededRandom } from '../../base/random.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { PAGE_SIZE } from '../../heap/page-pool.js';
import { toDrmSchedFence } from '../../sched/sched-fence.js';
import { SoftDevice, type SoftDeviceOptions } from '../../device/soft/soft-device.js';
import type { SoftMemory } from '../../device/soft/soft-memory.js';
import { nodeWorkerPlatform } from '../../device/soft/soft-worker-node.js';
import type { TtmDelayedDeleteMode } from '../../ttm/ttm-bo-delayed-delete.js';
import type { TtmBufferObject } from '../../ttm/ttm-bo.js';
import { TtmMemType } from '../../ttm/ttm-placement.js';
import { formatValue } from '../format.js';
import type { Recorder } from '../recorder.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';

/** Buffer sizes as fractions of the budget, and their weights (percent). */
export const STORM_SIZES: readonly { readonly fraction: number; readonly weight: number }[] = [
  { fraction: 1 / 64, weight: 40 },
  { fraction: 1 / 32, weight: 30 },
  { fraction: 1 / 16, weight: 20 },
  { fraction: 1 / 8, weight: 10 },
];
/** Buffers whose jobs a client keeps in flight. */
export const IN_FLIGHT = 8;
const ENGINES = ['gfx', 'compute'] as const;
const SAMPLES = 200;
/** Bytes the fill jobs write: as f32 words, finite and different, so memory reused too early shows. */
const FILL_VALUES = [0x11, 0x3c, 0x5a, 0x77, 0x96, 0xa5, 0xc3, 0xf0] as const;
/** How long the end waits for the last zombies before it calls them left over. */
const DRAIN_LIMIT_MS = 5000;

function drawSize(random: () => number, budgetBytes: number): number {
  let pick = random() * 100;
  let fraction = STORM_SIZES[0]!.fraction;
  for (const size of STORM_SIZES) {
    fraction = size.fraction;
    pick -= size.weight;
    if (pick < 0) break;
  }
  return Math.max(PAGE_SIZE, Math.floor((budgetBytes * fraction) / PAGE_SIZE) * PAGE_SIZE);
}

/** A released buffer whose memory is not free yet. */
interface Zombie {
  readonly size: number;
  readonly releasedAt: number;
  /** Its last job: the buffer is idle once this signalled. */
  readonly lastJob: DmaFence;
}

/** A buffer's jobs in flight: the sum to check once they ran. */
interface InFlight {
  readonly done: DmaFence;
  readonly slot: number;
  readonly size: number;
  readonly value: number;
}

/** Totals shared by the clients, the reclaim listener and the sampler. */
interface Tally {
  buffers: number;
  bytes: number;
  zombiesMade: number;
  /** Zombies whose memory is not free yet (the ones the device reported by `onReclaim` are gone). */
  readonly zombies: Map<TtmBufferObject, Zombie>;
  zombieBytes: number;
  zombiesPeak: number;
  allocWaits: number;
  allocFailures: number;
  badSums: number;
  /** Zombies freed before their last job signalled (a bug of the stack). */
  early: string[];
  /** Reclaims of buffers the clients never released (a bug of the stack). */
  strays: number;
  /** Bytes x ms held by zombies, from release to free, and from idle to free. */
  zombieByteMs: number;
  idleByteMs: number;
  readonly allocUs: Samples;
  readonly reclaimMs: Samples;
  readonly idleToFreeMs: Samples;
}

/**
 * What `reduce` sums to over `size` bytes of `value`: `size / 4` copies of the f32 those four
 * bytes make, exactly (at most 2^21 terms of a 24-bit mantissa stay within float64's 53 bits).
 */
export function expectedSum(size: number, value: number): number {
  const word = new Float32Array(new Uint8Array(4).fill(value).buffer)[0]!;
  return (size / 4) * word;
}

/** `ms` rounded to the microsecond. */
const onGrid = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Draws engine slices from job fences: a ring runs one job at a time, in order. */
class EngineTracks {
  readonly #tracks = new Map<string, { id: number; lastEnd: number }>();

  constructor(
    private readonly recorder: Recorder,
    engines: readonly string[],
  ) {
    for (const name of engines) this.#tracks.set(name, { id: recorder.track(`${name}.0`, 'engine'), lastEnd: 0 });
  }

  /** Records `fence`'s job on `engine` once it finished. */
  watch(engine: string, fence: DmaFence, name: string, client: number, bytes: number): void {
    const track = this.#tracks.get(engine)!;
    const origin = performance.now() - this.recorder.now();
    const record = (): void => {
      // Fences of a ring signal in ring order; clamping keeps the track's slices apart even when
      // two of them carry timestamps out of order.
      // On a microsecond grid: the trace writes start + (end - start), which off the grid can
      // round a touching slice's start to before the previous end.
      const end = Math.max(track.lastEnd, onGrid((fence.timestamp ?? performance.now()) - origin));
      const scheduled = toDrmSchedFence(fence)?.scheduled.timestamp;
      const start = Math.max(track.lastEnd, Math.min(end, scheduled === undefined ? end : onGrid(scheduled - origin)));
      this.recorder.slice(track.id, name, start, end, { client: `client ${client + 1}`, bytes });
      track.lastEnd = end;
    };
    if (!fence.addCallback(record)) record();
  }
}

async function client(
  ctx: ScenarioContext,
  gpu: SoftDevice,
  index: number,
  tally: Tally,
  engines: EngineTracks,
  untilMs: number,
): Promise<void> {
  const { recorder, signal } = ctx;
  const random = seededRandom(ctx.seed * 31 + index + 1);
  const track = recorder.track(`client ${index + 1}`, 'client');
  const vram = gpu.ttm!.manager(TtmMemType.VRAM)!;
  const out: SoftMemory = gpu.map(new SharedArrayBuffer(8 * IN_FLIGHT));
  const sums = new Float64Array(out.buffer);
  const free = Array.from({ length: IN_FLIGHT }, (_, i) => i);
  const inFlight: InFlight[] = [];
  const retire = async (): Promise<void> => {
    const oldest = inFlight.shift()!;
    await oldest.done.wait();
    if (oldest.done.error !== undefined) throw oldest.done.error;
    if (sums[oldest.slot] !== expectedSum(oldest.size, oldest.value)) tally.badSums++;
    free.push(oldest.slot);
  };
  try {
    while (!signal.aborted && recorder.now() < untilMs) {
      if (inFlight.length >= IN_FLIGHT) await retire();
      const size = drawSize(random, ctx.budgetBytes);
      const value = FILL_VALUES[Math.floor(random() * FILL_VALUES.length)]!;
      const engine = ENGINES[Math.floor(random() * ENGINES.length)]!;
      const waits = vram.usage + size > vram.size;
      const t0 = performance.now();
      let bo: TtmBufferObject;
      try {
        bo = await gpu.createBuffer({ size, name: `c${index + 1}.${tally.buffers}` });
      } catch (err) {
        if (!(err instanceof DmaBufError) || (err.code !== 'ENOMEM' && err.code !== 'ENOSPC')) throw err;
        // Everything in VRAM was in use by others' submissions: wait for our oldest and try again.
        tally.allocFailures++;
        recorder.instant(track, 'allocation refused', recorder.now(), { bytes: size });
        if (inFlight.length > 0) await retire();
        else await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      tally.allocUs.add((performance.now() - t0) * 1000);
      if (waits) {
        tally.allocWaits++;
        recorder.instant(track, 'allocation waited for reclaim', recorder.now(), {
          bytes: size,
          us: Math.round((performance.now() - t0) * 1000),
        });
      }
      const slot = free.pop()!;
      let last: DmaFence | undefined;
      try {
        last = await gpu.execute(engine, 'fill', { dst: bo, value });
        engines.watch(engine, last, 'fill', index, size);
        last = await gpu.execute(engine, 'reduce', { src: bo, out: out.range(slot * 8, 8) });
        engines.watch(engine, last, 'reduce', index, size);
      } finally {
        const releasedAt = performance.now();
        bo.put();
        // Nearly always busy: both jobs were only just queued. One that already ran is freed at once.
        if (bo.deleted && last !== undefined) {
          tally.zombies.set(bo, { size, releasedAt, lastJob: last });
          tally.zombieBytes += size;
          tally.zombiesMade++;
          tally.zombiesPeak = Math.max(tally.zombiesPeak, tally.zombies.size);
        }
      }
      inFlight.push({ done: last, slot, size, value });
      tally.buffers++;
      tally.bytes += size;
      // A macrotask turn per buffer: allocation and submission can resolve in microtasks alone,
      // which would starve the timers (the sampler, and the periodic scan under comparison).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    // Whatever happened, let the jobs end before the device goes; their sums still count.
    while (inFlight.length > 0) await retire();
  }
}

/**
 * The release-storm scenario on devices made by `open` (a plain {@link SoftDevice} by default;
 * tests pass one that leaks a buffer to see the end-of-run accounting fail the scenario).
 */
export function releaseStormScenario(
  open: (options: SoftDeviceOptions) => SoftDevice = (options) => new SoftDevice(options),
): Scenario {
  return {
    name: 'release-storm',
    title: 'seed 004 on a live device: busy buffers released in a storm; reclaim latency, zombies, memory held',
    knobs: ['delayed-delete'],
    devices: ['soft'],
    defaultDurationMs: 3000,
    defaultClients: 4,
    inDefaultSet: true,
    async run(ctx) {
      const { recorder } = ctx;
      const mode = (ctx.knobs['delayed-delete'] ?? 'per-object') as TtmDelayedDeleteMode;
      const tally: Tally = {
        buffers: 0,
        bytes: 0,
        zombiesMade: 0,
        zombies: new Map(),
        zombieBytes: 0,
        zombiesPeak: 0,
        allocWaits: 0,
        allocFailures: 0,
        badSums: 0,
        early: [],
        strays: 0,
        zombieByteMs: 0,
        idleByteMs: 0,
        allocUs: new Samples(),
        reclaimMs: new Samples(),
        idleToFreeMs: new Samples(),
      };
      const gpu = open({
        name: 'release-storm',
        platform: nodeWorkerPlatform,
        engines: { gfx: 1, compute: 1, copy: 1 },
        vramBytes: ctx.budgetBytes,
        delayedDelete: mode,
      });
      const ttm = gpu.ttm!;
      const vram = ttm.manager(TtmMemType.VRAM)!;
      const memory = recorder.series(
        {
          kind: 'stacked',
          id: 'memory',
          title: 'VRAM held: live buffers, busy zombies, idle zombies not freed yet',
          unit: 'bytes',
          limit: { label: 'budget', value: ctx.budgetBytes },
          counter: 'vram',
        },
        ['live', 'zombies, busy', 'zombies, idle'],
      );
      const zombieChart = recorder.series(
        {
          kind: 'lines',
          id: 'zombies',
          title: 'zombies (released, memory not free yet)',
          unit: 'count',
          counter: 'zombies',
        },
        ['zombies', 'of them idle', 'delayed-delete items running'],
      );
      const system = recorder.track('ttm delayed delete', 'system');
      const engines = new EngineTracks(recorder, ENGINES);
      const origin = performance.now() - recorder.now();
      const listener = ttm.onReclaim((bo, at) => {
        const zombie = tally.zombies.get(bo);
        if (zombie === undefined) {
          tally.strays++;
          return;
        }
        tally.zombies.delete(bo);
        tally.zombieBytes -= zombie.size;
        const idleAt = zombie.lastJob.timestamp;
        if (idleAt === undefined) {
          tally.early.push(`${bo.name} was freed while its last job (${zombie.lastJob.describe()}) had not signalled`);
          return;
        }
        tally.reclaimMs.add(at - zombie.releasedAt);
        tally.idleToFreeMs.add(Math.max(0, at - idleAt));
        // Exact, not sampled: each zombie's bytes for as long as it held them.
        tally.zombieByteMs += zombie.size * (at - zombie.releasedAt);
        tally.idleByteMs += zombie.size * Math.max(0, at - idleAt);
        recorder.instant(system, 'reclaim', at - origin, { buffer: bo.name, bytes: zombie.size });
      });
      let heldIdlePeak = 0;
      const sample = (): void => {
        const at = recorder.now();
        let idle = 0;
        let idleBytes = 0;
        for (const z of tally.zombies.values()) {
          if (z.lastJob.timestamp !== undefined) {
            idle++;
            idleBytes += z.size;
          }
        }
        const live = Math.max(0, vram.usage - tally.zombieBytes);
        memory.sample(at, [live, tally.zombieBytes - idleBytes, idleBytes]);
        zombieChart.sample(at, [tally.zombies.size, idle, ttm.wq.active]);
        heldIdlePeak = Math.max(heldIdlePeak, idleBytes);
        ctx.progress(
          Math.min(1, Math.max(0, at - startMs) / ctx.durationMs),
          `${formatValue(tally.buffers, 'count')} buffers, ${tally.zombies.size} zombies, ` +
            `${formatValue(vram.usage, 'bytes')} held`,
        );
      };
      let sampler: ReturnType<typeof setInterval> | undefined;
      let drainedMs = 0;
      let stormEndMs = 0;
      let clientsEndMs = 0;
      let startMs = 0;
      let teardownError: string | undefined;
      let endState = { zombies: 0, held: [] as string[], bos: 0, evictions: 0 };
      try {
        await gpu.ready();
        ttm.wq.resetPeak();
        // The workers' start (about a second from source) is not part of the storm or its charts.
        startMs = recorder.now();
        sample();
        sampler = setInterval(sample, Math.max(5, ctx.durationMs / SAMPLES));
        const untilMs = startMs + ctx.durationMs;
        const clients = Array.from({ length: ctx.clients }, (_, i) => client(ctx, gpu, i, tally, engines, untilMs));
        const settled = await Promise.allSettled(clients);
        clientsEndMs = recorder.now();
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        // Every job has ended; the zombies go as the design frees them, measured like the others.
        const end = performance.now();
        // A zombie's memory goes before its work item ends: wait for both.
        while ((tally.zombies.size > 0 || ttm.zombies > 0) && performance.now() - end < DRAIN_LIMIT_MS) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        drainedMs = performance.now() - end;
        stormEndMs = recorder.now();
        sample();
        const stats = ttm.stats();
        // Read before the device's teardown, which would wait for any zombie left.
        const held = [TtmMemType.System, TtmMemType.TT, TtmMemType.VRAM].map((type) => ttm.manager(type));
        endState = {
          zombies: stats.zombies,
          // Live buffers may have been evicted to TT or System: memory anywhere counts.
          held: held.map((man) => (man === null || man.usage === 0 ? '' : `${man.name} ${man.usage}`)).filter(Boolean),
          bos: stats.boCount,
          evictions: stats.evictions,
        };
      } finally {
        clearInterval(sampler);
        listener[Symbol.dispose]();
        // A teardown that finds buffers still referenced is one more problem of the run, said below.
        teardownError = await gpu.destroy().then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
      }
      const seconds = Math.max(1, clientsEndMs - startMs) / 1000;
      recorder.metric('buffers', 'buffers released busy', tally.zombiesMade, 'count');
      recorder.metric('buffer_rate', 'buffers per second', tally.buffers / seconds, 'per_s', 'higher');
      recorder.metric('reclaim_p50', 'reclaim p50 (put to free)', tally.reclaimMs.quantile(0.5), 'ms', 'lower');
      recorder.metric('reclaim_p99', 'reclaim p99 (put to free)', tally.reclaimMs.quantile(0.99), 'ms', 'lower');
      recorder.metric('idle_free_p50', 'idle to free p50', tally.idleToFreeMs.quantile(0.5), 'ms', 'lower');
      recorder.metric('idle_free_p99', 'idle to free p99', tally.idleToFreeMs.quantile(0.99), 'ms', 'lower');
      recorder.metric('zombies_peak', 'zombies, peak', tally.zombiesPeak, 'count', 'lower');
      const elapsedMs = Math.max(1, stormEndMs - startMs);
      recorder.metric(
        'zombie_held_mean',
        'VRAM held by zombies, mean',
        tally.zombieByteMs / elapsedMs,
        'bytes',
        'lower',
      );
      recorder.metric('idle_held_mean', 'held by idle zombies, mean', tally.idleByteMs / elapsedMs, 'bytes', 'lower');
      recorder.metric('idle_held_peak', 'held by idle zombies, peak (sampled)', heldIdlePeak, 'bytes', 'lower');
      recorder.metric('alloc_p50', 'allocation p50', tally.allocUs.quantile(0.5), 'us', 'lower');
      recorder.metric('alloc_p99', 'allocation p99', tally.allocUs.quantile(0.99), 'us', 'lower');
      recorder.metric('alloc_waits', 'allocations that waited for reclaim', tally.allocWaits, 'count', 'lower');
      recorder.metric('alloc_failures', 'allocations refused', tally.allocFailures, 'count', 'lower');
      recorder.metric('evictions', 'evictions of live buffers', endState.evictions, 'count');
      recorder.metric('work_peak', 'delayed-delete items running, peak', ttm.wq.peakActive, 'count');
      recorder.histogram('reclaim-latency', 'reclaim latency (put to memory free)', 'ms', tally.reclaimMs);
      recorder.note(
        `design: ${mode}; ${ctx.clients} clients, ${IN_FLIGHT} buffers in flight each, buffers of 1/64 to 1/8 of a ` +
          `${formatValue(ctx.budgetBytes, 'bytes')} VRAM budget; the last zombies went ${drainedMs.toFixed(1)} ms ` +
          'after the last job',
      );
      const problems: string[] = [];
      if (tally.badSums > 0) problems.push(`${tally.badSums} sum(s) did not match their fill`);
      if (tally.early.length > 0) problems.push(tally.early.slice(0, 3).join('; '));
      if (tally.strays > 0) problems.push(`${tally.strays} reclaim(s) of buffers no client released`);
      if (tally.zombies.size > 0) {
        problems.push(`${tally.zombies.size} zombie(s) still held memory ${DRAIN_LIMIT_MS} ms after the last job`);
      }
      if (endState.zombies > 0) problems.push(`the delayed delete still had ${endState.zombies} zombie(s) at the end`);
      if (endState.held.length > 0) {
        problems.push(`memory was still in use at the end (${endState.held.join(', ')} bytes), expected none`);
      }
      if (endState.bos !== 0) problems.push(`${endState.bos} buffer object(s) were left at the end`);
      if (teardownError !== undefined) problems.push(`the device's teardown failed: ${teardownError}`);
      if (ttm.failures.length > 0) problems.push(`TTM reported: ${ttm.failures.map((f) => f.what).join('; ')}`);
      if (problems.length > 0) throw new Error(`release-storm (${mode}): ${problems.join('; ')}`);
      recorder.note(
        `all ${formatValue(tally.zombiesMade, 'count')} zombies were freed after their jobs, every sum matched, ` +
          'no memory is left in use',
      );
    },
  };
}

export const releaseStorm: Scenario = releaseStormScenario();
