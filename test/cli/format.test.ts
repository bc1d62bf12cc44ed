import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UNITS, clip, formatBytes, formatCount, formatMicros, formatValue, wrap } from '../../src/cli/format.js';

const SEED = Number(process.env['TEST_SEED'] ?? 0x5eed_0012);

describe('formatValue', () => {
  it('sanity: bytes, durations, rates, percentages and ratios read as a person writes them', () => {
    assert.equal(formatValue(53_687_091, 'bytes'), '51.2 MiB');
    assert.equal(formatValue(1234.5, 'us'), '1.23 ms');
    assert.equal(formatValue(2.5, 'ms'), '2.50 ms');
    assert.equal(formatValue(28_598.4, 'per_s'), '28,598/s');
    assert.equal(formatValue(97.54, 'percent'), '97.5 %');
    assert.equal(formatValue(1.234, 'ratio'), '1.23x');
  });

  it('picks the time unit that keeps the number short', () => {
    assert.equal(formatMicros(0.231), '231 ns');
    assert.equal(formatMicros(15.7), '15.7 µs');
    assert.equal(formatMicros(2_000_000), '2.00 s');
  });

  it('writes sizes in powers of 1024 and counts exactly below 100,000', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(4096), '4.00 KiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
    assert.equal(formatCount(57_649), '57,649');
    assert.equal(formatCount(123_456), '123k');
  });

  it('writes NaN as - and infinities as inf', () => {
    assert.equal(formatValue(Number.NaN, 'us'), '-');
    assert.equal(formatValue(Number.POSITIVE_INFINITY, 'ratio'), 'inf');
  });

  it('stays within 12 characters for any finite value of any unit (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e15, max: 1e15, noNaN: true }), fc.constantFrom(...UNITS), (value, unit) => {
        const text = formatValue(value, unit);
        assert.ok(text.length <= 12, `${value} ${unit} -> "${text}" is ${text.length} long`);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('clip and wrap', () => {
  it('sanity: clip keeps short text and marks a cut with an ellipsis', () => {
    assert.equal(clip('short', 10), 'short');
    assert.equal(clip('much longer text', 8), 'much lo…');
  });

  it('wrap breaks at spaces within the width, with a hanging indent after the first line', () => {
    const lines = wrap('one two three four five six seven eight nine ten', 20, '- ');
    assert.ok(lines.length > 1, 'wrapped');
    assert.ok(
      lines.every((l) => l.length <= 20),
      lines.join('|'),
    );
    assert.ok(lines[0]!.startsWith('- one'), lines[0]);
    assert.ok(
      lines.slice(1).every((l) => l.startsWith('  ') && !l.startsWith('   ')),
      lines.join('|'),
    );
    assert.equal(
      lines.join(' ').replace(/\s+/g, ' ').replace('- ', ''),
      'one two three four five six seven eight nine ten',
    );
  });
});
