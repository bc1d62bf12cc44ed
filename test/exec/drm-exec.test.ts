import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { AlreadyLockedError, BugError, DmaBufError, InvalidArgumentError, WwDeadlockError } from '../../src/base/errors.js';
import { WwClass, type WwAcquireCtx, type WwAlgorithm, type WwMutex } from '../../src/locking/ww-mutex.js';
import { DmaResv, DmaResvUsage, reservationWwClass } from '../../src/resv/dma-resv.js';
import { DrmExec, type DrmExecObject } from '../../src/exec/drm-exec.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

/** One reservation operation, recorded with the context that did it. */
interface Op {
  readonly op: 'lock' | 'lockSlow' | 'unlock' | 'run' | 'deadlock';
  readonly name: string;
  readonly ctx: WwAcquireCtx | null;
}

/** A reservation object that records its lock calls, and can be told to fail reservations. */
class SpyResv extends DmaResv {
  failReserve = false;
  readonly #log: Op[];

  constructor(name: string, log: Op[], wwClass?: WwClass) {
    super(wwClass === undefined ? { name } : { name, wwClass });
    this.#log = log;
  }

  override lock(ctx?: WwAcquireCtx | null, options?: { signal?: AbortSignal }): Promise<void> {
    this.#log.push({ op: 'lock', name: this.mutex.name, ctx: ctx ?? null });
    return super.lock(ctx, options);
  }

  override lockSlow(ctx: WwAcquireCtx, options?: { signal?: AbortSignal }): Promise<void> {
    this.#log.push({ op: 'lockSlow', name: this.mutex.name, ctx });
    return super.lockSlow(ctx, options);
  }

  override unlock(): void {
    this.#log.push({ op: 'unlock', name: this.mutex.name, ctx: this.lockingCtx });
    super.unlock();
  }

  override reserveFences(n: number): void {
    if (this.failReserve) throw new DmaBufError('ENOMEM', `${this.mutex.name}: no memory for ${n} slots (injected)`);
    super.reserveFences(n);
  }
}

/** A buffer object for the exec: a reservation and counted references (a GEM object's kref). */
class Bo implements DrmExecObject {
  readonly resv: SpyResv;
  gets = 0;
  puts = 0;
  constructor(readonly name: string, log: Op[] = [], wwClass?: WwClass) {
    this.resv = new SpyResv(name, log, wwClass);
  }
  get(): void {
    this.gets++;
  }
  put(): void {
    this.puts++;
    assert.ok(this.puts <= this.gets, `${this.name}: put() without a matching get()`);
  }
  get refs(): number {
    return this.gets - this.puts;
  }
}

function bos(count: number, log: Op[] = [], wwClass?: WwClass): Bo[] {
  return Array.from({ length: count }, (_, i) => new Bo(`bo${i}`, log, wwClass));
}

/** Everything released: no lock held, no waiter queued, every reference dropped. */
function assertQuiet(objs: readonly Bo[], message = ''): void {
  for (const bo of objs) {
    assert.equal(bo.resv.isLocked, false, `${bo.name} still locked ${message}`);
    assert.equal(bo.resv.mutex.waiters, 0, `${bo.name} still has waiters ${message}`);
    assert.equal(bo.refs, 0, `${bo.name} references unbalanced: ${bo.gets} gets, ${bo.puts} puts ${message}`);
  }
}

/** A macrotask turn: lets other tasks run without sleeping on real time. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A promise with its resolver, for barriers between tasks. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  return { promise: new Promise<void>((resolve) => (open = resolve)), open };
}

/**
 * Checks one transaction's log: each re-run starts by slow-locking the object of the previous
 * back-off and never locks it again in that run; runs = 1 + back-offs.
 */
function assertRetryProtocol(log: readonly Op[], ctx: WwAcquireCtx, message: string): { runs: number; deadlocks: number } {
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
      assert.equal(e.name, expectSlow, `${message}: lockSlow(${e.name}) must be the first lock of a re-run after backing off from it`);
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
      if (err instanceof WwDeadlockError) log.push({ op: 'deadlock', name: (err.contended as WwMutex).name, ctx: exec.ticket });
      throw err;
    }
  };
}

const count = (log: readonly Op[], op: Op['op']): number => log.filter((e) => e.op === op).length;

/** An exec of an older ticket that holds `objs`. */
async function olderHolding(...objs: Bo[]): Promise<DrmExec> {
  const exec = new DrmExec();
  await exec.untilAllLocked(async (exec) => exec.prepareArray(objs, 1));
  return exec;
}

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
      assert.ok(objs.every((bo) => bo.refs === 1), 'one reference per tracked object');
    }
    assertQuiet(objs);
    assert.deepEqual(log.filter((e) => e.op === 'unlock').map((e) => e.name), ['bo2', 'bo1', 'bo0']);
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

  for (const algorithm of ['wait-die', 'wound-wait'] as const satisfies readonly WwAlgorithm[]) {
    it(`${algorithm}: many tasks locking overlapping sets in random orders all complete, each fence lands once`, async () => {
      const seed = testSeed();
      const random = seededRandom(seed);
      const wwClass = new WwClass(`stress-${algorithm}`, algorithm);
      const log: Op[] = [];
      const objs = bos(8, log, wwClass);
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
      assert.ok(ctxs.every((c) => c.isFinished), `seed ${seed}: every ticket finished`);
      assertQuiet(objs, `(seed ${seed})`);
      for (const bo of objs) assert.equal(bo.resv.numFences, named.get(bo) ?? 0, `seed ${seed}: ${bo.name} holds one fence per transaction that named it`);
      assert.ok(count(log, 'deadlock') > 0, `seed ${seed}: ${rounds} rounds of 6 overlapping transactions should have backed off at least once`);
    });
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
    assert.deepEqual(log.filter((e) => e.op === 'deadlock').map((e) => e.name), ['bo2', 'bo4', 'bo11']);
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

  it('a body error propagates, the locks stay held, and dispose releases them', async () => {
    const objs = bos(2);
    const boom = new Error('boom');
    const exec = new DrmExec();
    await assert.rejects(
      exec.untilAllLocked(async (exec) => {
        await exec.prepareArray(objs, 1);
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.ok(objs.every((bo) => bo.resv.lockingCtx === exec.ticket), 'still held, as in C until drm_exec_fini()');
    assert.deepEqual(exec.objects, objs);
    assert.equal(exec.ticket.isDone, false);
    await assert.rejects(exec.lockObj(objs[0]!), /after the loop ended \(failed\)/);
    await exec[Symbol.asyncDispose]();
    assertQuiet(objs);
    assert.equal(exec.ticket.isFinished, true);
  });

  it('late: after dispose, every operation but the getters is a BugError and dispose is idempotent', async () => {
    const [bo] = bos(1) as [Bo];
    const exec = new DrmExec();
    await exec.untilAllLocked(async (exec) => exec.lockObj(bo));
    await exec[Symbol.asyncDispose]();
    await exec[Symbol.asyncDispose]();
    exec.fini();
    await assert.rejects(exec.lockObj(bo), BugError);
    await assert.rejects(exec.prepareObj(bo, 1), BugError);
    await assert.rejects(exec.untilAllLocked(async () => undefined), BugError);
    assert.throws(() => exec.unlockObj(bo), BugError);
    assert.deepEqual(exec.objects, []);
    assert.equal(exec.isContended, false);
    assertQuiet([bo]);
  });

  describe('interruptible', () => {
    it('an abort rejects a waiting lock with signal.reason and leaves nothing queued', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      await a.resv.lock(); // a plain holder, without a ticket
      const controller = new AbortController();
      const reason = new Error('user gave up');
      await using exec = new DrmExec({ signal: controller.signal });
      const done = exec.untilAllLocked(async (exec) => {
        await exec.lockObj(b);
        await exec.lockObj(a);
      });
      await turn();
      assert.equal(a.resv.mutex.waiters, 1);
      controller.abort(reason);
      await assert.rejects(done, (err) => err === reason);
      assert.equal(a.resv.mutex.waiters, 0);
      assert.equal(b.resv.lockingCtx, exec.ticket, 'b stays held until dispose');
      await exec[Symbol.asyncDispose]();
      a.resv.unlock();
      assertQuiet([a, b]);
    });

    it('late: a signal aborted before the lock rejects it even when the object is free', async () => {
      const [bo] = bos(1) as [Bo];
      const reason = new Error('too late');
      await using exec = new DrmExec({ signal: AbortSignal.abort(reason) });
      await assert.rejects(exec.untilAllLocked(async (exec) => exec.lockObj(bo)), (err) => err === reason);
      assert.equal(bo.resv.isLocked, false);
    });

    it('an abort during the slow lock of the contended object drops its reference and ends the loop', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      const older = await olderHolding(a);
      const controller = new AbortController();
      const younger = new DrmExec({ signal: controller.signal });
      let runs = 0;
      const done = younger.untilAllLocked(async (exec) => {
        runs++;
        await exec.lockObj(b);
        await exec.lockObj(a); // backs off: a is held by an older ticket
      });
      await turn();
      assert.equal(runs, 2, 're-run, waiting in the slow lock of a');
      assert.equal(a.refs, 2, 'one reference from the older exec, one for the contended object');
      assert.equal(b.resv.isLocked, false);
      assert.equal(a.resv.mutex.waiters, 1);
      controller.abort(new Error('stop'));
      await assert.rejects(done, /stop/);
      assert.equal(younger.isContended, false);
      assert.equal(a.resv.mutex.waiters, 0);
      older.fini();
      younger.fini();
      assertQuiet([a, b]);
    });

    it('interruptible: false with a signal is an InvalidArgumentError at construction', () => {
      assert.throws(() => new DrmExec({ interruptible: false, signal: new AbortController().signal }), (err: unknown) => {
        return err instanceof InvalidArgumentError && /uninterruptible lock waits ignore signals/.test(err.message);
      });
      new DrmExec({ interruptible: false }).fini();
    });
  });

  describe('duplicates', () => {
    it('without ignoreDuplicates, locking an object twice rejects with AlreadyLockedError', async () => {
      const [bo] = bos(1) as [Bo];
      await using exec = new DrmExec();
      await assert.rejects(
        exec.untilAllLocked(async (exec) => {
          await exec.lockObj(bo);
          await exec.lockObj(bo);
        }),
        AlreadyLockedError,
      );
      assert.deepEqual(exec.objects, [bo]);
      assert.equal(bo.refs, 1);
      await exec[Symbol.asyncDispose]();
      assertQuiet([bo]);
    });

    it('with ignoreDuplicates, preparing an object twice tracks it once and reserves again', async () => {
      const [bo] = bos(1) as [Bo];
      await using exec = new DrmExec({ ignoreDuplicates: true });
      await exec.untilAllLocked(async (exec) => {
        await exec.prepareObj(bo, 1);
        bo.resv.addFence(mockFence(), DmaResvUsage.Read);
        await exec.prepareObj(bo, 4);
      });
      assert.deepEqual(exec.objects, [bo]);
      assert.equal(bo.refs, 1);
      assert.ok(bo.resv.maxFences - bo.resv.numFences >= 4, 'the duplicate prepare reserved 4 more slots');
    });

    it('two objects sharing one reservation: the second is a duplicate', async () => {
      const [bo] = bos(1) as [Bo];
      const sibling: DrmExecObject = { resv: bo.resv, get: () => bo.get(), put: () => bo.put() };
      await using exec = new DrmExec({ ignoreDuplicates: true });
      await exec.untilAllLocked(async (exec) => exec.prepareArray([bo, sibling], 1));
      assert.deepEqual(exec.objects, [bo]);
    });
  });

  describe('prepareObj and unlockObj', () => {
    it('a failing reservation unlocks that object again and the error leaves the loop', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      b.resv.failReserve = true;
      await using exec = new DrmExec();
      await assert.rejects(exec.untilAllLocked(async (exec) => exec.prepareArray([a, b], 1)), { code: 'ENOMEM' });
      assert.deepEqual(exec.objects, [a]);
      assert.equal(b.resv.isLocked, false);
      assert.equal(b.refs, 0);
      await exec[Symbol.asyncDispose]();
      assertQuiet([a, b]);
    });

    it('prepareObj with 0 fences is a BugError before anything is locked', async () => {
      const [bo] = bos(1) as [Bo];
      await using exec = new DrmExec();
      await assert.rejects(exec.untilAllLocked(async (exec) => exec.prepareObj(bo, 0)), BugError);
      await using other = new DrmExec();
      await assert.rejects(other.untilAllLocked(async (exec) => exec.prepareObj(bo, -1)), InvalidArgumentError);
      assert.equal(bo.resv.isLocked, false);
    });

    it('unlockObj removes one object, keeps the others in order, and drops its reference', async () => {
      const objs = bos(4);
      await using exec = new DrmExec();
      await exec.untilAllLocked(async (exec) => exec.prepareArray(objs, 1));
      exec.unlockObj(objs[1]!);
      assert.deepEqual(exec.objects, [objs[0], objs[2], objs[3]]);
      assert.equal(objs[1]!.resv.isLocked, false);
      assert.equal(objs[1]!.refs, 0);
      assert.throws(() => exec.unlockObj(objs[1]!), /not locked by this exec/, 'late: a second unlock is a BugError');
      (exec.objects as DrmExecObject[]).pop();
      assert.equal(exec.objects.length, 3, 'objects is a copy');
    });

    it('unlocking the slow-locked object before naming it makes the later lock real', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      const older = await olderHolding(a);
      const younger = new DrmExec();
      let runs = 0;
      const done = younger.untilAllLocked(async (exec) => {
        runs++;
        await exec.lockObj(b); // on the re-run: slow-locks a first
        if (runs === 2) {
          exec.unlockObj(a);
          assert.equal(a.resv.isLocked, false);
        }
        await exec.lockObj(a);
      });
      await turn();
      older.fini();
      await done;
      assert.equal(a.resv.lockingCtx, younger.ticket, 'a locked again for real');
      assert.deepEqual(younger.objects, [b, a]);
      younger.fini();
      assertQuiet([a, b]);
    });
  });

  describe('contract checks', () => {
    it('locking outside the body, after the loop, or twice at once is a BugError', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      await using exec = new DrmExec();
      await assert.rejects(exec.lockObj(a), /outside untilAllLocked/);
      await exec.untilAllLocked(async (exec) => {
        await a.resv.lock(); // a plain holder makes the next lock wait
        const waiting = exec.lockObj(a);
        await assert.rejects(exec.lockObj(b), /another lock of this exec is still pending/);
        a.resv.unlock();
        await waiting;
      });
      await assert.rejects(exec.lockObj(b), /after the loop ended \(locked\)/);
      await assert.rejects(exec.untilAllLocked(async () => undefined), /already ran its loop/);
      assert.equal(b.resv.isLocked, false);
    });

    it('a body that returns with a lock still pending gets a BugError', async () => {
      const [bo] = bos(1) as [Bo];
      await bo.resv.lock();
      await using exec = new DrmExec();
      const done = exec.untilAllLocked(async (exec) => {
        void exec.lockObj(bo).catch(() => undefined); // forgot the await
      });
      await turn();
      bo.resv.unlock();
      await assert.rejects(done, /returned while a lock of bo0 was still pending/);
      await exec[Symbol.asyncDispose]();
      assertQuiet([bo]);
    });

    it('fini while a lock waits rejects it with ECANCELED and leaves nothing queued or held', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      await a.resv.lock();
      const exec = new DrmExec({ interruptible: false });
      const done = exec.untilAllLocked(async (exec) => {
        await exec.lockObj(b);
        await exec.lockObj(a);
      });
      await turn();
      assert.equal(a.resv.mutex.waiters, 1);
      await exec[Symbol.asyncDispose]();
      await assert.rejects(done, { code: 'ECANCELED' });
      assert.equal(a.resv.mutex.waiters, 0);
      assert.equal(exec.ticket.isFinished, true);
      a.resv.unlock();
      assertQuiet([a, b]);
    });

    it('fini while the body works between locks makes the loop reject with ECANCELED', async () => {
      const objs = bos(2);
      const exec = new DrmExec();
      const done = exec.untilAllLocked(async (exec) => {
        await exec.lockObj(objs[0]!);
        await turn();
        await turn();
      });
      await turn();
      exec.fini();
      await assert.rejects(done, { code: 'ECANCELED' });
      assertQuiet(objs);
      assert.equal(exec.ticket.isDone, false);
      assert.equal(exec.ticket.isFinished, true);
    });

    it('late: fini after the lock was handed over but before it settled releases it too', async () => {
      const [a] = bos(1) as [Bo];
      await a.resv.lock();
      const exec = new DrmExec();
      const done = exec.untilAllLocked(async (exec) => exec.lockObj(a));
      await turn();
      a.resv.unlock(); // hands the lock to the exec's ticket; its promise settles on a microtask
      assert.equal(a.resv.lockingCtx, exec.ticket);
      exec.fini();
      await assert.rejects(done, { code: 'ECANCELED' });
      assertQuiet([a]);
      assert.equal(exec.ticket.isFinished, true);
    });
  });
});
