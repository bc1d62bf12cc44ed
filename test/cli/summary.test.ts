import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Metric } from '../../src/cli/run-result.js';
import { SUMMARY_WIDTH, renderSummary } from '../../src/cli/summary.js';
import { runOf, variant } from '../helpers/run-fixture.js';

const NO_FILES = { report: null, trace: null };
const p99 = (value: number): Metric => ({ key: 'p99', label: 'allocation p99', value, unit: 'us', better: 'lower' });
const held = (value: number): Metric => ({ key: 'held', label: 'memory held, peak', value, unit: 'bytes' });

function assertFits(text: string): void {
  for (const line of text.split('\n')) {
    assert.ok(line.length <= SUMMARY_WIDTH, `${line.length} columns: ${line}`);
  }
}

describe('renderSummary', () => {
  it('sanity: a header with the options, one block per scenario with its metrics, the machine', () => {
    const text = renderSummary(
      runOf([
        {
          name: 'churn',
          title: 'allocation churn',
          status: 'ok',
          variants: [variant('default', [p99(12.3), held(5 << 20)])],
        },
      ]),
      NO_FILES,
    );
    assert.match(text, /^dmabuf run: seed 1, budget 64\.0 MiB, device soft; wall time 1\.23 s$/m);
    assert.match(text, /^churn: allocation churn$/m);
    assert.match(text, /^ {2}allocation p99 +12\.3 µs$/m);
    assert.match(text, /^ {2}memory held, peak +5\.00 MiB$/m);
    assert.match(text, /^machine: Test CPU, 2 cores, Node v20\.20\.2, linux x64$/m);
    assertFits(text);
  });

  it('under --compare heads the columns with the values and adds a ratio column for two', () => {
    const text = renderSummary(
      runOf(
        [
          {
            name: 'churn',
            title: 'allocation churn',
            status: 'ok',
            variants: [variant('deferred-free=on', [p99(10)]), variant('deferred-free=off', [p99(25)])],
          },
        ],
        { compare: { knob: 'deferred-free', values: ['on', 'off'] } },
      ),
      NO_FILES,
    );
    assert.match(text, /compare deferred-free:/);
    assert.match(text, /^ {2}metric +on +off +off\/on$/m);
    assert.match(text, /^ {2}allocation p99 +10\.0 µs +25\.0 µs +2\.50x$/m);
    assertFits(text);
  });

  it('fits 100 columns with three long-named variants, long labels, long notes, a failure and long paths', () => {
    const values = ['per-object', 'per-object-idle', 'periodic-scan'];
    const longLabel = 'a metric label that is far longer than any label column could ever hold';
    const text = renderSummary(
      runOf(
        [
          {
            name: 'release-storm',
            title: 'seed 004 on a live device: '.repeat(6),
            status: 'failed',
            variants: values.map((v, i) =>
              variant(
                `delayed-delete=${v}`,
                [{ key: 'x', label: longLabel, value: 123456789.123 * (i + 1), unit: 'bytes' }],
                {
                  notes: ['a note '.repeat(40)],
                  ...(i === 1 ? { status: 'failed' as const, error: 'an error message '.repeat(12) } : {}),
                },
              ),
            ),
          },
        ],
        { compare: { knob: 'delayed-delete', values } },
      ),
      { report: `/very/long/${'path/'.repeat(10)}report.html`, trace: 'out/trace.json' },
    );
    assertFits(text);
    assert.match(text, /per-object-idle/);
    assert.match(text, /FAILED delayed-delete=per-object-idle: an error message/);
    assert.match(text, /^trace: out\/trace\.json \(open it in Perfetto or chrome:\/\/tracing\)$/m);
  });

  it('marks an interrupted run and scenarios that were skipped or interrupted', () => {
    const text = renderSummary(
      runOf(
        [
          {
            name: 'churn',
            title: 'churn',
            status: 'interrupted',
            variants: [variant('default', [p99(1)], { status: 'interrupted' })],
          },
          { name: 'render', title: 'render', status: 'skipped', variants: [] },
        ],
        { interrupted: true },
      ),
      NO_FILES,
    );
    assert.match(text, /^INTERRUPTED \(Ctrl-C\): the results below are partial$/m);
    assert.match(text, /^churn \[INTERRUPTED\]: churn$/m);
    assert.match(text, /interrupted: the numbers cover the part that ran/);
    assert.match(text, /^render \[SKIPPED\]: render$/m);
  });
});
