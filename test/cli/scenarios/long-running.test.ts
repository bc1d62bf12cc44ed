// The long-running scenario, run for real (short): the ordinary clients get no error, the validator
// catches the forbidden wait and the plain callback, DmaResv refuses the fence, and the validator is
// put back as it was.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../../../src/node.js'; // as the dmabuf binary does: async-context tracking and worker threads
import { runScenarios } from '../../../src/cli/runner.js';
import type { SeriesChart, VariantResult } from '../../../src/cli/run-result.js';
import { LONG_RUNNING_RULE, longRunning, reportGist } from '../../../src/cli/scenarios/long-running.js';
import { toTraceJson } from '../../../src/cli/trace.js';
import { lockdepEnabled } from '../../../src/locking/lockdep.js';
import { traceProblems } from '../../helpers/trace-check.js';
import { metric } from '../../helpers/run-fixture.js';

const SEED = 11;

async function runLongRunning(compare: boolean) {
  return runScenarios({
    scenarios: [longRunning],
    options: { seed: SEED, clients: 2, budgetBytes: 64 << 20, durationMs: 1000, device: 'soft' },
    compare: compare ? { knob: 'chain-gc', values: ['walk', 'queue'] } : null,
    trace: true,
    warmup: false,
  });
}

const METRICS = [
  'boot_ms',
  'lr_batches',
  'lr_ms',
  'ordinary_errors',
  'frames_base',
  'frames_lr',
  'p50_base',
  'p50_lr',
  'p99_base',
  'p99_lr',
  'p50_ratio',
  'p99_ratio',
  'rule_reports',
  'other_reports',
  'resv_refused',
  'chain_nodes_peak',
  'chain_garbage_peak',
  'add_point_p50',
  'add_point_p99',
  'add_point_total',
  'gc_queue_growth',
];

describe('long-running scenario', () => {
  it('sanity: a report without its stack frames keeps what happened', () => {
    const gist = reportGist(
      [
        'WARNING: possible circular locking dependency detected',
        '  new dependency: a -> b',
        '  a was acquired at:',
        '      at f (/x.ts:1:1)',
        '      priming at enableLockdep()',
        '  added at:     at g (/y.ts:2:2)',
      ].join('\n'),
    );
    assert.equal(
      gist,
      'WARNING: possible circular locking dependency detected | new dependency: a -> b | added at: (stack left out)',
    );
  });

  it('ordinary clients: no error; forbidden things reported or refused; the validator restored', async () => {
    const before = lockdepEnabled();
    const run = await runLongRunning(false);
    assert.equal(lockdepEnabled(), before, 'the validator is back as it was');
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', `seed ${SEED}: ${v.error}`);
    assert.deepEqual(
      v.metrics.map((m) => m.key),
      METRICS,
      'every metric, in order',
    );
    for (const m of v.metrics) assert.ok(Number.isFinite(m.value), `${m.key} is a number (${m.value})`);
    assert.equal(metric(v, 'ordinary_errors'), 0);
    assert.ok(metric(v, 'frames_base') > 0 && metric(v, 'frames_lr') > 0, 'both runs ran frames');
    assert.ok(metric(v, 'lr_batches') > 0, 'the long-running job ran');
    assert.ok(metric(v, 'rule_reports') >= 1, 'the validator reported the deliberate violations');
    assert.equal(metric(v, 'other_reports'), 0, 'and nothing else');
    assert.equal(metric(v, 'resv_refused'), 1);
    const notes = v.notes.join('\n');
    assert.ok(notes.includes(LONG_RUNNING_RULE), 'the rule is stated');
    assert.match(
      notes,
      /forbidden wait, reported (now|earlier in this process).*new dependency: dma_fence_map -> dma_fence_lr_map/,
    );
    assert.match(notes, /forbidden callback: WARNING: plain callback on a long-running fence/);
    assert.match(notes, /refused by DmaResv .*is long-running and may never signal/);
    assert.match(notes, /p50 within 2x of alone: (PASS|FAIL)/);
    assert.deepEqual(
      v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
      ['gfx.0 (baseline)', 'gfx.0 (long-running)', 'compute.0 (long-running)'],
    );
    const validator = v.tracks.find((t) => t.name === 'validator')!.id;
    assert.deepEqual(
      v.events.filter((e) => e.type === 'instant' && e.track === validator).map((e) => e.name.split(':')[0]),
      ['forbidden', 'forbidden', 'forbidden', 'allowed'],
    );
    const chain = v.charts.find((c) => c.id === 'chain-links') as SeriesChart;
    assert.ok(chain.x.length > 5, 'the chain is sampled over time');
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(toTraceJson(run)))), []);
  });

  it('--compare chain-gc=walk,queue: only the queue policy grows the global queue', async () => {
    const run = await runLongRunning(true);
    const [walk, queue] = run.scenarios[0]!.variants;
    assert.equal(walk!.status, 'ok', `seed ${SEED}: ${walk!.error}`);
    assert.equal(queue!.status, 'ok', `seed ${SEED}: ${queue!.error}`);
    assert.equal(metric(walk!, 'gc_queue_growth'), 0);
    assert.ok(metric(queue!, 'gc_queue_growth') >= 0);
    assert.match((walk!.charts.find((c) => c.id === 'chain-links') as SeriesChart).title, /chain-gc=walk/);
    assert.match((queue!.charts.find((c) => c.id === 'chain-links') as SeriesChart).title, /chain-gc=queue/);
    // The second variant's wait was reported by the first: once per pair of classes in a process.
    assert.match(queue!.notes.join('\n'), /forbidden wait, reported earlier in this process/);
    assert.ok(metric(queue!, 'rule_reports') >= 1, 'the plain callback is reported for every fence');
  });
});
