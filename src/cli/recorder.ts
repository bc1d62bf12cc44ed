/**
 * The recorder: what a scenario writes down while it runs (metrics, charts, trace events).
 *
 * Overview: the runner gives each variant of a scenario a fresh {@link Recorder}. The scenario
 * names its tracks (`track('engine gfx', 'engine')`), records slices (a job on an engine, a
 * client's burst of work), instants (a fence signal, a shrinker scan) and counters (memory), adds
 * time series ({@link Recorder.series}) and histograms for the report, and states its metrics.
 * {@link Recorder.result} hands all of it to the runner.
 *
 * Engine occupancy is derived here: every slice on an `engine` track adds its busy time to the
 * engine's time buckets, so the report's occupancy chart exists whether or not the trace is kept.
 *
 * Contract:
 * - With `trace: false` slices, instants and counters are not stored (a check and a return),
 *   so a run without `trace.json` pays next to nothing for them; occupancy is still counted.
 * - At most `maxEvents` trace events are stored; later ones are counted in `droppedEvents`.
 * - Times are ms since the variant started ({@link Recorder.now}); a slice ending before it
 *   starts is a bug in the scenario (`RangeError`).
 * - Metric keys are unique per variant (`Error` on a repeat).
 *
 * @example
 * ```ts
 * import { Recorder } from './recorder.js';
 * const rec = new Recorder({ trace: true, durationMs: 1000 });
 * const gfx = rec.track('gfx', 'engine');
 * rec.slice(gfx, 'job 1', 0, 250, { client: 'A' });
 * rec.metric('jobs', 'jobs run', 1, 'count');
 * console.log(rec.result().charts[0]?.title); // engine occupancy
 * ```
 */

import type { Unit } from './format.js';
import type { Chart, Metric, Recorded, TraceArgs, TraceRecord, TrackInfo } from './run-result.js';
import type { Samples } from './stats.js';

export interface RecorderOptions {
  /** Store trace events (slices, instants, counters) for `trace.json`. */
  readonly trace: boolean;
  /** The variant's planned length: sets the occupancy buckets (100 of them). */
  readonly durationMs: number;
  /** Cap on stored trace events (default 100,000: about 15 MB of JSON). */
  readonly maxEvents?: number;
  /** `performance.now()` at the variant's start (default: now). */
  readonly origin?: number;
  /** Names the variant's series in histograms (`deferred-free=off`; default `default`). */
  readonly label?: string;
}

/** Handle of a time series being sampled; see {@link Recorder.series}. */
export interface SeriesRecorder {
  /** One sample of every series of the chart, at `atMs` (ms since the variant started). */
  sample(atMs: number, values: readonly number[]): void;
}

interface SeriesState {
  readonly chart: {
    kind: 'lines' | 'stacked' | 'bars';
    id: string;
    title: string;
    unit: Unit;
    limit?: { label: string; value: number };
  };
  readonly labels: readonly string[];
  /** Also a trace counter of this name, when given. */
  readonly counter: string | undefined;
  readonly x: number[];
  readonly values: number[][];
}

const DEFAULT_MAX_EVENTS = 100_000;
const OCCUPANCY_BUCKETS = 100;

export class Recorder {
  readonly tracing: boolean;
  readonly label: string;
  readonly #origin: number;
  readonly #maxEvents: number;
  readonly #bucketMs: number;
  readonly #tracks: TrackInfo[] = [];
  readonly #events: TraceRecord[] = [];
  #dropped = 0;
  readonly #metrics: Metric[] = [];
  readonly #charts: (Chart | SeriesState)[] = [];
  readonly #notes: string[] = [];
  /** Busy ms per engine track per occupancy bucket. */
  readonly #busy = new Map<number, number[]>();
  #lastMs = 0;

  constructor(options: RecorderOptions) {
    this.tracing = options.trace;
    this.label = options.label ?? 'default';
    this.#origin = options.origin ?? performance.now();
    this.#maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    this.#bucketMs = Math.max(1, options.durationMs / OCCUPANCY_BUCKETS);
  }

  /** Milliseconds since the variant started. */
  now(): number {
    return performance.now() - this.#origin;
  }

  /** A new track; its id goes to {@link slice} and {@link instant}. */
  track(name: string, kind: TrackInfo['kind']): number {
    const id = this.#tracks.length + 1;
    this.#tracks.push({ id, name, kind });
    if (kind === 'engine') this.#busy.set(id, []);
    return id;
  }

  /** Work on `track` from `startMs` to `endMs`. Counts towards occupancy on an engine track. */
  slice(track: number, name: string, startMs: number, endMs: number, args?: TraceArgs): void {
    if (endMs < startMs)
      throw new RangeError(`Recorder: slice "${name}" ends (${endMs}) before it starts (${startMs})`);
    const busy = this.#busy.get(track);
    if (busy !== undefined) this.#addBusy(busy, startMs, endMs);
    if (endMs > this.#lastMs) this.#lastMs = endMs;
    if (!this.tracing) return;
    this.#push(
      args === undefined
        ? { type: 'slice', track, name, start: startMs, dur: endMs - startMs, end: endMs }
        : { type: 'slice', track, name, start: startMs, dur: endMs - startMs, end: endMs, args },
    );
  }

  /** Something that happened at one moment on `track` (a fence signal, a reset). */
  instant(track: number, name: string, atMs: number, args?: TraceArgs): void {
    if (!this.tracing) return;
    this.#push(
      args === undefined
        ? { type: 'instant', track, name, at: atMs }
        : { type: 'instant', track, name, at: atMs, args },
    );
  }

  /** Values of a named counter (memory by type) at `atMs`. */
  counter(name: string, atMs: number, values: Readonly<Record<string, number>>): void {
    if (!this.tracing) return;
    this.#push({ type: 'counter', name, at: atMs, values });
  }

  /** A number for the summary. @throws Error when `key` was already used. */
  metric(key: string, label: string, value: number, unit: Unit, better?: 'lower' | 'higher'): void {
    if (this.#metrics.some((m) => m.key === key)) throw new Error(`Recorder: metric "${key}" recorded twice`);
    this.#metrics.push(better === undefined ? { key, label, value, unit } : { key, label, value, unit, better });
  }

  /**
   * A chart of values over time, one series per label, in the order charts are added. With
   * `counter`, every sample is also a trace counter of that name (memory counters).
   */
  series(
    chart: {
      kind: 'lines' | 'stacked' | 'bars';
      id: string;
      title: string;
      unit: Unit;
      limit?: { label: string; value: number };
      counter?: string;
    },
    labels: readonly string[],
  ): SeriesRecorder {
    const { counter, ...rest } = chart;
    const state: SeriesState = { chart: rest, labels, counter, x: [], values: labels.map(() => []) };
    this.#charts.push(state);
    return {
      sample: (atMs, values) => {
        state.x.push(atMs / 1000);
        for (let i = 0; i < labels.length; i++) state.values[i]!.push(values[i] ?? Number.NaN);
        if (counter !== undefined && this.tracing) {
          const named: Record<string, number> = {};
          for (let i = 0; i < labels.length; i++) named[labels[i]!] = values[i] ?? 0;
          this.counter(counter, atMs, named);
        }
      },
    };
  }

  /** A histogram of `samples` for the report (one series, named after the variant). */
  histogram(id: string, title: string, unit: Unit, samples: Samples): void {
    const { edges, counts } = samples.histogram();
    this.#charts.push({ kind: 'histogram', id, title, unit, edges, series: [{ label: this.label, counts }] });
  }

  /** A sentence for the summary and the report. */
  note(text: string): void {
    this.#notes.push(text);
  }

  /** Everything recorded, with the occupancy chart first when there are engine tracks. */
  result(): Recorded {
    const charts: Chart[] = [];
    const occupancy = this.#occupancy();
    if (occupancy !== null) charts.push(occupancy);
    for (const c of this.#charts) {
      if (!('labels' in c)) {
        charts.push(c);
        continue;
      }
      charts.push({ ...c.chart, x: c.x, series: c.labels.map((label, i) => ({ label, values: c.values[i]! })) });
    }
    if (this.#dropped > 0) {
      this.#notes.push(
        `the trace keeps the first ${this.#maxEvents} events; ${this.#dropped} later ones were left out`,
      );
    }
    return {
      metrics: this.#metrics,
      charts,
      tracks: this.#tracks,
      events: this.#events,
      droppedEvents: this.#dropped,
      notes: this.#notes,
    };
  }

  #push(event: TraceRecord): void {
    if (this.#events.length >= this.#maxEvents) this.#dropped++;
    else this.#events.push(event);
  }

  #addBusy(busy: number[], startMs: number, endMs: number): void {
    const size = this.#bucketMs;
    let t = Math.max(0, startMs);
    while (t < endMs) {
      const bucket = Math.floor(t / size);
      const until = Math.min(endMs, (bucket + 1) * size);
      busy[bucket] = (busy[bucket] ?? 0) + (until - t);
      t = until;
    }
  }

  /** Percent of each bucket every engine was busy, up to the last recorded slice. */
  #occupancy(): Chart | null {
    if (this.#busy.size === 0) return null;
    const size = this.#bucketMs;
    const buckets = Math.max(1, Math.ceil(this.#lastMs / size));
    const x = Array.from({ length: buckets }, (_, i) => ((i + 1) * size) / 1000);
    const series = [...this.#busy].map(([track, busy]) => ({
      label: this.#tracks[track - 1]!.name,
      values: Array.from({ length: buckets }, (_, i) => Math.min(100, ((busy[i] ?? 0) / size) * 100)),
    }));
    return { kind: 'lines', id: 'engine-occupancy', title: 'engine occupancy', unit: 'percent', x, series };
  }
}
