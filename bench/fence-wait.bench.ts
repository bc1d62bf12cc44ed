/**
 * Benchmark: does awaiting a fence cost about what awaiting a Promise costs?
 *
 * Question: code that does `await fence.wait()` where it used to `await promise` should not get
 * noticeably slower. Two cases:
 * - already signaled: `await fence.wait()` on a signaled fence vs `await` on a resolved Promise
 *   (both objects made once, awaited `batch` times);
 * - signaled later: create a fence, start `wait()`, signal, await, vs create a Promise keeping
 *   its resolve, resolve, await (one new object per operation on both sides).
 *
 * Baseline: the plain Promise doing the same, in the same rounds.
 *
 * Target: within 1.25x of the Promise, i.e. a rate ratio >= 0.8 (median of per-round ratios).
 * A diagnostic row without target repeats "signaled later" with the timestamp passed to
 * `signal(ts)`, which skips the clock read.
 *
 * Overview: each operation is one sequential `await` inside an async loop, so the measured rate
 * includes one microtask turn per operation on both sides.
 *
 * Contract: both sides await exactly once per operation and check the awaited value.
 *
 * @example
 * ```ts
 * // npm run bench -- fence-wait
 * import { definition } from './fence-wait.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { getClock } from '../src/base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';

const ops: DmaFenceOps = Object.freeze({
  getDriverName: () => 'bench',
  getTimelineName: () => 'wait',
});

const BATCH = 50_000;
const TARGET = { op: '>=', value: 0.8, text: '>= 0.8x (within 1.25x)' } as const;

function fail(side: string, value: unknown): never {
  throw new Error(`fence-wait: ${side} resolved to ${String(value)}, expected true`);
}

/** dmabuf, already signaled: one signaled fence awaited `batch` times. */
export function fenceSignaledSide(): Side {
  const fence = new DmaFence(ops, fenceContextAlloc(), 1);
  fence.signal();
  return {
    label: 'DmaFence.wait',
    async run(batch: number): Promise<void> {
      for (let i = 0; i < batch; i++) {
        const ok = await fence.wait();
        if (ok !== true) fail('DmaFence.wait (signaled)', ok);
      }
    },
  };
}

/** Baseline, already resolved: one resolved promise awaited `batch` times. */
export function promiseResolvedSide(): Side {
  const promise = Promise.resolve(true);
  return {
    label: 'Promise',
    async run(batch: number): Promise<void> {
      for (let i = 0; i < batch; i++) {
        const ok = await promise;
        if (ok !== true) fail('Promise (resolved)', ok);
      }
    },
  };
}

/** dmabuf, signaled later: create, start the wait, signal (with `timestamp` if given: no clock read), await. */
export function fenceLaterSide(timestamp?: number): Side {
  const context = fenceContextAlloc();
  return {
    label: timestamp === undefined ? 'DmaFence.wait' : 'DmaFence.wait signal(ts)',
    async run(batch: number): Promise<void> {
      for (let i = 0; i < batch; i++) {
        const fence = new DmaFence(ops, context, i);
        const done = fence.wait();
        fence.signal(timestamp);
        const ok = await done;
        if (ok !== true) fail('DmaFence.wait (later)', ok);
      }
    },
  };
}

/** Baseline, resolved later: create with resolve kept, resolve, await. */
export function promiseLaterSide(): Side {
  return {
    label: 'Promise',
    async run(batch: number): Promise<void> {
      for (let i = 0; i < batch; i++) {
        let resolve!: (value: boolean) => void;
        const promise = new Promise<boolean>((r) => {
          resolve = r;
        });
        resolve(true);
        const ok = await promise;
        if (ok !== true) fail('Promise (later)', ok);
      }
    },
  };
}

/**
 * The ceiling of the signaled-later row: a Promise created, resolved and awaited, plus the one
 * clock read that every `signal()` owes its timestamp, and nothing else. No fence can wait
 * faster than this while it keeps an exact timestamp, so its ratio bounds the row above.
 */
export function clockedPromiseSide(): Side {
  const clock = getClock();
  return {
    label: 'Promise + clock read',
    async run(batch: number): Promise<void> {
      let stamp = 0;
      for (let i = 0; i < batch; i++) {
        let resolve!: (value: boolean) => void;
        const promise = new Promise<boolean>((r) => {
          resolve = r;
        });
        stamp = clock.now();
        resolve(true);
        const ok = await promise;
        if (ok !== true) fail('Promise + clock read', ok);
      }
      if (!(stamp > 0)) throw new Error(`fence-wait: the clock read ${stamp}`);
    },
  };
}

export const definition: BenchDefinition = {
  name: 'fence-wait',
  question:
    'Is await fence.wait() within 1.25x of await on a Promise, for a fence signaled before and after the wait starts?',
  baseline: 'await on a resolved Promise; new Promise + resolve + await',
  target: 'rate ratio >= 0.8 (within 1.25x of the Promise)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    ctx.progress('fence-wait: already signaled');
    rows.push(
      await compare({
        name: 'wait, already signaled',
        candidate: fenceSignaledSide(),
        baseline: promiseResolvedSide(),
        batch: BATCH,
        rounds,
        warmup,
        target: TARGET,
      }),
    );
    ctx.progress('fence-wait: signaled after the wait started');
    rows.push(
      await compare({
        name: 'wait, signaled later',
        candidate: fenceLaterSide(),
        baseline: promiseLaterSide(),
        batch: BATCH,
        rounds,
        warmup,
        target: TARGET,
      }),
    );
    ctx.progress('fence-wait: signaled later, timestamp passed in');
    rows.push(
      await compare({
        name: 'wait, signaled later, signal(ts)',
        candidate: fenceLaterSide(1.5),
        baseline: promiseLaterSide(),
        batch: BATCH,
        rounds,
        warmup,
        note:
          'diagnostic, no target: signal(ts) reads no clock; ' +
          'the gap to the row above is the cost of the clock read',
      }),
    );
    ctx.progress('fence-wait: ceiling (a Promise plus one clock read)');
    rows.push(
      await compare({
        name: 'ceiling: Promise + one clock read',
        candidate: clockedPromiseSide(),
        baseline: promiseLaterSide(),
        batch: BATCH,
        rounds,
        warmup,
        note:
          'diagnostic, no target: the signaled-later baseline plus the clock read every signal() ' +
          'makes for its timestamp and nothing else; no fence with exact timestamps can beat this ratio',
      }),
    );
    return { rows, notes: [] };
  },
};
