/**
 * What the benchmark runner (`bench/cli.ts`) and the benchmarks agree on: result rows, run
 * budgets, the benchmark interface, and how numbers are printed.
 *
 * Overview: the runner loads each benchmark only when it runs (`bench/index.ts`), so it depends
 * on this small module rather than on the measuring code; `bench/harness.ts` re-exports all of
 * it next to that code for the benchmarks.
 *
 * Contract:
 * - A {@link Row}'s ratio is dmabuf / baseline of the measured quantity (ops/s or bytes), the
 *   median of per-round ratios; its target says which way is better.
 * - Formatting is pure: the same numbers always print the same way.
 *
 * @example
 * ```ts
 * import { formatMeasured, formatRatio } from './report.js';
 * console.log(formatMeasured({ label: 'DmaFence', value: 12_300_000, unit: 'ops/s' })); // 12.3 M/s
 * console.log(formatRatio({ median: 2.41, q1: 2.3, q3: 2.52 })); // 2.41x [2.30-2.52]
 * ```
 */

/** Whether a measured ratio met its target. */
export interface TargetResult {
  readonly text: string;
  readonly pass: boolean;
}

/** A median with its inter-quartile range: how much the rounds disagreed. */
export interface RatioStats {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
}

/** One measured quantity of one side. */
export interface Measured {
  readonly label: string;
  /** Median over rounds or repetitions. */
  readonly value: number;
  readonly unit: 'ops/s' | 'B';
}

/** One line of the results table. */
export interface Row {
  readonly name: string;
  readonly kind: 'throughput' | 'memory';
  /** The dmabuf side; null when it could not be measured (see `note`). */
  readonly dmabuf: Measured | null;
  readonly baseline: Measured | null;
  readonly ratio: RatioStats | null;
  readonly target: TargetResult | null;
  /** Rounds (throughput) or repetitions (memory) that counted. */
  readonly samples: number;
  /** Operations per round, or objects per repetition. */
  readonly batch: number;
  readonly note?: string;
}

/** The exposed collector, or undefined when node ran without `--expose-gc`. */
export function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}

/** The message printed wherever a number needed `gc()` and did not get it. */
export const NO_GC_NOTE = 'gc() not exposed: run node with --expose-gc (npm run bench does) to measure memory';

/** Sizes of a run: full, or shrunk by `--quick`. */
export interface Budget {
  readonly quick: boolean;
  /** Measured rounds per comparison. */
  readonly rounds: number;
  /** Discarded warm-up rounds per comparison. */
  readonly warmup: number;
  /** Repetitions per memory measurement. */
  readonly reps: number;
}

export function budget(quick: boolean): Budget {
  return quick ? { quick, rounds: 7, warmup: 2, reps: 3 } : { quick, rounds: 25, warmup: 5, reps: 7 };
}

/** What a benchmark gets from the runner. */
export interface BenchContext {
  readonly budget: Budget;
  /** One progress line (the CLI prints it on stderr). */
  progress(line: string): void;
}

/** What a benchmark hands back. */
export interface BenchReport {
  readonly rows: readonly Row[];
  /** Extra findings that do not fit a row (per-policy costs, reachable-node counts...). */
  readonly notes: readonly string[];
}

/** One benchmark file's export: the question it answers and how to run it. */
export interface BenchDefinition {
  readonly name: string;
  readonly question: string;
  readonly baseline: string;
  readonly target: string;
  run(ctx: BenchContext): Promise<BenchReport>;
}

/** One registered benchmark (`bench/index.ts`). */
export interface BenchEntry {
  readonly name: string;
  /** One line for `--list`. */
  readonly summary: string;
  load(): Promise<BenchDefinition>;
}

/** `12.3 M`, `456 k`, `789`: three significant digits with an SI prefix. */
export function formatRate(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toPrecision(3)} G`;
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)} M`;
  if (abs >= 1e3) return `${(value / 1e3).toPrecision(3)} k`;
  return value.toPrecision(3);
}

/** A row's measured value as printed: `12.3 M/s` or `96.0 B`. */
export function formatMeasured(m: Measured | null): string {
  if (m === null) return '-';
  return m.unit === 'B' ? `${m.value.toFixed(1)} B` : `${formatRate(m.value)}/s`;
}

/** `2.41x [2.30-2.52]`: median ratio and inter-quartile range. */
export function formatRatio(r: RatioStats | null): string {
  if (r === null) return '-';
  return `${r.median.toFixed(2)}x [${r.q1.toFixed(2)}-${r.q3.toFixed(2)}]`;
}

/** Nanoseconds, microseconds or milliseconds, three significant digits. */
export function formatDuration(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${ns.toPrecision(3)} ns`;
}
