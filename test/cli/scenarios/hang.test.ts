// The hang scenario, run for real (short): the watchdog resets the shared ring, the guilty client
// gets ETIMEDOUT and a refusal, the innocent clients get no error, and everything it reports is there.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../../../src/node.js'; // as the dmabuf binary does: worker threads for the soft device
import { runScenarios } from '../../../src/cli/runner.js';
import type { SeriesChart, VariantResult } from '../../../src/cli/run-result.js';
import { hang, hangScenario, hangTimeoutFor } from '../../../src/cli/scenarios/hang.js';
import { toTraceJson } from '../../../src/cli/trace.js';
import { traceProblems } from '../../helpers/trace-check.js';
import { metric } from '../../helpers/run-fixture.js';

const SEED = 5;

/**
 * Longer than a fresh engine worker takes to start from the TypeScript sources under load (up to
 * about 750 ms measured), so that the device's watchdog never blames the restarted engine's
 * first job (see the hang module's overview).
 */
const WATCHDOG_MS = 1200;

async function runHang(clients: number, durationMs: number, scenario = hangScenario({ hangTimeoutMs: WATCHDOG_MS })) {
  return runScenarios({
    scenarios: [scenario],
    options: { seed: SEED, clients, budgetBytes: 64 << 20, durationMs, device: 'soft' },
    compare: null,
    trace: true,
  });
}

const METRICS = [
  'boot_ms',
  'resets',
  'guilty_errors',
  'guilty_timeouts',
  'guilty_refused',
  'innocent_errors',
  'hang_timeout',
  'stall_ms',
  'recovery_ms',
  'innocent_frames_base',
  'innocent_frames_hang',
  'innocent_p50_base',
  'innocent_p50_hang',
  'innocent_p99_base',
  'innocent_p99_hang',
  'innocent_p50_ratio',
  'innocent_p99_ratio',
];

describe('hang scenario', () => {
  it('sanity: the watchdog timeout is a twelfth of the duration, within 250 .. 2000 ms', () => {
    assert.equal(hangTimeoutFor(6000), 500);
    assert.equal(hangTimeoutFor(2000), 250);
    assert.equal(hangTimeoutFor(60_000), 2000);
  });

  it('a hang resets the engine: guilty ETIMEDOUT and refusal, no innocent error; charted and traced', async () => {
    const run = await runHang(3, 4000);
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', `seed ${SEED}: ${v.error}`);
    assert.deepEqual(
      v.metrics.map((m) => m.key),
      METRICS,
      'every metric, in order',
    );
    for (const m of v.metrics) assert.ok(Number.isFinite(m.value), `${m.key} is a number (${m.value})`);
    assert.ok(metric(v, 'resets') >= 1, 'the watchdog reset the engine');
    assert.ok(metric(v, 'guilty_errors') > 0, 'the guilty client got errors');
    assert.ok(metric(v, 'guilty_timeouts') >= 1, 'its hung job timed out');
    assert.ok(metric(v, 'guilty_refused') >= 1, 'its guilty context was refused');
    assert.equal(metric(v, 'innocent_errors'), 0, 'no innocent client got an error');
    assert.equal(metric(v, 'hang_timeout'), WATCHDOG_MS);
    assert.ok(
      metric(v, 'stall_ms') >= WATCHDOG_MS,
      `the engine hung at least the watchdog's time (${metric(v, 'stall_ms')})`,
    );
    assert.ok(metric(v, 'recovery_ms') >= 0);
    assert.ok(metric(v, 'innocent_frames_base') > 0 && metric(v, 'innocent_frames_hang') > 0, 'both runs ran frames');
    assert.ok(metric(v, 'innocent_p99_hang') >= metric(v, 'innocent_p50_hang'));
    assert.ok(
      Math.abs(metric(v, 'innocent_p50_ratio') - metric(v, 'innocent_p50_hang') / metric(v, 'innocent_p50_base')) <
        1e-9,
    );
    const notes = v.notes.join('\n');
    assert.match(notes, /is guilty: its spinning job hung gfx\.0/);
    assert.match(notes, /criterion \(issue 12\).*: (PASS|FAIL) on the innocent clients' p50/);
    assert.deepEqual(
      v.charts.map((c) => [c.id, c.kind]),
      [
        ['engine-occupancy', 'lines'],
        ['latency-baseline', 'lines'],
        ['latency-hang', 'lines'],
        ['innocent-latency-base', 'histogram'],
        ['innocent-latency-hang', 'histogram'],
      ],
    );
    const chart = v.charts.find((c) => c.id === 'latency-hang') as SeriesChart;
    assert.deepEqual(
      chart.series.map((s) => s.label),
      ['client 1', 'client 2', 'client 3', 'engine reset'],
    );
    const reset = chart.series[3]!.values;
    assert.equal(reset.filter((x) => x > 0).length, 1, 'the reset is marked once');
    assert.deepEqual(
      v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
      ['gfx.0 (baseline)', 'gfx.0 (hang)'],
    );
    const hangTrack = v.tracks.find((t) => t.name === 'gfx.0 (hang)')!.id;
    const hung = v.events.find((e) => e.type === 'slice' && e.track === hangTrack && e.name.includes('hung job'));
    assert.ok(hung !== undefined && hung.type === 'slice', 'the hung job is a slice on the engine');
    assert.equal(hung.args?.['error'], 'ETIMEDOUT');
    assert.ok(hung.dur >= WATCHDOG_MS, `it occupied the engine for the watchdog's time (${hung.dur} ms)`);
    assert.ok(
      v.events.some((e) => e.type === 'instant' && e.track === hangTrack && e.name === 'engine reset (watchdog)'),
      'the reset is an instant on the engine',
    );
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(toTraceJson(run)))), []);
  });

  it('Ctrl-C during the run: it stops soon, interrupted, with what it measured', async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 600);
    const started = performance.now();
    const run = await runScenarios({
      scenarios: [hang],
      options: { seed: SEED, clients: 2, budgetBytes: 64 << 20, durationMs: 4000, device: 'soft' },
      compare: null,
      trace: false,
      signal: controller.signal,
    });
    clearTimeout(timer);
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'interrupted', v.error);
    assert.ok(performance.now() - started < 3500, `stopped before its 4 s were up (${performance.now() - started} ms)`);
  });

  it('refuses a single client: there would be nobody innocent to measure', async () => {
    const run = await runHang(1, 300);
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'failed');
    assert.match(v.error ?? '', /--clients must be at least 2 .* got 1/);
  });
});
