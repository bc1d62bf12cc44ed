/** Hand-made run results for the output tests (summary, report, trace, --json). */
import assert from 'node:assert/strict';
import type { Metric, RunResult, ScenarioResult, VariantResult } from '../../src/cli/run-result.js';

/** A variant with `metrics`, nothing recorded besides. */
export function variant(label: string, metrics: readonly Metric[], extra: Partial<VariantResult> = {}): VariantResult {
  return {
    label,
    knobs: {},
    status: 'ok',
    startMs: 0,
    wallMs: 100,
    metrics,
    charts: [],
    tracks: [],
    events: [],
    droppedEvents: 0,
    notes: [],
    ...extra,
  };
}

/** A run of `scenarios` with fixed options and machine. */
export function runOf(scenarios: readonly ScenarioResult[], extra: Partial<RunResult> = {}): RunResult {
  return {
    date: '2026-01-01T00:00:00.000Z',
    command: 'dmabuf run test',
    options: { seed: 1, budgetBytes: 64 << 20, device: 'soft' },
    compare: null,
    machine: { cpu: 'Test CPU', cores: 2, node: 'v20.20.2', platform: 'linux x64' },
    wallMs: 1234,
    interrupted: false,
    scenarios,
    ...extra,
  };
}

/** The value of metric `key` of `v`; fails the test, listing the metrics there are, when it is missing. */
export function metric(v: VariantResult, key: string): number {
  const m = v.metrics.find((x) => x.key === key);
  assert.ok(m !== undefined, `metric ${key} missing from ${v.metrics.map((x) => x.key).join(', ')}`);
  return m.value;
}
