/**
 * Issue 10's sweep over the GPU scheduler: every case is a defect found at its public entry points,
 * written before the fix. Each call must fail with a typed error before it changes anything (no
 * waiter, lock, slot or state left behind) and the object must stay usable afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualClock } from '../../src/base/clock.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { DrmGpuScheduler, DrmGpuSchedStat } from '../../src/sched/sched-main.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { ManualExecutor } from '../../src/sched/sched-executor.js';
import { DrmSchedFence, toDrmSchedFence } from '../../src/sched/sched-fence.js';
import { DrmSchedJob } from '../../src/sched/sched-job.js';
import {
  DrmSchedPriority,
  DrmSchedRq,
  DrmSchedRqNode,
  fairPolicy,
  schedPriorityName,
} from '../../src/sched/sched-rq.js';
import { submitJob } from '../../src/sched/sched-submit.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { Bo } from '../helpers/exec-objects.js';
import { TestRing, errorCode, pushJob, withVirtualClock } from '../helpers/sched-ring.js';
import { mockFence } from '../helpers/mock-fence.js';
import { invalid, notASignal } from '../helpers/invalid-argument.js';

const ops = { runJob: () => null, timedOutJob: () => DrmGpuSchedStat.Reset, freeJob: () => {} };

let clock: VirtualClock;
withVirtualClock((c) => {
  clock = c;
});

describe('scheduler sweep (issue 10)', () => {
  it('sanity: a flush with a real signal and known options resolves', async () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    pushJob(entity);
    const flushed = entity.flush({ signal: new AbortController().signal, timeout: 100 });
    ring.drain();
    assert.equal(await flushed, true);
    entity.fini();
    ring.sched.fini();
  });

  it('flush({ signal: controller }) rejects before it registers a waiter; the run work stays clean', async () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    await invalid(() => entity.flush({ signal: notASignal }), 'options.signal');
    // A leaked waiter ran at the next pop and threw from removeEventListener inside the run work.
    assert.doesNotThrow(() => ring.drain());
    assert.deepEqual(ring.calls('run'), [job]);
    assert.equal(await entity.flush(), true);
    entity.fini();
    ring.sched.fini();
  });

  it('unknown option names are refused: scheduler, entity, job, flush, submitJob', async () => {
    await invalid(() => new DrmGpuScheduler({ name: 'r', ops, timout: 5 } as never), 'options.timout');
    const ring = new TestRing();
    await invalid(() => new DrmSchedEntity({ schedulers: [ring.sched], prio: 1 } as never), 'options.prio');
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    await invalid(() => new DrmSchedJob(entity, { credit: 2 } as never), 'options.credit');
    await invalid(() => entity.flush({ kil: true } as never), 'options.kil');
    assert.equal(entity.stopped, false, 'the misspelt kill did not kill');
    const job = new DrmSchedJob(entity);
    await invalid(() => submitJob(job, [], { sigal: undefined } as never), 'options.sigal');
    assert.equal(job.state, 'initialized');
    pushJob(entity);
    ring.drain();
    entity.fini();
    ring.sched.fini();
  });

  it("start('EBOGUS') is refused and the scheduler stays stopped until a good start", () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    ring.drain();
    ring.sched.stop();
    assert.throws(() => ring.sched.start('EBOGUS' as never), InvalidArgumentError);
    assert.equal(ring.sched.stopped, true, 'nothing restarted');
    assert.equal(job.finished.signaledFlag, false, 'the detached job was not completed with a bogus code');
    ring.sched.start('ENODEV');
    ring.drain();
    assert.equal(errorCode(job.finished), 'ENODEV');
    entity.fini();
    ring.sched.fini();
  });

  it('a NaN deadline is refused and the earlier one stays', () => {
    const ring = new TestRing();
    const pair = new DrmSchedFence(ring.sched, 'ring', 1, 1);
    pair.setDeadline(16);
    assert.throws(() => pair.setDeadline(Number.NaN), InvalidArgumentError);
    assert.equal(pair.deadline, 16);
    assert.throws(() => pair.finished.setDeadline(Number.NaN), InvalidArgumentError);
    pair.setDeadline(8);
    assert.equal(pair.deadline, 8);
    ring.sched.fini();
  });

  it('resumeTimeout(NaN) is refused; the watchdog still fires', () => {
    const ring = new TestRing({ clock, timeout: 100 });
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    ring.drain();
    const left = ring.sched.suspendTimeout();
    assert.throws(() => ring.sched.resumeTimeout(Number.NaN), InvalidArgumentError);
    ring.sched.resumeTimeout(left);
    clock.advance(100);
    ring.drain();
    assert.deepEqual(ring.calls('timedOut'), [job]);
    entity.fini();
    ring.sched.fini();
  });

  describe('submitJob checks everything before it takes a lock', () => {
    it('a job that is not a DrmSchedJob: InvalidArgumentError, the buffer untouched', async () => {
      const bo = new Bo('dst');
      await invalid(() => submitJob({} as never, [{ obj: bo, write: true }]), 'job');
      assert.equal(bo.resv.isLocked, false);
      await bo.resv.lock();
      assert.equal([...bo.resv.fences(DmaResvUsage.Bookkeep)].length, 0, 'no fence was added');
      bo.resv.unlock();
    });

    it('a job already pushed: BugError before locking, its dependencies unchanged', async () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const bo = new Bo('dst');
      const pushed = pushJob(entity);
      const other = mockFence();
      await bo.resv.lock();
      bo.resv.reserveFences(1);
      bo.resv.addFence(other, DmaResvUsage.Write);
      bo.resv.unlock();
      await assert.rejects(submitJob(pushed, [{ obj: bo, write: true }]), BugError);
      assert.deepEqual(pushed.dependencies, []);
      assert.equal(bo.resv.isLocked, false);
      other.signal();
      ring.drain();
      entity.fini();
      ring.sched.fini();
    });

    it('a signal that is not an AbortSignal: rejected before locking, the job still submittable', async () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const bo = new Bo('dst');
      const job = new DrmSchedJob(entity);
      await invalid(() => submitJob(job, [{ obj: bo, write: true }], { signal: notASignal }), 'options.signal');
      assert.equal(job.state, 'initialized');
      await submitJob(job, [{ obj: bo, write: true }]);
      assert.equal(job.state, 'queued');
      ring.drain();
      entity.fini();
      ring.sched.fini();
    });
  });

  it('ManualExecutor.schedule(5) is refused; the executor still runs what it has', () => {
    const executor = new ManualExecutor();
    let ran = 0;
    executor.schedule(() => ran++);
    assert.throws(() => executor.schedule(5 as never), InvalidArgumentError);
    assert.throws(() => executor.drain(Number.NaN), InvalidArgumentError);
    assert.equal(executor.pending, 1);
    assert.equal(executor.drain(), 1);
    assert.equal(ran, 1);
  });

  it('a priority of 9 is refused (it made a NaN vruntime under FAIR)', () => {
    const rq = new DrmSchedRq(fairPolicy, { avgJobTime: 0 });
    assert.throws(() => new DrmSchedRqNode({}, 9 as never), InvalidArgumentError);
    const node = new DrmSchedRqNode({}, DrmSchedPriority.Normal);
    assert.throws(() => {
      node.priority = 9 as never;
    }, InvalidArgumentError);
    assert.equal(node.priority, DrmSchedPriority.Normal);
    rq.add(node, 0, 1);
    node.accountJob(1);
    rq.popped(node, true, 0, 2);
    assert.ok(Number.isFinite(node.vruntime), `vruntime ${node.vruntime}`);
  });

  describe('GPU time is never negative', () => {
    it('accountJob refuses negative and non-finite durations', () => {
      const node = new DrmSchedRqNode({}, DrmSchedPriority.Normal);
      assert.throws(() => node.accountJob(-1), InvalidArgumentError);
      assert.throws(() => node.accountJob(Number.NaN), InvalidArgumentError);
      node.accountJob(2);
      assert.equal(node.runtime, 2);
    });

    it('hardware fences signalling out of order charge the later job 0, not a negative time', () => {
      const ring = new TestRing({ clock });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const first = pushJob(entity);
      const second = pushJob(entity);
      ring.drain();
      clock.advance(5);
      ring.hw.get(second)!.signal(); // the second job's fence signals first, at 5
      ring.drain();
      clock.advance(5);
      ring.complete(first); // the first at 10: the second "started" at 10 and ended at 5
      assert.equal(entity.stats.runtime, 10, 'the first job ran 10 ms; the second is charged 0');
      assert.ok(entity.stats.avgJobTime >= 0);
      assert.ok(ring.sched.avgJobTime >= 0);
      entity.fini();
      ring.sched.fini();
    });
  });

  it('stop(bad) and increaseKarma(job) refuse what is not a job', () => {
    const ring = new TestRing();
    assert.throws(() => ring.sched.stop(5 as never), InvalidArgumentError);
    assert.equal(ring.sched.stopped, false, 'a refused stop did not stop');
    assert.throws(() => ring.sched.increaseKarma({} as never), InvalidArgumentError);
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    pushJob(entity);
    ring.drain();
    entity.fini();
    ring.sched.fini();
  });
  it('found by the fuzz table: the small helpers and the building blocks check their arguments', async () => {
    assert.throws(() => schedPriorityName(9 as never), InvalidArgumentError, 'it returned undefined');
    assert.equal(schedPriorityName(DrmSchedPriority.High), 'high');
    assert.equal(toDrmSchedFence(null), null, 'any value: null for anything but a scheduler fence');
    assert.equal(toDrmSchedFence(5), null);
    assert.throws(() => new DrmSchedRq({} as never, { avgJobTime: 0 }), InvalidArgumentError);
    assert.throws(() => new DrmSchedRq(fairPolicy, null as never), InvalidArgumentError);
    const ring = new TestRing();
    assert.throws(() => new DrmSchedFence(ring.sched, 'r', Number.MAX_SAFE_INTEGER, 1), InvalidArgumentError);
    assert.throws(() => new DrmSchedFence(null as never, 'r', 1, 1), InvalidArgumentError);
    assert.throws(() => new DrmSchedFence(ring.sched, 'r', 1, -1), InvalidArgumentError);
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    await invalid(() => entity.modifySched([]), 'schedulers');
    await invalid(() => entity.modifySched([{}] as never), 'schedulers[]');
    const node = new DrmSchedRqNode({}, DrmSchedPriority.Low);
    await invalid(() => node.accountJob(Symbol('t') as never), 'duration');
    entity.fini();
    ring.sched.fini();
  });
  it('start() without stop() is a BugError and changes nothing (it attached a second hardware callback)', () => {
    const ring = new TestRing({ creditLimit: 4 });
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    ring.drain();
    assert.throws(() => ring.sched.start(), BugError);
    assert.equal(ring.sched.creditCount, 1, 'credits were counted twice');
    ring.complete(job);
    assert.equal(ring.sched.creditCount, 0);
    assert.deepEqual(ring.calls('free'), [job], 'freed once');
    assert.equal(ring.sched.score, 1, 'the entity, and no job completed twice');
    entity.fini();
    ring.sched.fini();
  });

  it('ManualExecutor.drain: a function that throws does not drop the rest of its batch', () => {
    const executor = new ManualExecutor();
    const ran: string[] = [];
    executor.schedule(() => ran.push('a'));
    executor.schedule(() => {
      throw new Error('boom');
    });
    executor.schedule(() => ran.push('c'));
    assert.throws(() => executor.drain(), /boom/);
    assert.equal(executor.pending, 1, 'c is still queued');
    assert.equal(executor.drain(), 1);
    assert.deepEqual(ran, ['a', 'c']);
  });
  it('a second stop() changes nothing (it freed the detached jobs unfinished: their fences never signalled)', () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    ring.drain();
    ring.sched.stop();
    ring.sched.stop();
    assert.deepEqual(ring.calls('free'), [], 'nothing freed before it finished');
    assert.equal(ring.sched.pendingCount, 1);
    ring.sched.start('EIO');
    ring.drain();
    assert.equal(errorCode(job.finished), 'EIO');
    assert.deepEqual(ring.calls('free'), [job]);
    entity.fini();
    ring.sched.fini();
  });
});
