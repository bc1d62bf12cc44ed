// The release-storm scenario, run for real (short) under each delayed-delete design: zombies made
// and all reclaimed, metrics that add up, charts and a valid trace; and a device that leaks a
// buffer fails the scenario's end-of-run accounting.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError } from '../../../src/base/errors.js';
import { runScenarios } from '../../../src/cli/runner.js';
import type { SeriesChart, VariantResult } from '../../../src/cli/run-result.js';
import { KNOBS } from '../../../src/cli/scenario.js';
import { expectedSum, releaseStorm, releaseStormScenario } from '../../../src/cli/scenarios/release-storm.js';
import { toTraceJson } from '../../../src/cli/trace.js';
import { SoftDevice, type SoftDeviceOptions } from '../../../src/device/soft/soft-device.js';
import type { SoftBufferInit } from '../../../src/device/soft/soft-device.js';
import type { TtmBufferObject } from '../../../src/ttm/ttm-bo.js';
import { traceProblems } from '../../helpers/trace-check.js';
import { metric } from '../../helpers/run-fixture.js';

const MiB = 1024 * 1024;
const BUDGET = 16 * MiB;
const CLIENTS = 3;
const MODES = KNOBS['delayed-delete'].values;

describe('release-storm sums', () => {
  it('sanity: the expected sum is the f32 of four fill bytes times the words, as the reduce kernel adds it', () => {
    const bytes = new Uint8Array(4096).fill(0x5a);
    const words = new Float32Array(bytes.buffer);
    let sum = 0;
    for (const w of words) sum += w;
    assert.equal(expectedSum(4096, 0x5a), sum);
    assert.notEqual(expectedSum(4096, 0x5a), expectedSum(4096, 0x3c), 'different fills, different sums');
  });
});

describe('release-storm scenario', () => {
  it('sanity: under each delayed-delete design, busy buffers become zombies and every one is reclaimed', async () => {
    const run = await runScenarios({
      scenarios: [releaseStorm],
      options: { seed: 4, clients: CLIENTS, budgetBytes: BUDGET, durationMs: 400, device: 'soft' },
      compare: { knob: 'delayed-delete', values: MODES },
      trace: true,
      warmup: false,
    });
    const variants = run.scenarios[0]!.variants;
    assert.deepEqual(
      variants.map((v) => v.label),
      MODES.map((m) => `delayed-delete=${m}`),
    );
    for (const v of variants) {
      const mode = v.knobs['delayed-delete'];
      assert.equal(v.status, 'ok', `${mode}: ${v.error}`);
      // Small on purpose: the lockdep pass and a loaded machine release far fewer in 400 ms.
      const zombies = metric(v, 'buffers');
      assert.ok(zombies >= 5, `${mode}: zombies were made (${zombies})`);
      assert.match(v.notes.join('\n'), new RegExp(`all ${zombies} zombies were freed after their jobs`));
      assert.ok(metric(v, 'buffer_rate') > 0, `${mode}: a throughput`);
      const peak = metric(v, 'zombies_peak');
      // Idle zombies may wait for the scanner after their client moved on: the bound is the budget.
      assert.ok(peak >= 1 && peak <= 64, `${mode}: peak zombies ${peak}: at least one, at most budget / smallest`);
      assert.ok(metric(v, 'reclaim_p50') > 0, `${mode}: a reclaim takes time (the jobs run first)`);
      assert.ok(metric(v, 'reclaim_p99') >= metric(v, 'reclaim_p50'), `${mode}: reclaim p99 >= p50`);
      assert.ok(metric(v, 'idle_free_p99') >= metric(v, 'idle_free_p50'), `${mode}: idle to free p99 >= p50`);
      assert.ok(metric(v, 'idle_free_p50') <= metric(v, 'reclaim_p50'), `${mode}: idle to free is part of reclaim`);
      assert.ok(metric(v, 'zombie_held_mean') <= BUDGET, `${mode}: zombies hold at most the budget`);
      assert.ok(metric(v, 'zombie_held_mean') > 0, `${mode}: zombies held memory for a while`);
      assert.ok(metric(v, 'idle_held_mean') <= metric(v, 'zombie_held_mean'), `${mode}: idle zombies are zombies`);
      assert.ok(metric(v, 'idle_held_peak') <= BUDGET, `${mode}: idle zombies hold at most the budget`);
      assert.ok(metric(v, 'alloc_p99') >= metric(v, 'alloc_p50'), `${mode}: allocation p99 >= p50`);
      assert.ok(metric(v, 'alloc_waits') >= 0 && metric(v, 'alloc_failures') >= 0, `${mode}: counts`);
      const work = metric(v, 'work_peak');
      if (mode === 'periodic-scan') assert.equal(work, 0, 'the scanner runs no work items');
      else assert.ok(work >= 1 && work <= 16, `${mode}: 1 .. 16 work items at once (maxActive), got ${work}`);
    }
  });

  it('charts memory held (stacked, with the budget), zombies over time and the reclaim latency histogram', async () => {
    const run = await runScenarios({
      scenarios: [releaseStorm],
      options: { seed: 4, clients: 2, budgetBytes: BUDGET, durationMs: 300, device: 'soft' },
      compare: null,
      trace: true,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', v.error);
    assert.deepEqual(
      v.charts.map((c) => [c.id, c.kind]),
      [
        ['engine-occupancy', 'lines'],
        ['memory', 'stacked'],
        ['zombies', 'lines'],
        ['reclaim-latency', 'histogram'],
      ],
    );
    const memory = v.charts[1] as SeriesChart;
    assert.deepEqual(
      memory.series.map((s) => s.label),
      ['live', 'zombies, busy', 'zombies, idle'],
    );
    assert.equal(memory.limit?.value, BUDGET);
    // Every 5 ms when the process gets the CPU; the lockdep pass on a loaded machine gets far fewer.
    assert.ok(memory.x.length >= 3, `sampled over time (${memory.x.length} samples)`);
    assert.ok(
      memory.series[1]!.values.some((x) => x > 0),
      'busy zombies held memory at some sample',
    );
    const last = memory.series.map((s) => s.values.at(-1));
    assert.deepEqual(last, [0, 0, 0], 'nothing held at the end');
    const zombies = v.charts[2] as SeriesChart;
    assert.ok(
      zombies.series[0]!.values.some((x) => x > 0),
      'zombies counted over time',
    );
    const hist = v.charts[3]!;
    assert.ok(hist.kind === 'histogram' && hist.series[0]!.counts.reduce((a, b) => a + b, 0) === metric(v, 'buffers'));
    assert.deepEqual(
      v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
      ['gfx.0', 'compute.0'],
      'one track per engine the jobs run on',
    );
    const trace = JSON.parse(JSON.stringify(toTraceJson(run)));
    assert.deepEqual(traceProblems(trace), []);
    const names = new Set(trace.traceEvents.map((e: { name: string }) => e.name));
    for (const name of ['fill', 'reduce', 'reclaim', 'vram', 'zombies'])
      assert.ok(names.has(name), `trace has ${name}`);
  });

  it('an allocation refused with ENOMEM is counted; the client waits for its oldest buffer and goes on', async () => {
    class RefusingDevice extends SoftDevice {
      #made = 0;
      override async createBuffer(init: SoftBufferInit): Promise<TtmBufferObject> {
        // The first of each client's allocations goes through; then one in five is refused.
        if (this.#made++ >= 4 && this.#made % 5 === 0) throw new DmaBufError('ENOMEM', 'refused by the test device');
        return super.createBuffer(init);
      }
    }
    const refusing = releaseStormScenario((options: SoftDeviceOptions) => new RefusingDevice(options));
    const run = await runScenarios({
      scenarios: [refusing],
      options: { seed: 4, clients: 2, budgetBytes: BUDGET, durationMs: 300, device: 'soft' },
      compare: null,
      trace: true,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', v.error);
    assert.ok(metric(v, 'alloc_failures') >= 1, `refusals counted (${metric(v, 'alloc_failures')})`);
    assert.ok(metric(v, 'buffers') >= 5, 'and the storm went on');
    const names = new Set(toTraceJson(run).traceEvents.map((e) => e.name));
    assert.ok(names.has('allocation refused'), 'each refusal is an instant on its client track');
  });

  it('an abort (Ctrl-C) stops the storm early: interrupted, every zombie still reclaimed, nothing left', async () => {
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(new Error('Ctrl-C')), 1500);
    const run = await runScenarios({
      scenarios: [releaseStorm],
      options: { seed: 4, clients: 2, budgetBytes: BUDGET, durationMs: 60_000, device: 'soft' },
      compare: null,
      trace: false,
      signal: controller.signal,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'interrupted', v.error);
    assert.ok(performance.now() - started < 30_000, 'it stopped long before its duration');
    assert.match(
      v.notes.join('\n'),
      /zombies were freed after their jobs, every sum matched, no memory is left in use/,
    );
  });

  it('a device that leaks a buffer object fails the run, naming the memory and the buffer left', async () => {
    class LeakyDevice extends SoftDevice {
      #made = 0;
      override async createBuffer(init: SoftBufferInit): Promise<TtmBufferObject> {
        const bo = await super.createBuffer(init);
        if (this.#made++ === 2) bo.get(); // never put: its memory never comes back
        return bo;
      }
    }
    const leaky = releaseStormScenario((options: SoftDeviceOptions) => new LeakyDevice(options));
    const run = await runScenarios({
      scenarios: [leaky],
      options: { seed: 4, clients: 2, budgetBytes: BUDGET, durationMs: 200, device: 'soft' },
      compare: null,
      trace: false,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'failed');
    assert.match(v.error ?? '', /memory was still in use at the end \((tt|system|vram) \d+ bytes\), expected none/);
    assert.match(v.error ?? '', /1 buffer object\(s\) were left at the end/);
  });
});
