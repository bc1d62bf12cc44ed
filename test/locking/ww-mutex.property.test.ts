/**
 * Property test: async tasks run random multi-lock transactions over a few WwMutexes (random
 * subsets in random order, random awaits between steps, sometimes deadlock injection, sometimes
 * a plain single lock) with the standard back-off loop: on WwDeadlockError unlock everything,
 * `lockSlow` the contended lock, retry with it held.
 *
 * Whatever the interleaving: every transaction completes, no two tasks ever hold one mutex, each
 * lock's `holder` is the context that took it, nothing leaks (all mutexes free, no waiters) and
 * every context is finished. Runs under both classes with a fixed fast-check seed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WwDeadlockError } from '../../src/base/errors.js';
import { WwAcquireCtx, WwClass, WwMutex, type WwAlgorithm } from '../../src/locking/ww-mutex.js';
import { finish, nextTurn } from '../helpers/completion.js';
import { seededRandom } from '../helpers/mock-fence.js';

const FC_SEED = 0x3c1d_2e5f;
const NUM_RUNS = 100;
/** Far more back-offs than any of these small transactions needs: more means a livelock. */
const MAX_BACKOFFS = 500;

interface Transaction {
  /** Indexes of the mutexes to lock, in this order, no duplicates. */
  readonly locks: readonly number[];
  /** A single-lock transaction takes it without a context (the design doc's Method 4). */
  readonly plain: boolean;
}

interface Scenario {
  readonly nlocks: number;
  readonly tasks: readonly (readonly Transaction[])[];
  readonly injection: boolean;
  /** Seeds the per-task PRNGs that place the awaits. */
  readonly yieldSeed: number;
  /** Chance of a full event-loop turn after each step. */
  readonly yieldChance: number;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 6 }).chain((nlocks) =>
  fc.record({
    nlocks: fc.constant(nlocks),
    tasks: fc.array(
      fc.array(
        fc.record({
          locks: fc.uniqueArray(fc.integer({ min: 0, max: nlocks - 1 }), { minLength: 1, maxLength: nlocks }),
          plain: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      { minLength: 2, maxLength: 6 },
    ),
    injection: fc.boolean(),
    yieldSeed: fc.integer({ min: 0, max: 0x7fffffff }),
    yieldChance: fc.constantFrom(0, 0.25, 0.6),
  }),
);

/** Runs one scenario and checks the invariants; returns how many back-offs it went through. */
async function runScenario(cls: WwClass, sc: Scenario): Promise<number> {
  const locks = Array.from({ length: sc.nlocks }, (_, i) => new WwMutex(cls, `p${i}`));
  const owner: (number | null)[] = locks.map(() => null);
  const ctxs: WwAcquireCtx[] = [];
  let completed = 0;
  let backoffs = 0;

  const claim = (i: number, id: number, ctx: WwAcquireCtx | null): void => {
    assert.equal(owner[i], null, `p${i} taken by task ${id} while task ${owner[i]} holds it`);
    assert.equal(locks[i]!.holder, ctx, `p${i}.holder`);
    owner[i] = id;
  };
  const drop = (i: number, id: number): void => {
    assert.equal(owner[i], id, `p${i} released by task ${id} but owned by ${owner[i]}`);
    owner[i] = null;
    locks[i]!.unlock();
  };

  const task = async (id: number, transactions: readonly Transaction[]): Promise<void> => {
    const rnd = seededRandom(sc.yieldSeed + id);
    const step = async (): Promise<void> => {
      if (rnd() < sc.yieldChance) await nextTurn();
    };
    for (const tx of transactions) {
      await step();
      if (tx.plain && tx.locks.length === 1) {
        const i = tx.locks[0]!;
        await locks[i]!.lock(null);
        claim(i, id, null);
        await step();
        drop(i, id);
        completed++;
        continue;
      }
      const ctx = new WwAcquireCtx(cls, { deadlockInjection: sc.injection });
      ctxs.push(ctx);
      const held = new Set<number>();
      let tries = 0;
      for (;;) {
        let err: unknown = null;
        for (const i of tx.locks) {
          if (held.has(i)) continue; // the slow-locked one
          err = await locks[i]!.lock(ctx).then(
            () => null,
            (e: unknown) => e,
          );
          if (err !== null) break;
          claim(i, id, ctx);
          held.add(i);
          await step();
        }
        if (err === null) break;
        if (!(err instanceof WwDeadlockError)) throw err;
        assert.ok(held.size > 0, 'EDEADLK for a context holding nothing');
        const contended = locks.indexOf(err.contended as WwMutex);
        assert.ok(contended >= 0 && ctx.contendingLock === locks[contended], 'contended lock bookkeeping');
        assert.ok(++tries <= MAX_BACKOFFS, `task ${id}: ${MAX_BACKOFFS} back-offs in one transaction (livelock)`);
        backoffs++;
        for (const i of held) drop(i, id);
        held.clear();
        await step();
        await locks[contended]!.lockSlow(ctx);
        claim(contended, id, ctx);
        held.add(contended);
      }
      ctx.done();
      assert.equal(ctx.acquired, tx.locks.length);
      await step(); // the critical section
      for (const i of tx.locks) drop(i, id);
      ctx.fini();
      completed++;
    }
  };

  await Promise.all(sc.tasks.map((txs, id) => finish(task(id, txs), `task ${id}`)));
  assert.equal(
    completed,
    sc.tasks.reduce((n, txs) => n + txs.length, 0),
  );
  for (const m of locks) assert.deepEqual([m.isLocked, m.waiters], [false, 0], `${m} leaked`);
  for (const ctx of ctxs) assert.ok(ctx.isFinished && ctx.acquired === 0, `${ctx} not finished`);
  return backoffs;
}

const CLASSES: readonly (readonly [string, string, WwAlgorithm])[] = [
  ['test-ww_mutex (wound)', 'ww_class', 'wound-wait'],
  ['test-ww_mutex (die)', 'wd_class', 'wait-die'],
];

for (const [title, className, algorithm] of CLASSES) {
  describe(title, () => {
    it('sanity: two tasks locking a pair in opposite orders both complete', async () => {
      const cls = new WwClass(className, algorithm);
      const backoffs = await runScenario(cls, {
        nlocks: 2,
        tasks: [[{ locks: [0, 1], plain: false }], [{ locks: [1, 0], plain: false }]],
        injection: false,
        yieldSeed: 1,
        yieldChance: 1,
      });
      assert.equal(backoffs, 1, 'exactly one side backs off');
    });

    it('random transactions with back-off: all complete, exclusion holds, nothing leaks', async () => {
      const cls = new WwClass(className, algorithm);
      let backoffs = 0;
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (sc) => {
          backoffs += await runScenario(cls, sc);
        }),
        { seed: FC_SEED, numRuns: NUM_RUNS },
      );
      assert.ok(backoffs > 0, 'no scenario ever backed off');
    });
  });
}
