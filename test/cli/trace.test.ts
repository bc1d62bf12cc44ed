// trace.json: valid Chrome trace-event JSON as Perfetto and chrome://tracing read it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Recorder } from '../../src/cli/recorder.js';
import { runScenarios } from '../../src/cli/runner.js';
import type { RunResult } from '../../src/cli/run-result.js';
import { runOf, variant } from '../helpers/run-fixture.js';
import { churn } from '../../src/cli/scenarios/churn.js';
import { type TraceEvent, toTraceJson } from '../../src/cli/trace.js';
import { traceProblems } from '../helpers/trace-check.js';

/** A run with one variant whose recorder made two engines and a client. */
function engineRun(): RunResult {
  const rec = new Recorder({ trace: true, durationMs: 100 });
  const gfx = rec.track('gfx', 'engine');
  const compute = rec.track('compute', 'engine');
  const client = rec.track('client A', 'client');
  rec.slice(gfx, 'job 2', 10, 20, { client: 'client A' });
  rec.slice(gfx, 'job 1', 0, 10, { client: 'client A' });
  rec.instant(gfx, 'fence signaled', 10, { seqno: 1 });
  rec.slice(compute, 'job 3', 5, 40, { client: 'client A' });
  rec.slice(client, 'frame', 0, 40);
  rec.counter('vram', 0, { used: 10 });
  return runOf([
    {
      name: 'test',
      title: 'test',
      status: 'ok',
      variants: [variant('default', [], { startMs: 1000, ...rec.result() })],
    },
  ]);
}

describe('toTraceJson', () => {
  it('slices that touch in the recorder touch in the trace, whatever float rounding start + duration does', () => {
    // Found by search: 7.171352874622006 + (45.59605 - 7.171352874622006) rounds to 45596.0 µs, 45.59605 to 45596.1.
    const rec = new Recorder({ trace: true, durationMs: 100 });
    const gfx = rec.track('gfx', 'engine');
    rec.slice(gfx, 'first', 7.171352874622006, 45.59605);
    rec.slice(gfx, 'second', 45.59605, 50);
    const run = runOf([
      {
        name: 'test',
        title: 'test',
        status: 'ok',
        variants: [variant('default', [], { startMs: 0, ...rec.result() })],
      },
    ]);
    const doc = toTraceJson(run);
    const [first, second] = doc.traceEvents.filter((e) => e.ph === 'X');
    assert.equal(
      Math.round((first!.ts! + first!.dur!) * 10),
      Math.round(second!.ts! * 10),
      'the first ends where the second starts',
    );
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(doc))), []);
  });

  it('sanity: a run with engines is a valid trace, one named track per engine, slices carrying their client', () => {
    const doc = JSON.parse(JSON.stringify(toTraceJson(engineRun()))) as { traceEvents: TraceEvent[] };
    assert.deepEqual(traceProblems(doc), []);
    const threads = doc.traceEvents
      .filter((e) => e.name === 'thread_name')
      .map((e) => (e.args as { name: string }).name);
    assert.deepEqual(threads, ['gfx', 'compute', 'client A']);
    const jobs = doc.traceEvents.filter((e) => e.ph === 'X' && e.cat === 'engine');
    assert.deepEqual(
      jobs.map((e) => [e.name, e.ts, e.dur, (e.args as { client: string }).client]),
      [
        ['job 1', 1_000_000, 10_000, 'client A'],
        ['job 3', 1_005_000, 35_000, 'client A'],
        ['job 2', 1_010_000, 10_000, 'client A'],
      ],
      'sorted by time, in µs on the run timeline',
    );
    assert.ok(
      doc.traceEvents.some((e) => e.ph === 'i' && e.name === 'fence signaled' && e.s === 't'),
      'fence signals are thread-scoped instants',
    );
    assert.ok(
      doc.traceEvents.some((e) => e.ph === 'C' && e.name === 'vram'),
      'memory counters',
    );
  });

  it('the validator catches what Perfetto would reject: crossing slices, time going back, missing fields', () => {
    const base = { pid: 1, tid: 1 };
    const named = { name: 'thread_name', ph: 'M', ...base, args: { name: 't' } };
    assert.match(
      traceProblems({
        traceEvents: [
          named,
          { name: 'a', ph: 'X', ts: 0, dur: 10, ...base },
          { name: 'b', ph: 'X', ts: 5, dur: 10, ...base },
        ],
      }).join('\n'),
      /crosses/,
    );
    assert.match(
      traceProblems({
        traceEvents: [
          named,
          { name: 'a', ph: 'i', s: 't', ts: 5, ...base },
          { name: 'b', ph: 'i', s: 't', ts: 4, ...base },
        ],
      }).join('\n'),
      /goes back/,
    );
    assert.match(traceProblems({ traceEvents: [{ ph: 'i', ts: 1, s: 't', ...base }] }).join('\n'), /no name/);
    assert.deepEqual(
      traceProblems({
        traceEvents: [
          named,
          { name: 'outer', ph: 'X', ts: 0, dur: 10, ...base },
          { name: 'inner', ph: 'X', ts: 2, dur: 3, ...base },
        ],
      }),
      [],
      'nested slices are balanced',
    );
  });

  it('a real churn comparison is a valid trace: a process per variant, its clients and system as tracks', async () => {
    const run = await runScenarios({
      scenarios: [churn],
      options: { seed: 1, clients: 2, budgetBytes: 16 << 20, durationMs: 200, device: 'soft' },
      compare: { knob: 'deferred-free', values: ['on', 'off'] },
      trace: true,
    });
    const doc = JSON.parse(JSON.stringify(toTraceJson(run))) as {
      traceEvents: TraceEvent[];
      otherData: { seed: string };
    };
    assert.deepEqual(traceProblems(doc), []);
    const processes = doc.traceEvents
      .filter((e) => e.name === 'process_name')
      .map((e) => (e.args as { name: string }).name);
    assert.deepEqual(processes, ['churn [deferred-free=on]', 'churn [deferred-free=off]']);
    assert.equal(doc.otherData.seed, '1');
    const second = doc.traceEvents.filter((e) => e.pid === 2 && e.ph !== 'M');
    const firstEnd = Math.max(
      ...doc.traceEvents.filter((e) => e.pid === 1 && e.ph !== 'M').map((e) => (e.ts ?? 0) + (e.dur ?? 0)),
    );
    assert.ok(Math.min(...second.map((e) => e.ts ?? 0)) >= firstEnd - 1000, 'the second variant follows the first');
  });
});
