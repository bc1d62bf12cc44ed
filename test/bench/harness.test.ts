import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  budget,
  checkTarget,
  compare,
  compareMemory,
  formatDuration,
  formatMeasured,
  formatRatio,
  formatRate,
  measureBytes,
  median,
  opsPerSecond,
  quantile,
  ratioStats,
  seededRandom,
  type HarnessEnv,
  type Side,
} from '../../bench/harness.js';

/** A fake environment: time moves only when a side says how long it took. */
function fakeEnv(overrides: Partial<HarnessEnv> = {}): HarnessEnv & { advance(ms: number): void } {
  let t = 0;
  return {
    now: () => t,
    gc: undefined,
    heapUsed: () => 0,
    advance(ms: number) {
      t += ms;
    },
    ...overrides,
  };
}

describe('bench harness maths', () => {
  it('sanity: the median of one value is that value', () => {
    assert.equal(median([42]), 42);
  });

  it('median takes the middle of an odd list and the mean of the middle pair of an even one', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([5, 5, 100, 5, -100]), 5, 'outliers on both sides do not move the median');
  });

  it('median does not reorder its input', () => {
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2]);
  });

  it('median and quantile refuse an empty list and a q outside [0, 1]', () => {
    assert.throws(() => median([]), RangeError);
    assert.throws(() => quantile([1, 2], 1.5), RangeError);
    assert.throws(() => quantile([1, 2], Number.NaN), RangeError);
  });

  it('quantile interpolates between order statistics', () => {
    const values = [10, 20, 30, 40, 50];
    assert.equal(quantile(values, 0), 10);
    assert.equal(quantile(values, 1), 50);
    assert.equal(quantile(values, 0.25), 20);
    assert.equal(quantile([1, 2], 0.25), 1.25);
  });

  it('opsPerSecond converts a batch and milliseconds into a rate, never dividing by zero', () => {
    assert.equal(opsPerSecond(1000, 1), 1_000_000);
    assert.equal(opsPerSecond(50, 2000), 25);
    assert.ok(Number.isFinite(opsPerSecond(10, 0)));
  });

  it('ratioStats pairs samples by round: the median of ratios, not the ratio of medians', () => {
    // Round-wise ratios are 2, 2, 2 although the medians of the sides are 40 and 10 (ratio 4).
    const cand = [2, 40, 80];
    const base = [1, 20, 40];
    assert.equal(ratioStats(cand, base).median, 2);
    const skewed = ratioStats([10, 40, 200], [10, 10, 10]);
    assert.deepEqual(skewed, { median: 4, q1: 2.5, q3: 12 });
  });

  it('ratioStats refuses lists of different lengths', () => {
    assert.throws(() => ratioStats([1, 2], [1]), /pair them by round/);
  });

  it('checkTarget passes >= and <= targets at and beyond the bound, misses short of it', () => {
    assert.deepEqual(checkTarget(2, { op: '>=', value: 2 }), { text: '>= 2x', pass: true });
    assert.equal(checkTarget(1.99, { op: '>=', value: 2 }).pass, false);
    assert.equal(checkTarget(2, { op: '<=', value: 2 }).pass, true);
    assert.equal(checkTarget(2.01, { op: '<=', value: 2 }).pass, false);
    assert.equal(checkTarget(0.9, { op: '>=', value: 0.8, text: 'within 1.25x' }).text, 'within 1.25x');
  });

  it('formats rates, sizes, ratios and durations with three significant digits', () => {
    assert.equal(formatRate(12_345_678), '12.3 M');
    assert.equal(formatRate(4_560), '4.56 k');
    assert.equal(formatRate(789), '789');
    assert.equal(formatMeasured({ label: 'x', value: 2_500_000, unit: 'ops/s' }), '2.50 M/s');
    assert.equal(formatMeasured({ label: 'x', value: 88, unit: 'B' }), '88.0 B');
    assert.equal(formatMeasured(null), '-');
    assert.equal(formatRatio({ median: 2.414, q1: 2.3, q3: 2.52 }), '2.41x [2.30-2.52]');
    assert.equal(formatDuration(523), '523 ns');
    assert.equal(formatDuration(58_300), '58.3 µs');
    assert.equal(formatDuration(2_500_000), '2.50 ms');
  });

  it('seededRandom replays the same sequence for the same seed and differs for another', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const first = [a(), a(), a()];
    assert.deepEqual([b(), b(), b()], first);
    assert.notDeepEqual([c(), c(), c()], first);
    for (const x of first) assert.ok(x >= 0 && x < 1);
  });

  it('budget: --quick runs fewer rounds and repetitions than a full run', () => {
    const quick = budget(true);
    const full = budget(false);
    assert.ok(quick.rounds < full.rounds && quick.warmup <= full.warmup && quick.reps < full.reps);
  });
});

describe('bench harness compare', () => {
  function fakeSide(label: string, msPerBatch: number, env: { advance(ms: number): void }, log: string[]): Side {
    return {
      label,
      run() {
        log.push(label);
        env.advance(msPerBatch);
      },
    };
  }

  it('sanity: a candidate twice as fast as its baseline has ratio 2 and meets a >= 2x target', async () => {
    const env = fakeEnv();
    const log: string[] = [];
    const row = await compare(
      {
        name: 'x',
        candidate: fakeSide('A', 1, env, log),
        baseline: fakeSide('B', 2, env, log),
        batch: 1000,
        rounds: 4,
        warmup: 1,
        target: { op: '>=', value: 2 },
      },
      env,
    );
    assert.equal(row.ratio?.median, 2);
    assert.equal(row.dmabuf?.value, 1_000_000);
    assert.equal(row.baseline?.value, 500_000);
    assert.deepEqual(row.target, { text: '>= 2x', pass: true });
    assert.equal(row.samples, 4);
  });

  it('interleaves the sides and alternates which goes first (A B, B A, ...)', async () => {
    const env = fakeEnv();
    const log: string[] = [];
    await compare(
      {
        name: 'x',
        candidate: fakeSide('A', 1, env, log),
        baseline: fakeSide('B', 1, env, log),
        batch: 10,
        rounds: 3,
        warmup: 1,
      },
      env,
    );
    assert.deepEqual(log, ['A', 'B', 'B', 'A', 'A', 'B', 'B', 'A']);
  });

  it('discards warm-up rounds: a slow first round does not count', async () => {
    const env = fakeEnv();
    let calls = 0;
    const slowStart: Side = {
      label: 'A',
      run() {
        env.advance(calls++ === 0 ? 1000 : 1);
      },
    };
    const base: Side = { label: 'B', run: () => env.advance(1) };
    const row = await compare(
      { name: 'x', candidate: slowStart, baseline: base, batch: 10, rounds: 3, warmup: 1 },
      env,
    );
    assert.deepEqual(row.ratio, { median: 1, q1: 1, q3: 1 });
  });

  it('uses the milliseconds a side returns instead of the round clock, and leaves setup untimed', async () => {
    const env = fakeEnv();
    const selfTimed: Side = {
      label: 'A',
      setup: () => env.advance(500),
      run() {
        env.advance(10);
        return 1; // only 1 ms of the 10 counted
      },
    };
    const base: Side = { label: 'B', run: () => env.advance(4) };
    const row = await compare(
      { name: 'x', candidate: selfTimed, baseline: base, batch: 100, rounds: 2, warmup: 0 },
      env,
    );
    assert.equal(row.ratio?.median, 4);
  });

  it('awaits async sides inside the timing', async () => {
    const env = fakeEnv();
    const asyncSide: Side = {
      label: 'A',
      async run() {
        await Promise.resolve();
        env.advance(3);
      },
    };
    const base: Side = { label: 'B', run: () => env.advance(3) };
    const row = await compare({ name: 'x', candidate: asyncSide, baseline: base, batch: 1, rounds: 2, warmup: 0 }, env);
    assert.equal(row.ratio?.median, 1);
  });

  it('refuses a zero batch or zero rounds', async () => {
    const env = fakeEnv();
    const side: Side = { label: 'A', run: () => env.advance(1) };
    await assert.rejects(
      compare({ name: 'x', candidate: side, baseline: side, batch: 0, rounds: 1, warmup: 0 }, env),
      RangeError,
    );
    await assert.rejects(
      compare({ name: 'x', candidate: side, baseline: side, batch: 1, rounds: 0, warmup: 0 }, env),
      RangeError,
    );
  });
});

describe('bench harness memory', () => {
  it('sanity: without gc() the measurement is null, not a guess', async () => {
    const env = fakeEnv();
    assert.equal(await measureBytes({ label: 'x', fill() {} }, 10, 1, env), null);
    const row = await compareMemory({ name: 'x', candidate: { label: 'x', fill() {} }, count: 10, reps: 1 }, env);
    assert.equal(row.dmabuf, null);
    assert.match(row.note ?? '', /--expose-gc/);
  });

  it('divides the heap delta by the object count and takes the median over repetitions', async () => {
    let heap = 1000;
    let gcs = 0;
    const env = fakeEnv({ gc: () => void gcs++, heapUsed: () => heap });
    const perObject = [100, 40, 60];
    let rep = 0;
    const subject = {
      label: 'x',
      fill(holder: unknown[], count: number) {
        assert.equal(holder.length, count, 'the holder is pre-sized before the first reading');
        heap += perObject[rep++]! * count;
      },
    };
    assert.equal(await measureBytes(subject, 50, 3, env), 60);
    assert.ok(gcs >= 6, `gc() runs before both readings (ran ${gcs} times)`);
  });

  it('compareMemory reports bytes with ratio candidate/baseline and a <= target', async () => {
    let heap = 0;
    const env = fakeEnv({ gc: () => {}, heapUsed: () => heap });
    const grow = (bytes: number) => ({
      label: `${bytes}B`,
      fill: (_h: unknown[], n: number) => void (heap += bytes * n),
    });
    const row = await compareMemory(
      { name: 'x', candidate: grow(90), baseline: grow(160), count: 10, reps: 3, target: { op: '<=', value: 2 } },
      env,
    );
    assert.equal(row.dmabuf?.value, 90);
    assert.equal(row.baseline?.value, 160);
    assert.equal(row.ratio?.median, 90 / 160);
    assert.equal(row.target?.pass, true);
  });
});
