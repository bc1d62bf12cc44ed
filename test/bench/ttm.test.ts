import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BenchDefinition, BenchReport, Budget, Row } from '../../bench/harness.js';
import { budgetRow, bytesRow, countRow, latencyRow } from '../../bench/ttm-common.js';
import { definition as reclaim, reclaimRound } from '../../bench/ttm-reclaim.bench.js';
import { definition as storm, runStorm, signalOrder, stormRun } from '../../bench/ttm-release-storm.bench.js';
import { definition as evict } from '../../bench/ttm-evict.bench.js';
import { definition as validate, rangeSide, runValidate } from '../../bench/ttm-validate.bench.js';
import { testSeed } from '../helpers/mock-fence.js';

/** The smallest budget the runner can hand a benchmark: quick sizes, one round, no warm-up. */
const SMALLEST: Budget = { quick: true, rounds: 1, warmup: 0, reps: 1 };

function checkRow(bench: string, row: Row): void {
  const where = `${bench} / ${row.name}`;
  assert.ok(row.name.length > 0, `${bench}: a row without a name`);
  assert.ok(row.kind === 'throughput' || row.kind === 'memory', `${where}: kind ${row.kind}`);
  for (const side of [row.dmabuf, row.baseline]) {
    if (side === null) continue;
    assert.ok(side.label.length > 0, `${where}: side without label`);
    assert.ok(Number.isFinite(side.value) && side.value >= 0, `${where}: ${side.label} value ${side.value}`);
    assert.equal(side.unit, row.kind === 'memory' ? 'B' : 'ops/s', `${where}: unit`);
  }
  if (row.ratio !== null) {
    const { q1, median, q3 } = row.ratio;
    assert.ok([q1, median, q3].every(Number.isFinite), `${where}: ratio ${JSON.stringify(row.ratio)}`);
    assert.ok(q1 <= median && median <= q3, `${where}: quartiles out of order ${JSON.stringify(row.ratio)}`);
  }
  if (row.dmabuf === null)
    assert.ok(
      row.note !== undefined && row.note.length > 0,
      `${where}: a row without numbers must say why in its note`,
    );
  if (row.target !== null) assert.equal(typeof row.target.pass, 'boolean', `${where}: target`);
  assert.ok(Number.isInteger(row.samples) && row.samples >= 1, `${where}: samples ${row.samples}`);
  assert.ok(Number.isInteger(row.batch) && row.batch >= 1, `${where}: batch ${row.batch}`);
}

function checkReport(name: string, report: BenchReport): void {
  assert.ok(report.rows.length > 0, `${name} produced no rows`);
  for (const row of report.rows) checkRow(name, row);
  assert.equal(new Set(report.rows.map((r) => r.name)).size, report.rows.length, `${name}: row names repeat`);
  assert.ok(
    report.rows.some((r) => r.target !== null),
    `${name} has no row with a target`,
  );
  assert.ok(
    report.notes.every((n) => n.length > 0),
    `${name}: empty note`,
  );
}

async function runSmallest(def: BenchDefinition): Promise<BenchReport> {
  const progress: string[] = [];
  const report = await def.run({ budget: SMALLEST, progress: (l) => progress.push(l) });
  assert.ok(progress.length > 0, `${def.name} reported no progress`);
  checkReport(def.name, report);
  return report;
}

describe('ttm bench rows', () => {
  it('sanity: latencyRow prints 1/latency and its ratio is baseline latency / candidate latency', () => {
    const row = latencyRow({
      name: 'x',
      candidate: { label: 'a', perRoundMs: [0.1, 0.2, 0.1] },
      baseline: { label: 'b', perRoundMs: [1, 1, 2] },
      batch: 5,
      target: { op: '>=', value: 5 },
    });
    assert.equal(row.dmabuf?.value, 10_000, 'median 0.1 ms = 10,000 per second');
    assert.equal(row.ratio?.median, 10, 'per-round ratios 10, 5, 20');
    assert.deepEqual(row.target, { text: '>= 5x', pass: true });
  });

  it('budgetRow passes within the budget and misses beyond it', () => {
    const ok = budgetRow({
      name: 'p99',
      candidate: { label: 'a', perRoundMs: [0.5, 0.9] },
      budgetMs: 1,
      batch: 1,
      targetText: '<= 1 ms',
    });
    const late = budgetRow({
      name: 'p99',
      candidate: { label: 'a', perRoundMs: [1.5, 2] },
      budgetMs: 1,
      batch: 1,
      targetText: '<= 1 ms',
    });
    assert.equal(ok.target?.pass, true);
    assert.equal(late.target?.pass, false);
    assert.equal(late.target?.text, '<= 1 ms');
  });

  it('countRow passes at the limit and misses above it; bytesRow compares bytes without target', () => {
    const at = countRow({ name: 'peak', value: 16, limit: 16, targetText: '<= 16', samples: 1, batch: 10, note: 'n' });
    const over = countRow({
      name: 'peak',
      value: 17,
      limit: 16,
      targetText: '<= 16',
      samples: 1,
      batch: 10,
      note: 'n',
    });
    assert.deepEqual([at.target?.pass, over.target?.pass, at.dmabuf], [true, false, null]);
    const bytes = bytesRow({
      name: 'held',
      candidate: { label: 'a', bytes: [100] },
      baseline: { label: 'b', bytes: [400] },
      batch: 1,
    });
    assert.deepEqual([bytes.kind, bytes.dmabuf?.value, bytes.ratio?.median, bytes.target], ['memory', 100, 0.25, null]);
  });

  it('signalOrder: release order is the identity; random order is a seeded permutation', () => {
    const seed = testSeed();
    assert.deepEqual(Array.from(signalOrder('release', 5, seed)), [0, 1, 2, 3, 4]);
    const a = Array.from(signalOrder('random', 1000, seed));
    assert.deepEqual(Array.from(signalOrder('random', 1000, seed)), a, `seed ${seed}`);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 1000 }, (_, i) => i),
      `seed ${seed}`,
    );
    assert.notDeepEqual(
      a,
      Array.from({ length: 1000 }, (_, i) => i),
      `seed ${seed}: 1000 elements left in order`,
    );
  });
});

describe('ttm bench workloads', () => {
  it('reclaimRound: every object is reclaimed after its fence; the 10 ms scanner makes some wait >1 ms', async () => {
    const ours = await reclaimRound({
      design: 'per-object',
      count: 20,
      seed: 1,
      releaseEveryMs: 1,
      busyMinMs: 1,
      busyMaxMs: 4,
    });
    const scan = await reclaimRound({
      design: 'periodic-scan',
      count: 20,
      seed: 1,
      releaseEveryMs: 1,
      busyMinMs: 1,
      busyMaxMs: 4,
    });
    for (const run of [ours, scan]) {
      assert.equal(run.latenciesMs.length, 20);
      assert.ok(
        run.latenciesMs.every((l) => Number.isFinite(l) && l >= 0),
        `latencies ${Array.from(run.latenciesMs)}`,
      );
    }
    assert.ok(ours.peakActive >= 1 && ours.peakActive <= 16, `peak ${ours.peakActive}`);
    const max = (v: Float64Array): number => Math.max(...v);
    assert.ok(max(scan.latenciesMs) > 1, `the 10 ms scanner reclaimed everything within ${max(scan.latenciesMs)} ms`);
  });

  it('stormRun: a small storm frees everything and never runs more than 16 work items', async () => {
    const run = await stormRun({ design: 'per-object', count: 100, windowMs: 20, order: 'random', seed: 7 });
    assert.ok(run.peakActive >= 1 && run.peakActive <= 16, `peak ${run.peakActive}`);
    assert.equal(run.latenciesMs.length, 100);
    assert.ok(run.allFreedMs >= run.releaseMs, `all freed at ${run.allFreedMs} ms, release took ${run.releaseMs}`);
    assert.ok(run.peakHeldSignaled >= 0 && run.peakHeldSignaled <= 100 * 4096, `held ${run.peakHeldSignaled}`);
  });

  it('rangeSide keeps n live ranges and the manager usage in step through the churn', async () => {
    const seed = testSeed();
    const side = rangeSide(200, seed);
    await side.setup?.(50);
    await side.run(500);
    await assert.doesNotReject(Promise.resolve(side.setup?.(50)), `seed ${seed}`);
    assert.equal(side.live(), 200, `live ranges after the churn (seed ${seed}, ${side.failures()} ENOSPC)`);
    await side.close();
    assert.equal(side.manager.usage, 0, `seed ${seed}`);
  });
});

describe('ttm benchmark definitions, smallest budget', () => {
  it('every definition is named after its file and states question, baseline and target', () => {
    for (const def of [reclaim, storm, evict, validate]) {
      assert.match(def.name, /^ttm-[a-z-]+$/);
      assert.ok(def.question.length > 0 && def.baseline.length > 0 && def.target.length > 0, def.name);
    }
  });

  for (const def of [reclaim, evict]) {
    it(`${def.name} runs with one round and its rows are well formed`, async () => {
      await runSmallest(def);
    });
  }

  // The quick sizes of these two take seconds (10,000-object storms, a 100,000-object device), so
  // the smoke test runs the same code (their definitions' run() is one call of these) smaller.
  it('ttm-release-storm body at 500 objects over 50 ms: rows well formed, the work-item target met', async () => {
    const report = await runStorm({ count: 500, windowMs: 50, quick: true }, () => {});
    checkReport(storm.name, report);
    const peak = report.rows.find((r) => r.name.includes('peak running work items'));
    assert.equal(peak?.target?.pass, true, `peak running work items row: ${JSON.stringify(peak)}`);
    assert.ok(
      report.rows.every((r) => r.name.includes('500 BOs / 50 ms (quick, scaled down)')),
      'a scaled-down storm says so in every row',
    );
  });

  it('ttm-validate body at 2,000 vs 100 objects, one round: rows well formed and marked scaled down', async () => {
    const report = await runValidate(
      { large: 2000, small: 100, inPlaceBatch: 100, batch: 50, rangeBatch: 200 },
      1,
      0,
      () => {},
    );
    checkReport(validate.name, report);
    assert.equal(report.rows.length, 3);
    assert.ok(
      report.rows.every((r) => r.name.includes('(scaled down)')),
      report.rows.map((r) => r.name).join('; '),
    );
  });
});
