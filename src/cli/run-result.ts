/**
 * What a `dmabuf run` produced: the data every output (summary, `--json`, report, trace) reads.
 *
 * Overview: a run is a list of {@link ScenarioResult}s; a scenario ran once, or once per value
 * of the `--compare` knob, and each run of it is a {@link VariantResult}: its metrics (the
 * numbers of the summary), its charts (time series and histograms for the report) and its trace
 * (tracks and events for `trace.json`). Times inside a variant are milliseconds since the variant
 * started; `startMs` places the variant on the run's timeline.
 *
 * Contract: the types are plain data (JSON-safe apart from `events`, which the trace exporter
 * converts); nothing here runs.
 *
 * @example
 * ```ts
 * import type { RunResult } from './run-result.js';
 * const statuses = (run: RunResult) => run.scenarios.map((s) => `${s.name}: ${s.status}`);
 * ```
 */

import type { Unit } from './format.js';

/** One number of a variant's summary. */
export interface Metric {
  /** Stable machine name (`alloc_p99`), unique within the variant. */
  readonly key: string;
  /** What the summary and the report print (`allocation p99`). */
  readonly label: string;
  readonly value: number;
  readonly unit: Unit;
  /** Which direction is good, for the compare views; omitted when neither is. */
  readonly better?: 'lower' | 'higher';
}

/** One line of a {@link SeriesChart}. */
export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

/** Values sampled over time. `stacked` draws areas on top of each other (memory by type). */
export interface SeriesChart {
  readonly kind: 'lines' | 'stacked' | 'bars';
  /** Stable id, shared by the same chart of every variant (the compare views pair them). */
  readonly id: string;
  readonly title: string;
  readonly unit: Unit;
  /** Sample times, seconds since the variant started. */
  readonly x: readonly number[];
  readonly series: readonly Series[];
  /** A horizontal line, such as the memory budget. */
  readonly limit?: { readonly label: string; readonly value: number };
}

/** A latency (or size) distribution: counts per log-scale bucket, one series per variant. */
export interface HistogramChart {
  readonly kind: 'histogram';
  readonly id: string;
  readonly title: string;
  readonly unit: Unit;
  /** `counts.length + 1` bucket edges in `unit`. */
  readonly edges: readonly number[];
  readonly series: readonly { readonly label: string; readonly counts: readonly number[] }[];
  /** The counts are percentages of each series' samples (compare views of unequal runs). */
  readonly share?: boolean;
}

export type Chart = SeriesChart | HistogramChart;

/**
 * A timeline in the trace: an engine (ring) of a device, a client, a worker or the system.
 * The trace has one track per engine; a job's slice sits on the engine that ran it.
 */
export interface TrackInfo {
  readonly id: number;
  readonly name: string;
  readonly kind: 'engine' | 'client' | 'worker' | 'system';
}

/** Arguments shown with an event in a trace viewer. */
export type TraceArgs = Readonly<Record<string, string | number | boolean>>;

/** A recorded trace event; times in ms since the variant started. */
export type TraceRecord =
  | {
      readonly type: 'slice';
      readonly track: number;
      readonly name: string;
      readonly start: number;
      readonly dur: number;
      /** The end as recorded: `start + dur` can miss it by a float step (see trace.ts). */
      readonly end: number;
      readonly args?: TraceArgs;
    }
  | {
      readonly type: 'instant';
      readonly track: number;
      readonly name: string;
      readonly at: number;
      readonly args?: TraceArgs;
    }
  | {
      readonly type: 'counter';
      readonly name: string;
      readonly at: number;
      readonly values: Readonly<Record<string, number>>;
    };

/** How a scenario (or one variant of it) ended. */
export type Status = 'ok' | 'failed' | 'interrupted';

/** What a scenario recorded in one run (see `recorder.ts`). */
export interface Recorded {
  readonly metrics: readonly Metric[];
  readonly charts: readonly Chart[];
  readonly tracks: readonly TrackInfo[];
  readonly events: readonly TraceRecord[];
  /** Trace events left out because the variant recorded more than the cap. */
  readonly droppedEvents: number;
  /** Sentences for the summary and the report (what was checked, what to read in the charts). */
  readonly notes: readonly string[];
}

/** One run of a scenario, under one value of the compared knob (or the defaults). */
export interface VariantResult extends Recorded {
  /** `deferred-free=off`, or `default` when nothing is compared. */
  readonly label: string;
  /** Every knob the scenario honours, with the value this variant used. */
  readonly knobs: Readonly<Record<string, string>>;
  readonly status: Status;
  /** Why it failed (the error's message), when it did. */
  readonly error?: string;
  /** When the variant started, ms since the run started. */
  readonly startMs: number;
  readonly wallMs: number;
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  /** `failed` when any variant failed; `skipped` when the run was interrupted before it started. */
  readonly status: Status | 'skipped';
  readonly variants: readonly VariantResult[];
}

/** The options a run used, after defaults. */
export interface RunOptions {
  readonly seed: number;
  /** Omitted: each scenario's own default. */
  readonly clients?: number;
  readonly budgetBytes: number;
  /** Omitted: each scenario's own default duration. */
  readonly durationMs?: number;
  readonly device: 'soft' | 'webgpu';
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
}

export interface RunResult {
  /** ISO date of the start. */
  readonly date: string;
  /** The command line, for the report's "run it again" line. */
  readonly command: string;
  readonly options: RunOptions;
  readonly compare: { readonly knob: string; readonly values: readonly string[] } | null;
  readonly machine: MachineInfo;
  readonly wallMs: number;
  /** Stopped by Ctrl-C (or an abort): the results are partial. */
  readonly interrupted: boolean;
  readonly scenarios: readonly ScenarioResult[];
}
