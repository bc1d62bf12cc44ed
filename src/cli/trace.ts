/**
 * `trace.json`: a run in the Chrome trace-event format, for Perfetto and `chrome://tracing`.
 *
 * Overview: each variant of each scenario is a process (`pid`), named `churn [deferred-free=on]`;
 * each of its tracks is a thread (`tid`), named by `thread_name` metadata: one per engine, client,
 * worker, and the system. Slices are complete events (`ph: 'X'`, with `dur`), instants are
 * thread-scoped instant events (`ph: 'i'`, `s: 't'`: a fence signal, a shrinker scan), counters
 * are counter events (`ph: 'C'`, one series per key: memory by type). Timestamps are
 * microseconds since the run started, so variants follow each other on one timeline.
 *
 * Contract:
 * - The document is `{ traceEvents, displayTimeUnit: 'ms', otherData }`; every event has `name`,
 *   `ph`, `pid`, `tid` and (except metadata) `ts`.
 * - Events of one track are sorted by `ts`; slices on a track come from one scenario loop, which
 *   never overlaps its own slices, so they nest trivially (none overlap).
 * - Sort indexes keep tracks in the order the scenario made them (engines first when it made
 *   them first).
 *
 * @example
 * ```ts
 * import { toTraceJson } from './trace.js';
 * import type { RunResult } from './run-result.js';
 * const write = (run: RunResult) => JSON.stringify(toTraceJson(run));
 * ```
 */

import type { RunResult } from './run-result.js';

/** One event of the trace-event format (only the fields dmabuf writes). */
export interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 'i' | 'C' | 'M';
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly s?: 't';
  readonly cat?: string;
  readonly args?: Readonly<Record<string, unknown>>;
}

export interface TraceJson {
  readonly traceEvents: readonly TraceEvent[];
  readonly displayTimeUnit: 'ms';
  readonly otherData: Readonly<Record<string, string>>;
}

/** Microseconds, rounded to a tenth (the format's resolution is the microsecond). */
const us = (ms: number): number => Math.round(ms * 10_000) / 10;

/** The trace of `run` (see the module contract). */
export function toTraceJson(run: RunResult): TraceJson {
  const events: TraceEvent[] = [];
  let pid = 0;
  for (const scenario of run.scenarios) {
    for (const variant of scenario.variants) {
      pid++;
      const name = variant.label === 'default' ? scenario.name : `${scenario.name} [${variant.label}]`;
      events.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name } });
      events.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
      for (const track of variant.tracks) {
        events.push({ name: 'thread_name', ph: 'M', pid, tid: track.id, args: { name: track.name } });
        events.push({ name: 'thread_sort_index', ph: 'M', pid, tid: track.id, args: { sort_index: track.id } });
      }
      const timed: TraceEvent[] = [];
      const at = (ms: number): number => us(variant.startMs + ms);
      for (const e of variant.events) {
        if (e.type === 'slice') {
          const cat = variant.tracks[e.track - 1]?.kind ?? 'track';
          // The recorded end is rounded like the start, so slices that touch stay touching, never
          // overlap (start + dur can miss the end by a float step and round to the next 0.1 µs).
          const ts = at(e.start);
          const dur = at(e.end) - ts;
          timed.push({ name: e.name, cat, ph: 'X', pid, tid: e.track, ts, dur, ...(e.args ? { args: e.args } : {}) });
        } else if (e.type === 'instant') {
          timed.push({
            name: e.name,
            cat: 'event',
            ph: 'i',
            s: 't',
            pid,
            tid: e.track,
            ts: at(e.at),
            ...(e.args ? { args: e.args } : {}),
          });
        } else {
          timed.push({ name: e.name, cat: 'counter', ph: 'C', pid, tid: 0, ts: at(e.at), args: e.values });
        }
      }
      // Stable: events recorded in order keep it when their timestamps tie.
      timed.sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
      events.push(...timed);
    }
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: {
      tool: 'dmabuf run',
      command: run.command,
      date: run.date,
      seed: String(run.options.seed),
      interrupted: String(run.interrupted),
    },
  };
}
