// The --json document: its schema (the RunJson type, checked field by field on a real run) and
// the exit codes it reports.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT, type RunJson, exitCodeOf, toRunJson } from '../../src/cli/run-json.js';
import { runScenarios } from '../../src/cli/runner.js';
import { churn } from '../../src/cli/scenarios/churn.js';
import { runOf, variant } from '../helpers/run-fixture.js';
import { schemaProblems } from '../helpers/run-json-schema.js';

describe('toRunJson', () => {
  it('sanity: a real churn run converts to a document that follows the schema, through JSON', async () => {
    const run = await runScenarios({
      scenarios: [churn],
      options: { seed: 5, clients: 2, budgetBytes: 16 << 20, durationMs: 200, device: 'soft' },
      compare: { knob: 'deferred-free', values: ['on', 'off'] },
      trace: false,
    });
    const doc = JSON.parse(JSON.stringify(toRunJson(run, { report: '/tmp/r.html', trace: null }))) as RunJson;
    assert.deepEqual(schemaProblems(doc), []);
    assert.equal(doc.exitCode, 0);
    assert.deepEqual(
      doc.scenarios[0]!.variants.map((v) => v.label),
      ['deferred-free=on', 'deferred-free=off'],
    );
    assert.ok(doc.scenarios[0]!.variants[0]!.metrics.some((m) => m.key === 'alloc_p99' && typeof m.value === 'number'));
  });

  it('writes a value that could not be measured as null, and the schema check catches a bad document', () => {
    const run = runOf([
      {
        name: 'x',
        title: 'x',
        status: 'ok',
        variants: [variant('default', [{ key: 'p99', label: 'p99', value: Number.NaN, unit: 'us' }])],
      },
    ]);
    const doc = toRunJson(run, { report: null, trace: null });
    assert.equal(doc.scenarios[0]!.variants[0]!.metrics[0]!.value, null);
    assert.deepEqual(schemaProblems(JSON.parse(JSON.stringify(doc))), []);
    assert.ok(schemaProblems({ ...doc, extra: 1 }).includes('unknown field extra'), 'unknown fields');
    assert.ok(schemaProblems({ ...doc, exitCode: 3 }).includes('exitCode'), 'exit codes');
  });
});

describe('exitCodeOf', () => {
  it('sanity: 0 when everything ran', () => {
    assert.equal(exitCodeOf(runOf([{ name: 'a', title: 'a', status: 'ok', variants: [] }])), EXIT.ok);
  });

  it('is 1 when a scenario failed and 130 when the run was interrupted (which wins)', () => {
    const failed = runOf([
      { name: 'a', title: 'a', status: 'failed', variants: [] },
      { name: 'b', title: 'b', status: 'ok', variants: [] },
    ]);
    assert.equal(exitCodeOf(failed), 1);
    assert.equal(exitCodeOf({ ...failed, interrupted: true }), 130);
  });
});
