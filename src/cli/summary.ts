/**
 * The summary `dmabuf run` prints on stdout: one block per scenario, at most 100 columns wide.
 *
 * Overview: a header line (seed, sizes, machine, wall time), then per scenario its title, a table
 * of its metrics (one value column per variant; under `--compare`, the compared values head the
 * columns, and with two of them a ratio column says how the second compares with the first), the
 * failures and the notes; at the end, where the report and the trace went.
 *
 * Contract: no line is longer than {@link SUMMARY_WIDTH} columns (long texts wrap, table cells
 * clip); values are written by `formatValue`, as in the report.
 *
 * @example
 * ```ts
 * import { renderSummary } from './summary.js';
 * import type { RunResult } from './run-result.js';
 * const print = (run: RunResult) => console.log(renderSummary(run, { report: null, trace: null }));
 * ```
 */

import { clip, formatValue, wrap } from './format.js';
import type { Metric, RunResult, ScenarioResult } from './run-result.js';

export const SUMMARY_WIDTH = 100;
const LABEL_WIDTH = 34;
const INDENT = '  ';

/** Ratio of `b` to `a` as `1.23x`, `-` when it does not make sense. */
function ratio(a: Metric | undefined, b: Metric | undefined): string {
  if (a === undefined || b === undefined || a.unit !== b.unit) return '-';
  if (!Number.isFinite(a.value) || !Number.isFinite(b.value) || a.value === 0) return '-';
  return formatValue(b.value / a.value, 'ratio');
}

function scenarioBlock(scenario: ScenarioResult, compareKnob: string | null): string[] {
  const lines: string[] = [];
  const status = scenario.status === 'ok' ? '' : ` [${scenario.status.toUpperCase()}]`;
  lines.push(...wrap(`${scenario.name}${status}: ${scenario.title}`, SUMMARY_WIDTH));
  if (scenario.variants.length === 0) return lines;
  const variants = scenario.variants;
  const compared = variants.length > 1 && compareKnob !== null;
  const heads = variants.map((v) => (compared ? v.label.replace(`${compareKnob}=`, '') : 'value'));
  const withRatio = variants.length === 2;
  const columns = heads.length + (withRatio ? 1 : 0);
  const cell = Math.max(
    8,
    Math.min(16, Math.floor((SUMMARY_WIDTH - INDENT.length - LABEL_WIDTH) / Math.max(1, columns)) - 1),
  );
  const row = (label: string, cells: readonly string[]): string => {
    const values = cells.map((c) => clip(c, cell).padStart(cell + 1)).join('');
    return `${INDENT}${clip(label, LABEL_WIDTH).padEnd(LABEL_WIDTH)}${values}`;
  };
  if (compared) lines.push(`${INDENT}compare ${compareKnob}:`);
  lines.push(row('metric', withRatio ? [...heads, `${heads[1]}/${heads[0]}`] : heads));
  const keys: Metric[] = [];
  for (const v of variants) for (const m of v.metrics) if (!keys.some((k) => k.key === m.key)) keys.push(m);
  for (const key of keys) {
    const found = variants.map((v) => v.metrics.find((m) => m.key === key.key));
    const cells = found.map((m) => (m === undefined ? '-' : formatValue(m.value, m.unit)));
    lines.push(row(key.label, withRatio ? [...cells, ratio(found[0], found[1])] : cells));
  }
  for (const v of variants) {
    const who = compared ? `${v.label}: ` : '';
    if (v.status === 'failed') lines.push(...wrap(`FAILED ${who}${v.error ?? ''}`, SUMMARY_WIDTH, INDENT));
    if (v.status === 'interrupted') lines.push(`${INDENT}${who}interrupted: the numbers cover the part that ran`);
    for (const note of v.notes) lines.push(...wrap(`${who}${note}`, SUMMARY_WIDTH, `${INDENT}- `));
  }
  return lines;
}

/** The whole summary; `outputs` are the files written (null when not). */
export function renderSummary(
  run: RunResult,
  outputs: { readonly report: string | null; readonly trace: string | null },
): string {
  const o = run.options;
  const lines: string[] = [];
  const sizes = [
    `seed ${o.seed}`,
    `budget ${formatValue(o.budgetBytes, 'bytes')}`,
    o.clients === undefined ? null : `${o.clients} clients`,
    o.durationMs === undefined ? null : `${formatValue(o.durationMs, 'ms')} each`,
    `device ${o.device}`,
  ].filter((s) => s !== null);
  lines.push(...wrap(`dmabuf run: ${sizes.join(', ')}; wall time ${formatValue(run.wallMs, 'ms')}`, SUMMARY_WIDTH));
  if (run.interrupted) lines.push('INTERRUPTED (Ctrl-C): the results below are partial');
  for (const scenario of run.scenarios) {
    lines.push('');
    lines.push(...scenarioBlock(scenario, run.compare?.knob ?? null));
  }
  lines.push('');
  const m = run.machine;
  lines.push(...wrap(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform}`, SUMMARY_WIDTH));
  if (outputs.report !== null) lines.push(...wrap(`report: ${outputs.report}`, SUMMARY_WIDTH));
  if (outputs.trace !== null) {
    lines.push(...wrap(`trace: ${outputs.trace} (open it in Perfetto or chrome://tracing)`, SUMMARY_WIDTH));
  }
  return lines.join('\n');
}
