/**
 * `dmabuf run --json`: the machine-readable summary, and the exit code of a run.
 *
 * Overview: {@link toRunJson} keeps from a {@link RunResult} what a program reading the run
 * needs: the options, every scenario and variant with its status, metrics and notes, where the
 * report and trace went, and the exit code. Charts and trace events stay in the report and the
 * trace. `schema` names the version of this shape; a change that removes or renames a field
 * bumps it.
 *
 * Contract:
 * - `--json` prints exactly one such document on stdout, and nothing else there.
 * - Metric values are numbers in their `unit` (see `format.ts` for the units); a value that could
 *   not be measured (no samples) is `null`.
 * - `exitCode` is what the process exits with: 0 all ran, 1 a scenario failed, 130 interrupted.
 *
 * @example
 * ```ts
 * import type { RunJson } from './run-json.js';
 * const p99 = (doc: RunJson) =>
 *   doc.scenarios[0]?.variants[0]?.metrics.find((m) => m.key === 'alloc_p99')?.value;
 * ```
 */

import type { Metric, RunResult, ScenarioResult, VariantResult } from './run-result.js';

export const RUN_JSON_SCHEMA = 'dmabuf-run/1';

/** Exit codes of `dmabuf run`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A metric as `--json` writes it: `value` is `null` when nothing was measured (no samples). */
export interface RunJsonMetric extends Omit<Metric, 'value'> {
  readonly value: number | null;
}

/** A variant as `--json` shows it: its outcome, metrics and notes (charts and trace stay out). */
export interface RunJsonVariant
  extends Pick<VariantResult, 'label' | 'knobs' | 'status' | 'error' | 'wallMs' | 'notes'> {
  readonly metrics: readonly RunJsonMetric[];
}

export interface RunJsonScenario extends Pick<ScenarioResult, 'name' | 'title' | 'status'> {
  readonly variants: readonly RunJsonVariant[];
}

/**
 * The document `dmabuf run --json` prints: the run's options and facts (as in {@link RunResult}),
 * and the fields below.
 */
export interface RunJson
  extends Pick<RunResult, 'date' | 'command' | 'options' | 'compare' | 'machine' | 'wallMs' | 'interrupted'> {
  readonly schema: typeof RUN_JSON_SCHEMA;
  readonly tool: 'dmabuf run';
  readonly exitCode: number;
  /** Absolute paths of the files written; `null` when turned off (or not written). */
  readonly outputs: { readonly report: string | null; readonly trace: string | null };
  readonly scenarios: readonly RunJsonScenario[];
}

/** 130 when interrupted, 1 when a scenario failed, else 0. */
export function exitCodeOf(run: RunResult): number {
  if (run.interrupted) return EXIT.interrupted;
  return run.scenarios.some((s) => s.status === 'failed') ? EXIT.failed : EXIT.ok;
}

/** The `--json` document of `run`. */
export function toRunJson(run: RunResult, outputs: RunJson['outputs']): RunJson {
  return {
    schema: RUN_JSON_SCHEMA,
    tool: 'dmabuf run',
    date: run.date,
    command: run.command,
    options: run.options,
    compare: run.compare,
    machine: run.machine,
    wallMs: run.wallMs,
    interrupted: run.interrupted,
    exitCode: exitCodeOf(run),
    outputs,
    scenarios: run.scenarios.map((s) => ({
      name: s.name,
      title: s.title,
      status: s.status,
      variants: s.variants.map((v) => ({
        label: v.label,
        knobs: v.knobs,
        status: v.status,
        ...(v.error === undefined ? {} : { error: v.error }),
        wallMs: v.wallMs,
        metrics: v.metrics.map((m) => ({ ...m, value: Number.isFinite(m.value) ? m.value : null })),
        notes: v.notes,
      })),
    })),
  };
}
