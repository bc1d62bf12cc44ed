/**
 * Benchmark: how long does an allocation take under steady churn, with the zeroing deferred?
 *
 * Question (issue 5, seed 002): the deferred-free helper moves page zeroing out of the
 * allocation and free paths into a background worker, so a pool can hand out cleared memory
 * at the cost of a pop. Under a steady alloc/free churn of 64 KiB and 1 MiB buffers, what are
 * the p50 and p99 latencies of one allocation from a {@link DmaHeap}, and how much memory does
 * each design hold?
 *
 * Designs, each a {@link AllocDesign}, all in one process and in interleaved rounds:
 * - `DmaHeap`: `heap.allocate(size)`; free = `buf.put()`, which queues the buffer for the
 *   heap's deferred-free worker (zeroes it and gives it to the page pool, one buffer per
 *   macrotask).
 * - `new ArrayBuffer` (baseline): a fresh buffer every time; free = drop the reference, the
 *   garbage collector reclaims it.
 * - `inline-zero pool` (baseline: the design without seed 002): {@link InlineZeroPool}, a
 *   minimal pool whose free zeroes the buffer right away (`fill(0)`) and pushes it onto a
 *   per-class array, and whose allocate pops (or makes a new buffer when the class is empty).
 *
 * The churn ({@link churnRound}), stated so it can be argued with: a pipeline holding
 * `workingSet` buffers in flight (64 x 64 KiB = 4 MiB, or 16 x 1 MiB = 16 MiB), like decoded
 * frames or network messages waiting for their consumer. Each step retires the oldest buffer
 * (the design's free), allocates its replacement and writes three bytes into it (first, middle
 * and last byte: a header, a payload byte and a trailer, touching three pages). After every
 * `turnEvery` steps (1 in the table: one step per event-loop turn, like one frame or message
 * per callback) the churn yields one macrotask turn (`setImmediate`), which is when the
 * deferred-free worker runs. A round starts by filling the working set (untimed) and ends by
 * freeing it (untimed), with `steps` timed steps in between. A third, diagnostic shape takes 4
 * steps per turn (a burst of frees faster than the one-buffer-per-turn worker), with a heap
 * budget of 64 MiB, because without one the pending list grows without bound.
 *
 * Measured: `performance.now()` around the allocate call only (one clock read costs 60-70 ns
 * here and is inside every sample of every design alike), and, for the `free + allocate` rows,
 * around the free and the allocate (what a step costs its caller: the inline pool pays its
 * zeroing in the free). Per round and design, p50 and p99 of the samples; a row's value is the median over
 * rounds, printed as a rate (1 / latency, so higher is better like every rate in the table) and
 * its ratio is the median of the per-round ratios, i.e. baseline latency / DmaHeap latency. The
 * notes give the latencies themselves. Memory held at the end of a round's churn (working set
 * still live): DmaHeap `stats().heldBytes` (live + pooled + pending), the inline pool's live +
 * pooled bytes, and for fresh allocation `process.memoryUsage().arrayBuffers` minus the
 * process's level before the shape (after `gc()` and a macrotask) and minus what the two
 * pooled designs hold at that moment, i.e. its live buffers plus its garbage not yet collected.
 *
 * Targets: 1 MiB allocate p99 at least 5x lower than fresh allocation (ratio >= 5x) and lower
 * than the inline-zeroing pool (ratio >= 1x). The burst rows have none.
 *
 * Contract: every buffer handed out, by every design, must read zero at the three offsets the
 * churn writes (all three are written non-zero before each free, so a pool that reused memory
 * without clearing it is caught); a round throws otherwise, and when a design's live count is
 * not the working set at the end of the churn.
 *
 * @example
 * ```ts
 * // npm run bench -- heap-alloc
 * import { definition } from './heap-alloc.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { DmaHeap } from '../src/heap/dma-heap.js';
import type { DmaBuf } from '../src/heap/dma-buf.js';
import {
  NO_GC_NOTE,
  defaultEnv,
  formatDuration,
  median,
  quantile,
  ratioStats,
  settle,
  throughputRow,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Target,
} from './harness.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** One churn: buffer size, buffers in flight, timed steps per round, steps per macrotask turn. */
export interface ChurnShape {
  readonly size: number;
  readonly workingSet: number;
  readonly steps: number;
  readonly turnEvery: number;
}

/** A shape as the benchmark runs it: with the heap's budget, and whether its rows are diagnostic. */
export interface BenchShape extends ChurnShape {
  /** `DmaHeap` option `budgetBytes` (unlimited when omitted). */
  readonly budgetBytes?: number;
  /** No targets and fewer rows. */
  readonly diagnostic?: boolean;
}

/**
 * The shapes of the table: the steady churn for both sizes, then a burst churn (4 steps per
 * macrotask turn) where the one-buffer-per-turn worker cannot keep up. Without a budget the
 * pending list would grow by 3 MiB per turn without limit (over 2 GiB within a few rounds, measured),
 * so that heap has a 64 MiB budget: the shrinker then drops pending buffers and the heap allocates
 * fresh ones.
 */
export const SHAPES: readonly BenchShape[] = [
  { size: 64 * KiB, workingSet: 64, steps: 2000, turnEvery: 1 },
  { size: 1 * MiB, workingSet: 16, steps: 1000, turnEvery: 1 },
  { size: 1 * MiB, workingSet: 16, steps: 200, turnEvery: 4, budgetBytes: 64 * MiB, diagnostic: true },
];

/** One way of getting and giving back buffers of one size. */
export interface AllocDesign<H> {
  readonly label: string;
  /** Timed: one buffer of the design's size. */
  allocate(): H;
  /** Untimed: a byte view of the buffer, for the writes. */
  bytesOf(handle: H): Uint8Array;
  /** Gives the buffer back (timed only in the free + allocate rows). */
  free(handle: H): void;
  /** Bytes the design holds now (see the module comment for each design). */
  heldBytes(): number;
  /** Buffers handed out and not freed, as the design counts them. */
  liveBuffers(): number;
}

/**
 * The baseline without seed 002: zeroes on free, pops on allocate. Size classes are 4 KiB
 * times a power of two, as the heap's, with no cap (the churn's working set bounds it).
 */
export class InlineZeroPool {
  readonly #classes = new Map<number, ArrayBuffer[]>();
  #pooledBytes = 0;
  #liveBytes = 0;
  #live = 0;

  /** The size class of `size` bytes: 4 KiB << order. */
  static classBytes(size: number): number {
    let bytes = 4 * KiB;
    while (bytes < size) bytes *= 2;
    return bytes;
  }

  allocate(size: number): ArrayBuffer {
    const bytes = InlineZeroPool.classBytes(size);
    const buffer = this.#classes.get(bytes)?.pop();
    this.#live++;
    this.#liveBytes += bytes;
    if (buffer === undefined) return new ArrayBuffer(bytes);
    this.#pooledBytes -= bytes;
    return buffer;
  }

  free(buffer: ArrayBuffer): void {
    new Uint8Array(buffer).fill(0);
    const bytes = buffer.byteLength;
    let list = this.#classes.get(bytes);
    if (list === undefined) this.#classes.set(bytes, (list = []));
    list.push(buffer);
    this.#live--;
    this.#liveBytes -= bytes;
    this.#pooledBytes += bytes;
  }

  get pooledBytes(): number {
    return this.#pooledBytes;
  }
  get liveBytes(): number {
    return this.#liveBytes;
  }
  get live(): number {
    return this.#live;
  }

  /** Drops every pooled buffer. */
  clear(): void {
    this.#classes.clear();
    this.#pooledBytes = 0;
  }
}

/** The candidate: a {@link DmaHeap} with deferred zeroing. */
export function dmaHeapDesign(heap: DmaHeap, size: number): AllocDesign<DmaBuf> {
  return {
    label: 'DmaHeap',
    allocate: () => heap.allocate(size),
    bytesOf: (buf) => buf.bytes(),
    free: (buf) => buf.put(),
    heldBytes: () => heap.stats().heldBytes,
    liveBuffers: () => heap.liveBuffers,
  };
}

/** Where the fresh design's memory reading starts from, and what else is in it. */
export interface ArrayBufferAccounting {
  /** `process.memoryUsage().arrayBuffers` before the benchmark made anything. */
  readonly base: number;
  /** Bytes other designs hold at the moment of the reading. */
  readonly others: () => number;
}

/** Baseline: `new ArrayBuffer(size)` every time, dropped for the garbage collector. */
export function freshDesign(
  size: number,
  accounting: ArrayBufferAccounting = { base: 0, others: () => 0 },
): AllocDesign<ArrayBuffer> {
  let live = 0;
  return {
    label: 'new ArrayBuffer',
    allocate: () => {
      live++;
      return new ArrayBuffer(size);
    },
    bytesOf: (buffer) => new Uint8Array(buffer),
    free: () => {
      live--;
    },
    heldBytes: () => process.memoryUsage().arrayBuffers - accounting.base - accounting.others(),
    liveBuffers: () => live,
  };
}

/** Baseline: {@link InlineZeroPool}. */
export function inlinePoolDesign(pool: InlineZeroPool, size: number): AllocDesign<ArrayBuffer> {
  return {
    label: 'inline-zero pool',
    allocate: () => pool.allocate(size),
    bytesOf: (buffer) => new Uint8Array(buffer),
    free: (buffer) => pool.free(buffer),
    heldBytes: () => pool.liveBytes + pool.pooledBytes,
    liveBuffers: () => pool.live,
  };
}

/** One design's round: per-step latencies (ms) and the memory reading at the end of the churn. */
export interface ChurnResult {
  readonly alloc: Float64Array;
  readonly step: Float64Array;
  readonly heldBytes: number;
}

/** One macrotask turn: what lets the deferred-free worker (and timers, I/O) run. */
export function macrotaskTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function writeAndCheck(design: string, view: Uint8Array, step: number): void {
  const last = view.length - 1;
  const mid = last >> 1;
  if (view[0] !== 0 || view[mid] !== 0 || view[last] !== 0) {
    throw new Error(
      `heap-alloc: ${design} handed out a buffer that is not zero (bytes ${view[0]}, ` +
        `${view[mid]}, ${view[last]} at 0, ${mid}, ${last}) at step ${step}`,
    );
  }
  view[0] = 1 + (step & 0x7f);
  view[mid] = 2;
  view[last] = 3;
}

/** One round of the churn described in the module comment. `now` is injectable for tests. */
export async function churnRound<H>(
  design: AllocDesign<H>,
  shape: ChurnShape,
  now: () => number = () => performance.now(),
): Promise<ChurnResult> {
  const { workingSet, steps, turnEvery } = shape;
  if (!(workingSet >= 1 && steps >= 1 && turnEvery >= 1))
    throw new RangeError(`heap-alloc: bad churn shape ${JSON.stringify(shape)}`);
  const ring: H[] = [];
  for (let i = 0; i < workingSet; i++) {
    const h = design.allocate();
    writeAndCheck(design.label, design.bytesOf(h), -1);
    ring.push(h);
  }
  const alloc = new Float64Array(steps);
  const step = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    const slot = i % workingSet;
    const t0 = now();
    design.free(ring[slot]!);
    const t1 = now();
    const h = design.allocate();
    const t2 = now();
    alloc[i] = t2 - t1;
    step[i] = t2 - t0;
    ring[slot] = h;
    writeAndCheck(design.label, design.bytesOf(h), i);
    if ((i + 1) % turnEvery === 0) await macrotaskTurn();
  }
  if (design.liveBuffers() !== workingSet) {
    throw new Error(
      `heap-alloc: ${design.label} counts ${design.liveBuffers()} ` +
        `live buffers at the end of the churn, expected ${workingSet}`,
    );
  }
  const heldBytes = design.heldBytes();
  for (const h of ring) design.free(h);
  await macrotaskTurn();
  return { alloc, step, heldBytes };
}

/** Per-round summaries of one design. */
export interface DesignSamples {
  readonly label: string;
  readonly allocP50: number[];
  readonly allocP99: number[];
  readonly stepP50: number[];
  readonly stepP99: number[];
  readonly held: number[];
  /** Every measured allocate latency, for the all-samples quantiles in the notes. */
  readonly allAlloc: number[];
}

function newSamples(label: string): DesignSamples {
  return { label, allocP50: [], allocP99: [], stepP50: [], stepP99: [], held: [], allAlloc: [] };
}

function record(into: DesignSamples, r: ChurnResult): void {
  const alloc = Array.from(r.alloc);
  const step = Array.from(r.step);
  into.allocP50.push(quantile(alloc, 0.5));
  into.allocP99.push(quantile(alloc, 0.99));
  into.stepP50.push(quantile(step, 0.5));
  into.stepP99.push(quantile(step, 0.99));
  into.held.push(r.heldBytes);
  for (const v of alloc) into.allAlloc.push(v);
}

/** Allocations per second at a latency of `ms` (clamped to one timer tick, as in the harness). */
function rateOf(ms: number): number {
  return 1000 / Math.max(ms, 1e-6);
}

/**
 * A latency comparison as a table row: values are 1 / latency (median over rounds), the ratio is
 * the median of per-round baseline-latency / candidate-latency.
 */
export function latencyRow(spec: {
  name: string;
  candidate: { label: string; perRoundMs: readonly number[] };
  baseline: { label: string; perRoundMs: readonly number[] };
  batch: number;
  target?: Target;
  note?: string;
}): Row {
  const cand = spec.candidate.perRoundMs.map(rateOf);
  const base = spec.baseline.perRoundMs.map(rateOf);
  return throughputRow({
    ...spec,
    candidate: { label: spec.candidate.label, rates: cand },
    baseline: { label: spec.baseline.label, rates: base },
    ratio: ratioStats(cand, base),
    samples: cand.length,
  });
}

/** Memory held at the end of the churn, as a table row (bytes, lower is better). */
export function heldRow(spec: {
  name: string;
  candidate: DesignSamples;
  baseline: DesignSamples;
  batch: number;
  note?: string;
}): Row {
  const ratio = ratioStats(spec.candidate.held, spec.baseline.held);
  return {
    name: spec.name,
    kind: 'memory',
    dmabuf: { label: spec.candidate.label, value: median(spec.candidate.held), unit: 'B' },
    baseline: { label: spec.baseline.label, value: median(spec.baseline.held), unit: 'B' },
    ratio,
    target: null,
    samples: spec.candidate.held.length,
    batch: spec.batch,
    ...(spec.note !== undefined ? { note: spec.note } : {}),
  };
}

export function sizeLabel(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`;
}

function us(ms: number): string {
  return formatDuration(ms * 1e6);
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The 1 MiB targets. */
export const TARGET_VS_FRESH: Target = { op: '>=', value: 5, text: '>= 5x (p99 5x lower)' };
export const TARGET_VS_INLINE: Target = { op: '>=', value: 1, text: '>= 1x (p99 lower)' };

/** Runs one shape: the three designs in rotated order, `warmup` + `rounds` rounds. */
export async function runShape(
  shape: BenchShape,
  rounds: number,
  warmup: number,
  progress: (line: string) => void,
): Promise<BenchReport> {
  const { size, workingSet, steps, budgetBytes, diagnostic = false } = shape;
  const label = shape.turnEvery === 1 ? sizeLabel(size) : `${sizeLabel(size)}, ${shape.turnEvery} steps/turn`;
  const gc = defaultEnv.gc;
  // V8 frees the backing stores of collected ArrayBuffers after the collection, on its own
  // schedule; the count drops by the next macrotask. Without the settle, an earlier shape's
  // garbage would stay in the base and make the fresh design look smaller.
  for (let i = 0; i < 2; i++) {
    gc?.();
    await settle();
  }
  const base = process.memoryUsage().arrayBuffers;
  // Room for four working sets: the pool never refuses a buffer in this churn.
  const heap = new DmaHeap({
    name: `bench-heap-alloc-${label}`,
    maxPooledBytes: 4 * workingSet * size,
    ...(budgetBytes !== undefined ? { budgetBytes } : {}),
  });
  const inline = new InlineZeroPool();
  const dmabuf = dmaHeapDesign(heap, size);
  const pool = inlinePoolDesign(inline, size);
  const fresh = freshDesign(size, { base, others: () => dmabuf.heldBytes() + pool.heldBytes() });
  const d = newSamples(dmabuf.label);
  const f = newSamples(fresh.label);
  const p = newSamples(pool.label);
  const sides: { samples: DesignSamples; round: () => Promise<ChurnResult> }[] = [
    { samples: d, round: () => churnRound(dmabuf, shape) },
    { samples: f, round: () => churnRound(fresh, shape) },
    { samples: p, round: () => churnRound(pool, shape) },
  ];
  let hits = 0;
  let misses = 0;
  for (let r = 0; r < warmup + rounds; r++) {
    progress(`heap-alloc: ${label}, round ${r + 1}/${warmup + rounds}${r < warmup ? ' (warm-up)' : ''}`);
    // Rotated order: each design follows each other one equally often.
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(r + k) % sides.length]!;
      const before = heap.stats();
      const result = await side.round();
      if (r < warmup) continue;
      record(side.samples, result);
      if (side.samples === d) {
        const after = heap.stats();
        hits += after.hits - before.hits;
        misses += after.misses - before.misses;
      }
    }
  }
  await heap.drain();
  const finalStats = heap.stats();
  await heap[Symbol.asyncDispose]();
  inline.clear();

  const isMiB = size >= MiB && !diagnostic;
  const rows: Row[] = [];
  const batch = steps;
  const allocP50 = (base: DesignSamples, vs: string): Row =>
    latencyRow({
      name: `${label} allocate p50, ${vs}`,
      candidate: { label: d.label, perRoundMs: d.allocP50 },
      baseline: { label: base.label, perRoundMs: base.allocP50 },
      batch,
      note: `allocate p50 ${us(median(d.allocP50))} vs ${us(median(base.allocP50))}`,
    });
  const allocP99 = (base: DesignSamples, vs: string, target: Target | undefined): Row =>
    latencyRow({
      name: `${label} allocate p99, ${vs}`,
      candidate: { label: d.label, perRoundMs: d.allocP99 },
      baseline: { label: base.label, perRoundMs: base.allocP99 },
      batch,
      ...(target !== undefined ? { target } : {}),
      note:
        `allocate p99 ${us(median(d.allocP99))} vs ${us(median(base.allocP99))} (all ` +
        `samples: ${us(quantile(d.allAlloc, 0.99))} vs ${us(quantile(base.allAlloc, 0.99))})`,
    });
  const stepP99 = (base: DesignSamples, vs: string): Row =>
    latencyRow({
      name: `${label} free + allocate p99, ${vs}`,
      candidate: { label: d.label, perRoundMs: d.stepP99 },
      baseline: { label: base.label, perRoundMs: base.stepP99 },
      batch,
      note:
        `free + allocate p99 ${us(median(d.stepP99))} vs ${us(median(base.stepP99))}, ` +
        `p50 ${us(median(d.stepP50))} vs ${us(median(base.stepP50))}`,
    });
  const heldVsFresh = (): Row =>
    gc === undefined
      ? {
          name: `${label} memory held, vs fresh`,
          kind: 'memory',
          dmabuf: null,
          baseline: null,
          ratio: null,
          target: null,
          samples: 0,
          batch: workingSet,
          note: NO_GC_NOTE,
        }
      : heldRow({
          name: `${label} memory held, vs fresh`,
          candidate: d,
          baseline: f,
          batch: workingSet,
          note:
            `${mib(median(d.held))} vs ${mib(median(f.held))} (fresh: arrayBuffers ` +
            `growth minus the pooled designs' bytes: live buffers + uncollected garbage)`,
        });
  if (diagnostic) {
    // No memory row: the buffers the shrinker drops are garbage that the fresh reading would count.
    rows.push(allocP99(f, 'vs fresh', undefined), stepP99(p, 'vs inline pool'));
  } else {
    rows.push(
      allocP50(f, 'vs fresh'),
      allocP99(f, 'vs fresh', isMiB ? TARGET_VS_FRESH : undefined),
      stepP99(f, 'vs fresh'),
      allocP50(p, 'vs inline pool'),
      allocP99(p, 'vs inline pool', isMiB ? TARGET_VS_INLINE : undefined),
      stepP99(p, 'vs inline pool'),
      heldVsFresh(),
      heldRow({
        name: `${label} memory held, vs inline pool`,
        candidate: d,
        baseline: p,
        batch: workingSet,
        note:
          `${mib(median(d.held))} vs ${mib(median(p.held))} (DmaHeap: ` +
          `live + pooled + pending; inline pool: live + pooled)`,
      }),
    );
  }
  const notes = [
    `${label}: ${workingSet} buffers in flight (${mib(workingSet * size)}), ${steps} ` +
      `timed steps per round, one macrotask turn per ${shape.turnEvery} step(s)` +
      `${budgetBytes !== undefined ? `, DmaHeap budget ${mib(budgetBytes)}` : ''}; ` +
      `allocate p50/p99 (median over ${rounds} rounds): DmaHeap ${us(median(d.allocP50))}/${us(median(d.allocP99))}, ` +
      `new ArrayBuffer ${us(median(f.allocP50))}/${us(median(f.allocP99))}, ` +
      `inline-zero pool ${us(median(p.allocP50))}/${us(median(p.allocP99))}; ` +
      `all-samples max: ${us(Math.max(...d.allAlloc))}, ${us(Math.max(...f.allAlloc))}, ${us(Math.max(...p.allAlloc))}`,
    `${label}: DmaHeap pool hits ${hits}, misses ${misses} in the measured rounds ` +
      `(${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)}% hits); ` +
      `after the last round and a drain: pooled ${mib(finalStats.pooledBytes)}, ` +
      `pending ${finalStats.pendingBytes} B, live ${finalStats.liveBytes} B`,
    diagnostic
      ? `${label}: DmaHeap heldBytes at end of churn ${mib(median(d.held))} (the budget); ` +
        `the pending buffers its shrinker dropped are garbage, counted nowhere until collected`
      : `${label}: memory held (median at end of churn): DmaHeap ${mib(median(d.held))}, new ArrayBuffer ` +
        `${gc === undefined ? '- (gc() not exposed)' : mib(median(f.held))}, inline-zero pool ${mib(median(p.held))}`,
  ];
  return { rows, notes };
}

export const definition: BenchDefinition = {
  name: 'heap-alloc',
  question:
    'Under a steady alloc/free churn of 64 KiB and 1 MiB buffers (one macrotask turn per step), what are ' +
    'the p50/p99 allocation latencies of DmaHeap (pool + deferred zeroing), and what memory does it hold?',
  baseline:
    'new ArrayBuffer per allocation (dropped for the GC); a minimal pool ' +
    'that zeroes inline on free (fill(0) then push; allocate = pop or new)',
  target: '1 MiB allocate p99 >= 5x lower than new ArrayBuffer, and lower than the inline-zeroing pool',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    const notes: string[] = [];
    for (const shape of SHAPES) {
      const report = await runShape(shape, rounds, warmup, ctx.progress);
      rows.push(...report.rows);
      notes.push(...report.notes);
    }
    notes.push(
      'latency rows print 1/latency as a rate so that higher is better like every ' +
        'other rate; ratio = baseline latency / DmaHeap latency per round, median. ' +
        'Allocate rows time heap.allocate() / new ArrayBuffer / pool pop only; ' +
        'free + allocate rows add the free (put, drop, or fill(0) + push). ' +
        "DmaHeap's zeroing runs in its deferred-free worker during the macrotask turns, outside both.",
    );
    return { rows, notes };
  },
};
