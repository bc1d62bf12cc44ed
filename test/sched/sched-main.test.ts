/**
 * DrmGpuScheduler behaviour: running jobs, errors, credits, dependencies and pipelining, the
 * watchdog, karma, reset recovery, teardown, deadlines and the observer. Most cases step the
 * scheduler by hand (a ManualExecutor) over a test ring whose hardware fences the test signals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualClock } from '../../src/base/clock.js';
import { BugError, DmaBufError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { ManualExecutor } from '../../src/sched/sched-executor.js';
import type { DrmSchedJob } from '../../src/sched/sched-job.js';
import { DrmGpuScheduler, DrmGpuSchedStat, type DrmSchedFailure } from '../../src/sched/sched-main.js';
import { DrmSchedPriority } from '../../src/sched/sched-rq.js';
import { mockFence } from '../helpers/mock-fence.js';
import { TestRing, errorCode, pushJob, withVirtualClock } from '../helpers/sched-ring.js';

let clock: VirtualClock;
withVirtualClock((c) => {
  clock = c;
});

describe('DrmGpuScheduler', () => {
  it('sanity: a pushed job runs, finishes when its hardware fence signals, and is freed once', () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched], name: 'client' });
    const job = pushJob(entity);
    assert.equal(ring.calls('run').length, 0, 'nothing runs inside push()');
    ring.drain();
    assert.deepEqual(ring.calls('run'), [job]);
    assert.ok(job.scheduled.signaledFlag, 'scheduled signals when runJob returned');
    assert.equal(job.finished.signaledFlag, false);
    assert.equal(ring.sched.creditCount, 1);
    ring.complete(job);
    assert.ok(job.finished.signaledFlag);
    assert.deepEqual(ring.calls('free'), [job]);
    assert.equal(job.state, 'freed');
    assert.equal(ring.sched.creditCount, 0);
    assert.equal(ring.sched.pendingCount, 0);
    entity.fini();
    ring.sched.fini();
  });

  it('the fences name the scheduler as timeline and keep the name after fini', () => {
    const ring = new TestRing({ name: 'gfx-ring' });
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = pushJob(entity);
    assert.equal(job.finished.timelineName, 'gfx-ring');
    assert.equal(job.finished.driverName, 'drm_sched');
    assert.equal(job.scheduled.context, entity.fenceContext);
    assert.equal(job.finished.context, entity.fenceContext + 1);
    entity.fini();
    ring.drain();
    ring.sched.fini();
    assert.equal(job.finished.ops.getTimelineName(job.finished), 'gfx-ring');
  });

  it('the n-th armed job of an entity gets seqno n on both fences', () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const jobs = [pushJob(entity), pushJob(entity), pushJob(entity)];
    assert.deepEqual(
      jobs.map((j) => [j.scheduled.seqno, j.finished.seqno]),
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    );
    entity.fini();
    ring.drain();
    ring.sched.fini();
  });

  describe('runJob outcomes', () => {
    it('null: finished signals at once without error, after scheduled', () => {
      const ring = new TestRing({ ops: { runJob: () => null } });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      assert.ok(job.finished.signaledFlag);
      assert.equal(job.finished.error, undefined);
      assert.ok(job.scheduled.timestamp! <= job.finished.timestamp!);
      assert.equal(job.state, 'freed');
      entity.fini();
      ring.sched.fini();
    });

    it('a thrown DmaBufError lands on finished as is (ERR_PTR); another exception as EIO with its cause', () => {
      const boom = new Error('ring full');
      let n = 0;
      const ring = new TestRing({
        ops: {
          runJob: () => {
            n++;
            if (n === 1) throw new DmaBufError('ENOMEM', 'out of ring memory');
            if (n === 2) throw boom;
            return null;
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const [a, b, c] = [pushJob(entity), pushJob(entity), pushJob(entity)];
      ring.drain();
      assert.equal(errorCode(a.finished), 'ENOMEM');
      assert.equal(errorCode(b.finished), 'EIO');
      assert.equal(b.finished.error?.cause, boom);
      assert.ok(a.scheduled.signaledFlag && b.scheduled.signaledFlag, 'scheduled signals for failed jobs too');
      assert.equal(c.finished.error, undefined, 'the scheduler goes on with the next job');
      assert.equal(ring.calls('free').length, 3, 'failed jobs are freed like the others');
      entity.fini();
      ring.sched.fini();
    });

    it('a return value that is neither a fence nor null fails the job with a BugError', () => {
      const ring = new TestRing({ ops: { runJob: () => Promise.resolve() as unknown as DmaFence } });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      assert.ok(job.finished.error instanceof BugError, String(job.finished.error));
      entity.fini();
      ring.sched.fini();
    });

    it("the hardware fence's error becomes finished's error", () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      ring.complete(job, 'EIO');
      assert.equal(errorCode(job.finished), 'EIO');
      assert.equal(entity.error, job.finished.error, 'entity.error reports the last job handed to the hardware');
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('failing backend ops', () => {
    it('freeJob throwing is recorded and reported; the scheduler keeps serving other entities', () => {
      const seen: DrmSchedFailure[] = [];
      const ring = new TestRing({
        onError: (f) => seen.push(f),
        ops: {
          runJob: () => null,
          freeJob: (job) => {
            if (job.entity.name === 'bad') throw new Error('double free');
          },
        },
      });
      const bad = new DrmSchedEntity({ schedulers: [ring.sched], name: 'bad' });
      const good = new DrmSchedEntity({ schedulers: [ring.sched], name: 'good' });
      const b = pushJob(bad);
      const g = [pushJob(good), pushJob(good)];
      ring.drain();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.op, 'freeJob');
      assert.equal(seen[0]!.job, b);
      assert.deepEqual(ring.sched.failures, seen);
      assert.ok(
        g.every((j) => j.state === 'freed'),
        'the good entity was served',
      );
      bad.fini();
      good.fini();
      ring.sched.fini();
    });

    it('timedOutJob and prepareJob throwing are recorded; the job counts as reset / ready and others go on', () => {
      const seen: DrmSchedFailure[] = [];
      const ring = new TestRing({
        clock,
        timeout: 10,
        onError: (f) => seen.push(f),
        ops: {
          prepareJob: (job) => {
            if (job.entity.name === 'odd') throw new Error('prepare failed');
            return null;
          },
          timedOutJob: () => {
            throw new Error('reset failed');
          },
        },
      });
      const odd = new DrmSchedEntity({ schedulers: [ring.sched], name: 'odd' });
      const even = new DrmSchedEntity({ schedulers: [ring.sched], name: 'even' });
      const a = pushJob(odd);
      const b = pushJob(even);
      ring.drain();
      assert.deepEqual(new Set(ring.calls('run')), new Set([a, b]), 'a failing prepareJob counts as "ready"');
      clock.advance(10);
      assert.deepEqual(
        seen.map((f) => f.op),
        ['prepareJob', 'timedOutJob'],
      );
      assert.equal(ring.sched.pendingCount, 1, 'treated as RESET: the hung job left the pending list');
      clock.advance(10);
      assert.equal(seen.length, 3, 'the watchdog was re-armed for the next job');
      odd.fini();
      even.fini();
      ring.sched.fini();
    });

    it('without onError the first failure is printed once with console.warn', (t) => {
      const warn = t.mock.method(console, 'warn', () => {});
      const ring = new TestRing({
        ops: {
          runJob: () => null,
          freeJob: () => {
            throw new Error('nope');
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      pushJob(entity);
      pushJob(entity);
      ring.drain();
      assert.equal(warn.mock.callCount(), 1);
      assert.match(String(warn.mock.calls[0]!.arguments[0]), /freeJob.*threw Error: nope/);
      assert.equal(ring.sched.failures.length, 2);
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('credits', () => {
    it('a job runs only when it fits under the limit; credits return when jobs finish', () => {
      const ring = new TestRing({ creditLimit: 2 });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const jobs = [pushJob(entity), pushJob(entity), pushJob(entity)];
      ring.drain();
      assert.equal(ring.calls('run').length, 2);
      assert.equal(ring.sched.creditCount, 2);
      ring.complete(jobs[0]!);
      assert.equal(ring.calls('run').length, 3);
      ring.complete(jobs[1]!);
      ring.complete(jobs[2]!);
      assert.equal(ring.sched.creditCount, 0);
      entity.fini();
      ring.sched.fini();
    });

    it('a job larger than the limit is cut down to it and runs alone', () => {
      const ring = new TestRing({ creditLimit: 4 });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const small = pushJob(entity, { credits: 1 });
      const huge = pushJob(entity, { credits: 10 });
      ring.drain();
      assert.deepEqual(ring.calls('run'), [small]);
      ring.complete(small);
      assert.deepEqual(ring.calls('run'), [small, huge]);
      assert.equal(huge.credits, 4);
      assert.equal(ring.sched.creditCount, 4);
      assert.equal(ring.sched.truncatedJobs, 1);
      ring.complete(huge);
      entity.fini();
      ring.sched.fini();
    });

    it('a head job that does not fit blocks every other entity (no skipping ahead)', () => {
      const ring = new TestRing({ creditLimit: 3, policy: 'fifo' });
      const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
      const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
      const first = pushJob(a, { credits: 2 });
      const big = pushJob(a, { credits: 2 });
      const small = pushJob(b, { credits: 1 });
      ring.drain();
      assert.deepEqual(ring.calls('run'), [first], 'b fits in the remaining credit but must wait behind a');
      ring.complete(first);
      assert.deepEqual(ring.calls('run'), [first, big, small]);
      a.fini();
      b.fini();
      ring.sched.fini();
    });
  });

  describe('dependencies', () => {
    it('no runJob before every dependency signalled; a failed dependency does not fail the job', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const d1 = mockFence();
      const d2 = mockFence();
      const job = pushJob(entity, { deps: [d1, d2] });
      ring.drain();
      assert.equal(ring.calls('run').length, 0);
      assert.equal(entity.dependency, d1);
      d1.signal();
      ring.drain();
      assert.equal(ring.calls('run').length, 0, 'still waiting for d2');
      d2.setError(new DmaBufError('EIO', 'producer failed'));
      d2.signal();
      ring.drain();
      assert.deepEqual(ring.calls('run'), [job], 'dependency errors do not propagate: the job runs');
      ring.complete(job);
      assert.equal(job.finished.error, undefined);
      entity.fini();
      ring.sched.fini();
    });

    it('a blocked entity does not hold up the others', () => {
      const ring = new TestRing();
      const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
      const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
      const dep = mockFence();
      const blocked = pushJob(a, { deps: [dep] });
      const free = pushJob(b);
      ring.drain();
      assert.deepEqual(ring.calls('run'), [free]);
      dep.signal();
      ring.drain();
      assert.deepEqual(ring.calls('run'), [free, blocked]);
      a.fini();
      b.fini();
      ring.sched.fini();
    });

    it('same scheduler: a job waits only until its dependency is scheduled (pipelining)', () => {
      const ring = new TestRing();
      const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
      const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
      const producer = pushJob(a);
      const consumer = pushJob(b, { deps: [producer.finished] });
      ring.drain();
      assert.deepEqual(ring.calls('run'), [producer, consumer], 'both on the ring; the ring keeps the order');
      assert.equal(producer.finished.signaledFlag, false);
      ring.complete(producer);
      ring.complete(consumer);
      a.fini();
      b.fini();
      ring.sched.fini();
    });

    it('same scheduler with setDontPipeline, or a failed producer: wait for finished', () => {
      const ring = new TestRing();
      const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
      const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
      const producer = pushJob(a);
      producer.sFence!.setDontPipeline();
      const consumer = pushJob(b, { deps: [producer.finished] });
      ring.drain();
      assert.deepEqual(ring.calls('run'), [producer]);
      ring.complete(producer);
      assert.deepEqual(ring.calls('run'), [producer, consumer]);
      ring.complete(consumer);
      a.fini();
      b.fini();
      ring.sched.fini();
    });

    it('another scheduler: a job waits for the fence itself', () => {
      const ring1 = new TestRing({ name: 'ring1' });
      const ring2 = new TestRing({ name: 'ring2' });
      const a = new DrmSchedEntity({ schedulers: [ring1.sched] });
      const b = new DrmSchedEntity({ schedulers: [ring2.sched] });
      const producer = pushJob(a);
      const consumer = pushJob(b, { deps: [producer.finished] });
      ring1.drain();
      ring2.drain();
      assert.equal(ring2.calls('run').length, 0, 'scheduled on ring1 is not enough for ring2');
      ring1.complete(producer);
      ring2.drain();
      assert.deepEqual(ring2.calls('run'), [consumer]);
      ring2.complete(consumer);
      a.fini();
      b.fini();
      ring1.sched.fini();
      ring2.sched.fini();
    });

    it("a dependency on the entity's own earlier job is ignored (the ring is in order)", () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const first = pushJob(entity);
      first.sFence!.setDontPipeline();
      const second = pushJob(entity, { deps: [first.finished] });
      ring.drain();
      assert.deepEqual(ring.calls('run'), [first, second]);
      ring.complete(first);
      ring.complete(second);
      entity.fini();
      ring.sched.fini();
    });

    it('prepareJob is asked after the stored dependencies, until it returns null', () => {
      const extra = mockFence();
      let asked = 0;
      const ring = new TestRing({
        ops: {
          prepareJob: () => {
            asked++;
            return extra.signaledFlag ? null : extra;
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      assert.equal(ring.calls('run').length, 0);
      assert.equal(asked, 1);
      extra.signal();
      ring.drain();
      assert.deepEqual(ring.calls('run'), [job]);
      assert.equal(asked, 2);
      ring.complete(job);
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('freeing', () => {
    it('freeJob follows run order even when hardware fences signal out of order', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const jobs = [pushJob(entity), pushJob(entity), pushJob(entity)];
      ring.drain();
      ring.complete(jobs[2]!);
      ring.complete(jobs[1]!);
      assert.deepEqual(ring.calls('free'), [], 'job 0 still runs');
      ring.complete(jobs[0]!);
      assert.deepEqual(ring.calls('free'), jobs);
      entity.fini();
      ring.sched.fini();
    });

    it("a job's start is the later of runJob returning and the previous job finishing; its GPU time is charged", () => {
      const ring = new TestRing({ clock });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const [a, b] = [pushJob(entity), pushJob(entity)];
      ring.drain();
      clock.advance(3);
      ring.complete(a);
      clock.advance(2);
      ring.complete(b);
      assert.equal(a.startedAt, 0);
      assert.equal(a.finishedAt, 3);
      assert.equal(b.scheduledAt, 0);
      assert.equal(b.startedAt, 3, 'b waited behind a on the ring');
      assert.equal(b.finishedAt, 5);
      assert.equal(entity.stats.runtime, 5);
      assert.ok(ring.sched.avgJobTime > 0);
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('watchdog', () => {
    it('fires timeout ms after the last job start or free, not per job', () => {
      const ring = new TestRing({
        clock,
        timeout: 100,
        ops: { runJob: (job) => (job.entity.name === 'hang' ? mockFence() : null) },
      });
      const hang = new DrmSchedEntity({ schedulers: [ring.sched], name: 'hang' });
      const busy = new DrmSchedEntity({ schedulers: [ring.sched], name: 'busy' });
      const hung = pushJob(hang);
      ring.drain();
      for (let i = 0; i < 5; i++) {
        clock.advance(60);
        pushJob(busy);
        ring.drain();
      }
      assert.equal(ring.calls('timedOut').length, 0, 'a stream of short jobs keeps re-arming it (300 ms > 100 ms)');
      clock.advance(100);
      assert.deepEqual(ring.calls('timedOut'), [hung]);
      hang.fini();
      busy.fini();
      ring.sched.fini();
    });

    it('never fires with timeout Infinity; fault() fires it at once', () => {
      const ring = new TestRing({ clock });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      clock.advance(1e9);
      assert.equal(ring.calls('timedOut').length, 0);
      ring.sched.fault();
      clock.advance(0);
      assert.deepEqual(ring.calls('timedOut'), [job]);
      entity.fini();
      ring.sched.fini();
    });

    it('NO_HANG puts the job back; it is freed normally later', () => {
      const ring = new TestRing({ clock, timeout: 50, timeoutStatus: DrmGpuSchedStat.NoHang });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      clock.advance(50);
      assert.deepEqual(ring.calls('timedOut'), [job]);
      assert.equal(ring.sched.pendingCount, 1, 'back on the pending list');
      clock.advance(50);
      assert.equal(ring.calls('timedOut').length, 2, 're-armed');
      ring.complete(job);
      assert.deepEqual(ring.calls('free'), [job]);
      assert.equal(clock.pendingTimers, 0, 'idle: the watchdog is disarmed');
      entity.fini();
      ring.sched.fini();
    });

    it('ENODEV stops re-arming; RESET re-arms and leaves the job to the backend', () => {
      const ring = new TestRing({ clock, timeout: 10, timeoutStatus: DrmGpuSchedStat.Enodev });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const [a] = [pushJob(entity), pushJob(entity)];
      ring.drain();
      clock.advance(10);
      assert.deepEqual(ring.calls('timedOut'), [a]);
      clock.advance(1000);
      assert.equal(ring.calls('timedOut').length, 1, 'device gone: no more timeouts');
      entity.fini();
      ring.sched.fini();

      const reset = new TestRing({ clock, timeout: 10 });
      const e2 = new DrmSchedEntity({ schedulers: [reset.sched] });
      const [x, y] = [pushJob(e2), pushJob(e2)];
      reset.drain();
      clock.advance(10);
      clock.advance(10);
      assert.deepEqual(reset.calls('timedOut'), [x, y], 'RESET: the next pending job is watched');
      assert.equal(reset.sched.pendingCount, 0, 'both left to the backend');
      e2.fini();
      reset.sched.fini();
    });

    it('tdrQueueImm makes every later timeout immediate', () => {
      const ring = new TestRing({ clock, timeout: 1000 });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      ring.sched.tdrQueueImm();
      assert.equal(ring.sched.timeout, 0);
      clock.advance(0);
      assert.deepEqual(ring.calls('timedOut'), [job]);
      entity.fini();
      ring.sched.fini();
    });

    it('suspendTimeout holds it off; resumeTimeout re-arms with what was left', () => {
      const ring = new TestRing({ clock, timeout: 100 });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      pushJob(entity);
      ring.drain();
      clock.advance(40);
      const left = ring.sched.suspendTimeout();
      assert.equal(left, 60);
      clock.advance(500);
      assert.equal(ring.calls('timedOut').length, 0);
      ring.sched.resumeTimeout(left);
      clock.advance(59);
      assert.equal(ring.calls('timedOut').length, 0);
      clock.advance(1);
      assert.equal(ring.calls('timedOut').length, 1);
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('karma and guilt', () => {
    it('increaseKarma marks the entity guilty on the first timeout; its later jobs run with ECANCELED', () => {
      const guilty = { value: false };
      const ring = new TestRing({
        clock,
        timeout: 10,
        ops: {
          timedOutJob: (job) => {
            ring.sched.increaseKarma(job);
            ring.hw.get(job)!.signal();
            return DrmGpuSchedStat.Reset;
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched], guilty });
      const hung = pushJob(entity);
      ring.drain();
      clock.advance(10);
      ring.drain();
      assert.equal(hung.karma, 1);
      assert.equal(guilty.value, true);
      const later = pushJob(entity);
      ring.drain();
      assert.ok(ring.calls('run').includes(later), 'a guilty entity still runs its jobs');
      ring.complete(later);
      assert.equal(errorCode(later.finished), 'ECANCELED');
      entity.fini();
      ring.sched.fini();
    });

    it('kernel-priority jobs are always considered innocent', () => {
      const guilty = { value: false };
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched], guilty, priority: DrmSchedPriority.Kernel });
      const job = pushJob(entity);
      ring.sched.increaseKarma(job);
      assert.equal(job.karma, 0);
      assert.equal(guilty.value, false);
      entity.fini();
      ring.drain();
      ring.sched.fini();
    });
  });

  describe('reset recovery', () => {
    it('stop + start(errno) without resubmission completes every unfinished job with errno; credits balance', () => {
      const ring = new TestRing({ creditLimit: 8 });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const jobs = [pushJob(entity), pushJob(entity), pushJob(entity)];
      ring.drain();
      ring.hw.get(jobs[0]!)!.signal(); // done on the hardware, not yet freed
      ring.sched.stop();
      assert.deepEqual(ring.calls('free'), [jobs[0]], 'the finished one is freed by stop');
      assert.equal(ring.sched.creditCount, 0, 'detached jobs give their credits back');
      ring.hw.get(jobs[1]!)!.signal(); // the reset completed it meanwhile: its fence is detached
      ring.sched.start('EIO');
      ring.drain();
      assert.equal(errorCode(jobs[1]!.finished), 'EIO');
      assert.equal(errorCode(jobs[2]!.finished), 'EIO');
      assert.deepEqual(ring.calls('free'), jobs);
      assert.equal(ring.sched.creditCount, 0);
      entity.fini();
      ring.sched.fini();
    });

    it('start() without errno completes detached jobs with ECANCELED; nothing runs while stopped', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const a = pushJob(entity);
      ring.drain();
      ring.sched.stop();
      assert.ok(ring.sched.stopped);
      const b = pushJob(entity);
      ring.drain();
      assert.deepEqual(ring.calls('run'), [a], 'submission is paused');
      ring.sched.start();
      ring.drain();
      assert.equal(errorCode(a.finished), 'ECANCELED');
      assert.deepEqual(ring.calls('run'), [a, b]);
      ring.complete(b);
      entity.fini();
      ring.sched.fini();
    });

    it('stop(bad) with a hung job that completed: it is freed once the timeout handler returns', () => {
      const ring = new TestRing({
        clock,
        timeout: 10,
        ops: {
          timedOutJob: (job) => {
            ring.hw.get(job)!.signal();
            ring.sched.stop(job);
            ring.sched.start();
            return DrmGpuSchedStat.Reset;
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      clock.advance(10);
      ring.drain();
      assert.deepEqual(ring.calls('free'), [job], 'freed exactly once');
      assert.equal(ring.sched.pendingCount, 0);
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('fini', () => {
    it('cancels pending jobs newest first with cancelJob, then frees them; waiters wake with the error', async () => {
      const ring = new TestRing({
        ops: {
          cancelJob: (job) => {
            ring.log.push({ op: 'cancel', job });
            const hw = ring.hw.get(job)!;
            hw.setError(new DmaBufError('ECANCELED', 'cancelled'));
            hw.signal();
          },
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const jobs = [pushJob(entity), pushJob(entity)];
      ring.drain();
      const waiting = jobs[0]!.finished.wait();
      entity.fini();
      ring.sched.fini();
      assert.deepEqual(
        ring.log.filter((e) => e.op !== 'run').map((e) => `${e.op} ${e.job.finished.seqno}`),
        ['cancel 2', 'free 2', 'cancel 1', 'free 1'],
      );
      assert.equal(await waiting, true);
      assert.equal(errorCode(jobs[0]!.finished), 'ECANCELED');
      assert.equal(ring.sched.pendingCount, 0);
      assert.equal(ring.sched.ready, false);
      ring.sched.fini(); // idempotent
    });

    it('without cancelJob the scheduler completes pending jobs with ECANCELED itself', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      ring.drain();
      entity.fini();
      ring.sched.fini();
      assert.equal(errorCode(job.finished), 'ECANCELED');
      assert.deepEqual(ring.calls('free'), [job]);
      ring.hw.get(job)!.signal(); // the hardware finishing later changes nothing
      assert.equal(ring.calls('free').length, 1);
    });

    it('with a live entity it throws a BugError and changes nothing', () => {
      const ring = new TestRing();
      const entity = new DrmSchedEntity({ schedulers: [ring.sched], name: 'still-here' });
      pushJob(entity);
      ring.drain();
      assert.throws(() => ring.sched.fini(), BugError);
      assert.ok(ring.sched.ready);
      entity.fini();
      ring.sched.fini();
      assert.equal(ring.sched.ready, false);
    });
  });

  describe('deadlines', () => {
    it('a deadline set on finished before runJob reaches the hardware fence once it exists; the earliest wins', () => {
      const seen: number[] = [];
      const hwOps = {
        getDriverName: () => 'hw',
        getTimelineName: () => 'hw',
        setDeadline: (_f: DmaFence, d: number) => seen.push(d),
      };
      let hw: DmaFence | undefined;
      const ring = new TestRing({ ops: { runJob: () => (hw = new DmaFence(hwOps, 1, 1)) } });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const job = pushJob(entity);
      job.finished.setDeadline(50);
      job.finished.setDeadline(80); // later: ignored
      job.finished.setDeadline(30);
      assert.equal(job.sFence!.deadline, 30);
      ring.drain();
      assert.deepEqual(seen, [30], 'forwarded once, at runJob');
      job.finished.setDeadline(20);
      assert.deepEqual(seen, [30, 20], 'now forwarded directly');
      hw!.signal();
      ring.drain();
      entity.fini();
      ring.sched.fini();
    });
  });

  describe('observer', () => {
    it('sees queued, run, done and freed in order, with timestamps; killed and timed out too', () => {
      const events: string[] = [];
      const ring = new TestRing({
        clock,
        timeout: 10,
        observer: {
          jobQueued: (j) => events.push(`queued ${j.finished.seqno}`),
          jobRun: (j) => events.push(`run ${j.finished.seqno} @${j.scheduledAt}`),
          jobDone: (j) => events.push(`done ${j.finished.seqno} @${j.finishedAt}`),
          jobFreed: (j) => events.push(`freed ${j.finished.seqno}`),
          jobKilled: (j) => events.push(`killed ${j.finished.seqno}`),
          timedOut: (j, s) => events.push(`timedOut ${j.finished.seqno} ${s}`),
        },
      });
      const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
      const a = pushJob(entity);
      ring.drain();
      clock.advance(4);
      ring.complete(a);
      const b = pushJob(entity);
      ring.drain();
      clock.advance(10);
      pushJob(entity, { deps: [mockFence()] });
      ring.drain();
      entity.kill();
      ring.hw.get(b)!.signal();
      assert.deepEqual(events.slice(0, 5), ['queued 1', 'run 1 @0', 'done 1 @4', 'freed 1', 'queued 2']);
      assert.ok(events.includes('timedOut 2 reset'));
      ring.sched.fini();
    });
  });

  describe('executors', () => {
    it("a ManualExecutor runs nothing until drained; 'macrotask' runs on a later turn", async () => {
      const manual = new ManualExecutor();
      const ran: string[] = [];
      const ops = {
        runJob: (j: DrmSchedJob) => {
          ran.push(j.entity.name);
          return null;
        },
        timedOutJob: () => DrmGpuSchedStat.Reset,
        freeJob: () => {},
      };
      const s1 = new DrmGpuScheduler({ name: 'manual', executor: manual, ops });
      const s2 = new DrmGpuScheduler({ name: 'macro', executor: 'macrotask', ops });
      const e1 = new DrmSchedEntity({ schedulers: [s1], name: 'm' });
      const e2 = new DrmSchedEntity({ schedulers: [s2], name: 'M' });
      pushJob(e1);
      const j2 = pushJob(e2);
      await Promise.resolve();
      assert.deepEqual(ran, []);
      assert.ok(manual.pending > 0);
      await j2.finished.wait();
      assert.deepEqual(ran, ['M']);
      manual.drain();
      assert.deepEqual(ran, ['M', 'm']);
      e1.fini();
      e2.fini();
      s1.fini();
      s2.fini();
    });
  });

  describe('bad options', () => {
    const ops = { runJob: () => null, timedOutJob: () => DrmGpuSchedStat.Reset, freeJob: () => {} };
    for (const [what, init] of [
      ['no name', { ops }],
      ['no runJob', { name: 'x', ops: { timedOutJob: ops.timedOutJob, freeJob: ops.freeJob } }],
      ['creditLimit 0', { name: 'x', ops, creditLimit: 0 }],
      ['creditLimit 1.5', { name: 'x', ops, creditLimit: 1.5 }],
      ['negative timeout', { name: 'x', ops, timeout: -1 }],
      ['unknown policy', { name: 'x', ops, policy: 'lottery' }],
      ['unknown executor', { name: 'x', ops, executor: 'thread' }],
    ] as const) {
      it(`rejects ${what} with an InvalidArgumentError naming it`, () => {
        assert.throws(
          () => new DrmGpuScheduler(init as never),
          (err: unknown) => err instanceof DmaBufError && err.code === 'EINVAL' && err.name === 'InvalidArgumentError',
        );
      });
    }
  });
});
