// The churn scenario, run for real (short): what it measures, what it draws and traces, and that
// its zero check fails a heap that hands out dirty memory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runScenarios } from '../../../src/cli/runner.js';
import type { SeriesChart, VariantResult } from '../../../src/cli/run-result.js';
import { type ChurnBuffer, type ChurnHeap, InlineFreeHeap } from '../../../src/cli/scenarios/churn-heaps.js';
import { churn, churnScenario } from '../../../src/cli/scenarios/churn.js';
import { metric } from '../../helpers/run-fixture.js';

const MiB = 1024 * 1024;
const BUDGET = 16 * MiB;

async function runChurn(compare: boolean, scenario = churn): Promise<readonly VariantResult[]> {
  const run = await runScenarios({
    scenarios: [scenario],
    options: { seed: 7, clients: 3, budgetBytes: BUDGET, durationMs: 300, device: 'soft' },
    compare: compare ? { knob: 'deferred-free', values: ['on', 'off'] } : null,
    trace: true,
  });
  return run.scenarios[0]!.variants;
}

describe('churn scenario', () => {
  it('sanity: a short run allocates, stays within the budget and checks every buffer it got', async () => {
    const [v] = await runChurn(false);
    assert.equal(v!.status, 'ok', v!.error);
    // Small on purpose: the lockdep pass and a loaded machine churn far less in 300 ms.
    assert.ok(metric(v!, 'allocations') > 10, 'it churned');
    assert.ok(metric(v!, 'alloc_p99') >= metric(v!, 'alloc_p50'), 'p99 >= p50');
    assert.ok(metric(v!, 'held_peak') <= BUDGET, 'held within the budget');
    assert.ok(metric(v!, 'pool_hit_rate') >= 0 && metric(v!, 'pool_hit_rate') <= 100, 'a hit rate in percent');
    assert.match(v!.notes.join('\n'), /buffers handed out read zero/);
  });

  it('charts memory by type (stacked, with the budget), reclaim over time and both latency histograms', async () => {
    const [v] = await runChurn(false);
    assert.deepEqual(
      v!.charts.map((c) => [c.id, c.kind]),
      [
        ['memory', 'stacked'],
        ['reclaim', 'bars'],
        ['alloc-latency', 'histogram'],
        ['free-latency', 'histogram'],
      ],
    );
    const memory = v!.charts[0] as SeriesChart;
    assert.deepEqual(
      memory.series.map((s) => s.label),
      ['live', 'pending free', 'pooled'],
    );
    assert.equal(memory.limit?.value, BUDGET);
    assert.ok(memory.x.length >= 10, `sampled over time (${memory.x.length} samples)`);
    const hist = v!.charts[2]!;
    if (hist.kind === 'histogram') {
      assert.equal(
        hist.series[0]!.counts.reduce((a, b) => a + b, 0),
        metric(v!, 'allocations'),
        'every allocation is in the histogram',
      );
    }
  });

  it('traces a track per client plus the system, with client slices that never overlap', async () => {
    const [v] = await runChurn(false);
    assert.deepEqual(
      v!.tracks.map((t) => t.name),
      ['system', 'client 1', 'client 2', 'client 3'],
    );
    for (const track of v!.tracks.filter((t) => t.kind === 'client')) {
      const slices = v!.events.filter((e) => e.type === 'slice' && e.track === track.id);
      assert.ok(slices.length > 0, `${track.name} has slices`);
      let end = -1;
      for (const s of slices) {
        if (s.type !== 'slice') continue;
        assert.ok(s.start >= end, `${track.name}: slice at ${s.start} overlaps the one ending ${end}`);
        end = s.start + s.dur;
      }
    }
    assert.ok(
      v!.events.some((e) => e.type === 'counter' && e.name === 'heap memory'),
      'memory counters',
    );
    assert.ok(
      v!.events.some((e) => e.type === 'instant' && e.name === 'memory pressure'),
      'pressure events',
    );
  });

  it('under --compare deferred-free=on,off: only the deferred design holds memory waiting for the worker', async () => {
    const [on, off] = await runChurn(true);
    assert.deepEqual([on!.label, off!.label], ['deferred-free=on', 'deferred-free=off']);
    assert.deepEqual(on!.knobs, { 'deferred-free': 'on' });
    assert.equal(metric(off!, 'pending_peak'), 0);
    assert.ok(metric(on!, 'pending_peak') > 0, 'buffers waited for the worker');
    assert.match(off!.notes.join('\n'), /free path zeroes/);
  });

  it('fails when a heap hands out memory that is not zero', async () => {
    /** Pools freed buffers without zeroing them: the bug the check exists for. */
    class DirtyHeap extends InlineFreeHeap {
      readonly #spare: ChurnBuffer[] = [];
      override allocate(size: number): ChurnBuffer {
        const i = this.#spare.findIndex((b) => b.bytes().length >= size);
        return i >= 0 ? this.#spare.splice(i, 1)[0]! : super.allocate(size);
      }
      override free(buffer: ChurnBuffer): void {
        this.#spare.push(buffer);
      }
    }
    const [v] = await runChurn(
      false,
      churnScenario((_, budget): ChurnHeap => new DirtyHeap(budget)),
    );
    assert.equal(v!.status, 'failed');
    assert.match(v!.error ?? '', /handed out memory that was not zero/);
    assert.ok(metric(v!, 'allocations') > 0, 'a failed variant keeps what it measured');
  });
});
