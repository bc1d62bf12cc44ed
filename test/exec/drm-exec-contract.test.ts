/**
 * Executable specification of DrmExec's contract (src/exec/drm-exec.ts): body errors and dispose,
 * interruptible waits and abort signals, duplicate objects, prepareObj and unlockObj, and the
 * misuse checks (locking outside the body, pending locks, fini while a lock waits). The KUnit port
 * and the contention behaviours are in drm-exec.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { AlreadyLockedError, BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { DrmExec, type DrmExecObject } from '../../src/exec/drm-exec.js';
import { mockFence } from '../helpers/mock-fence.js';
import { assertQuiet, bos, olderHolding, turn, type Bo } from '../helpers/exec-objects.js';
import { asOtherTask } from '../helpers/other-task.js';

describe('drm_exec', () => {
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
    assert.ok(
      objs.every((bo) => bo.resv.lockingCtx === exec.ticket),
      'still held, as in C until drm_exec_fini()',
    );
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
    await assert.rejects(
      exec.untilAllLocked(async () => undefined),
      BugError,
    );
    assert.throws(() => exec.unlockObj(bo), BugError);
    assert.deepEqual(exec.objects, []);
    assert.equal(exec.isContended, false);
    assertQuiet([bo]);
  });

  describe('interruptible', () => {
    it('an abort rejects a waiting lock with signal.reason and leaves nothing queued', async () => {
      const [a, b] = bos(2) as [Bo, Bo];
      await asOtherTask(() => a.resv.lock()); // a plain holder, without a ticket
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
      await assert.rejects(
        exec.untilAllLocked(async (exec) => exec.lockObj(bo)),
        (err) => err === reason,
      );
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
      assert.throws(
        () => new DrmExec({ interruptible: false, signal: new AbortController().signal }),
        (err: unknown) => {
          return err instanceof InvalidArgumentError && /uninterruptible waits ignore signals/.test(err.message);
        },
      );
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
      await assert.rejects(
        exec.untilAllLocked(async (exec) => exec.prepareArray([a, b], 1)),
        { code: 'ENOMEM' },
      );
      assert.deepEqual(exec.objects, [a]);
      assert.equal(b.resv.isLocked, false);
      assert.equal(b.refs, 0);
      await exec[Symbol.asyncDispose]();
      assertQuiet([a, b]);
    });

    it('prepareObj with 0 fences is a BugError before anything is locked', async () => {
      const [bo] = bos(1) as [Bo];
      await using exec = new DrmExec();
      await assert.rejects(
        exec.untilAllLocked(async (exec) => exec.prepareObj(bo, 0)),
        BugError,
      );
      await using other = new DrmExec();
      await assert.rejects(
        other.untilAllLocked(async (exec) => exec.prepareObj(bo, -1)),
        InvalidArgumentError,
      );
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
      await assert.rejects(
        exec.untilAllLocked(async () => undefined),
        /already ran its loop/,
      );
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
      await asOtherTask(() => a.resv.lock());
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
