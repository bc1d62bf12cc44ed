/**
 * Benchmark: what does a wound/wait mutex cost next to the most used JavaScript mutex?
 *
 * Question: locking with a {@link WwMutex} should not cost more than taking an ordinary async
 * mutex; the deadlock avoidance is paid only on contention. Two shapes:
 * 1. uncontended: `await m.lock(); m.unlock()`, plain (no context) and inside one acquire
 *    context (`await m.lock(ctx); m.unlock()`, the context made once per round), against
 *    `const release = await mutex.acquire(); release()`;
 * 2. hand-off: one holder, 100 tasks queued behind it, each taking the lock and releasing it at
 *    once; one operation is one hand-off (holder to task 1, task 1 to task 2, ...).
 *
 * Baseline: async-mutex 0.5.0 `Mutex` (`acquire()` resolving to a releaser), in the same shape
 * and the same rounds.
 *
 * Target: uncontended >= 10x the async-mutex rate (both rows); hand-off >= 3x (no context). The
 * hand-off row with one context per task is reported without target.
 *
 * Overview: every operation awaits once per lock on both sides, so both rates include one
 * microtask turn per lock; the hand-off tasks are async functions on both sides and each round
 * waits for all of them with one `Promise.all`.
 *
 * Contract: each round checks that every lock was taken and the mutex is free at the end, so a
 * side that skipped work cannot look fast.
 *
 * @example
 * ```ts
 * // npm run bench -- ww-mutex
 * import { definition } from './ww-mutex.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { Mutex } from 'async-mutex';
import { WwAcquireCtx, WwClass, WwMutex } from '../src/locking/ww-mutex.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';

/** Lock/unlock pairs per timed round in the uncontended rows. */
export const UNCONTENDED_BATCH = 20_000;
/** Queued waiters per hand-off burst (the brief's shape). */
export const WAITERS = 100;
/** Hand-offs per timed round: 100 bursts of 100. */
export const HANDOFF_BATCH = 100 * WAITERS;

const wwClass = new WwClass('bench_ww_class', 'wait-die');

let taken = 0;

function check(side: string, expected: number, stillLocked: boolean): void {
  if (taken !== expected)
    throw new Error(`ww-mutex: ${side} took the lock ${taken} times, expected ${expected}; the round did not complete`);
  if (stillLocked) throw new Error(`ww-mutex: ${side} left the mutex locked at the end of the round`);
}

/** dmabuf, uncontended: `await m.lock(ctx?)` + `unlock()`; with `withCtx` all inside one context. */
export function wwUncontendedSide(withCtx: boolean): Side {
  const m = new WwMutex(wwClass, 'uncontended');
  return {
    label: withCtx ? 'WwMutex+ctx' : 'WwMutex',
    async run(batch: number): Promise<void> {
      taken = 0;
      if (withCtx) {
        using ctx = new WwAcquireCtx(wwClass);
        for (let i = 0; i < batch; i++) {
          await m.lock(ctx);
          taken++;
          m.unlock();
        }
      } else {
        for (let i = 0; i < batch; i++) {
          await m.lock();
          taken++;
          m.unlock();
        }
      }
      check('WwMutex', batch, m.isLocked);
    },
  };
}

/** Baseline, uncontended: `const release = await mutex.acquire(); release()`. */
export function asyncMutexUncontendedSide(): Side {
  const mutex = new Mutex();
  return {
    label: 'async-mutex',
    async run(batch: number): Promise<void> {
      taken = 0;
      for (let i = 0; i < batch; i++) {
        const release = await mutex.acquire();
        taken++;
        release();
      }
      check('async-mutex', batch, mutex.isLocked());
    },
  };
}

/**
 * dmabuf, hand-off: the round's task holds the mutex while `WAITERS` tasks queue on it, then
 * releases; each task takes it and releases it. With `withCtx` every task has its own context
 * (holding nothing else, so none ever backs off).
 */
export function wwHandoffSide(withCtx: boolean): Side {
  const m = new WwMutex(wwClass, 'handoff');
  const plainTask = async (): Promise<void> => {
    await m.lock();
    taken++;
    m.unlock();
  };
  const ctxTask = async (): Promise<void> => {
    using ctx = new WwAcquireCtx(wwClass);
    await m.lock(ctx);
    taken++;
    m.unlock();
  };
  const task = withCtx ? ctxTask : plainTask;
  return {
    label: withCtx ? 'WwMutex+ctx' : 'WwMutex',
    async run(batch: number): Promise<void> {
      taken = 0;
      const tasks: Promise<void>[] = new Array<Promise<void>>(WAITERS);
      for (let done = 0; done < batch; done += WAITERS) {
        await m.lock();
        for (let t = 0; t < WAITERS; t++) tasks[t] = task();
        m.unlock();
        await Promise.all(tasks);
      }
      check('WwMutex', batch, m.isLocked);
    },
  };
}

/** Baseline, hand-off: the same shape with async-mutex. */
export function asyncMutexHandoffSide(): Side {
  const mutex = new Mutex();
  const task = async (): Promise<void> => {
    const release = await mutex.acquire();
    taken++;
    release();
  };
  return {
    label: 'async-mutex',
    async run(batch: number): Promise<void> {
      taken = 0;
      const tasks: Promise<void>[] = new Array<Promise<void>>(WAITERS);
      for (let done = 0; done < batch; done += WAITERS) {
        const release = await mutex.acquire();
        for (let t = 0; t < WAITERS; t++) tasks[t] = task();
        release();
        await Promise.all(tasks);
      }
      check('async-mutex', batch, mutex.isLocked());
    },
  };
}

export const definition: BenchDefinition = {
  name: 'ww-mutex',
  question:
    'Is an uncontended WwMutex lock/unlock at least 10x, and a hand-off ' +
    'to 100 queued waiters at least 3x, the rate of async-mutex?',
  baseline: 'async-mutex 0.5.0 Mutex: const release = await mutex.acquire(); release(), same shapes',
  target: 'uncontended >= 10x (plain and with a context); hand-off to 100 waiters >= 3x (plain)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    const cases: {
      name: string;
      candidate: Side;
      baseline: Side;
      batch: number;
      target?: { op: '>='; value: number };
      note?: string;
    }[] = [
      {
        name: 'uncontended lock/unlock',
        candidate: wwUncontendedSide(false),
        baseline: asyncMutexUncontendedSide(),
        batch: UNCONTENDED_BATCH,
        target: { op: '>=', value: 10 },
      },
      {
        name: 'uncontended lock/unlock, one ctx',
        candidate: wwUncontendedSide(true),
        baseline: asyncMutexUncontendedSide(),
        batch: UNCONTENDED_BATCH,
        target: { op: '>=', value: 10 },
        note: 'one WwAcquireCtx per round, every lock taken and released through it',
      },
      {
        name: `hand-off to ${WAITERS} queued waiters`,
        candidate: wwHandoffSide(false),
        baseline: asyncMutexHandoffSide(),
        batch: HANDOFF_BATCH,
        target: { op: '>=', value: 3 },
        note:
          `one op = one hand-off; ${HANDOFF_BATCH / WAITERS} bursts of ` +
          `${WAITERS} async tasks per round, each burst joined with Promise.all`,
      },
      {
        name: `hand-off to ${WAITERS} queued waiters, ctx per task`,
        candidate: wwHandoffSide(true),
        baseline: asyncMutexHandoffSide(),
        batch: HANDOFF_BATCH,
        note:
          'no target: each task makes its own WwAcquireCtx (stamp-ordered ' +
          'queue, wake-up hook); async-mutex has no equivalent',
      },
    ];
    for (const c of cases) {
      ctx.progress(`ww-mutex: ${c.name}`);
      rows.push(
        await compare({
          name: c.name,
          candidate: c.candidate,
          baseline: c.baseline,
          batch: c.batch,
          rounds,
          warmup,
          ...(c.target !== undefined ? { target: c.target } : {}),
          ...(c.note !== undefined ? { note: c.note } : {}),
        }),
      );
    }
    return { rows, notes: [] };
  },
};
