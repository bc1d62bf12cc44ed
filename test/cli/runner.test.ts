import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProgressView } from '../../src/cli/progress.js';
import { runScenarios, scenarioSeed } from '../../src/cli/runner.js';
import type { Scenario, ScenarioContext } from '../../src/cli/scenario.js';

const OPTIONS = { seed: 3, budgetBytes: 16 << 20, durationMs: 100, device: 'soft' } as const;

/** A scenario made of `body`, honouring the deferred-free knob. */
function scenario(name: string, body: (ctx: ScenarioContext) => Promise<void>): Scenario {
  return {
    name,
    title: `test scenario ${name}`,
    knobs: ['deferred-free'],
    defaultDurationMs: 100,
    defaultClients: 2,
    inDefaultSet: true,
    run: body,
  };
}

const measured = scenario('measured', async (ctx) => {
  ctx.recorder.metric('first_draw', 'first draw', ctx.random(), 'ratio');
  ctx.recorder.metric('clients', 'clients', ctx.clients, 'count');
});

/** Records what the runner reports. */
class SpyView implements ProgressView {
  readonly lines: string[] = [];
  stopped = 0;
  started(label: string): void {
    this.lines.push(`start ${label}`);
  }
  update(): void {}
  finished(status: string, _wallMs: number, error?: string): void {
    this.lines.push(`end ${status}${error === undefined ? '' : ` ${error}`}`);
  }
  log(line: string): void {
    this.lines.push(line);
  }
  stop(): void {
    this.stopped++;
  }
}

describe('runScenarios', () => {
  it('sanity: runs a scenario once with the defaults and returns its metrics', async () => {
    const view = new SpyView();
    const run = await runScenarios({ scenarios: [measured], options: OPTIONS, compare: null, trace: false, view });
    const [s] = run.scenarios;
    assert.equal(s!.status, 'ok');
    assert.equal(s!.variants.length, 1);
    assert.equal(s!.variants[0]!.label, 'default');
    assert.deepEqual(s!.variants[0]!.knobs, { 'deferred-free': 'on' });
    assert.equal(s!.variants[0]!.metrics.find((m) => m.key === 'clients')?.value, 2, 'the scenario default');
    assert.deepEqual(view.lines, ['start measured', 'end ok']);
    assert.equal(view.stopped, 1);
    assert.equal(run.interrupted, false);
  });

  it('runs a compared scenario once per value, each with the same seed and its own knob value', async () => {
    const run = await runScenarios({
      scenarios: [measured],
      options: OPTIONS,
      compare: { knob: 'deferred-free', values: ['off', 'on'] },
      trace: false,
    });
    const variants = run.scenarios[0]!.variants;
    assert.deepEqual(
      variants.map((v) => [v.label, v.knobs['deferred-free']]),
      [
        ['deferred-free=off', 'off'],
        ['deferred-free=on', 'on'],
      ],
    );
    const draws = variants.map((v) => v.metrics.find((m) => m.key === 'first_draw')?.value);
    assert.equal(draws[0], draws[1], 'same seed, same first draw');
    assert.ok(variants[1]!.startMs >= variants[0]!.startMs + variants[0]!.wallMs - 1, 'one after the other');
  });

  it('gives each scenario its own seed, mixed from the run seed and its name', () => {
    assert.notEqual(scenarioSeed(1, 'churn'), scenarioSeed(1, 'render'));
    assert.notEqual(scenarioSeed(1, 'churn'), scenarioSeed(2, 'churn'));
    assert.equal(scenarioSeed(1, 'churn'), scenarioSeed(1, 'churn'));
  });

  it('reports a failing scenario with its message and what it measured, and still runs the next one', async () => {
    const failing = scenario('failing', async (ctx) => {
      ctx.recorder.metric('before', 'before the failure', 1, 'count');
      throw new Error('the stack misbehaved');
    });
    const view = new SpyView();
    const run = await runScenarios({
      scenarios: [failing, measured],
      options: OPTIONS,
      compare: null,
      trace: false,
      view,
    });
    assert.deepEqual(
      run.scenarios.map((s) => s.status),
      ['failed', 'ok'],
    );
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.error, 'the stack misbehaved');
    assert.deepEqual(
      v.metrics.map((m) => m.key),
      ['before'],
    );
    assert.deepEqual(view.lines, ['start failing', 'end failed the stack misbehaved', 'start measured', 'end ok']);
  });

  it('on abort: tells the running scenario, marks it interrupted with partial numbers, skips the rest', async () => {
    const controller = new AbortController();
    const slow = scenario('slow', async (ctx) => {
      setTimeout(() => controller.abort(new Error('Ctrl-C')), 10);
      let steps = 0;
      while (!ctx.signal.aborted) {
        steps++;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      ctx.recorder.metric('steps', 'steps before the abort', steps, 'count');
    });
    const view = new SpyView();
    const run = await runScenarios({
      scenarios: [slow, measured],
      options: OPTIONS,
      compare: { knob: 'deferred-free', values: ['on', 'off'] },
      trace: false,
      signal: controller.signal,
      view,
      warmup: false,
    });
    assert.equal(run.interrupted, true);
    assert.deepEqual(
      run.scenarios.map((s) => [s.name, s.status, s.variants.length]),
      [
        ['slow', 'interrupted', 1],
        ['measured', 'skipped', 0],
      ],
    );
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'interrupted');
    assert.ok((v.metrics[0]?.value ?? 0) > 0, 'partial numbers kept');
    assert.ok(view.lines.includes('measured: skipped (interrupted)'), view.lines.join('\n'));
  });

  it('warms each compared variant up briefly, unmeasured, before measuring any', async () => {
    const calls: [string, number][] = [];
    const counted = scenario('counted', async (ctx) => {
      calls.push([ctx.knobs['deferred-free']!, ctx.durationMs]);
      ctx.recorder.metric('calls', 'calls', calls.length, 'count');
    });
    const view = new SpyView();
    const run = await runScenarios({
      scenarios: [counted],
      options: { ...OPTIONS, durationMs: 400 },
      compare: { knob: 'deferred-free', values: ['on', 'off'] },
      trace: false,
      view,
    });
    assert.deepEqual(calls, [
      ['on', 100],
      ['off', 100],
      ['on', 400],
      ['off', 400],
    ]);
    assert.deepEqual(
      run.scenarios[0]!.variants.map((v) => v.metrics[0]?.value),
      [3, 4],
      'only the measured runs are kept',
    );
    assert.equal(view.lines[0], 'counted: warming up each variant for 100 ms (not measured)');
    assert.deepEqual(view.lines.slice(1), [
      'start counted [deferred-free=on]',
      'end ok',
      'start counted [deferred-free=off]',
      'end ok',
    ]);
  });

  it('marks a scenario interrupted in its warm-up as interrupted, not ok', async () => {
    const controller = new AbortController();
    const aborting = scenario('aborting', async () => {
      controller.abort(new Error('Ctrl-C'));
    });
    const run = await runScenarios({
      scenarios: [aborting],
      options: OPTIONS,
      compare: { knob: 'deferred-free', values: ['on', 'off'] },
      trace: false,
      signal: controller.signal,
    });
    assert.deepEqual(
      run.scenarios.map((s) => [s.status, s.variants.length]),
      [['interrupted', 0]],
    );
  });

  it('fails a scenario that does not stop after its duration plus the grace time, and moves on', async () => {
    let sawAbort = false;
    const hung = scenario('hung', async (ctx) => {
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener('abort', () => {
          sawAbort = true;
          resolve();
        }),
      );
    });
    const run = await runScenarios({
      scenarios: [hung, measured],
      options: { ...OPTIONS, durationMs: 20 },
      compare: null,
      trace: false,
      graceMs: 30,
    });
    assert.equal(run.scenarios[0]!.status, 'failed');
    assert.match(run.scenarios[0]!.variants[0]!.error ?? '', /did not finish within 0.05 s/);
    assert.ok(sawAbort, 'the hung scenario was told to stop');
    assert.equal(run.scenarios[1]!.status, 'ok');
    assert.equal(run.interrupted, false, 'a watchdog abort is not a Ctrl-C');
  });
});
