/**
 * The scheduler under the lock validator: `runJob` and the completion path run inside a fence
 * signalling section, so a backend that takes a reservation lock or allocates with reclaim there
 * is reported (the kernel's dma_fence_begin_signalling() annotation of drm_sched_run_job_work),
 * and a legal backend is not. Each case runs in record mode with an empty graph (recordMode()).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { mightReclaim } from '../../src/locking/lockdep.js';
import { DmaResv } from '../../src/resv/dma-resv.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DrmSchedJob } from '../../src/sched/sched-job.js';
import { recordMode, seen } from '../helpers/lockdep-mode.js';
import { TestRing } from '../helpers/sched-ring.js';

const hwOps = { getDriverName: () => 'hw', getTimelineName: () => 'hw' };

function runOne(ring: TestRing): DrmSchedJob {
  const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
  const job = new DrmSchedJob(entity);
  job.arm();
  job.push();
  ring.drain();
  entity.fini();
  return job;
}

describe('drm_sched under the validator', () => {
  recordMode();

  it('sanity: a legal runJob (makes and returns a hardware fence) is not reported', () => {
    const ctx = fenceContextAlloc();
    let hw: DmaFence | undefined;
    const ring = new TestRing({ ops: { runJob: () => (hw = new DmaFence(hwOps, ctx, 1)) } });
    const job = runOne(ring);
    hw!.signal();
    ring.drain();
    assert.ok(job.finished.signaledFlag);
    assert.deepEqual(seen(), []);
    ring.sched.fini();
  });

  it('a runJob that takes a reservation lock is reported', async () => {
    const resv = new DmaResv({ name: 'bo' });
    let locking: Promise<void> | undefined;
    const ring = new TestRing({
      ops: {
        runJob: () => {
          locking = resv.lock(); // the request is what the validator sees
          return null;
        },
      },
    });
    runOne(ring);
    await locking;
    resv.unlock();
    const reports = seen();
    assert.ok(
      reports.some(
        (r) => r.startsWith('circular-dependency') && r.includes('dma_fence_map') && r.includes('reservation'),
      ),
      reports.join('\n'),
    );
    ring.sched.fini();
  });

  it('a runJob that allocates with reclaim is reported', () => {
    const ring = new TestRing({
      ops: {
        runJob: () => {
          mightReclaim();
          return null;
        },
      },
    });
    runOne(ring);
    assert.deepEqual(seen(), ['circular-dependency dma_fence_map -> fs_reclaim']);
    ring.sched.fini();
  });

  it('the completion path is a signalling section too: reclaim in a finished callback is reported', () => {
    const ring = new TestRing({ ops: { runJob: () => null } });
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job = new DrmSchedJob(entity);
    job.arm();
    job.finished.addCallback(() => mightReclaim());
    job.push();
    ring.drain();
    assert.deepEqual(seen(), ['circular-dependency dma_fence_map -> fs_reclaim']);
    entity.fini();
    ring.sched.fini();
  });

  it('freeJob is outside the section: it may allocate', () => {
    const ring = new TestRing({ ops: { runJob: () => null, freeJob: () => mightReclaim() } });
    runOne(ring);
    assert.deepEqual(seen(), []);
    ring.sched.fini();
  });
});
