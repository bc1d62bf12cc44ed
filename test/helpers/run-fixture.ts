/** Hand-made run results for the output tests (summary, report, trace, --json). */
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
