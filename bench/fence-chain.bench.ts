/**
 * Benchmark: what do the chain garbage-collection policies cost, and what do they leave behind?
 *
 * Questions:
 * 1. Timelines of the kernel self-tests' size (CHAIN_SZ = 4096 points; 1024 with `--quick`,
 *   as each lookup walks the timeline and the work grows with its square): build one, then signal
 *   its payloads in forward, backward or random (seeded) order with a
 *   `DmaFenceChain.findSeqno(head, randomPoint)` lookup after each signal. Per GC policy
 *   (`{ gc: 'walk' }`, `{ gc: 'queue' }`): points per second, and the peak and final number of
 *   reachable signaled nodes (`DmaFenceChain.reachableStats(head).signaledNodes`, sampled after
 *   every step).
 * 2. Seed 000's reviewer, who asked what problem the global collection queue solves: "on a
 *   timeline that is only appended to and rarely walked, how many signaled nodes stay reachable,
 *   and what does each policy cost per append and per lookup?" 100,000 appends; each append adds
 *   point i and signals the payload of point i - 16 (work completes a little behind submission);
 *   a lookup of a random earlier point every 1,000 appends and no other walk. Per policy: ns per
 *   append, ns per lookup, reachable signaled nodes (peak, sampled after every append, and at
 *   the end). Also measured: the same timeline never walked at all (the case the global queue
 *   was proposed for: "not sure if the chain is garbage collected enough"), and walked from the
 *   previous head after every append, which is what `Syncobj.addPoint` and the kernel's
 *   `drm_syncobj_add_point()` do. For the first two, a direct queue-vs-walk row (same rounds)
 *   gives the queue's own cost per append.
 *
 * Baseline: a plain JS array of the same payload fences (`push` per point, the same signals, a
 * lookup that indexes the array). It has no timeline semantics at all, so the ratio is what the
 * chain structure costs on top of just holding the fences, not a race between equals.
 *
 * Target: none given; this benchmark measures so the policy question can be argued with numbers.
 *
 * Overview and fairness:
 * - In question 1 only the final head is armed (`enableSwSignaling`): one waiter on the last
 *   point, as in the kernel's test_wait_*, so the rounds measure the timeline and its lookups
 *   rather than the wake-ups of 4096 waiters.
 * - The `'queue'` policy's FIFO is global. Before each round (of every side, for symmetry) the
 *   previous rounds' nodes are unreachable, `gc()` runs and the FIFO is stepped through until
 *   empty, so every round starts from a fresh queue (with `gc()` exposed; otherwise a note says
 *   it was not reset).
 * - Timed rounds do no sampling; reachable-node counts come from a separate, untimed pass with
 *   the same seed.
 *
 * Contract: every timed round checks its own result (the head has signaled in question 1; the
 * last lookup answered) so a broken chain cannot look fast.
 *
 * @example
 * ```ts
 * // npm run bench -- fence-chain
 * import { definition } from './fence-chain.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { DmaFenceChain, type ChainGcPolicy } from '../src/fence/dma-fence-chain.js';
import {
  compare,
  defaultEnv,
  formatDuration,
  median,
  seededRandom,
  settle,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
} from './harness.js';

const ops: DmaFenceOps = Object.freeze({
  getDriverName: () => 'bench',
  getTimelineName: () => 'chain',
});

/** The kernel self-tests' chain length (st-dma-fence-chain.c). */
export const CHAIN_SZ = 4096;
/** Question 2's sizes. */
export const APPENDS = 100_000;
export const LAG = 16;
export const LOOKUP_EVERY = 1000;
export const SEED = 0x9b3fc879;

export type SignalOrder = 'forward' | 'backward' | 'random';
const POLICIES: readonly ChainGcPolicy[] = ['walk', 'queue'];
const ORDERS: readonly SignalOrder[] = ['forward', 'backward', 'random'];

/**
 * Empties the `'queue'` policy's global FIFO of unreachable nodes. Needs `gc()`. Every side of
 * every chain comparison calls it before each round, queue or not, so all rounds start from the
 * same collected heap (see the harness on why a forced collection is otherwise avoided).
 * @returns whether the queue ended empty.
 */
export async function freshQueue(): Promise<boolean> {
  const gc = defaultEnv.gc;
  if (gc === undefined) return DmaFenceChain.gcQueueLength === 0;
  await settle();
  gc();
  for (let pass = 0; pass < 4 && DmaFenceChain.gcQueueLength > 0; pass++) {
    DmaFenceChain.collectQueued(DmaFenceChain.gcQueueLength);
    await settle();
    gc();
  }
  return DmaFenceChain.gcQueueLength === 0;
}

/** The payload indices in signalling order. */
export function signalOrder(order: SignalOrder, n: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = order === 'backward' ? n - 1 - i : i;
  if (order === 'random') {
    const rnd = seededRandom(seed);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
  }
  return out;
}

/** `n` points uniform in [1, n]. */
export function lookupPoints(n: number, seed: number): Int32Array {
  const rnd = seededRandom(seed ^ 0x5bd1e995);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 + Math.floor(rnd() * n);
  return out;
}

interface TimelineStats {
  peakSignaled: number;
  finalSignaled: number;
  finalNodes: number;
}

/**
 * Question 1, one timeline: build CHAIN_SZ points, arm the head, then signal in `order` with a
 * lookup after each signal. `sample` (untimed passes only) sees the head after every step.
 */
export function runTimeline(
  gc: ChainGcPolicy,
  order: Int32Array,
  points: Int32Array,
  sample?: (head: DmaFenceChain) => void,
): DmaFenceChain {
  const n = order.length;
  const context = fenceContextAlloc();
  const fences = new Array<DmaFence>(n);
  let head: DmaFenceChain | null = null;
  for (let i = 0; i < n; i++) {
    const fence = new DmaFence(ops, context, i + 1);
    fences[i] = fence;
    head = new DmaFenceChain(head, fence, i + 1, { gc });
  }
  const tail = head!;
  tail.enableSwSignaling();
  for (let k = 0; k < n; k++) {
    fences[order[k]!]!.signal();
    DmaFenceChain.findSeqno(tail, points[k]!);
    sample?.(tail);
  }
  if (!tail.signaledFlag)
    throw new Error(`fence-chain: the ${gc} timeline's head did not signal after all ${n} payloads did`);
  return tail;
}

/** Question 1's baseline: the same fences in an array, same signals, lookups by index. */
export function runArrayTimeline(order: Int32Array, points: Int32Array): number {
  const n = order.length;
  const context = fenceContextAlloc();
  const fences: DmaFence[] = [];
  for (let i = 0; i < n; i++) fences.push(new DmaFence(ops, context, i + 1));
  let signaled = 0;
  for (let k = 0; k < n; k++) {
    fences[order[k]!]!.signal();
    if (fences[points[k]! - 1]!.signaledFlag) signaled++;
  }
  if (!fences[n - 1]!.signaledFlag) throw new Error('fence-chain: array baseline did not signal its last fence');
  return signaled;
}

function timelineSides(
  gc: ChainGcPolicy,
  orderName: SignalOrder,
  size: number,
  notes: string[],
): { candidate: Side; baseline: Side } {
  const order = signalOrder(orderName, size, SEED);
  const points = lookupPoints(size, SEED);
  let warned = false;
  return {
    candidate: {
      label: `DmaFenceChain ${gc}`,
      async setup() {
        if (!(await freshQueue()) && !warned) {
          warned = true;
          notes.push(`queue not reset between rounds (gc() not exposed): ${DmaFenceChain.gcQueueLength} entries left`);
        }
      },
      run() {
        runTimeline(gc, order, points);
      },
    },
    baseline: {
      label: 'Array<DmaFence>',
      setup: freshQueue,
      run() {
        runArrayTimeline(order, points);
      },
    },
  };
}

function timelineStats(gc: ChainGcPolicy, orderName: SignalOrder, size: number): TimelineStats {
  const order = signalOrder(orderName, size, SEED);
  const points = lookupPoints(size, SEED);
  let peak = 0;
  const tail = runTimeline(gc, order, points, (head) => {
    peak = Math.max(peak, DmaFenceChain.reachableStats(head).signaledNodes);
  });
  const end = DmaFenceChain.reachableStats(tail);
  return { peakSignaled: peak, finalSignaled: end.signaledNodes, finalNodes: end.nodes };
}

/** What one append-only run measured. */
export interface AppendRun {
  /** Milliseconds spent appending (lookups and yields excluded). */
  appendMs: number;
  /** Milliseconds per lookup, one entry per lookup. */
  lookupMs: number[];
  /** Highest sampled count of reachable signaled nodes (0 when not sampled). */
  peakSignaled: number;
  finalSignaled: number;
  finalNodes: number;
}

/** The shape of one append-only run. */
export interface AppendOnlySpec {
  /** `'array'` is the baseline. */
  readonly gc: ChainGcPolicy | 'array';
  readonly appends: number;
  /** Payload i - lag is signalled at append i. */
  readonly lag: number;
  /** A lookup every this many appends; 0 for none (a timeline nobody walks). */
  readonly lookupEvery: number;
  readonly seed: number;
  /** Count reachable signaled nodes every this many appends; 0 for no sampling (timed runs). */
  readonly sampleEvery: number;
  /**
   * Walk the whole chain from the previous head after each append, as `Syncobj.addPoint` and
   * the kernel's `drm_syncobj_add_point()` do ("walk the chain once to trigger garbage
   * collection"). Timed as part of the append.
   */
  readonly walkEachAppend?: boolean;
}

/** Appends happen in separate tasks in a real program: yield to the event loop this often. */
export const YIELD_EVERY = 100;

/**
 * Question 2, one run: `appends` points, payload i - `lag` signalled at each append, a lookup
 * of a seeded random earlier point every `lookupEvery` appends. Every {@link YIELD_EVERY} appends
 * the run yields to the event loop (untimed), as appends from separate submissions would: V8
 * keeps every `WeakRef` target created or dereferenced in one synchronous job alive until the job
 * ends, which would tax the `'queue'` policy unrealistically in one long loop.
 */
export async function runAppendOnly(spec: AppendOnlySpec): Promise<AppendRun> {
  const { gc, appends, lag, lookupEvery, seed, sampleEvery } = spec;
  const walkEachAppend = spec.walkEachAppend === true;
  const rnd = seededRandom(seed);
  const context = fenceContextAlloc();
  const ring = new Array<DmaFence | undefined>(lag).fill(undefined);
  const fences: DmaFence[] = [];
  const lookupMs: number[] = [];
  const options = gc === 'array' ? undefined : { gc };
  let head: DmaFenceChain | null = null;
  let peak = 0;
  let answered = 0;
  let appendMs = 0;
  const now = defaultEnv.now;
  let t0 = now();
  for (let i = 1; i <= appends; i++) {
    const fence = new DmaFence(ops, context, i);
    if (options === undefined) {
      fences.push(fence);
    } else {
      const prev: DmaFenceChain | null = head;
      head = new DmaFenceChain(prev, fence, i, options);
      if (walkEachAppend && prev !== null) for (const _ of DmaFenceChain.iterate(prev));
    }
    const slot = i % lag;
    ring[slot]?.signal();
    ring[slot] = fence;
    if (lookupEvery > 0 && i % lookupEvery === 0) {
      const point = 1 + Math.floor(rnd() * i);
      const l0 = now();
      if (head !== null) {
        if (DmaFenceChain.findSeqno(head, point).kind !== 'not-submitted') answered++;
      } else if (fences[point - 1] !== undefined) {
        answered++;
      }
      const l1 = now();
      lookupMs.push(l1 - l0);
      appendMs -= l1 - l0;
    }
    if (sampleEvery > 0 && head !== null && i % sampleEvery === 0) {
      appendMs += now() - t0;
      peak = Math.max(peak, DmaFenceChain.reachableStats(head).signaledNodes);
      t0 = now();
    }
    if (i % YIELD_EVERY === 0) {
      appendMs += now() - t0;
      await settle();
      t0 = now();
    }
  }
  appendMs += now() - t0;
  if (answered !== lookupMs.length)
    throw new Error(`fence-chain: ${answered} of ${lookupMs.length} append-only lookups found their point`);
  const end = head !== null ? DmaFenceChain.reachableStats(head) : { nodes: 0, signaledNodes: 0 };
  return {
    appendMs,
    lookupMs,
    peakSignaled: Math.max(peak, end.signaledNodes),
    finalSignaled: end.signaledNodes,
    finalNodes: end.nodes,
  };
}

interface AppendScenario {
  readonly title: string;
  readonly lookupEvery: number;
  readonly sampleEvery: number;
  readonly walkEachAppend: boolean;
}

function appendSide(gc: ChainGcPolicy | 'array', sc: AppendScenario, lookups?: number[][]): Side {
  const spec = {
    gc,
    lag: LAG,
    lookupEvery: sc.lookupEvery,
    seed: SEED,
    sampleEvery: 0,
    walkEachAppend: sc.walkEachAppend,
  };
  return {
    label: gc === 'array' ? 'Array<DmaFence>' : `DmaFenceChain ${gc}`,
    setup: freshQueue,
    async run(batch) {
      const r = await runAppendOnly({ ...spec, appends: batch });
      lookups?.push(r.lookupMs);
      return r.appendMs;
    },
  };
}

export const definition: BenchDefinition = {
  name: 'fence-chain',
  question:
    "What do the 'walk' and 'queue' chain GC policies cost per point, append and lookup, and how " +
    "many signaled nodes stay reachable (4096-point timelines; seed 000's append-only timeline)?",
  baseline: 'a plain JS array of the same fences (push, same signals, lookup by index)',
  target: 'none (measurement for the policy question)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const quick = ctx.budget.quick;
    const rounds = quick ? 2 : 10;
    const warmup = quick ? 1 : 2;
    // Lookups walk O(points) each, so a timeline costs O(points^2): --quick uses a quarter of
    // CHAIN_SZ (1/16 of the work) and says so in the row names.
    const size = quick ? CHAIN_SZ / 4 : CHAIN_SZ;
    const rows: Row[] = [];
    const notes: string[] = [];
    if (defaultEnv.gc === undefined)
      notes.push("gc() not exposed: the 'queue' policy's global FIFO is not reset between rounds");

    for (const gc of POLICIES) {
      for (const order of ORDERS) {
        ctx.progress(`fence-chain: ${size}-point timeline, ${gc}, ${order}`);
        const { candidate, baseline } = timelineSides(gc, order, size, notes);
        const row = await compare({
          name: `${size} points${quick ? ' (quick)' : ''}, ${order}, gc ${gc}`,
          candidate,
          baseline,
          batch: size,
          rounds,
          warmup,
        });
        if (gc === 'queue') await freshQueue();
        const stats = timelineStats(gc, order, size);
        rows.push({
          ...row,
          note:
            `reachable signaled nodes: peak ${stats.peakSignaled}, final ` +
            `${stats.finalSignaled} (of ${stats.finalNodes} reachable nodes)`,
        });
      }
    }
    notes.push(`${size}-point rows: one op = one point (build + signal + findSeqno of a random point); seed ${SEED}`);

    const scenarios: AppendScenario[] = [
      {
        title: `append-only ${APPENDS / 1000}k, lookup/${LOOKUP_EVERY}`,
        lookupEvery: LOOKUP_EVERY,
        sampleEvery: 1,
        walkEachAppend: false,
      },
      {
        title: `append-only ${APPENDS / 1000}k, never walked`,
        lookupEvery: 0,
        sampleEvery: 1000,
        walkEachAppend: false,
      },
      {
        title: `append-only ${APPENDS / 1000}k, walk per append`,
        lookupEvery: 0,
        sampleEvery: 1,
        walkEachAppend: true,
      },
    ];
    const appendRounds = quick ? 2 : 5;
    const warm = 1;
    for (const sc of scenarios) {
      // Walking after every append is the kernel's (and Syncobj's) way; the queue adds nothing there.
      const policies: readonly ChainGcPolicy[] = sc.walkEachAppend ? ['walk'] : POLICIES;
      for (const gc of policies) {
        ctx.progress(`fence-chain: ${sc.title}, gc ${gc}`);
        const lookups: number[][] = [];
        const row = await compare({
          name: `${sc.title}, gc ${gc}`,
          candidate: appendSide(gc, sc, lookups),
          baseline: appendSide('array', sc),
          batch: APPENDS,
          rounds: appendRounds,
          warmup: warm,
        });
        const statsSpec = {
          gc,
          appends: APPENDS,
          lag: LAG,
          lookupEvery: sc.lookupEvery,
          seed: SEED,
          sampleEvery: sc.sampleEvery,
          walkEachAppend: sc.walkEachAppend,
        };
        await freshQueue();
        const stats = await runAppendOnly(statsSpec);
        const queueLength = DmaFenceChain.gcQueueLength;
        let sharedText = '';
        if (gc === 'queue') {
          // The FIFO is global: left-overs of another timeline take collection steps too.
          await freshQueue();
          await runAppendOnly({ ...statsSpec, sampleEvery: 0 });
          const shared = await runAppendOnly(statsSpec);
          sharedText =
            `; run again right after a dead ${APPENDS / 1000}k-node queue timeline ` +
            `whose entries were still in the FIFO: peak ${shared.peakSignaled}`;
        }
        await freshQueue();
        // Mean lookup time per measured round, then the median over rounds.
        const perRound = lookups.slice(warm).map((l) => l.reduce((a, b) => a + b, 0) / Math.max(l.length, 1));
        const lookupText = sc.lookupEvery > 0 ? `, ${formatDuration(median(perRound) * 1e6)}/lookup` : '';
        const queueText = gc === 'queue' ? `; global FIFO: ${queueLength} entries at the end` : '';
        rows.push({
          ...row,
          note:
            `${formatDuration(1e9 / row.dmabuf!.value)}/append (array push ` +
            `${formatDuration(1e9 / row.baseline!.value)})${lookupText}; ` +
            `reachable signaled nodes: peak ${stats.peakSignaled}, end ${stats.finalSignaled} ` +
            `(of ${stats.finalNodes} reachable)${queueText}${sharedText}`,
        });
      }
      if (policies.length === 2) {
        ctx.progress(`fence-chain: ${sc.title}, queue vs walk`);
        const row = await compare({
          name: `${sc.title}, queue vs walk`,
          candidate: appendSide('queue', sc),
          baseline: appendSide('walk', sc),
          batch: APPENDS,
          rounds: appendRounds,
          warmup: warm,
        });
        await freshQueue();
        rows.push({
          ...row,
          note:
            `the queue policy's own cost in the same rounds: ` +
            `${formatDuration(1e9 / row.dmabuf!.value - 1e9 / row.baseline!.value)} more per append than walk alone`,
        });
      }
    }
    notes.push(
      `append-only rows: one op = one append (lookups timed separately, ` +
        `yields to the event loop every ${YIELD_EVERY} appends not timed); ` +
        `payload i-${LAG} signalled at append i; 'lookup/${LOOKUP_EVERY}': one findSeqno ` +
        `of a random earlier point every ${LOOKUP_EVERY} appends and no other walk, ` +
        `reachable nodes sampled after every append; 'never walked': no lookup at all, sampled every 1000 appends; ` +
        `'walk per append': the whole chain iterated from the previous head after each append ` +
        `(Syncobj.addPoint, drm_syncobj_add_point), timed with the append, sampled after every append`,
    );
    return { rows, notes };
  },
};
