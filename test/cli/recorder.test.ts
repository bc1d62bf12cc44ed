import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Recorder } from '../../src/cli/recorder.js';
import type { SeriesChart } from '../../src/cli/run-result.js';
import { Samples } from '../../src/cli/stats.js';

const SEED = Number(process.env['TEST_SEED'] ?? 0x5eed_0012);

describe('Recorder', () => {
  it('sanity: tracks, a slice, an instant, a counter and a metric come back from result()', () => {
    const rec = new Recorder({ trace: true, durationMs: 1000, label: 'x=1' });
    const gfx = rec.track('gfx', 'engine');
    const client = rec.track('client 1', 'client');
    rec.slice(gfx, 'job 1', 10, 20, { client: 'client 1' });
    rec.instant(gfx, 'fence signaled', 20);
    rec.counter('memory', 15, { vram: 100 });
    rec.metric('jobs', 'jobs', 1, 'count');
    const out = rec.result();
    assert.deepEqual(
      out.tracks.map((t) => [t.id, t.name, t.kind]),
      [
        [gfx, 'gfx', 'engine'],
        [client, 'client 1', 'client'],
      ],
    );
    assert.deepEqual(
      out.events.map((e) => e.type),
      ['slice', 'instant', 'counter'],
    );
    assert.deepEqual(out.metrics, [{ key: 'jobs', label: 'jobs', value: 1, unit: 'count' }]);
  });

  it('stores no trace events with trace off, yet still counts engine occupancy', () => {
    const rec = new Recorder({ trace: false, durationMs: 100 });
    const gfx = rec.track('gfx', 'engine');
    rec.slice(gfx, 'job', 0, 50);
    rec.instant(gfx, 'signal', 50);
    rec.counter('memory', 50, { a: 1 });
    const out = rec.result();
    assert.equal(out.events.length, 0);
    const occupancy = out.charts[0] as SeriesChart;
    assert.equal(occupancy.id, 'engine-occupancy');
    assert.equal(occupancy.series[0]!.values[0], 100, 'the first bucket (1 ms) is fully busy');
  });

  it('computes occupancy per engine bucket as busy time over bucket time (property against a model)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: 0, max: 990, noNaN: true }), fc.double({ min: 0, max: 40, noNaN: true })), {
          maxLength: 40,
        }),
        (spans) => {
          // Disjoint slices, as one engine runs one job at a time.
          const sorted = spans.map(([s, d]) => [s, s + d] as const).sort((a, b) => a[0] - b[0]);
          const slices: [number, number][] = [];
          let end = 0;
          for (const [s, e] of sorted) {
            const start = Math.max(s, end);
            if (e > start) slices.push([start, e]);
            end = Math.max(end, e);
          }
          const rec = new Recorder({ trace: false, durationMs: 1000 });
          const gfx = rec.track('gfx', 'engine');
          for (const [s, e] of slices) rec.slice(gfx, 'job', s, e);
          const chart = rec.result().charts.find((c) => c.id === 'engine-occupancy') as SeriesChart;
          const values = chart.series[0]!.values;
          for (let b = 0; b < values.length; b++) {
            const lo = b * 10;
            const hi = lo + 10;
            const busy = slices.reduce((sum, [s, e]) => sum + Math.max(0, Math.min(e, hi) - Math.max(s, lo)), 0);
            assert.ok(Math.abs(values[b]! - busy * 10) < 1e-6, `bucket ${b}: ${values[b]} % vs model ${busy * 10} %`);
          }
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('keeps at most maxEvents trace events, counts the rest and says so in a note', () => {
    const rec = new Recorder({ trace: true, durationMs: 100, maxEvents: 3 });
    const t = rec.track('system', 'system');
    for (let i = 0; i < 5; i++) rec.instant(t, 'tick', i);
    const out = rec.result();
    assert.equal(out.events.length, 3);
    assert.equal(out.droppedEvents, 2);
    assert.match(out.notes.join('\n'), /first 3 events; 2 later ones were left out/);
  });

  it('refuses a slice that ends before it starts and a metric key used twice', () => {
    const rec = new Recorder({ trace: true, durationMs: 100 });
    const t = rec.track('gfx', 'engine');
    assert.throws(() => rec.slice(t, 'job', 5, 4), RangeError);
    rec.metric('a', 'a', 1, 'count');
    assert.throws(() => rec.metric('a', 'again', 2, 'count'), /recorded twice/);
  });

  it('turns series samples into a chart (seconds on x) and, with a counter name, into trace counters', () => {
    const rec = new Recorder({ trace: true, durationMs: 100 });
    const mem = rec.series({ kind: 'stacked', id: 'memory', title: 'memory', unit: 'bytes', counter: 'mem' }, [
      'live',
      'pooled',
    ]);
    mem.sample(500, [1, 2]);
    mem.sample(1500, [3, 4]);
    const out = rec.result();
    const chart = out.charts.find((c) => c.id === 'memory') as SeriesChart;
    assert.deepEqual(chart.x, [0.5, 1.5]);
    assert.deepEqual(
      chart.series.map((s) => [s.label, s.values]),
      [
        ['live', [1, 3]],
        ['pooled', [2, 4]],
      ],
    );
    assert.deepEqual(out.events, [
      { type: 'counter', name: 'mem', at: 500, values: { live: 1, pooled: 2 } },
      { type: 'counter', name: 'mem', at: 1500, values: { live: 3, pooled: 4 } },
    ]);
  });

  it('labels a histogram with the variant and keeps every sample', () => {
    const rec = new Recorder({ trace: false, durationMs: 100, label: 'deferred-free=off' });
    const samples = new Samples();
    for (let i = 1; i <= 100; i++) samples.add(i);
    rec.histogram('lat', 'latency', 'us', samples);
    const chart = rec.result().charts[0]!;
    assert.equal(chart.kind, 'histogram');
    if (chart.kind !== 'histogram') return;
    assert.equal(chart.series[0]!.label, 'deferred-free=off');
    assert.equal(
      chart.series[0]!.counts.reduce((a, b) => a + b, 0),
      100,
    );
  });
});
