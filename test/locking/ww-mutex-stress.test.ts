/**
 * WwMutex under contention: the multi-task cases of kernel/locking/test-ww_mutex.c (test_abba,
 * test_cycle, stress_inorder, stress_reorder, stress_all) and the three back-off methods of
 * Documentation/locking/ww-mutex-design.rst, for both classes.
 *
 * test_abba and test_cycle order their tasks with {@link Completion} latches, as the kernel does.
 * Elsewhere every task draws from its own seeded PRNG (the seed is in every assertion message;
 * replay with TEST_SEED=<seed>) and tasks interleave at `setImmediate` turns. The stress runs stop
 * on real elapsed time: `STRESS_SECONDS` per run when set, a fraction of a second by default.
 * Deadlock injection is on in the stress runs, as in the kernel, so the back-off paths always run.
 *
 * Checked: every task finishes, no task sees an unexpected error, no two tasks ever hold one
 * mutex (an owner slot per lock, set after acquiring and cleared before unlocking), and at the
 * end every mutex is free with no waiters and every context was finished.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { AlreadyLockedError, WwDeadlockError } from '../../src/base/errors.js';
import { WwAcquireCtx, WwClass, WwMutex, type WwAlgorithm } from '../../src/locking/ww-mutex.js';
import { Completion, finish, nextTurn, outcome, yieldTurns } from '../helpers/completion.js';
import { seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

const NCPUS = availableParallelism();
const STRESS_INORDER = 1;
const STRESS_REORDER = 2;
const STRESS_ONE = 4;
const STRESS_ALL = STRESS_INORDER | STRESS_REORDER | STRESS_ONE;

/** Seconds per stress run: `STRESS_SECONDS`, else `fallback`. */
function runSeconds(fallback: number): number {
  const env = Number(process.env['STRESS_SECONDS']);
  return Number.isFinite(env) && env > 0 ? env : fallback;
}

/** `get_random_order()`: the identity shuffled by the kernel's loop (which stops at n > 1). */
function randomOrder(count: number, rnd: () => number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let n = count - 1; n > 1; n--) {
    const r = Math.floor(rnd() * (n + 1));
    [order[n], order[r]] = [order[r]!, order[n]!];
  }
  return order;
}

/** The shared state of one stress run: the locks, their owner slots, the contexts, the failures. */
class StressRun {
  readonly locks: WwMutex[];
  readonly owner: (number | null)[];
  readonly ctxs: WwAcquireCtx[] = [];
  readonly failures: string[] = [];
  backoffs = 0;
  passes = 0;
  readonly #deadline: number;
  readonly #grace: number;

  constructor(
    readonly cls: WwClass,
    nlocks: number,
    seconds: number,
    readonly seed: number,
  ) {
    this.locks = Array.from({ length: nlocks }, (_, i) => new WwMutex(cls, `stress${i}`));
    this.owner = this.locks.map(() => null);
    this.#deadline = performance.now() + seconds * 1000;
    this.#grace = Math.max(10_000, seconds * 5_000);
  }

  get timedOut(): boolean {
    return performance.now() > this.#deadline;
  }

  /** Still backing off long after the deadline: a livelock, reported instead of spinning forever. */
  get overdue(): boolean {
    return performance.now() > this.#deadline + this.#grace;
  }

  fail(id: number, what: string): void {
    this.failures.push(`task ${id}: ${what}`);
  }

  newCtx(): WwAcquireCtx {
    const ctx = new WwAcquireCtx(this.cls, { deadlockInjection: true });
    this.ctxs.push(ctx);
    return ctx;
  }

  /** Locks `locks[i]` (slow path when `slow`); returns the error, or null after claiming its owner slot. */
  async lock(i: number, ctx: WwAcquireCtx | null, id: number, slow = false): Promise<unknown> {
    const m = this.locks[i]!;
    const err = await (slow ? m.lockSlow(ctx!) : m.lock(ctx)).then(
      () => null,
      (e: unknown) => e,
    );
    if (err !== null) {
      if (err instanceof WwDeadlockError && err.contended !== m)
        this.fail(id, `EDEADLK on ${m} names ${String(err.contended)}`);
      return err;
    }
    if (this.owner[i] !== null)
      this.fail(id, `mutual exclusion failure: ${m} acquired while task ${this.owner[i]} holds it`);
    if (m.holder !== ctx) this.fail(id, `${m}.holder is ${String(m.holder)} after locking with ${String(ctx)}`);
    this.owner[i] = id;
    return null;
  }

  unlock(i: number, id: number): void {
    if (this.owner[i] !== id) this.fail(id, `unlocking ${this.locks[i]} owned by task ${this.owner[i]}`);
    this.owner[i] = null;
    this.locks[i]!.unlock();
  }

  fini(ctx: WwAcquireCtx, id: number): void {
    if (ctx.acquired !== 0) this.fail(id, `${ctx} finishes holding ${ctx.acquired} lock(s)`);
    else ctx.fini();
  }
}

/** A random await between lock steps: sometimes a turn, usually nothing but a microtask. */
async function jitter(rnd: () => number): Promise<void> {
  if (rnd() < 0.1) await nextTurn();
}

/** `dummy_load()`: work while holding the locks, here a few event-loop turns. */
function dummyLoad(rnd: () => number): Promise<void> {
  return yieldTurns(1 + Math.floor(rnd() * 3));
}

/** `stress_inorder_work`: all locks in one random order, skipping the slow-locked `contended`. */
async function inorderWork(run: StressRun, id: number, rnd: () => number): Promise<void> {
  const nlocks = run.locks.length;
  const order = randomOrder(nlocks, rnd);
  do {
    const ctx = run.newCtx();
    let contended = -1;
    let err: unknown;
    for (;;) {
      err = null;
      let n = 0;
      for (; n < nlocks; n++) {
        if (n === contended) continue;
        err = await run.lock(order[n]!, ctx, id);
        if (err !== null) break;
        await jitter(rnd);
      }
      if (err === null) await dummyLoad(rnd);
      if (contended > n) run.unlock(order[contended]!, id);
      contended = n;
      while (n--) run.unlock(order[n]!, id);
      // Past the deadline a back-off ends the task (the kernel would report it; it is not a failure).
      if (!(err instanceof WwDeadlockError) || run.timedOut) break;
      run.backoffs++;
      err = await run.lock(order[contended]!, ctx, id, true);
      if (err !== null) break;
    }
    run.fini(ctx, id);
    run.passes++;
    if (err instanceof WwDeadlockError) return;
    if (err !== null) return run.fail(id, `stress_inorder failed with ${String(err)}`);
  } while (!run.timedOut);
}

/** `stress_reorder_work`: a list in random order; a contended entry is slow-locked and moved to the head. */
async function reorderWork(run: StressRun, id: number, rnd: () => number): Promise<void> {
  const list = randomOrder(run.locks.length, rnd).reverse(); // list_add builds the list backwards
  do {
    const ctx = run.newCtx();
    for (let i = 0; i < list.length; i++) {
      const idx = list[i]!;
      const err = await run.lock(idx, ctx, id);
      if (err === null) {
        await jitter(rnd);
        continue;
      }
      for (let j = i - 1; j >= 0; j--) run.unlock(list[j]!, id);
      if (!(err instanceof WwDeadlockError)) {
        run.fini(ctx, id);
        return run.fail(id, `stress_reorder failed with ${String(err)}`);
      }
      if (run.overdue) {
        run.fini(ctx, id);
        return run.fail(id, `stress_reorder still backing off long after the deadline (livelock?)`);
      }
      run.backoffs++;
      const slow = await run.lock(idx, ctx, id, true);
      if (slow !== null) {
        run.fini(ctx, id);
        return run.fail(id, `stress_reorder lockSlow failed with ${String(slow)}`);
      }
      list.splice(i, 1);
      list.unshift(idx);
      i = 0; // the head is held: go on with the entry after it
    }
    await dummyLoad(rnd);
    for (const idx of list) run.unlock(idx, id);
    run.fini(ctx, id);
    run.passes++;
  } while (!run.timedOut);
}

/** `stress_one_work`: one random lock, plain (no context), over and over. */
async function oneWork(run: StressRun, id: number, rnd: () => number): Promise<void> {
  const idx = Math.floor(rnd() * run.locks.length);
  do {
    const err = await run.lock(idx, null, id);
    if (err !== null) return run.fail(id, `stress_one failed with ${String(err)}`);
    await dummyLoad(rnd);
    run.unlock(idx, id);
    run.passes++;
  } while (!run.timedOut);
}

/** `stress()`: workers by `n & 3` (inorder, reorder, one, none) until `nthreads` exist; then checks. */
async function stress(
  cls: WwClass,
  nlocks: number,
  nthreads: number,
  flags: number,
  seconds: number,
): Promise<StressRun> {
  const seed = testSeed();
  const run = new StressRun(cls, nlocks, seconds, seed);
  const tasks: Promise<void>[] = [];
  for (let n = 0; nthreads > 0; n++) {
    let work: typeof inorderWork | null = null;
    if ((n & 3) === 0 && flags & STRESS_INORDER) work = inorderWork;
    if ((n & 3) === 1 && flags & STRESS_REORDER) work = reorderWork;
    if ((n & 3) === 2 && flags & STRESS_ONE) work = oneWork;
    if (work === null) continue;
    const id = tasks.length;
    tasks.push(work(run, id, seededRandom(seed + id)).catch((e: unknown) => run.fail(id, `threw ${String(e)}`)));
    nthreads--;
  }
  // A deadlock leaves tasks pending with nothing left to run: the turn bound reports it.
  await finish(
    Promise.all(tasks),
    `stress(${cls.name}, ${nlocks} locks, seed ${seed}): tasks`,
    Math.max(20_000, seconds * 100_000),
  );
  assert.deepEqual(run.failures, [], `seed ${seed}`);
  const busy = run.locks
    .filter((m) => m.isLocked || m.waiters > 0)
    .map((m) => `${m}: locked=${m.isLocked} waiters=${m.waiters}`);
  assert.deepEqual(busy, [], `seed ${seed}: locks left behind`);
  const live = run.ctxs.filter((ctx) => !ctx.isFinished || ctx.acquired !== 0).map(String);
  assert.deepEqual(live, [], `seed ${seed}: contexts not finished`);
  assert.ok(run.passes >= tasks.length, `seed ${seed}: only ${run.passes} passes for ${tasks.length} tasks`);
  if (flags & (STRESS_INORDER | STRESS_REORDER))
    assert.ok(run.backoffs > 0, `seed ${seed}: the back-off path never ran`);
  return run;
}

function summary(run: StressRun): string {
  return `seed ${run.seed}: ${run.passes} passes, ${run.backoffs} back-offs, ${run.ctxs.length} contexts`;
}

const CLASSES: readonly (readonly [string, string, WwAlgorithm])[] = [
  ['test-ww_mutex (wound)', 'ww_class', 'wound-wait'],
  ['test-ww_mutex (die)', 'wd_class', 'wait-die'],
];

/** Per-mutex owner bookkeeping for the back-off methods. */
class Exclusion {
  readonly #owner = new Map<WwMutex, number>();
  take(m: WwMutex, id: number, seed: number): void {
    assert.equal(
      this.#owner.get(m),
      undefined,
      `${m} taken by task ${id} while task ${this.#owner.get(m)} holds it (seed ${seed})`,
    );
    this.#owner.set(m, id);
  }
  drop(m: WwMutex, id: number, seed: number): void {
    assert.equal(
      this.#owner.get(m),
      id,
      `${m} released by task ${id} but owned by ${this.#owner.get(m)} (seed ${seed})`,
    );
    this.#owner.delete(m);
  }
}

for (const [title, className, algorithm] of CLASSES) {
  describe(title, () => {
    const cls = new WwClass(className, algorithm);

    describe('test_abba', () => {
      for (let i = 0; i < 4; i++) {
        const trylock = (i & 1) !== 0;
        const resolve = (i & 2) !== 0;
        it(`test_abba(trylock=${trylock}, resolve=${resolve})`, async () => {
          // Run with the older and with the younger side asking for its second lock first.
          for (const youngerFirst of [false, true]) {
            const a = new WwMutex(cls, 'A');
            const b = new WwMutex(cls, 'B');
            const aReady = new Completion();
            const bReady = new Completion();
            const side = async (
              first: WwMutex,
              second: WwMutex,
              mine: Completion,
              theirs: Completion,
              delay: number,
            ) => {
              const ctx = new WwAcquireCtx(cls);
              if (trylock) assert.equal(first.tryLock(ctx), true, 'trylock of a free mutex failed');
              else await first.lock(ctx);
              assert.equal(first.holder, ctx);
              mine.complete();
              await theirs.wait();
              await yieldTurns(delay);
              let err: unknown = await second.lock(ctx).then(
                () => null,
                (e: unknown) => e,
              );
              let holdsFirst = true;
              if (resolve && err instanceof WwDeadlockError) {
                first.unlock();
                holdsFirst = false;
                await second.lockSlow(ctx);
                err = await first.lock(ctx).then(
                  () => null,
                  (e: unknown) => e,
                );
                holdsFirst = err === null;
              }
              if (err === null) second.unlock();
              if (holdsFirst) first.unlock();
              ctx.fini();
              return err;
            };
            const older = side(a, b, aReady, bReady, youngerFirst ? 2 : 0);
            const younger = side(b, a, bReady, aReady, youngerFirst ? 0 : 2);
            const errs = [await finish(older, 'older side'), await finish(younger, 'younger side')];
            for (const err of errs)
              assert.ok(err === null || err instanceof WwDeadlockError, `unexpected ${String(err)}`);
            if (resolve) assert.deepEqual(errs, [null, null], `ABBA not resolved (youngerFirst=${youngerFirst})`);
            else
              assert.ok(
                errs.some((e) => e instanceof WwDeadlockError),
                `missed ABBA deadlock (youngerFirst=${youngerFirst})`,
              );
            assert.equal(a.isLocked || b.isLocked, false);
          }
        });
      }
    });

    describe('test_cycle', () => {
      for (let n = 2; n <= 5; n++) {
        it(`test_cycle(${n}): a ring of ${n} tasks resolves its cyclic deadlock`, async () => {
          const locks = Array.from({ length: n }, (_, i) => new WwMutex(cls, `a${i}`));
          const bSignal = Array.from({ length: n }, () => new Completion());
          const worker = async (i: number): Promise<unknown> => {
            const a = locks[i]!;
            const b = locks[(i + 1) % n]!;
            const ctx = new WwAcquireCtx(cls);
            await a.lock(ctx);
            bSignal[(i + n - 1) % n]!.complete();
            await bSignal[i]!.wait();
            let err: unknown = await b.lock(ctx).then(
              () => null,
              (e: unknown) => e,
            );
            let errA: unknown = null;
            if (err instanceof WwDeadlockError) {
              err = null;
              a.unlock();
              await b.lockSlow(ctx);
              errA = await a.lock(ctx).then(
                () => null,
                (e: unknown) => e,
              );
            }
            if (err === null) b.unlock();
            if (errA === null) a.unlock();
            ctx.fini();
            return err ?? errA;
          };
          const results = await Promise.all(locks.map((_, i) => finish(worker(i), `worker ${i}`)));
          assert.deepEqual(
            results,
            locks.map(() => null),
            'cyclic deadlock not resolved',
          );
          for (const m of locks) assert.equal(m.isLocked, false);
        });
      }
    });

    it(`stress_inorder: 16 locks, ${2 * NCPUS} tasks`, { timeout: 120_000 }, async (t) => {
      t.diagnostic(summary(await stress(cls, 16, 2 * NCPUS, STRESS_INORDER, runSeconds(0.4))));
    });

    it(`stress_reorder: 16 locks, ${2 * NCPUS} tasks`, { timeout: 120_000 }, async (t) => {
      t.diagnostic(summary(await stress(cls, 16, 2 * NCPUS, STRESS_REORDER, runSeconds(0.4))));
    });

    it(`stress_all: 2046 locks, ${3 * NCPUS} tasks`, { timeout: 120_000 }, async (t) => {
      t.diagnostic(summary(await stress(cls, 2046, 3 * NCPUS, STRESS_ALL, runSeconds(0.8))));
    });

    describe('ww-mutex-design back-off methods', () => {
      const TASKS = 4;
      const ROUNDS = 15;
      /** Far more back-offs than one of these transactions needs: more means a livelock, so stop. */
      const MAX_BACKOFFS = 1_000;
      const backOff = (tries: number): number => {
        if (tries >= MAX_BACKOFFS) throw new Error(`${MAX_BACKOFFS} back-offs in one transaction (livelock)`);
        return tries + 1;
      };

      /** Runs `TASKS` tasks, each locking its own permutation of `objs` ROUNDS times with `lockAll`. */
      async function contend(
        lockAll: (list: WwMutex[], ctx: WwAcquireCtx, rnd: () => number) => Promise<WwMutex[]>,
        objs: WwMutex[],
      ): Promise<void> {
        const seed = testSeed();
        const exclusion = new Exclusion();
        const ctxs: WwAcquireCtx[] = [];
        const task = async (id: number): Promise<void> => {
          const rnd = seededRandom(seed + id);
          const list = shuffle([...objs], rnd);
          for (let round = 0; round < ROUNDS; round++) {
            const ctx = new WwAcquireCtx(cls);
            ctxs.push(ctx);
            const locked = await lockAll(list, ctx, rnd);
            assert.equal(ctx.acquired, new Set(locked).size, `seed ${seed}`);
            for (const m of locked) exclusion.take(m, id, seed);
            await yieldTurns(Math.floor(rnd() * 3));
            for (const m of locked) exclusion.drop(m, id, seed);
            for (const m of locked) m.unlock();
            ctx.fini();
          }
        };
        await Promise.all(Array.from({ length: TASKS }, (_, id) => finish(task(id), `task ${id} (seed ${seed})`)));
        for (const m of objs) assert.deepEqual([m.isLocked, m.waiters], [false, 0], `${m} (seed ${seed})`);
        for (const ctx of ctxs) assert.equal(ctx.isFinished, true);
      }

      /** Method 1: a fixed list; skip the slow-locked `resObj`; any error other than EDEADLK propagates. */
      async function method1(list: WwMutex[], ctx: WwAcquireCtx, rnd: () => number): Promise<WwMutex[]> {
        let resObj: WwMutex | null = null;
        for (let tries = 0; ; tries = backOff(tries)) {
          let failure: unknown = null;
          let i = 0;
          for (; i < list.length; i++) {
            const m = list[i]!;
            if (m === resObj) {
              resObj = null;
              continue;
            }
            failure = await m.lock(ctx).then(
              () => null,
              (e: unknown) => e,
            );
            if (failure !== null) break;
            if (rnd() < 0.5) await nextTurn();
          }
          if (failure === null) {
            ctx.done();
            return [...list];
          }
          for (let j = i - 1; j >= 0; j--) list[j]!.unlock();
          if (resObj !== null) resObj.unlock();
          if (!(failure instanceof WwDeadlockError)) {
            ctx.fini();
            throw failure;
          }
          resObj = list[i]!;
          await resObj.lockSlow(ctx);
        }
      }

      /** Method 2: a reorderable list; the contended entry moves to the head and the walk goes on. */
      async function method2(list: WwMutex[], ctx: WwAcquireCtx, rnd: () => number): Promise<WwMutex[]> {
        let tries = 0;
        for (let i = 0; i < list.length; i++) {
          const m = list[i]!;
          const err = await m.lock(ctx).then(
            () => null,
            (e: unknown) => e,
          );
          if (rnd() < 0.5) await nextTurn();
          if (err === null) continue;
          tries = backOff(tries);
          for (let j = i - 1; j >= 0; j--) list[j]!.unlock();
          if (!(err instanceof WwDeadlockError)) {
            ctx.fini();
            throw err;
          }
          await m.lockSlow(ctx);
          list.splice(i, 1);
          list.unshift(m);
          i = 0; // the head is held; continue with the entry after it
        }
        ctx.done();
        return [...list];
      }

      const objects = (n: number, prefix: string): WwMutex[] =>
        Array.from({ length: n }, (_, i) => new WwMutex(cls, `${prefix}${i}`));

      it('Method 1 (fixed list, res_obj skipped) completes with exclusion', async () => {
        await contend(method1, objects(6, 'obj'));
      });

      it('Method 1 propagates EALREADY to report a duplicate entry, leaving nothing locked', async () => {
        const [a, b, c] = objects(3, 'dup') as [WwMutex, WwMutex, WwMutex];
        const ctx = new WwAcquireCtx(cls);
        const err = await outcome(
          method1([a, b, a, c], ctx, () => 1),
          'method 1',
        );
        assert.ok(err instanceof AlreadyLockedError, String(err));
        assert.deepEqual([a.isLocked, b.isLocked, c.isLocked], [false, false, false]);
        assert.equal(ctx.isFinished, true);
      });

      it('Method 2 (reorderable list, contended entry moved to the head) completes with exclusion', async () => {
        await contend(method2, objects(6, 'obj'));
      });

      it('Method 3 (ad-hoc graph walk, EALREADY means continue) completes with exclusion', async () => {
        const objs = objects(8, 'node');
        // A ring with chords: every node is reachable along several paths, so walks meet locked nodes.
        const graph = objs.map((_, i) => [
          (i + 1) % objs.length,
          (i + 3) % objs.length,
          (i + objs.length - 1) % objs.length,
        ]);
        let already = 0;
        const method3 = async (list: WwMutex[], ctx: WwAcquireCtx, rnd: () => number): Promise<WwMutex[]> => {
          const root = objs.indexOf(list[0]!);
          let locked: number[] = [];
          let work = [root];
          for (let tries = 0; ; tries = backOff(tries)) {
            let contended: number | null = null;
            let steps = 0;
            while (work.length > 0 && contended === null) {
              // Each node is pushed once per edge into it at most: a longer walk never ends.
              assert.ok(++steps <= 4 * objs.length + 1, 'the walk does not terminate');
              const node = work.pop()!;
              const err = await objs[node]!.lock(ctx).then(
                () => null,
                (e: unknown) => e,
              );
              if (rnd() < 0.3) await nextTurn();
              if (err instanceof AlreadyLockedError) {
                already++;
                continue; // we have it: on to the next object
              }
              if (err instanceof WwDeadlockError) contended = node;
              else if (err !== null) throw err;
              else {
                locked.push(node);
                work.push(...shuffle([...graph[node]!], rnd));
              }
            }
            if (contended === null) break;
            for (const node of locked) objs[node]!.unlock();
            await objs[contended]!.lockSlow(ctx);
            locked = [contended];
            work = [root, ...graph[contended]!]; // its neighbours were not walked from it yet
          }
          ctx.done();
          assert.equal(locked.length, objs.length, 'the walk missed nodes');
          return locked.map((node) => objs[node]!);
        };
        await contend(method3, objs);
        assert.ok(already > 0, 'the walk never met a node it already held');
      });
    });
  });
}
