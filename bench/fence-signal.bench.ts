/**
 * Benchmark: how fast is a fence's create + callback + signal, next to the Promise it replaces?
 *
 * Question: a runtime that uses a DmaFence as its completion object, instead of a Promise, pays
 * for creating it, registering one completion callback and signalling it. Is that at least twice
 * as fast as the Promise way of doing the same?
 *
 * Baseline: `new Promise` (capturing `resolve`) + `.then(cb)` + `resolve()`. Promise reactions run
 * as microtasks, so each batch ends with an `await` on both sides: the Promise callbacks have
 * really run when the round's clock stops (each side checks its callback count).
 *
 * Target: dmabuf >= 2x the Promise rate (median of per-round ratios).
 *
 * Also reported, with no target: signal with 0 callbacks (create + signal vs create + resolve)
 * and with 4 callbacks (4 × addCallback vs 4 × `.then`); and, as a diagnostic, the 1-callback
 * case with the timestamp passed to `signal(ts)`, which skips the clock read.
 *
 * Overview: one {@link compare} per callback count; the fences share one context and take the
 * batch index as seqno, like a driver's queue would.
 *
 * Contract: both sides do the same work per operation (one object, n callbacks that increment a
 * counter, one completion) and end each batch with one `await`.
 *
 * @example
 * ```ts
 * // npm run bench -- fence-signal        (or: npm start -- fence-signal, quick)
 * import { definition } from './fence-signal.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { getClock } from '../src/base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';

const ops: DmaFenceOps = Object.freeze({
  getDriverName: () => 'bench',
  getTimelineName: () => 'signal',
});

/** Operations per timed round: big enough for several ms per round at ~10 M/s. */
const BATCH = 50_000;

let called = 0;
const callback = (): void => {
  called++;
};

function check(side: string, expected: number): void {
  if (called !== expected) {
    throw new Error(`fence-signal: ${side} ran ${called} callbacks, expected ${expected}; the batch did not complete`);
  }
}

/**
 * dmabuf side: create a fence, add `n` callbacks, signal it. With `timestamp`, the signal is
 * given its time (as a driver with a hardware timestamp would) and reads no clock.
 */
export function fenceSide(callbacks: number, timestamp?: number): Side {
  const context = fenceContextAlloc();
  return {
    label: timestamp === undefined ? 'DmaFence' : 'DmaFence signal(ts)',
    async run(batch: number): Promise<void> {
      called = 0;
      for (let i = 0; i < batch; i++) {
        const fence = new DmaFence(ops, context, i);
        for (let c = 0; c < callbacks; c++) fence.addCallback(callback);
        fence.signal(timestamp);
      }
      await undefined;
      check('DmaFence', batch * callbacks);
    },
  };
}

/**
 * The ceiling of the 1-callback row: the one clock read every `signal()` owes its timestamp and
 * the one callback, and nothing else (no object, no registration). No fence that keeps exact
 * timestamps can signal faster, so this side's ratio bounds the row's.
 */
export function clockOnlySide(): Side {
  const clock = getClock();
  return {
    label: 'clock read + callback',
    async run(batch: number): Promise<void> {
      called = 0;
      let stamp = 0;
      for (let i = 0; i < batch; i++) {
        stamp = clock.now();
        callback();
      }
      await undefined;
      if (!(stamp > 0)) throw new Error(`fence-signal: the clock read ${stamp}`);
      check('clock read + callback', batch);
    },
  };
}

/** Baseline: create a promise keeping its resolve, attach `n` reactions, resolve it. */
export function promiseSide(callbacks: number): Side {
  return {
    label: 'Promise',
    async run(batch: number): Promise<void> {
      called = 0;
      for (let i = 0; i < batch; i++) {
        let resolve!: (value: number) => void;
        const promise = new Promise<number>((r) => {
          resolve = r;
        });
        for (let c = 0; c < callbacks; c++) void promise.then(callback);
        resolve(i);
      }
      // The reactions were queued before this await's continuation: they have all run after it.
      await undefined;
      check('Promise', batch * callbacks);
    },
  };
}

export const definition: BenchDefinition = {
  name: 'fence-signal',
  question: 'Is fence create + one callback + signal at least 2x the rate of new Promise + .then(cb) + resolve?',
  baseline: 'new Promise (resolve captured) + .then(cb) + resolve(), microtasks drained per batch',
  target: '>= 2x the Promise rate (1 callback); 0 and 4 callbacks reported without target',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    const cases: {
      callbacks: number;
      name: string;
      timestamp?: number;
      target?: { op: '>='; value: number };
      note?: string;
    }[] = [
      { callbacks: 1, name: 'signal, 1 callback', target: { op: '>=', value: 2 } },
      { callbacks: 0, name: 'signal, 0 callbacks' },
      { callbacks: 4, name: 'signal, 4 callbacks' },
      {
        callbacks: 1,
        name: 'signal(ts), 1 callback',
        timestamp: 1.5,
        note:
          'diagnostic, no target: the timestamp is passed in, so signal() reads ' +
          'no clock; the gap to the row above is the cost of the clock read',
      },
    ];
    const ceiling = {
      name: 'ceiling: one clock read + 1 callback',
      note:
        'diagnostic, no target: only what every signal() with an exact timestamp must do (read the ' +
        'clock, run the callback); no fence can beat this ratio, so it bounds the 1-callback row',
    };
    for (const c of cases) {
      ctx.progress(`fence-signal: ${c.name}`);
      rows.push(
        await compare({
          name: c.name,
          candidate: fenceSide(c.callbacks, c.timestamp),
          baseline: promiseSide(c.callbacks),
          batch: BATCH,
          rounds,
          warmup,
          ...(c.target !== undefined ? { target: c.target } : {}),
          ...(c.note !== undefined ? { note: c.note } : {}),
        }),
      );
    }
    ctx.progress(`fence-signal: ${ceiling.name}`);
    rows.push(
      await compare({
        name: ceiling.name,
        candidate: clockOnlySide(),
        baseline: promiseSide(1),
        batch: BATCH,
        rounds,
        warmup,
        note: ceiling.note,
      }),
    );
    return { rows, notes: [] };
  },
};
