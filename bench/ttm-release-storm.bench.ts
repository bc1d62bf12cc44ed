/**
 * Benchmark: 10,000 busy buffer objects released at once (seed 004's reviewer's worry).
 *
 * Question: reviewing seed 004 (one delayed-delete work item per zombie, each sleeping on its
 * zombie's reservation object), Felix Kuehling asked about "a lot of sleeping worker threads"
 * when many buffers are freed at the same time (a process that exits or crashes). The device's
 * work queue runs at most 16 items at once (`alloc_workqueue(.., 16)`), so the number of sleepers
 * is bounded; but a sleeping item holds its slot until its own fence signals, so zombies whose
 * fences signal early can wait behind 16 whose fences signal late (head-of-line blocking). What
 * happens to the number of running items, the time until everything is freed, the memory held,
 * and the reclaim latency, compared with the 10 ms periodic scan it replaced?
 *
 * Workload ({@link stormRun}), on a fresh device per run: `count` one-page VRAM objects, each busy
 * with a Write fence of its own (made untimed). All get their last `put()` in one synchronous
 * loop (all become zombies, queued in that order). Then a driver loop on the real clock wakes
 * every millisecond (`setTimeout(1)`) and signals the fences due by then: fence k of the signal
 * order is due at k * window / count, so they signal evenly over the window. Two orders:
 * - `random` (seeded): fences of a crashed process finish in no particular order relative to the
 *   order their objects were released; the question's case, with the targets;
 * - `release`: fence k belongs to the k-th released object, the order the queue starts items in,
 *   so head-of-line blocking cannot occur; diagnostic.
 * `--quick` runs 2,000 objects over 250 ms instead of 10,000 over 1 s and says so in the rows.
 *
 * Measured per run: peak running work items (`device.wq.peakActive`), per-object reclaim latency
 * (`onReclaim` time minus `fence.timestamp`, p50 and p99 over the objects), time from the first
 * `put()` to the last reclaim, bytes held by zombies whose fences have signalled (the manager's
 * usage minus the bytes of objects whose fences are still pending: memory that is free in
 * principle but not usable yet), sampled by the driver at the start of each tick (after the
 * previous tick's microtasks, so an immediate free is not counted), its peak and its integral,
 * and the growth of V8's used heap over its level before the release (sampled each tick,
 * garbage included), and the longest gap between two driver ticks (event-loop stalls).
 *
 * In random order a third design runs too: `'per-object-idle'`, which queues each work item only
 * once its buffer is idle, so no item sleeps in a slot (the fix this benchmark suggested).
 *
 * Target: peak running work items of the per-object design <= maxActive (16). Latency, time and
 * memory rows have no target: they show the cost of the bound honestly, either way.
 *
 * Contract: a run throws unless every object became a zombie at its put, every zombie was
 * reclaimed after its fence signalled, and the manager's usage is back to zero at the end.
 *
 * @example
 * ```ts
 * // npm run bench -- ttm-release-storm
 * import { definition } from './ttm-release-storm.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { getHeapStatistics } from 'node:v8';
import type { DmaFence } from '../src/fence/dma-fence.js';
import { fenceContextAlloc } from '../src/fence/dma-fence.js';
import { PAGE_SIZE } from '../src/heap/page-pool.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import {
  defaultEnv,
  quantile,
  seededRandom,
  settle,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
} from './harness.js';
import {
  attachFence,
  benchFence,
  bytesRow,
  countRow,
  latencyRow,
  makeBos,
  mib,
  ms,
  recordReclaims,
  signalAll,
  sleep,
  withDevice,
} from './ttm-common.js';
import type { DelayedDeleteDesign } from './ttm-reclaim.bench.js';

export const SEED = 0x5707_0004;
/** The work queue limit of the seed (`alloc_workqueue("ttm", .., 16)`). */
export const MAX_ACTIVE = 16;
export const SCAN_INTERVAL_MS = 10;

/** Which fence signals k-th. */
export type SignalOrder = 'random' | 'release';

/** The shape of one storm. */
export interface StormSpec {
  readonly design: DelayedDeleteDesign;
  readonly count: number;
  readonly windowMs: number;
  readonly order: SignalOrder;
  readonly seed: number;
}

/** What one storm measured. */
export interface StormRun {
  /** Per object: reclaim time minus fence signal time, ms. */
  readonly latenciesMs: Float64Array;
  readonly peakActive: number;
  /** The synchronous loop of `put()` calls, ms. */
  readonly releaseMs: number;
  /** From the first `put()` to the last reclaim, ms. */
  readonly allFreedMs: number;
  /** From the first `put()` to the last signal, ms. */
  readonly lastSignalMs: number;
  /** Peak of (manager usage - bytes of objects whose fence is pending), bytes. */
  readonly peakHeldSignaled: number;
  /** Integral of the same over the run, MiB x ms. */
  readonly heldSignaledMiBms: number;
  /** Manager usage at the first tick after half the fences signalled, bytes. */
  readonly heldAtHalf: number;
  /** Peak used heap minus the level before the release, bytes (garbage included). */
  readonly peakHeapGrowth: number;
  /** Longest gap between two driver ticks, ms. */
  readonly maxTickGapMs: number;
}

/** The signal order: object indices, k-th entry signals k-th. */
export function signalOrder(order: SignalOrder, count: number, seed: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = i;
  if (order === 'random') {
    const rnd = seededRandom(seed);
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
  }
  return out;
}

/** One storm as described in the module comment. */
export async function stormRun(spec: StormSpec): Promise<StormRun> {
  const { design, count, windowMs, order, seed } = spec;
  if (!(count >= 1 && windowMs > 0)) throw new RangeError(`ttm-release-storm: bad spec ${JSON.stringify(spec)}`);
  const fences: DmaFence[] = [];
  const options = {
    name: `bench-storm-${design}`,
    vramBytes: count * PAGE_SIZE,
    delayedDelete: design,
    scanIntervalMs: SCAN_INTERVAL_MS,
    maxActive: MAX_ACTIVE,
  } as const;
  return withDevice(
    options,
    async (device) => {
      const vram = device.manager(TtmMemType.VRAM)!;
      const bos = await makeBos(device, count, PAGE_SIZE, TtmMemType.VRAM, `storm-${design}`);
      const context = fenceContextAlloc();
      for (let i = 0; i < count; i++) {
        const fence = benchFence(context, i + 1);
        fences.push(fence);
        await attachFence(bos[i]!, fence);
      }
      const perm = signalOrder(order, count, seed);
      using record = recordReclaims(device, bos, fences);
      const { reclaimedAt, early } = record;
      for (let i = 0; i < 2; i++) {
        defaultEnv.gc?.();
        await settle();
      }
      const heapBase = getHeapStatistics().used_heap_size;
      let peakHeap = heapBase;
      let peakHeld = 0;
      let heldIntegral = 0;
      let heldAtHalf = Number.NaN;
      let signalled = 0;
      let lastSample = Number.NaN;
      let lastHeld = 0;
      const sample = (t: number): void => {
        const held = vram.usage - (count - signalled) * PAGE_SIZE;
        if (!Number.isNaN(lastSample)) heldIntegral += ((lastHeld + held) / 2) * (t - lastSample);
        lastSample = t;
        lastHeld = held;
        peakHeld = Math.max(peakHeld, held);
        if (Number.isNaN(heldAtHalf) && signalled >= count / 2) heldAtHalf = vram.usage;
        peakHeap = Math.max(peakHeap, getHeapStatistics().used_heap_size);
      };

      device.wq.resetPeak();
      const t0 = performance.now();
      for (const bo of bos) bo.put();
      const releaseMs = performance.now() - t0;
      const notZombie = bos.filter((bo) => !bo.deleted).length;
      if (notZombie > 0)
        throw new Error(
          `ttm-release-storm (${design}): ${notZombie} of ${count} ` +
            `busy objects did not become zombies at their last put`,
        );
      bos.length = 0; // the device holds the zombies now

      const step = windowMs / count;
      let lastTick = performance.now();
      let maxGap = 0;
      const tSig = lastTick;
      let lastSignalAt = tSig;
      while (signalled < count) {
        await sleep(1);
        const t = performance.now();
        maxGap = Math.max(maxGap, t - lastTick);
        lastTick = t;
        sample(t);
        const elapsed = t - tSig;
        while (signalled < count && signalled * step <= elapsed) {
          fences[perm[signalled]!]!.signal();
          signalled++;
        }
        lastSignalAt = performance.now();
      }
      const limit = 20_000;
      while (device.zombies > 0) {
        await sleep(1);
        const t = performance.now();
        maxGap = Math.max(maxGap, t - lastTick);
        lastTick = t;
        sample(t);
        if (t - lastSignalAt > limit)
          throw new Error(
            `ttm-release-storm (${design}): ${device.zombies} zombies left ${limit} ms after the last signal`,
          );
      }
      sample(performance.now());
      if (early.length > 0) throw new Error(`ttm-release-storm (${design}): ${early.slice(0, 3).join('; ')}`);
      if (vram.usage !== 0)
        throw new Error(
          `ttm-release-storm (${design}): VRAM usage ${vram.usage} B after every zombie was reclaimed, expected 0`,
        );
      const latenciesMs = new Float64Array(count);
      let lastReclaim = t0;
      for (let i = 0; i < count; i++) {
        const at = reclaimedAt[i]!;
        if (Number.isNaN(at))
          throw new Error(`ttm-release-storm (${design}): object ${i} was never reported by onReclaim`);
        latenciesMs[i] = at - fences[i]!.timestamp!;
        lastReclaim = Math.max(lastReclaim, at);
      }
      return {
        latenciesMs,
        peakActive: device.wq.peakActive,
        releaseMs,
        allFreedMs: lastReclaim - t0,
        lastSignalMs: lastSignalAt - t0,
        peakHeldSignaled: peakHeld,
        heldSignaledMiBms: heldIntegral / (1024 * 1024),
        heldAtHalf,
        peakHeapGrowth: peakHeap - heapBase,
        maxTickGapMs: maxGap,
      };
    },
    () => signalAll(fences),
  );
}

/** Sizes of a run. */
export interface StormScale {
  readonly count: number;
  readonly windowMs: number;
  readonly quick: boolean;
}

export const FULL: StormScale = { count: 10_000, windowMs: 1000, quick: false };
export const QUICK: StormScale = { count: 2_000, windowMs: 250, quick: true };

function p(run: StormRun, q: number): number {
  return quantile(Array.from(run.latenciesMs), q);
}

/** Runs both designs and both orders at `scale` and builds the rows. */
export async function runStorm(scale: StormScale, progress: (line: string) => void): Promise<BenchReport> {
  const { count, windowMs } = scale;
  const title =
    `${count >= 1000 ? `${count / 1000}k` : count} BOs / ` +
    `${windowMs >= 1000 ? `${windowMs / 1000} s` : `${windowMs} ms`}${scale.quick ? ' (quick, scaled down)' : ''}`;
  const rows: Row[] = [];
  const notes: string[] = [];
  const ours = 'per-object work';
  const scan = `${SCAN_INTERVAL_MS} ms scanner`;
  for (const order of ['random', 'release'] as const) {
    const runs: Partial<Record<DelayedDeleteDesign, StormRun>> = {};
    // The scanner first in one order, second in the other: neither always runs on a warmer process.
    const designs: DelayedDeleteDesign[] =
      order === 'random' ? ['per-object', 'per-object-idle', 'periodic-scan'] : ['periodic-scan', 'per-object'];
    for (const design of designs) {
      progress(`ttm-release-storm: ${title}, ${order} order, ${design}`);
      runs[design] = await stormRun({ design, count, windowMs, order, seed: SEED });
    }
    const a = runs['per-object']!;
    const b = runs['periodic-scan']!;
    const name = `${title}, ${order} order`;
    if (order === 'random') {
      rows.push(
        countRow({
          name: `${name}: peak running work items`,
          value: a.peakActive,
          limit: MAX_ACTIVE,
          targetText: `<= ${MAX_ACTIVE} (maxActive)`,
          samples: 1,
          batch: count,
          note:
            `per-object: ${a.peakActive} work items running at once at most (maxActive ${MAX_ACTIVE}), ` +
            `${count} queued; scanner: ${b.peakActive} on device.wq (its scan runs on a timer)`,
        }),
      );
    }
    rows.push(
      latencyRow({
        name: `${name}: reclaim p50`,
        candidate: { label: ours, perRoundMs: [p(a, 0.5)] },
        baseline: { label: scan, perRoundMs: [p(b, 0.5)] },
        batch: count,
        note: `p50 ${ms(p(a, 0.5))} vs ${ms(p(b, 0.5))}`,
      }),
      latencyRow({
        name: `${name}: reclaim p99`,
        candidate: { label: ours, perRoundMs: [p(a, 0.99)] },
        baseline: { label: scan, perRoundMs: [p(b, 0.99)] },
        batch: count,
        note: `p99 ${ms(p(a, 0.99))} vs ${ms(p(b, 0.99))}; max ${ms(p(a, 1))} vs ${ms(p(b, 1))}`,
      }),
      latencyRow({
        name: `${name}: all freed after`,
        candidate: { label: ours, perRoundMs: [a.allFreedMs] },
        baseline: { label: scan, perRoundMs: [b.allFreedMs] },
        batch: count,
        note:
          `first put to last reclaim ${ms(a.allFreedMs)} vs ${ms(b.allFreedMs)} ` +
          `(last signal at ${ms(a.lastSignalMs)} vs ${ms(b.lastSignalMs)})`,
      }),
      bytesRow({
        name: `${name}: peak bytes held by signalled zombies`,
        candidate: { label: ours, bytes: [a.peakHeldSignaled] },
        baseline: { label: scan, bytes: [b.peakHeldSignaled] },
        batch: count,
        note:
          `${mib(a.peakHeldSignaled)} vs ${mib(b.peakHeldSignaled)} of ` +
          `${mib(count * PAGE_SIZE)} (VRAM usage minus pending objects' bytes); ` +
          `integral ${a.heldSignaledMiBms.toFixed(0)} vs ${b.heldSignaledMiBms.toFixed(0)} MiB·ms; VRAM in use when ` +
          `half the fences had signalled: ${mib(a.heldAtHalf)} vs ` +
          `${mib(b.heldAtHalf)} (ideal ${mib((count * PAGE_SIZE) / 2)})`,
      }),
    );
    if (order === 'random') {
      // The fix for the head-of-line blocking: queue each item only once its buffer is idle.
      const c = runs['per-object-idle']!;
      const idle = 'per-object-idle work';
      rows.push(
        latencyRow({
          name: `${name}: reclaim p50, queued when idle`,
          candidate: { label: idle, perRoundMs: [p(c, 0.5)] },
          baseline: { label: scan, perRoundMs: [p(b, 0.5)] },
          batch: count,
          note: `p50 ${ms(p(c, 0.5))} vs ${ms(p(b, 0.5))}; per-object (sleeping in slots) ${ms(p(a, 0.5))}`,
        }),
        latencyRow({
          name: `${name}: reclaim p99, queued when idle`,
          candidate: { label: idle, perRoundMs: [p(c, 0.99)] },
          baseline: { label: scan, perRoundMs: [p(b, 0.99)] },
          batch: count,
          note:
            `p99 ${ms(p(c, 0.99))} vs ${ms(p(b, 0.99))}; max ${ms(p(c, 1))}; peak ` +
            `running work items ${c.peakActive}; all freed after ${ms(c.allFreedMs)}`,
        }),
        bytesRow({
          name: `${name}: peak bytes held by signalled zombies, queued when idle`,
          candidate: { label: idle, bytes: [c.peakHeldSignaled] },
          baseline: { label: scan, bytes: [b.peakHeldSignaled] },
          batch: count,
          note:
            `${mib(c.peakHeldSignaled)} vs ${mib(b.peakHeldSignaled)}; VRAM ` +
            `in use when half the fences had signalled: ${mib(c.heldAtHalf)}`,
        }),
        bytesRow({
          name: `${name}: peak heap growth`,
          candidate: { label: ours, bytes: [a.peakHeapGrowth] },
          baseline: { label: scan, bytes: [b.peakHeapGrowth] },
          batch: count,
          note:
            `${mib(a.peakHeapGrowth)} vs ${mib(b.peakHeapGrowth)}: V8 used heap sampled each tick minus its ` +
            `level before the ` +
            `puts${
              defaultEnv.gc === undefined
                ? ' (gc() not exposed: the ' + 'base level includes garbage)'
                : ' (after gc())'
            }; garbage made during the storm is included`,
        }),
      );
    }
    notes.push(
      `${order} order: put() loop of ${count} objects took ` +
        `${ms(a.releaseMs)} (per-object) and ${ms(b.releaseMs)} (scanner); ` +
        `longest gap between 1 ms driver ticks ${ms(a.maxTickGapMs)} vs ` +
        `${ms(b.maxTickGapMs)} (event-loop stalls: work done in one macrotask)`,
    );
  }
  notes.push(
    `one run per design and order (samples 1: no IQR); one-page VRAM objects, fences signalled ` +
      `evenly over the window by a 1 ms real-time driver, random order seeded ${SEED}; ` +
      `latency = onReclaim time - fence.timestamp; maxActive ${MAX_ACTIVE}, scanner period ${SCAN_INTERVAL_MS} ms`,
  );
  return { rows, notes };
}

export const definition: BenchDefinition = {
  name: 'ttm-release-storm',
  question:
    '10,000 busy buffer objects released at once, fences signalled over one second in random order: how many ' +
    'delayed-delete work items run at once, how long until all are freed, what memory is held, ' +
    "and what reclaim latency do objects see behind 16 sleeping workers (seed 004's review)?",
  baseline: 'the 10 ms periodic scan of the delayed-destroy list (TtmDevice delayedDelete: periodic-scan)',
  target: 'peak running work items <= maxActive (16); latency and memory rows without target',
  async run(ctx: BenchContext): Promise<BenchReport> {
    return runStorm(ctx.budget.quick ? QUICK : FULL, ctx.progress);
  },
};
