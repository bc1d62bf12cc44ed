/**
 * Benchmark harness: side-by-side comparisons that survive a noisy machine.
 *
 * Overview: these machines are shared, so an absolute rate means little; what a benchmark can
 * trust is a ratio taken while both sides saw the same noise. {@link compare} therefore runs the
 * dmabuf side (the candidate) and its baseline in interleaved rounds in one process. Each round
 * times a fixed batch of operations with `performance.now()`, the first rounds are warm-up and
 * discarded, and the result is each side's median rate plus the median of the per-round ratios
 * (candidate over baseline). {@link measureBytes} measures retained heap per object with the
 * exposed `gc()`: allocate N objects held in an array, collect, read the `heapUsed` delta.
 *
 * Contract:
 * - Within a round both sides run back to back; the order alternates (A B, then B A) so neither
 *   side always runs right after the other. With `gc()` exposed, one full collection runs before
 *   a comparison's first round, so earlier comparisons' heaps do not leak into it, and none
 *   between rounds: a forced full collection makes V8 shrink the young generation, and the next
 *   batch then pays for many extra scavenges while it grows back. Measured here, that cut
 *   short allocation-heavy rounds (50,000 fences) to a third of their steady-state rate, far
 *   more than what it was meant to remove. A side whose state must be reset (a global queue)
 *   does so in its untimed `setup`.
 * - A ratio is always candidate / baseline of the measured quantity: ops/s for throughput (higher
 *   is better), bytes for memory (lower is better). Targets say which way they point.
 * - Without `gc()` (node run without `--expose-gc`) memory results are `null` and say so; nothing
 *   is estimated.
 * - The maths ({@link median}, {@link quantile}, {@link ratioStats}, {@link checkTarget}) are pure
 *   and unit-tested; {@link compare} takes an injectable clock for the same reason.
 *
 * @example
 * ```ts
 * import { compare } from './harness.js';
 * const row = await compare({
 *   name: 'array push vs spread',
 *   candidate: { label: 'push', run: (n) => { const a: number[] = []; for (let i = 0; i < n; i++) a.push(i); } },
 *   baseline: {
 *     label: 'spread',
 *     run: (n) => { let a: number[] = []; for (let i = 0; i < n; i++) a = [...a.slice(-4), i]; },
 *   },
 *   batch: 10_000,
 *   rounds: 10,
 *   warmup: 2,
 *   target: { op: '>=', value: 1 },
 * });
 * console.log(row.ratio?.median, row.target?.pass);
 * ```
 */

import { NO_GC_NOTE, exposedGc, type RatioStats, type Row, type TargetResult } from './report.js';

export {
  NO_GC_NOTE,
  budget,
  exposedGc,
  formatDuration,
  formatMeasured,
  formatRate,
  formatRatio,
  type BenchContext,
  type BenchDefinition,
  type BenchEntry,
  type BenchReport,
  type Budget,
  type Measured,
  type RatioStats,
  type Row,
  type TargetResult,
} from './report.js';

/** One side of a comparison. */
export interface Side {
  /** What this side is, as printed in the table ("DmaFence", "Promise"). */
  readonly label: string;
  /** Untimed preparation before each of this side's rounds (fresh inputs, resetting global state). */
  setup?(batch: number): unknown;
  /**
   * Runs `batch` operations. May be async (the await is timed). May return its own elapsed
   * milliseconds when only part of the round should count (e.g. appends without the lookups).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a plain `void` function is a valid run (no time of its own)
  run(batch: number): void | number | Promise<void | number>;
}

/** A goal on the candidate/baseline ratio. */
export interface Target {
  readonly op: '>=' | '<=';
  readonly value: number;
  /** How the table prints it; defaults to e.g. `>= 2x`. */
  readonly text?: string;
}

/** The options of one throughput comparison. */
export interface CompareSpec {
  readonly name: string;
  readonly candidate: Side;
  readonly baseline: Side;
  /** Operations per timed round. */
  readonly batch: number;
  /** Measured rounds per side. */
  readonly rounds: number;
  /** Rounds run first and discarded (JIT warm-up). */
  readonly warmup: number;
  readonly target?: Target;
  readonly note?: string;
}

/** Things {@link compare} and {@link measureBytes} use from the environment; tests replace them. */
export interface HarnessEnv {
  now(): number;
  gc: (() => void) | undefined;
  heapUsed(): number;
}

export const defaultEnv: HarnessEnv = {
  now: () => performance.now(),
  gc: exposedGc(),
  heapUsed: () => process.memoryUsage().heapUsed,
};

/** The median of `values`. @throws {RangeError} on an empty list. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * The `q`-quantile of `values` (0 <= q <= 1), interpolating linearly between order statistics.
 * @throws {RangeError} on an empty list or a q outside [0, 1].
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list: measure at least one round');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be within [0, 1], got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** Operations per second for `ops` operations that took `ms` milliseconds. */
export function opsPerSecond(ops: number, ms: number): number {
  // A batch faster than the timer's resolution would be infinitely fast; clamp to one tick.
  return ops / (Math.max(ms, 1e-6) / 1000);
}

/**
 * Per-round ratios candidate[i] / baseline[i], summarised by median and quartiles.
 * Pairing by round is the point: both numbers of a pair saw the same machine state.
 * @throws {RangeError} when the lists differ in length or are empty.
 */
export function ratioStats(candidate: readonly number[], baseline: readonly number[]): RatioStats {
  if (candidate.length !== baseline.length) {
    throw new RangeError(
      `ratioStats: ${candidate.length} candidate samples vs ${baseline.length} baseline samples; pair them by round`,
    );
  }
  const ratios = candidate.map((c, i) => c / baseline[i]!);
  return { median: median(ratios), q1: quantile(ratios, 0.25), q3: quantile(ratios, 0.75) };
}

/** Formats a target as printed (`>= 2x`). */
export function targetText(target: Target): string {
  return target.text ?? `${target.op} ${target.value}x`;
}

/** Whether the median `ratio` meets `target`. */
export function checkTarget(ratio: number, target: Target): TargetResult {
  const pass = target.op === '>=' ? ratio >= target.value : ratio <= target.value;
  return { text: targetText(target), pass };
}

async function timeRound(side: Side, batch: number, env: HarnessEnv): Promise<number> {
  await side.setup?.(batch);
  const t0 = env.now();
  const result = side.run(batch);
  const own = result instanceof Promise ? await result : result;
  const elapsed = env.now() - t0;
  return typeof own === 'number' ? own : elapsed;
}

/**
 * Runs `spec.candidate` and `spec.baseline` in interleaved rounds and summarises them.
 * Round r runs candidate then baseline when r is even, baseline then candidate when odd.
 */
export async function compare(spec: CompareSpec, env: HarnessEnv = defaultEnv): Promise<Row> {
  checkCounts(spec.name, spec.batch, spec.rounds, spec.warmup);
  const candOps: number[] = [];
  const baseOps: number[] = [];
  env.gc?.();
  for (let r = 0; r < spec.warmup + spec.rounds; r++) {
    let candMs: number;
    let baseMs: number;
    if (r % 2 === 0) {
      candMs = await timeRound(spec.candidate, spec.batch, env);
      baseMs = await timeRound(spec.baseline, spec.batch, env);
    } else {
      baseMs = await timeRound(spec.baseline, spec.batch, env);
      candMs = await timeRound(spec.candidate, spec.batch, env);
    }
    if (r < spec.warmup) continue;
    candOps.push(opsPerSecond(spec.batch, candMs));
    baseOps.push(opsPerSecond(spec.batch, baseMs));
  }
  return throughputRow({
    ...spec,
    candidate: { label: spec.candidate.label, rates: candOps },
    baseline: { label: spec.baseline.label, rates: baseOps },
    ratio: ratioStats(candOps, baseOps),
    samples: spec.rounds,
  });
}

/**
 * A throughput row from the two sides' rates (ops/s): each side's value is the median of its
 * rates, and the ratio is the one the caller computed from them (how depends on the method).
 */
export function throughputRow(spec: {
  readonly name: string;
  readonly candidate: { readonly label: string; readonly rates: readonly number[] };
  readonly baseline: { readonly label: string; readonly rates: readonly number[] };
  readonly ratio: RatioStats;
  readonly samples: number;
  readonly batch: number;
  readonly target?: Target | undefined;
  readonly note?: string | undefined;
}): Row {
  return {
    name: spec.name,
    kind: 'throughput',
    dmabuf: { label: spec.candidate.label, value: median(spec.candidate.rates), unit: 'ops/s' },
    baseline: { label: spec.baseline.label, value: median(spec.baseline.rates), unit: 'ops/s' },
    ratio: spec.ratio,
    target: spec.target !== undefined ? checkTarget(spec.ratio.median, spec.target) : null,
    samples: spec.samples,
    batch: spec.batch,
    ...(spec.note !== undefined ? { note: spec.note } : {}),
  };
}

function checkCounts(name: string, batch: number, rounds: number, warmup: number): void {
  for (const [what, n, min] of [
    ['batch', batch, 1],
    ['rounds', rounds, 1],
    ['warmup', warmup, 0],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < min) {
      throw new RangeError(`${name}: ${what} must be an integer >= ${min}, got ${n}`);
    }
  }
}

/** Lets pending microtasks and WeakRef bookkeeping finish before a collection. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// Keeps measured objects alive past the second heap reading without the optimiser noticing.
// biome-ignore lint/correctness/noUnusedVariables: written only, so the optimiser cannot drop the objects
let sink: unknown;

/** What one object of a memory measurement is. */
export interface MemorySubject {
  readonly label: string;
  /** Array slots each object needs in the holder (e.g. 2 for a promise and its resolve function). */
  readonly slots?: number;
  /**
   * Preparation before the first heap reading, so its allocations are not counted (payload
   * fences made in advance, resetting global state). Its result is passed to `fill`.
   */
  prepare?(count: number): unknown;
  /** Creates `count` objects and stores them (and whatever must stay alive) into `holder`. */
  fill(holder: unknown[], count: number, prepared: unknown): void;
}

/**
 * Retained bytes per object, median over `reps` repetitions; null without `gc()`.
 * The holder array is allocated before the first reading, so its own slots are not counted.
 */
export async function measureBytes(
  subject: MemorySubject,
  count: number,
  reps: number,
  env: HarnessEnv = defaultEnv,
): Promise<number | null> {
  const samples = await measureBytesSamples(subject, count, reps, env);
  return samples === null ? null : median(samples);
}

/** Per-repetition bytes per object; null without `gc()`. */
export async function measureBytesSamples(
  subject: MemorySubject,
  count: number,
  reps: number,
  env: HarnessEnv = defaultEnv,
): Promise<number[] | null> {
  const gc = env.gc;
  if (gc === undefined) return null;
  checkCounts(subject.label, count, reps, 0);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const holder: unknown[] = new Array<unknown>(count * (subject.slots ?? 1)).fill(null);
    const prepared: unknown = await subject.prepare?.(count);
    await settle();
    gc();
    gc();
    const before = env.heapUsed();
    subject.fill(holder, count, prepared);
    await settle();
    gc();
    gc();
    const after = env.heapUsed();
    sink = [holder, prepared];
    out.push((after - before) / count);
    sink = undefined;
  }
  return out;
}

/**
 * Compares retained bytes per object of a dmabuf subject against a baseline, alternating
 * repetitions like {@link compare}. Without `gc()` the row carries no numbers and says why.
 */
export async function compareMemory(
  spec: {
    name: string;
    candidate: MemorySubject;
    baseline?: MemorySubject;
    count: number;
    reps: number;
    target?: Target;
    note?: string;
  },
  env: HarnessEnv = defaultEnv,
): Promise<Row> {
  const { name, candidate, baseline, count, reps, target } = spec;
  if (env.gc === undefined) {
    return {
      name,
      kind: 'memory',
      dmabuf: null,
      baseline: null,
      ratio: null,
      target: null,
      samples: 0,
      batch: count,
      note: NO_GC_NOTE,
    };
  }
  const cand: number[] = [];
  const base: number[] = [];
  for (let r = 0; r < reps; r++) {
    const order = r % 2 === 0 ? [candidate, baseline] : [baseline, candidate];
    for (const subject of order) {
      if (subject === undefined) continue;
      const sample = (await measureBytesSamples(subject, count, 1, env))![0]!;
      (subject === candidate ? cand : base).push(sample);
    }
  }
  const ratio = baseline !== undefined ? ratioStats(cand, base) : null;
  return {
    name,
    kind: 'memory',
    dmabuf: { label: candidate.label, value: median(cand), unit: 'B' },
    baseline: baseline !== undefined ? { label: baseline.label, value: median(base), unit: 'B' } : null,
    ratio,
    target: ratio !== null && target !== undefined ? checkTarget(ratio.median, target) : null,
    samples: reps,
    batch: count,
    ...(spec.note !== undefined ? { note: spec.note } : {}),
  };
}

export { seededRandom } from '../src/base/random.js';
