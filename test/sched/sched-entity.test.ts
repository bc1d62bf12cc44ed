/**
 * DrmSchedEntity behaviour: push order, kill ordering and its errors, push after kill, flush and
 * destroy, scheduler choice (pick best, modifySched), priorities and misuse.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualClock } from '../../src/base/clock.js';
import { DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DrmSchedEntity, pickBest } from '../../src/sched/sched-entity.js';
import { DrmSchedEntityKilledError, DrmSchedJob } from '../../src/sched/sched-job.js';
import { DrmSchedPriority } from '../../src/sched/sched-rq.js';
import { settleWithin } from '../helpers/completion.js';
import { mockFence } from '../helpers/mock-fence.js';
import { TestRing, errorCode, pushJob, withVirtualClock } from '../helpers/sched-ring.js';

/** Lets microtasks (the kill path's deferred steps) run. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

let clock: VirtualClock;
withVirtualClock((c) => {
  clock = c;
});

describe('DrmSchedEntity', () => {
  it('sanity: jobs run in push order', () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched], name: 'client' });
    const jobs = [pushJob(entity), pushJob(entity), pushJob(entity)];
    assert.equal(entity.queued, 3);
    ring.drain();
    assert.deepEqual(ring.calls('run'), jobs);
    assert.equal(entity.queued, 0);
    assert.equal(entity.stats.jobsPushed, 3);
    assert.equal(entity.stats.jobsRun, 3);
    assert.equal(entity.lastScheduled, jobs[2]!.finished);
    entity.fini();
    ring.sched.fini();
  });

  describe('kill', () => {
    it('discards queued jobs with ESRCH in queue order, each after the previous one and its dependencies', async () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const running = pushJob(entity);
      ring.drain();
      const gate = mockFence();
      const dep = mockFence();
      const blocked = pushJob(entity, { deps: [gate] });
      const second = pushJob(entity, { deps: [dep] });
      const third = pushJob(entity);
      ring.drain();
      const order: string[] = [];
      for (const [name, j] of [
        ['blocked', blocked],
        ['second', second],
        ['third', third],
      ] as const) {
        j.finished.addCallback(() => order.push(name));
      }
      entity.kill();
      assert.ok(entity.stopped);
      await microtasks();
      assert.deepEqual(order, [], 'the first discarded job waits for the running one (last scheduled)');
      ring.complete(running);
      await microtasks();
      assert.deepEqual(order, [], 'and for its own dependency, whatever ran before');
      gate.signal();
      await microtasks();
      assert.deepEqual(order, ['blocked'], 'the second waits for its dependency');
      dep.signal();
      await microtasks();
      assert.deepEqual(order, ['blocked', 'second', 'third']);
      for (const j of [blocked, second, third]) {
        assert.equal(errorCode(j.finished), 'ESRCH');
        assert.ok(j.scheduled.signaledFlag, 'scheduled signals too');
        assert.equal(j.state, 'freed');
      }
      assert.deepEqual(ring.calls('run'), [running], 'no runJob for discarded jobs');
      assert.deepEqual(ring.calls('free'), [running, blocked, second, third]);
      entity.kill(); // idempotent
      ring.sched.fini();
    });

    it("a discarded job whose dependency is another job's scheduled fence waits for that job's finished", async () => {
      const ring = new TestRing();
      const producerEntity = new DrmSchedEntity({ schedulers: [ring.sched], name: 'producer' });
      const victim = new DrmSchedEntity({ schedulers: [ring.sched], name: 'victim' });
      const producer = pushJob(producerEntity);
      ring.drain();
      const job = new DrmSchedJob(victim);
      job.addDependency(producer.scheduled);
      job.addDependency(mockFence(undefined, 1)); // keeps it queued
      job.arm();
      job.push();
      ring.drain();
      victim.kill();
      await microtasks();
      job.dependencies[1]!.signal();
      await microtasks();
      assert.equal(job.finished.signaledFlag, false, 'producer only scheduled, not finished');
      ring.complete(producer);
      await microtasks();
      assert.equal(errorCode(job.finished), 'ESRCH');
      producerEntity.fini();
      ring.sched.fini();
    });

    it('push after kill throws DrmSchedEntityKilledError before queueing, and completes the fences with ESRCH', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const armed = new DrmSchedJob(entity);
      armed.arm();
      entity.kill();
      assert.throws(() => armed.push(), DrmSchedEntityKilledError);
      assert.equal(armed.state, 'killed');
      assert.equal(errorCode(armed.finished), 'ESRCH', 'nobody waits for ever on a fence that was published');
      assert.ok(armed.scheduled.signaledFlag);
      const late = new DrmSchedJob(entity);
      assert.throws(
        () => late.arm(),
        (e: unknown) => e instanceof DrmSchedEntityKilledError && e.code === 'ESRCH',
      );
      assert.equal(late.state, 'initialized', 'arm refused: the job can still be cleaned up');
      late.cleanup();
      ring.drain();
      assert.equal(ring.calls('run').length, 0);
      ring.sched.fini();
    });

    it('the scheduler keeps serving other entities after a kill', async () => {
      const ring = new TestRing({ ops: { runJob: () => null } });
      const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
      const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
      pushJob(a, { deps: [mockFence()] });
      a.kill();
      const j = pushJob(b);
      ring.drain();
      await microtasks();
      assert.equal(j.state, 'freed');
      b.fini();
      ring.sched.fini();
    });
  });

  describe('flush and destroy', () => {
    it('flush resolves once every job was handed to the hardware, not when they finish', async () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const dep = mockFence();
      const job = pushJob(entity, { deps: [dep] });
      ring.drain();
      const flushed = entity.flush();
      assert.equal((await settleWithin(flushed, 10)).state, 'pending');
      dep.signal();
      ring.drain();
      assert.equal(await flushed, true);
      assert.equal(job.finished.signaledFlag, false);
      ring.complete(job);
      entity.fini();
      ring.sched.fini();
    });

    it('flush gives up after its timeout (false), or rejects with the abort reason', async () => {
      const ring = new TestRing({ clock });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      pushJob(entity, { deps: [mockFence()] });
      ring.drain();
      const timed = entity.flush({ timeout: 50 });
      clock.advance(50);
      assert.equal(await timed, false);
      const controller = new AbortController();
      const aborted = entity.flush({ signal: controller.signal });
      const reason = new Error('client gone');
      controller.abort(reason);
      await assert.rejects(aborted, (e) => e === reason);
      assert.equal(clock.pendingTimers, 0, 'no timer left behind');
      const killed = await entity.flush({ timeout: 0, kill: true });
      assert.equal(killed, false);
      assert.ok(entity.stopped, 'kill: true kills after waiting');
      await microtasks();
      ring.sched.fini();
    });

    it('destroy waits up to 1000 ms for the queue to drain, then kills; dispose kills at once', async () => {
      const ring = new TestRing({ clock });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const gate = mockFence();
      const stuck = pushJob(entity, { deps: [gate] });
      ring.drain();
      const destroyed = entity.destroy();
      clock.advance(999);
      await microtasks();
      assert.equal(entity.stopped, false);
      clock.advance(1);
      await destroyed;
      assert.ok(entity.stopped);
      await microtasks();
      assert.equal(stuck.finished.signaledFlag, false, 'a discarded job still waits for its own dependencies');
      gate.signal();
      await microtasks();
      assert.equal(errorCode(stuck.finished), 'ESRCH');
      let queued: DrmSchedJob;
      {
        using disposable = new DrmSchedEntity({ schedulers: [ring.sched] });
        queued = pushJob(disposable);
      }
      await microtasks();
      assert.equal(errorCode(queued.finished), 'ESRCH', 'using: killed at the end of the block');
      ring.sched.fini();
    });
  });

  describe('schedulers', () => {
    it('pickBest chooses the ready scheduler with the lowest score, the first on ties', () => {
      const rings = [new TestRing({ name: 'r0' }), new TestRing({ name: 'r1' }), new TestRing({ name: 'r2' })];
      const busy = new DrmSchedEntity({ schedulers: [rings[0]!.sched] });
      pushJob(busy);
      assert.equal(pickBest(rings.map((r) => r.sched)), rings[1]!.sched);
      rings[1]!.sched.fini();
      assert.equal(pickBest(rings.map((r) => r.sched)), rings[2]!.sched, 'finished schedulers are skipped');
      const spread = new DrmSchedEntity({ schedulers: rings.map((r) => r.sched) });
      const job = pushJob(spread);
      assert.equal(job.sched, rings[2]!.sched);
      busy.fini();
      spread.fini();
      for (const r of rings) {
        r.drain();
        r.sched.fini();
      }
    });

    it('modifySched takes effect at a later arm, once the queue is empty and the last job finished', () => {
      const r1 = new TestRing({ name: 'r1' });
      const r2 = new TestRing({ name: 'r2' });
      const entity = new DrmSchedEntity({ schedulers: [r1.sched] });
      const a = pushJob(entity);
      entity.modifySched([r2.sched]);
      const b = pushJob(entity);
      assert.equal(b.sched, r1.sched, 'a is still queued: stay');
      r1.drain();
      r1.complete(a);
      const c = pushJob(entity);
      assert.equal(c.sched, r1.sched, 'b has not finished: stay');
      r1.drain();
      r1.complete(b);
      r1.complete(c);
      const d = pushJob(entity);
      assert.equal(d.sched, r2.sched, 'idle: move');
      assert.equal(entity.sched, r2.sched);
      r2.drain();
      r2.complete(d);
      entity.fini();
      r1.sched.fini();
      r2.sched.fini();
    });

    it('an entity without schedulers cannot take jobs (ENOENT); modifySched([]) is refused', () => {
      const entity = new DrmSchedEntity({ schedulers: [] });
      assert.equal(entity.hasScheduler, false);
      assert.throws(
        () => new DrmSchedJob(entity),
        (e: unknown) => e instanceof DmaBufError && e.code === 'ENOENT',
      );
      assert.throws(() => entity.modifySched([]), InvalidArgumentError);
      const ring = new TestRing();
      entity.modifySched([ring.sched]);
      const job = pushJob(entity);
      assert.equal(job.sched, ring.sched);
      entity.fini();
      ring.drain();
      ring.sched.fini();
    });
  });

  describe('priority', () => {
    it('setPriority applies at the next run-queue choice under FIFO (an idle entity moves queues)', () => {
      const ring = new TestRing({ policy: 'fifo' });
      const low = new DrmSchedEntity({ schedulers: [ring.sched], priority: 'low', name: 'low' });
      const normal = new DrmSchedEntity({ schedulers: [ring.sched], name: 'normal' });
      low.setPriority(DrmSchedPriority.High);
      const n = pushJob(normal);
      const l = pushJob(low);
      ring.drain();
      assert.deepEqual(ring.calls('run'), [l, n], 'low became high before its next arm');
      low.fini();
      normal.fini();
      ring.sched.fini();
    });

    it('rejects unknown priorities and bad options', () => {
      const ring = new TestRing();
      assert.throws(() => new DrmSchedEntity({ schedulers: [ring.sched], priority: 7 as never }), InvalidArgumentError);
      assert.throws(() => new DrmSchedEntity({ schedulers: 'gfx' as never }), InvalidArgumentError);
      assert.throws(() => new DrmSchedEntity({ schedulers: [{}] as never }), InvalidArgumentError);
      assert.throws(
        () => new DrmSchedEntity({ schedulers: [ring.sched], guilty: true as never }),
        InvalidArgumentError,
      );
      const e = new DrmSchedEntity({ schedulers: [ring.sched], priority: 'kernel' });
      assert.equal(e.priority, DrmSchedPriority.Kernel);
      assert.throws(() => e.setPriority('urgent' as never), InvalidArgumentError);
      e.fini();
      ring.sched.fini();
    });
  });
});
