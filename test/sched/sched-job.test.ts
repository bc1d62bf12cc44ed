/**
 * DrmSchedJob: init checks, dependency bookkeeping (dedup per context, resv and syncobj sources),
 * the arm/push/cleanup life cycle and its misuse.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, DmaBufError, InvalidArgumentError, NotSubmittedError } from '../../src/base/errors.js';
import { fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { Syncobj } from '../../src/fence/syncobj.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DrmSchedJob } from '../../src/sched/sched-job.js';
import { mockFence } from '../helpers/mock-fence.js';
import { TestRing } from '../helpers/sched-ring.js';

function setup(): { ring: TestRing; entity: DrmSchedEntity; done(): void } {
  const ring = new TestRing({ ops: { runJob: () => null } });
  const entity = new DrmSchedEntity({ schedulers: [ring.sched], name: 'client' });
  return {
    ring,
    entity,
    done() {
      entity.fini();
      ring.drain();
      ring.sched.fini();
    },
  };
}

describe('DrmSchedJob', () => {
  it('sanity: init, arm, push; the job goes through its states and is freed', () => {
    const { ring, entity, done } = setup();
    const job = new DrmSchedJob(entity, { credits: 2, owner: 'me', clientId: 7 });
    assert.equal(job.state, 'initialized');
    assert.equal(job.credits, 2);
    assert.equal(job.clientId, 7);
    assert.equal(job.sFence, null);
    job.arm();
    assert.equal(job.state, 'armed');
    assert.equal(job.sched, ring.sched);
    job.push();
    assert.equal(job.state, 'queued');
    ring.drain();
    assert.equal(job.state, 'freed');
    assert.equal(typeof job.submittedAt, 'number', 'push time recorded (real clock here)');
    done();
  });

  it('credits must be an integer >= 1', () => {
    const { entity, done } = setup();
    for (const credits of [0, -1, 1.5, Number.NaN, '1']) {
      assert.throws(
        () => new DrmSchedJob(entity, { credits: credits as number }),
        InvalidArgumentError,
        String(credits),
      );
    }
    done();
  });

  it('needs an entity (arm without an entity is impossible by construction)', () => {
    assert.throws(() => new DrmSchedJob(undefined as never), InvalidArgumentError);
    assert.throws(() => new DrmSchedJob({} as never), InvalidArgumentError);
  });

  describe('dependencies', () => {
    it('keeps one fence per context, the later one; null is ignored; a non-fence is refused', () => {
      const { entity, done } = setup();
      const job = new DrmSchedJob(entity);
      const ctx = fenceContextAlloc();
      const f3 = mockFence(ctx, 3);
      const f5 = mockFence(ctx, 5);
      const other = mockFence();
      job.addDependency(f3);
      job.addDependency(other);
      job.addDependency(f5);
      job.addDependency(mockFence(ctx, 4));
      job.addDependency(null);
      assert.deepEqual(job.dependencies, [f5, other]);
      assert.ok(job.hasDependency(f5));
      assert.equal(job.hasDependency(f3), false);
      assert.throws(() => job.addDependency({ context: 1, seqno: 1 } as never), InvalidArgumentError);
      job.cleanup();
      assert.equal(job.dependencies.length, 0);
      done();
    });

    it('implicit dependencies: a write waits for readers and writers, a read only for writers', async () => {
      const { entity, done } = setup();
      const resv = new DmaResv({ name: 'buffer' });
      const writer = mockFence();
      const reader = mockFence();
      const bookkeep = mockFence();
      await resv.lock();
      resv.reserveFences(3);
      resv.addFence(writer, DmaResvUsage.Write);
      resv.addFence(reader, DmaResvUsage.Read);
      resv.addFence(bookkeep, DmaResvUsage.Bookkeep);
      const write = new DrmSchedJob(entity);
      write.addImplicitDependencies(resv, true);
      const read = new DrmSchedJob(entity);
      read.addImplicitDependencies(resv, false);
      const all = new DrmSchedJob(entity);
      all.addResvDependencies(resv, DmaResvUsage.Bookkeep);
      resv.unlock();
      assert.deepEqual(write.dependencies, [writer, reader]);
      assert.deepEqual(read.dependencies, [writer]);
      assert.deepEqual(all.dependencies, [writer, reader, bookkeep]);
      assert.throws(() => all.addResvDependencies(resv, DmaResvUsage.Read), BugError, 'the reservation must be locked');
      assert.throws(() => all.addResvDependencies({} as never, DmaResvUsage.Read), InvalidArgumentError);
      for (const j of [write, read, all]) j.cleanup();
      done();
    });

    it('syncobj points: the point fence, or NotSubmittedError for a point never submitted', () => {
      const { entity, done } = setup();
      const timeline = new Syncobj();
      const p1 = mockFence();
      timeline.addPoint(p1, 1);
      const job = new DrmSchedJob(entity);
      job.addSyncobjDependency(timeline, 1);
      assert.equal(job.dependencies.length, 1);
      assert.throws(() => job.addSyncobjDependency(timeline, 5), NotSubmittedError);
      assert.throws(() => job.addSyncobjDependency({} as never, 1), InvalidArgumentError);
      job.cleanup();
      done();
    });

    it('adding a dependency after push is a BugError', () => {
      const { ring, entity, done } = setup();
      const job = new DrmSchedJob(entity);
      job.arm();
      job.addDependency(mockFence()); // allowed between arm and push
      job.push();
      assert.throws(() => job.addDependency(mockFence()), BugError);
      ring.drain();
      done();
    });
  });

  describe('life cycle misuse', () => {
    it('push before arm, push twice and arm twice are BugErrors', () => {
      const { ring, entity, done } = setup();
      const job = new DrmSchedJob(entity);
      assert.throws(() => job.push(), /arm\(\) it first/);
      job.arm();
      assert.throws(() => job.arm(), BugError);
      job.push();
      assert.throws(() => job.push(), /pushed exactly once/);
      ring.drain();
      assert.equal(ring.calls('run').length, 0, 'runJob replaced: nothing logged');
      done();
    });

    it('the fences exist only after arm', () => {
      const { entity, done } = setup();
      const job = new DrmSchedJob(entity);
      assert.throws(() => job.finished, /only after arm/);
      assert.throws(() => job.scheduled, BugError);
      job.cleanup();
      done();
    });

    it('cleanup: fine before arm (then arm is refused), a BugError between arm and push', () => {
      const { ring, entity, done } = setup();
      const aborted = new DrmSchedJob(entity);
      aborted.cleanup();
      assert.equal(aborted.state, 'cleaned');
      assert.throws(() => aborted.arm(), BugError);
      const armed = new DrmSchedJob(entity);
      armed.arm();
      assert.throws(() => armed.cleanup(), /point of no return|must be pushed/);
      armed.push();
      assert.throws(() => armed.cleanup(), BugError, 'the scheduler owns it now');
      ring.drain();
      armed.cleanup(); // inside or after freeJob: fine
      done();
    });

    it('error codes: ENOENT for an entity whose only scheduler is finished', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      ring.sched.fini();
      assert.throws(
        () => new DrmSchedJob(entity),
        (e: unknown) => e instanceof DmaBufError && e.code === 'ENOENT',
      );
      entity.fini();
    });
  });
});
