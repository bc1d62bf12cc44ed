/**
 * Scenario `churn`: allocation churn through the dma-buf heap under a memory budget.
 *
 * The question (seed 002): a heap that pools freed buffers must zero them before reuse. With the
 * deferred-free helper a background worker does that, off the allocation and the free path; the
 * price is memory held by buffers waiting for the worker, given back by the helper's shrinker
 * when an allocation runs short. What does that do to allocation latency, to memory held, and
 * how busy are the shrinkers? `--compare deferred-free=on,off` runs the same seeded churn on both
 * designs (`churn-heaps.ts`).
 *
 * The workload, stated so it can be argued with: `clients` clients, each a loop on the event
 * loop, keep a working set of buffers whose total follows a seeded wave between 25 % and 85 % of
 * the budget divided among them (two waves per run, each client out of phase), like decoders or
 * upload queues whose load comes and goes. A step frees the client's oldest buffer when it holds
 * more than its share, allocates when it holds less, and replaces its oldest buffer otherwise.
 * Sizes are drawn per allocation: 4 KiB (30 %), 16 KiB (20 %), 64 KiB (25 %), 256 KiB (15 %) or
 * 1 MiB (10 %), each times a uniform factor in (0.5, 1], so the heap rounds up. A client takes 1
 * to 8 steps, then yields one macrotask turn (when the heap's worker runs). Every tenth of the run
 * the system signals memory pressure: every shrinker of the heap gives up its share
 * (`shrinkPass`, like kswapd). An allocation refused with ENOMEM makes its client free its oldest
 * buffer and go on.
 *
 * Measured: each allocation and each free, timed alone; pages reclaimed by the shrinkers on the
 * allocation path (the budget) and under the pressure events; memory by type over time. Checked:
 * every buffer handed out reads zero at the three bytes the churn writes before every free
 * (first, middle, last), so a heap that reused memory without clearing it fails the scenario.
 *
 * @example
 * ```ts
 * // dmabuf run churn --budget 64M --clients 4 --duration 5s --compare deferred-free=on,off
 * import { churn } from './churn.js';
 * console.log(churn.knobs); // ['deferred-free']
 * ```
 */

import { DmaBufError } from '../../base/errors.js';
import { seededRandom } from '../../base/random.js';
import { PAGE_SIZE } from '../../heap/page-pool.js';
import { formatValue } from '../format.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';
import { type ChurnBuffer, type ChurnHeap, churnHeap } from './churn-heaps.js';

const KiB = 1024;

/** Size classes and their weights (percent) of the churn's allocations. */
export const CHURN_SIZES: readonly { readonly bytes: number; readonly weight: number }[] = [
  { bytes: 4 * KiB, weight: 30 },
  { bytes: 16 * KiB, weight: 20 },
  { bytes: 64 * KiB, weight: 25 },
  { bytes: 256 * KiB, weight: 15 },
  { bytes: 1024 * KiB, weight: 10 },
];

const MAX_STEPS_PER_TURN = 8;
const PRESSURE_EVENTS = 10;
/** Samples of the memory chart per run. */
const SAMPLES = 200;
/** A client's bursts are folded into one trace slice per this many ms. */
const SLICE_MS = 2;

function drawSize(random: () => number): number {
  let pick = random() * 100;
  let bytes = CHURN_SIZES[0]!.bytes;
  for (const size of CHURN_SIZES) {
    bytes = size.bytes;
    pick -= size.weight;
    if (pick < 0) break;
  }
  return Math.max(1, Math.floor(bytes * (1 - random() * 0.5)));
}

/** Totals shared by the clients and the sampler. */
interface Tally {
  allocations: number;
  frees: number;
  enomem: number;
  notZero: number;
  allocReclaimedPages: number;
  allocShrinks: number;
  pressureReclaimedPages: number;
  /** Exact peaks: read after every allocation and every free, not only at the samples. */
  heldPeak: number;
  pendingPeak: number;
  readonly allocUs: Samples;
  readonly freeUs: Samples;
}

/**
 * One client's loop: bursts of steps, a macrotask turn between bursts, until the duration is up. It leaves
 * its buffers in `held` (oldest first) for the scenario to free after the last sample.
 */
async function client(
  ctx: ScenarioContext,
  heap: ChurnHeap,
  index: number,
  tally: Tally,
  held: ChurnBuffer[],
): Promise<void> {
  const { recorder, signal } = ctx;
  const random = seededRandom(ctx.seed * 31 + index + 1);
  const phase = random() * 2 * Math.PI;
  const track = recorder.track(`client ${index + 1}`, 'client');
  const share = ctx.budgetBytes / ctx.clients;
  let heldBytes = 0;
  let slice = { start: -1, end: 0, allocs: 0, frees: 0 };
  const flush = (): void => {
    if (slice.start < 0) return;
    recorder.slice(track, 'churn', slice.start, slice.end, { allocs: slice.allocs, frees: slice.frees });
    slice = { start: -1, end: 0, allocs: 0, frees: 0 };
  };
  const free = (): void => {
    const buf = held.shift();
    if (buf === undefined) return;
    heldBytes -= buf.size;
    const bytes = buf.bytes();
    bytes[0] = 0xa5;
    bytes[bytes.length >> 1] = 0xa5;
    bytes[bytes.length - 1] = 0xa5;
    const t0 = performance.now();
    heap.free(buf);
    tally.freeUs.add((performance.now() - t0) * 1000);
    tally.frees++;
    tally.pendingPeak = Math.max(tally.pendingPeak, heap.stats().pendingBytes);
    slice.frees++;
  };
  const allocate = (): void => {
    const size = drawSize(random);
    const before = heap.stats();
    let buf: ChurnBuffer;
    const t0 = performance.now();
    try {
      buf = heap.allocate(size);
    } catch (err) {
      if (!(err instanceof DmaBufError) || err.code !== 'ENOMEM') throw err;
      tally.enomem++;
      free();
      return;
    }
    tally.allocUs.add((performance.now() - t0) * 1000);
    const after = heap.stats();
    tally.heldPeak = Math.max(tally.heldPeak, after.heldBytes);
    // A hit takes its buffer from the pool; anything else that left the caches was reclaimed.
    const taken = after.hits > before.hits ? buf.size : 0;
    const reclaimed = before.pooledBytes + before.pendingBytes - after.pooledBytes - after.pendingBytes - taken;
    if (reclaimed > 0) {
      tally.allocReclaimedPages += reclaimed / PAGE_SIZE;
      tally.allocShrinks++;
      recorder.instant(track, 'shrink on allocation', recorder.now(), { pages: reclaimed / PAGE_SIZE });
    }
    const bytes = buf.bytes();
    if (bytes[0] !== 0 || bytes[bytes.length >> 1] !== 0 || bytes[bytes.length - 1] !== 0) tally.notZero++;
    held.push(buf);
    heldBytes += buf.size;
    tally.allocations++;
    slice.allocs++;
  };
  try {
    while (!signal.aborted) {
      const start = recorder.now();
      if (start >= ctx.durationMs) break;
      const load = 0.65 + 0.3 * Math.sin((4 * Math.PI * start) / ctx.durationMs + phase);
      const target = share * load;
      const steps = 1 + Math.floor(random() * MAX_STEPS_PER_TURN);
      for (let i = 0; i < steps; i++) {
        if (heldBytes > target * 1.05) free();
        else if (heldBytes < target * 0.95 || held.length === 0) allocate();
        else {
          free();
          allocate();
        }
      }
      if (slice.start < 0) slice.start = start;
      slice.end = recorder.now();
      if (slice.end - slice.start >= SLICE_MS) flush();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    flush();
  }
}

/**
 * The churn scenario on heaps made by `makeHeap` (the two designs of `churn-heaps.ts` by default;
 * tests pass a deliberately broken heap to see the zero check fail the scenario).
 */
export function churnScenario(
  makeHeap: (deferredFree: string, budgetBytes: number) => ChurnHeap = churnHeap,
): Scenario {
  return {
    name: 'churn',
    title: 'allocation churn through the dma-buf heap under a budget: allocation latency, memory held, shrinkers',
    knobs: ['deferred-free'],
    defaultDurationMs: 4000,
    defaultClients: 4,
    inDefaultSet: true,
    async run(ctx) {
      const { recorder } = ctx;
      const deferredFree = ctx.knobs['deferred-free'] ?? 'on';
      const tally: Tally = {
        allocations: 0,
        frees: 0,
        enomem: 0,
        notZero: 0,
        allocReclaimedPages: 0,
        allocShrinks: 0,
        pressureReclaimedPages: 0,
        heldPeak: 0,
        pendingPeak: 0,
        allocUs: new Samples(),
        freeUs: new Samples(),
      };
      const memory = recorder.series(
        {
          kind: 'stacked',
          id: 'memory',
          title: 'heap memory by type',
          unit: 'bytes',
          limit: { label: 'budget', value: ctx.budgetBytes },
          counter: 'heap memory',
        },
        ['live', 'pending free', 'pooled'],
      );
      const reclaim = recorder.series(
        { kind: 'bars', id: 'reclaim', title: 'pages reclaimed by shrinkers', unit: 'count' },
        ['on allocation', 'memory pressure'],
      );
      const system = recorder.track('system', 'system');
      const heap = makeHeap(deferredFree, ctx.budgetBytes);
      let heldSum = 0;
      let samples = 0;
      let lastAlloc = 0;
      let lastPressure = 0;
      const sample = (): void => {
        const at = recorder.now();
        const s = heap.stats();
        memory.sample(at, [s.liveBytes, s.pendingBytes, s.pooledBytes]);
        reclaim.sample(at, [tally.allocReclaimedPages - lastAlloc, tally.pressureReclaimedPages - lastPressure]);
        lastAlloc = tally.allocReclaimedPages;
        lastPressure = tally.pressureReclaimedPages;
        heldSum += s.heldBytes;
        samples++;
        ctx.progress(
          Math.min(1, at / ctx.durationMs),
          `${formatValue(tally.allocations, 'count')} allocs, held ${formatValue(s.heldBytes, 'bytes')}`,
        );
      };
      const sampleMs = Math.max(5, ctx.durationMs / SAMPLES);
      const sampler = setInterval(sample, sampleMs);
      const pressureTimers: ReturnType<typeof setTimeout>[] = [];
      for (let i = 1; i < PRESSURE_EVENTS; i++) {
        const at = ((i + ctx.random() - 0.5) * ctx.durationMs) / PRESSURE_EVENTS;
        pressureTimers.push(
          setTimeout(() => {
            const pages = heap.shrinkers.shrinkPass();
            tally.pressureReclaimedPages += pages;
            recorder.instant(system, 'memory pressure', recorder.now(), { pages });
          }, at),
        );
      }
      const holdings: ChurnBuffer[][] = Array.from({ length: ctx.clients }, () => []);
      try {
        sample();
        const clients = holdings.map((held, i) => client(ctx, heap, i, tally, held));
        const settled = await Promise.allSettled(clients);
        sample();
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      } finally {
        clearInterval(sampler);
        for (const t of pressureTimers) clearTimeout(t);
        // Teardown, after the last sample: the working sets go back, untimed.
        for (const held of holdings) for (const buf of held) heap.free(buf);
        await heap.drain();
        await heap[Symbol.asyncDispose]();
      }
      const seconds = Math.max(recorder.now(), 1) / 1000;
      const s = heap.stats();
      recorder.metric('allocations', 'allocations', tally.allocations, 'count');
      recorder.metric('alloc_rate', 'allocation rate', tally.allocations / seconds, 'per_s', 'higher');
      recorder.metric('alloc_p50', 'allocation p50', tally.allocUs.quantile(0.5), 'us', 'lower');
      recorder.metric('alloc_p99', 'allocation p99', tally.allocUs.quantile(0.99), 'us', 'lower');
      recorder.metric('alloc_max', 'allocation max', tally.allocUs.max, 'us', 'lower');
      recorder.metric('free_p99', 'free p99', tally.freeUs.quantile(0.99), 'us', 'lower');
      recorder.metric(
        'pool_hit_rate',
        'pool hit rate',
        (100 * s.hits) / Math.max(1, s.hits + s.misses),
        'percent',
        'higher',
      );
      recorder.metric('held_mean', 'memory held, mean', samples > 0 ? heldSum / samples : 0, 'bytes', 'lower');
      recorder.metric('held_peak', 'memory held, peak', tally.heldPeak, 'bytes', 'lower');
      recorder.metric('pending_peak', 'waiting for the worker, peak', tally.pendingPeak, 'bytes');
      recorder.metric('shrink_alloc_pages', 'pages reclaimed on allocation', tally.allocReclaimedPages, 'count');
      recorder.metric('shrink_alloc_events', 'allocations that reclaimed', tally.allocShrinks, 'count');
      recorder.metric('shrink_pressure_pages', 'pages reclaimed under pressure', tally.pressureReclaimedPages, 'count');
      recorder.metric('enomem', 'allocations refused (ENOMEM)', tally.enomem, 'count', 'lower');
      recorder.histogram('alloc-latency', 'allocation latency', 'us', tally.allocUs);
      recorder.histogram('free-latency', 'free latency', 'us', tally.freeUs);
      recorder.note(`design: ${heap.design}`);
      if (tally.notZero > 0) {
        throw new Error(`${tally.notZero} of ${tally.allocations} allocations handed out memory that was not zero`);
      }
      recorder.note(`all ${formatValue(tally.allocations, 'count')} buffers handed out read zero at the bytes checked`);
    },
  };
}

export const churn: Scenario = churnScenario();
