/**
 * Long-running fences (seed 001): the flag, `lrAddCallback`, containers inheriting the flag,
 * reservation objects refusing them, and the validator's rule that long-running work may depend
 * on ordinary fences but an ordinary signalling path may never wait for long-running work.
 *
 * The validator cases run in record mode (set in beforeEach, the previous state restored in
 * afterEach), so the file passes plainly and under `DMABUF_LOCKDEP=1`; throw-mode cases switch
 * to it themselves. Waits on fences that never signal poll (`timeout: 0`), so nothing hangs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, FenceTimeoutError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { Mutex } from '../../src/locking/mutex.js';
import {
  beginSignalling,
  disableLockdep,
  enableLockdep,
  endSignalling,
  lockdepReports,
  lrBeginSignalling,
  lrEndSignalling,
  lrSignallingSection,
  mightReclaim,
  reservationWwClass,
  signallingSection,
} from '../../src/node.js';
import { dmaFenceLrMap, dmaFenceMap } from '../../src/base/lockdep-hooks.js';
import { recordMode, seen, waitUnder } from '../helpers/lockdep-mode.js';
import { mockFence, mockOps } from '../helpers/mock-fence.js';

const MAP = dmaFenceMap.name;
const LR_MAP = dmaFenceLrMap.name;
const RESV = reservationWwClass.lockClass.name;

function lrFence(context = fenceContextAlloc(), seqno = 1): DmaFence {
  return new DmaFence(mockOps, context, seqno, { longRunning: true });
}

describe('long-running fences', () => {
  recordMode();

  it('sanity: the flag is set only when asked for, and the fence signals and waits as usual', async () => {
    const lr = lrFence();
    assert.equal(lr.isLongRunning, true);
    assert.equal(mockFence().isLongRunning, false);
    assert.equal(new DmaFence(mockOps, fenceContextAlloc(), 1, { longRunning: false }).isLongRunning, false);
    const waiting = lr.wait(); // outside any section and holding nothing: legal
    assert.equal(lr.signal(), true);
    assert.equal(await waiting, true);
    assert.equal(lr.isLongRunning, true, 'late: still long-running after signal');
    assert.deepEqual(seen(), []);
  });

  it('lrAddCallback works on any fence without a report; late: false after signal', () => {
    for (const fence of [lrFence(), mockFence()]) {
      let calls = 0;
      assert.equal(
        fence.lrAddCallback(() => calls++),
        true,
      );
      assert.equal(fence.pendingCallbacks, 1);
      fence.signal();
      assert.equal(calls, 1);
      assert.equal(
        fence.lrAddCallback(() => calls++),
        false,
      );
      assert.equal(calls, 1);
    }
    assert.deepEqual(seen(), []);
  });

  it('plain addCallback on a long-running fence is reported, naming the fence, and still adds the callback', () => {
    const lr = lrFence();
    let calls = 0;
    assert.equal(
      lr.addCallback(() => calls++),
      true,
    );
    assert.deepEqual(seen(), [`long-running-callback ${LR_MAP}`]);
    const { message } = lockdepReports()[0]!;
    assert.ok(message.includes(lr.describe()), message);
    assert.match(message, /lrAddCallback/);
    assert.match(message, /long-running\.test\.ts:\d+/, 'the site where it was added');
    assert.equal(lr.pendingCallbacks, 1);
    lr.signal();
    assert.equal(calls, 1);
  });

  it('the plain-callback report comes once per fence; plain callbacks on ordinary fences are fine', () => {
    const lr = lrFence();
    lr.addCallback(() => {});
    lr.addCallback(() => {});
    assert.equal(lockdepReports().length, 1);
    lrFence().addCallback(() => {});
    assert.equal(lockdepReports().length, 2, 'another fence, another report');
    mockFence().addCallback(() => {});
    assert.equal(lockdepReports().length, 2);
  });

  it('throw mode: plain addCallback throws a BugError and adds nothing; the fence stays usable', () => {
    enableLockdep({ mode: 'throw' });
    const lr = lrFence();
    assert.throws(
      () => lr.addCallback(() => {}),
      (err: unknown) => err instanceof BugError && err.message.includes(lr.describe()),
    );
    assert.equal(lr.pendingCallbacks, 0);
    let calls = 0;
    assert.equal(
      lr.lrAddCallback(() => calls++),
      true,
    );
    lr.signal();
    assert.equal(calls, 1);
  });

  it('with the validator off, plain addCallback on a long-running fence just adds the callback', () => {
    disableLockdep();
    const lr = lrFence();
    let calls = 0;
    assert.equal(
      lr.addCallback(() => calls++),
      true,
    );
    lr.signal();
    assert.equal(calls, 1);
    assert.deepEqual(seen(), []);
  });
});

describe('long-running containers', () => {
  recordMode();

  it('an array with a long-running member is long-running; without one it is not', () => {
    const plain = new DmaFenceArray([mockFence(), mockFence()], fenceContextAlloc(), 1);
    const mixed = new DmaFenceArray([mockFence(), lrFence()], fenceContextAlloc(), 1);
    const any = new DmaFenceArray([lrFence(), mockFence()], fenceContextAlloc(), 1, { signalOnAny: true });
    assert.equal(plain.isLongRunning, false);
    assert.equal(mixed.isLongRunning, true);
    assert.equal(any.isLongRunning, true);
  });

  it('a chain is long-running when its payload or any earlier point is', () => {
    const ordinary = new DmaFenceChain(null, mockFence(), 1);
    const lrPoint = new DmaFenceChain(ordinary, lrFence(), 2);
    const after = new DmaFenceChain(lrPoint, mockFence(), 3);
    const fresh = new DmaFenceChain(new DmaFenceChain(null, mockFence(), 1), mockFence(), 2);
    assert.equal(ordinary.isLongRunning, false);
    assert.equal(lrPoint.isLongRunning, true);
    assert.equal(after.isLongRunning, true, 'inherits from its predecessor');
    assert.equal(fresh.isLongRunning, false);
  });

  it('plain addCallback on a long-running array is reported; the array listening to its members is not', () => {
    const member = lrFence();
    const array = new DmaFenceArray([mockFence(), member], fenceContextAlloc(), 1, { signalOnAny: true });
    let calls = 0;
    assert.equal(
      array.lrAddCallback(() => calls++),
      true,
    ); // enables signaling: callbacks on members
    assert.deepEqual(seen(), [], 'the array uses lrAddCallback on its members');
    array.addCallback(() => calls++);
    assert.deepEqual(seen(), [`long-running-callback ${LR_MAP}`]);
    member.signal();
    assert.equal(array.signaledFlag, true);
    assert.equal(calls, 2);
  });

  it('a chain waiting on its long-running payload reports nothing; late: signals with it', () => {
    const payload = lrFence();
    const chain = new DmaFenceChain(null, payload, 1);
    let calls = 0;
    assert.equal(
      chain.lrAddCallback(() => calls++),
      true,
    );
    assert.deepEqual(seen(), []);
    payload.signal();
    assert.equal(chain.signaledFlag, true);
    assert.equal(calls, 1);
  });
});

describe('reservation objects refuse long-running fences', () => {
  recordMode();

  it('addFence: a BugError naming the fence and the object; the object stays usable', async () => {
    const resv = new DmaResv({ name: 'lr.bo' });
    const lr = lrFence();
    await resv.lock();
    resv.reserveFences(1);
    assert.throws(
      () => resv.addFence(lr, DmaResvUsage.Bookkeep),
      (err: unknown) =>
        err instanceof BugError &&
        err.message.includes(lr.describe()) &&
        err.message.includes('lr.bo') &&
        /long-running/.test(err.message),
    );
    assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), []);
    const ordinary = mockFence();
    resv.addFence(ordinary, DmaResvUsage.Write); // the reserved slot is still free
    resv.unlock();
    assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), [ordinary]);
    ordinary.signal();
    assert.equal(await resv.wait({ timeout: 0 }), true);
  });

  it('replaceFences: a BugError naming the fence; the old fences stay', async () => {
    const resv = new DmaResv({ name: 'lr.bo2' });
    const old = mockFence();
    await resv.lock();
    resv.reserveFences(1);
    resv.addFence(old, DmaResvUsage.Bookkeep);
    const lr = lrFence();
    assert.throws(
      () => resv.replaceFences(old.context, lr, DmaResvUsage.Bookkeep),
      (err: unknown) =>
        err instanceof BugError && err.message.includes(lr.describe()) && /replaceFences/.test(err.message),
    );
    assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), [old]);
    const next = mockFence(old.context, 2);
    resv.replaceFences(old.context, next, DmaResvUsage.Bookkeep);
    resv.unlock();
    assert.deepEqual(resv.getFences(DmaResvUsage.Bookkeep), [next]);
  });

  it('refused with the validator off too: it is a contract, not a report', async () => {
    disableLockdep();
    const resv = new DmaResv({ name: 'lr.bo3' });
    await resv.lock();
    resv.reserveFences(1);
    assert.throws(() => resv.addFence(lrFence(), DmaResvUsage.Read), BugError);
    resv.unlock();
  });
});

describe('long-running fences under the validator: who may wait for whom', () => {
  recordMode();

  it('waiting on a long-running fence inside an ordinary signalling section is reported', async () => {
    const lr = lrFence();
    const cookie = beginSignalling();
    assert.equal(await lr.wait({ timeout: 0 }), false);
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${LR_MAP}`]);
    assert.match(lockdepReports()[0]!.message, /reverse chain is already recorded: dma_fence_lr_map -> /);
  });

  it('the same from a fence callback: an ordinary signal() path waiting on long-running work', async () => {
    const lr = lrFence();
    const trigger = mockFence();
    let waited: Promise<boolean> | undefined;
    trigger.addCallback(() => {
      waited = lr.wait({ timeout: 0 });
    });
    trigger.signal();
    assert.equal(await waited, false);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${LR_MAP}`]);
  });

  it('waitAny with a long-running member inside an ordinary section is reported', async () => {
    const cookie = beginSignalling();
    await assert.rejects(DmaFence.waitAny([mockFence(), lrFence()], { timeout: 0 }), FenceTimeoutError);
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${LR_MAP}`]);
  });

  it('throw mode: the wait rejects with a BugError, and the fence stays usable', async () => {
    enableLockdep({ mode: 'throw' });
    const lr = lrFence();
    const cookie = beginSignalling();
    await assert.rejects(
      lr.wait({ timeout: 0 }),
      (err: unknown) => err instanceof BugError && err.message.includes(LR_MAP),
    );
    endSignalling(cookie);
    assert.equal(lr.signalingEnabled, false);
    const waiting = lr.wait();
    lr.signal();
    assert.equal(await waiting, true);
  });

  it('waiting on a long-running fence under a reservation lock is reported', async () => {
    const resv = new DmaResv({ name: 'lr.wait.bo' });
    assert.equal(await waitUnder(resv, lrFence()), false);
    assert.deepEqual(seen(), [`circular-dependency ${RESV} -> ${LR_MAP}`]);
  });

  it('inside a long-running section, waiting on ordinary fences, reservation locks and reclaim are legal', async () => {
    const resv = new DmaResv({ name: 'lr.section.bo' });
    const marker = new Mutex('lr.marker');
    const cookie = lrBeginSignalling();
    const nested = lrBeginSignalling();
    assert.equal(await mockFence().wait({ timeout: 0 }), false);
    await resv.lock();
    mightReclaim();
    assert.equal(await mockFence().wait({ timeout: 0 }), false);
    resv.unlock();
    await marker.lock(); // still inside the section after those awaits: records lr map -> marker
    marker.unlock();
    lrEndSignalling(nested);
    lrEndSignalling(cookie);
    assert.deepEqual(seen(), []);
    // The control: the section was live. Waiting for long-running work under marker now closes a cycle.
    await waitUnder(marker, lrFence());
    assert.deepEqual(seen(), [`circular-dependency lr.marker -> ${LR_MAP}`]);
  });

  it('a long-running fence callback may wait on ordinary fences and take reservation locks', async () => {
    const lr = lrFence();
    const resv = new DmaResv({ name: 'lr.cb.bo' });
    let waited: Promise<boolean> | undefined;
    let locked: Promise<void> | undefined;
    lr.lrAddCallback(() => {
      waited = mockFence().wait({ timeout: 0 });
      locked = resv.lock();
    });
    lr.signal();
    assert.equal(await waited, false);
    await locked;
    resv.unlock();
    assert.deepEqual(seen(), []);
  });

  it('scoped sections: an ordinary one reports a long-running wait after await, a long-running one not', async () => {
    const resv = new DmaResv({ name: 'lr.scoped.bo' });
    await lrSignallingSection(async () => {
      await Promise.resolve();
      assert.equal(await mockFence().wait({ timeout: 0 }), false);
      await resv.lock();
      resv.unlock();
    });
    assert.deepEqual(seen(), []);
    const f = mockFence();
    queueMicrotask(() => f.signal());
    await signallingSection(async () => {
      await f.wait(); // a wait that really waits, then the offending one
      assert.equal(await lrFence().wait({ timeout: 0 }), false);
    });
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${LR_MAP}`]);
  });

  it('long-running work may wait for long-running fences too', async () => {
    const cookie = lrBeginSignalling();
    assert.equal(await lrFence().wait({ timeout: 0 }), false);
    lrEndSignalling(cookie);
    assert.deepEqual(seen(), []);
  });
});
