import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Samples } from '../../src/cli/stats.js';

const SEED = Number(process.env['TEST_SEED'] ?? 0x5eed_0012);

describe('Samples', () => {
  it('sanity: p50, min, max and mean of five values', () => {
    const s = new Samples();
    for (const v of [5, 1, 4, 2, 3]) s.add(v);
    assert.equal(s.count, 5);
    assert.equal(s.quantile(0.5), 3);
    assert.equal(s.min, 1);
    assert.equal(s.max, 5);
    assert.equal(s.mean, 3);
  });

  it('is NaN everywhere when empty, with an empty histogram', () => {
    const s = new Samples();
    assert.ok(Number.isNaN(s.quantile(0.99)), 'quantile');
    assert.ok(Number.isNaN(s.max) && Number.isNaN(s.mean), 'max and mean');
    assert.deepEqual(s.histogram(), { edges: [], counts: [] });
  });

  it('keeps working after a quantile when more samples come (the sort is redone)', () => {
    const s = new Samples();
    s.add(10);
    assert.equal(s.max, 10);
    s.add(20);
    s.add(1);
    assert.equal(s.max, 20);
    assert.equal(s.min, 1);
  });

  it('matches a sorted-array model for nearest-rank quantiles, past several growths (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 3000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const s = new Samples();
          for (const v of values) s.add(v);
          const sorted = values.slice().sort((a, b) => a - b);
          const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
          assert.equal(s.quantile(q), sorted[rank - 1]);
          assert.equal(s.max, sorted[sorted.length - 1]);
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('puts every sample in exactly one contiguous log-scale bucket (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 500 }),
        (values) => {
          const s = new Samples();
          for (const v of values) s.add(v);
          const { edges, counts } = s.histogram();
          assert.equal(edges.length, counts.length + 1);
          assert.equal(
            counts.reduce((a, b) => a + b, 0),
            values.length,
          );
          for (let i = 1; i < edges.length; i++) {
            assert.ok(Math.abs(edges[i]! / edges[i - 1]! - 2 ** 0.25) < 1e-9, `bucket ${i} is not 2^(1/4) wider`);
          }
          for (const v of values) assert.ok(v < edges[edges.length - 1]!, `${v} beyond the last edge`);
          assert.ok(Math.min(...values) >= edges[0]!, 'the first edge is at or below the smallest sample');
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });
});
