/**
 * Executable specification of DrmExec (src/exec/drm-exec.ts), the drm_exec locking loop: the
 * KUnit drm_exec_test.c port, then contention: tasks locking in opposite orders, the back-off and
 * re-run protocol, seeded stress under both ww algorithms, and deadlock injection. Errors, dispose,
 * abort, duplicates, prepareObj/unlockObj and contract checks are in drm-exec-contract.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { BugError, WwDeadlockError } from '../../src/base/errors.js';
import { WwClass, type WwAcquireCtx, type WwAlgorithm, type WwMutex } from '../../src/locking/ww-mutex.js';
import { DmaResvUsage, reservationWwClass } from '../../src/resv/dma-resv.js';
import { DrmExec } from '../../src/exec/drm-exec.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';
import { assertQuiet, bos, olderHolding, turn, type Bo, type Op } from '../helpers/exec-objects.js';

/** A promise with its resolver, for barriers between tasks. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  return { promise: new Promise<void>((resolve) => (open = resolve)), open };
}

/**
 * Checks one transaction's log: each re-run starts by slow-locking the object of the previous
 * back-off and never locks it again in that run; runs = 1 + back-offs.
 */
function assertRetryProtocol(
  log: readonly Op[],
  ctx: WwAcquireCtx,
  message: string,
): { runs: number; deadlocks: number } {
  const mine = log.filter((e) => e.ctx === ctx);
  let runs = 0;
  let deadlocks = 0;
  let lastDeadlock: string | null = null;
  let expectSlow: string | null = null;
  let contendedThisRun: string | null = null;
  for (const e of mine) {
    if (e.op === 'run') {
      runs++;
      [expectSlow, contendedThisRun, lastDeadlock] = [lastDeadlock, lastDeadlock, null];
    } else if (e.op === 'deadlock') {
      deadlocks++;
      lastDeadlock = e.name;
    } else if (e.op === 'lockSlow') {
      assert.equal(
        e.name,
        expectSlow,
        `${message}: lockSlow(${e.name}) must be the first lock of a re-run after backing off from it`,
      );
      expectSlow = null;
    } else if (e.op === 'lock') {
      assert.equal(expectSlow, null, `${message}: lock(${e.name}) before the slow lock of ${expectSlow}`);
      assert.notEqual(e.name, contendedThisRun, `${message}: ${e.name} was slow-locked in this run and locked again`);
    }
  }
  assert.equal(runs, 1 + deadlocks, `${message}: the body re-runs exactly once per back-off`);
  return { runs, deadlocks };
}

/** Wraps a body so the log shows each run and each back-off, with the ticket. */
function traced<T>(log: Op[], body: (exec: DrmExec) => Promise<T>): (exec: DrmExec) => Promise<T> {
  return async (exec) => {
    log.push({ op: 'run', name: '', ctx: exec.ticket });
    try {
      return await body(exec);
    } catch (err) {
      if (err instanceof WwDeadlockError)
        log.push({ op: 'deadlock', name: (err.contended as WwMutex).name, ctx: exec.ticket });
      throw err;
    }
  };
}

const count = (log: readonly Op[], op: Op['op']): number => log.filter((e) => e.op === op).length;

describe('drm_exec', () => {
  // The KUnit suite drivers/gpu/drm/tests/drm_exec_test.c, case by case.

  it('sanitycheck', () => {
    const exec = new DrmExec({ interruptible: true });
    assert.equal(exec.ticket.isFinished, false);
    exec.fini();
    assert.equal(exec.ticket.isFinished, true);
    assert.deepEqual(exec.objects, []);
  });

  it('test_lock', async () => {
    const [bo] = bos(1) as [Bo];
    const exec = new DrmExec({ interruptible: true });
    await exec.untilAllLocked(async (exec) => {
      await exec.lockObj(bo);
    });
    assert.equal(bo.resv.lockingCtx, exec.ticket);
    assert.deepEqual(exec.objects, [bo]);
    assert.equal(exec.ticket.isDone, true);
    exec.fini();
    assertQuiet([bo]);
  });

  it('test_lock_unlock', async () => {
    const [bo] = bos(1) as [Bo];
    const exec = new DrmExec();
    await exec.untilAllLocked(async (exec) => {
      await exec.lockObj(bo);
      exec.unlockObj(bo);
      assert.equal(bo.resv.isLocked, false);
      await exec.lockObj(bo);
    });
    assert.equal(bo.resv.lockingCtx, exec.ticket);
    assert.deepEqual(exec.objects, [bo]);
    assert.equal(bo.refs, 1);
    exec.fini();
    assertQuiet([bo]);
  });

  it('test_duplicates', async () => {
    const [bo] = bos(1) as [Bo];
    const exec = new DrmExec({ ignoreDuplicates: true });
    await exec.untilAllLocked(async (exec) => {
      await exec.lockObj(bo);
      await exec.lockObj(bo);
    });
    assert.deepEqual(exec.objects, [bo], 'tracked once');
    exec.unlockObj(bo);
    assert.equal(bo.resv.isLocked, false);
    exec.fini();
    assertQuiet([bo]);
  });

  it('test_prepare', async () => {
    const [bo] = bos(1) as [Bo];
    const exec = new DrmExec();
    await exec.untilAllLocked(async (exec) => exec.prepareObj(bo, 1));
    assert.ok(bo.resv.maxFences - bo.resv.numFences >= 1, 'one slot reserved');
    bo.resv.addFence(mockFence(), DmaResvUsage.Write);
    exec.fini();
    assertQuiet([bo]);
    assert.equal(bo.resv.numFences, 1);
    bo.resv[Symbol.dispose]();
  });

  it('test_prepare_array', async () => {
    const array = bos(2);
    const exec = new DrmExec();
    await exec.untilAllLocked(async (exec) => exec.prepareArray(array, 1));
    assert.deepEqual(exec.objects, array);
    for (const bo of array) assert.ok(bo.resv.maxFences - bo.resv.numFences >= 1, `${bo.name} has a slot`);
    exec.fini();
    assertQuiet(array);
  });

  it('test_multiple_loops', async () => {
    const tickets: WwAcquireCtx[] = [];
    for (let i = 0; i < 2; i++) {
      const exec = new DrmExec({ interruptible: true });
      let runs = 0;
      await exec.untilAllLocked(async () => {
        runs++; // the KUnit body just breaks out
      });
      assert.equal(runs, 1);
      tickets.push(exec.ticket);
      exec.fini();
    }
    assert.notEqual(tickets[0], tickets[1]);
    assert.ok(tickets.every((t) => t.isDone && t.isFinished));
  });

  // Behaviours.

  it('sanity: locks several objects, fences each, and dispose unlocks them in reverse order', async () => {
    const log: Op[] = [];
    const objs = bos(3, log);
    const job = mockFence();
    {
      await using exec = new DrmExec();
      const result = await exec.untilAllLocked(async (exec) => {
        await exec.prepareArray(objs, 1);
        return 'locked';
      });
      assert.equal(result, 'locked', 'untilAllLocked returns what the body returned');
      for (const obj of exec.objects) obj.resv.addFence(job, DmaResvUsage.Write);
      assert.ok(
        objs.every((bo) => bo.refs === 1),
        'one reference per tracked object',
      );
    }
    assertQuiet(objs);
    assert.deepEqual(
      log.filter((e) => e.op === 'unlock').map((e) => e.name),
      ['bo2', 'bo1', 'bo0'],
    );
    assert.ok(objs.every((bo) => bo.resv.getSingleton(DmaResvUsage.Write) === job));
  });

  it('two tasks locking two buffers in opposite order, with awaits between, both complete', async () => {
    const log: Op[] = [];
    const [a, b] = bos(2, log) as [Bo, Bo];
    const firstLocks = [latch(), latch()] as const;
    const fences = [mockFence(), mockFence()] as const;
    const execs: DrmExec[] = [];
    const task = async (i: 0 | 1, first: Bo, second: Bo): Promise<void> => {
      await using exec = new DrmExec();
      execs.push(exec);
      await exec.untilAllLocked(
        traced(log, async (exec) => {
          await exec.lockObj(first);
          firstLocks[i].open();
          await firstLocks[1 - i]!.promise; // both hold their first buffer now
          await turn();
          await exec.lockObj(second);
        }),
      );
      for (const obj of exec.objects) {
        obj.resv.reserveFences(1);
        obj.resv.addFence(fences[i], DmaResvUsage.Write);
      }
      await turn(); // work while holding both
    };
    await Promise.all([task(0, a, b), task(1, b, a)]);
    const [older, younger] = execs as [DrmExec, DrmExec];
    assert.ok(older.ticket.stamp < younger.ticket.stamp);
    assert.deepEqual(assertRetryProtocol(log, older.ticket, 'older'), { runs: 1, deadlocks: 0 });
    assert.deepEqual(assertRetryProtocol(log, younger.ticket, 'younger'), { runs: 2, deadlocks: 1 });
    assert.deepEqual(
      log.filter((e) => e.ctx === younger.ticket && e.op.startsWith('lock')).map((e) => `${e.op} ${e.name}`),
      ['lock bo1', 'lock bo0', 'lockSlow bo0', 'lock bo1'],
      'the younger backs off at bo0, slow-locks it first on the re-run, and does not lock it again',
    );
    assertQuiet([a, b]);
    assert.ok(execs.every((e) => e.ticket.isFinished));
    for (const bo of [a, b]) assert.equal(bo.resv.numFences, 2, `${bo.name} got both tasks' fences`);
  });

  it('a body that swallows the back-off and returns is retried all the same', async () => {
    const [a, b] = bos(2) as [Bo, Bo];
    const older = await olderHolding(a);
    const younger = new DrmExec();
    let runs = 0;
    let swallowed = 0;
    const done = younger.untilAllLocked(async (exec) => {
      runs++;
      try {
        await exec.lockObj(b);
        await exec.lockObj(a);
      } catch (err) {
        assert.ok(err instanceof WwDeadlockError);
        assert.equal(exec.isContended, true);
        swallowed++;
      }
    });
    await turn();
    assert.equal(swallowed, 1);
    assert.equal(b.resv.isLocked, false, 'the back-off unlocked b');
    older.fini();
    await done;
    assert.equal(runs, 2);
    assert.deepEqual(younger.objects, [a, b], 'the contended object comes first');
    younger.fini();
    assertQuiet([a, b]);
  });

  it('late: a body that keeps locking after a back-off gets a BugError', async () => {
    const [a, b, c] = bos(3) as [Bo, Bo, Bo];
    const older = await olderHolding(a);
    await using younger = new DrmExec();
    await assert.rejects(
      younger.untilAllLocked(async (exec) => {
        await exec.lockObj(b);
        await exec.lockObj(a).catch(() => undefined);
        await exec.lockObj(c);
      }),
      (err: unknown) => err instanceof BugError && /let the WwDeadlockError leave the body/.test(err.message),
    );
    assert.equal(c.resv.isLocked, false);
    older.fini();
    await younger[Symbol.asyncDispose]();
    assertQuiet([a, b, c]);
  });

  it('late: a re-run body that locks nothing gets a BugError instead of spinning for ever', async () => {
    const [a, b] = bos(2) as [Bo, Bo];
    const older = await olderHolding(a);
    await using younger = new DrmExec();
    let runs = 0;
    const body = async (exec: DrmExec): Promise<void> => {
      if (++runs > 1) return; // forgets its objects on the re-run
      await exec.lockObj(b);
      await exec.lockObj(a).catch(() => undefined);
    };
    await assert.rejects(younger.untilAllLocked(body), /returned without locking anything after backing off from bo0/);
    assert.equal(runs, 2);
    older.fini();
    await younger[Symbol.asyncDispose]();
    assertQuiet([a, b]);
  });

  for (const [algorithm, wrapLocks] of [
    ['wait-die', false],
    ['wound-wait', false],
    ['wait-die', true],
  ] as const satisfies readonly (readonly [WwAlgorithm, boolean])[]) {
    it(
      `${algorithm}${wrapLocks ? ', lock() wrapped (no fast path)' : ''}: ` +
        'many tasks locking overlapping sets in random orders all complete, ' +
        'each fence lands once',
      async () => {
        const seed = testSeed();
        const random = seededRandom(seed);
        const wwClass = new WwClass(`stress-${algorithm}`, algorithm);
        const log: Op[] = [];
        const objs = bos(8, log, wwClass);
        for (const bo of objs) bo.resv.wrapLocks = wrapLocks;
        const ctxs: WwAcquireCtx[] = [];
        const named = new Map<Bo, number>();
        const rounds = 10;
        for (let round = 0; round < rounds; round++) {
          const tasks = Array.from({ length: 6 }, () => {
            const set = shuffle(objs.slice(), random).slice(0, 2 + Math.floor(random() * 4));
            const pauses = set.map(() => Math.floor(random() * 3));
            for (const bo of set) named.set(bo, (named.get(bo) ?? 0) + 1);
            return async (): Promise<void> => {
              await using exec = new DrmExec({ wwClass });
              ctxs.push(exec.ticket);
              await exec.untilAllLocked(
                traced(log, async (exec) => {
                  for (let i = 0; i < set.length; i++) {
                    await exec.prepareObj(set[i]!, 1);
                    for (let p = 0; p < pauses[i]!; p++) await turn();
                  }
                }),
              );
              assert.equal(exec.objects.length, set.length, `seed ${seed}: every named object is locked once`);
              const job = mockFence();
              for (const obj of exec.objects) obj.resv.addFence(job, DmaResvUsage.Read);
              await turn();
            };
          });
          await Promise.all(tasks.map((t) => t()));
        }
        for (const ctx of ctxs) assertRetryProtocol(log, ctx, `seed ${seed}`);
        assert.ok(
          ctxs.every((c) => c.isFinished),
          `seed ${seed}: every ticket finished`,
        );
        assertQuiet(objs, `(seed ${seed})`);
        for (const bo of objs)
          assert.equal(
            bo.resv.numFences,
            named.get(bo) ?? 0,
            `seed ${seed}: ${bo.name} holds one fence per transaction that named it`,
          );
        assert.ok(
          count(log, 'deadlock') > 0,
          `seed ${seed}: ${rounds} rounds of 6 overlapping transactions should have backed off at least once`,
        );
      },
    );
  }

  it('deadlock injection drives the back-off path deterministically (own ww class)', async () => {
    const wwClass = new WwClass('injecting', 'wait-die');
    wwClass.deadlockInjection = true;
    const log: Op[] = [];
    const objs = bos(16, log, wwClass);
    await using exec = new DrmExec({ wwClass });
    assert.equal(exec.ticket.stamp, 1, 'the first ticket of a fresh class: injection countdown 1, interval 1');
    await exec.untilAllLocked(traced(log, async (exec) => exec.prepareArray(objs, 1)));
    // Countdown 1 -> back-off at the 3rd lock; then every 3.5x: 3 -> the 5th, 10 -> the 12th.
    assert.deepEqual(
      log.filter((e) => e.op === 'deadlock').map((e) => e.name),
      ['bo2', 'bo4', 'bo11'],
    );
    assert.equal(count(log, 'run'), 4);
    assertRetryProtocol(log, exec.ticket, 'injection');
    assert.deepEqual(
      exec.objects.map((o) => (o as Bo).name),
      ['bo11', ...objs.filter((o) => o.name !== 'bo11').map((o) => o.name)],
    );
    assert.ok(objs.every((bo) => bo.refs === 1));
    await exec[Symbol.asyncDispose]();
    assertQuiet(objs);
  });

  it('deadlock injection on reservationWwClass backs off and still locks everything', async () => {
    const log: Op[] = [];
    const objs = bos(20, log);
    reservationWwClass.deadlockInjection = true;
    try {
      await using exec = new DrmExec();
      await exec.untilAllLocked(traced(log, async (exec) => exec.prepareArray(objs, 1)));
      assert.equal(exec.objects.length, 20);
      assert.ok(count(log, 'deadlock') >= 1, 'the countdown (stamp & 15) expires within 20 locks');
      assertRetryProtocol(log, exec.ticket, 'injection on reservation_ww_class');
    } finally {
      reservationWwClass.deadlockInjection = false;
    }
    assertQuiet(objs);
  });
});
