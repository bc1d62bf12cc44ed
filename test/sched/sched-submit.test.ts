/**
 * The standard submit path: DrmExec locks the buffers, implicit dependencies come from each
 * reservation, the job is armed and its finished fence published with the right usage, then
 * pushed. A reader waits for exactly the last writer; a writer waits for readers and writers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/base/errors.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DrmSchedEntityKilledError, DrmSchedJob } from '../../src/sched/sched-job.js';
import { submitJob } from '../../src/sched/sched-submit.js';
import { Bo } from '../helpers/exec-objects.js';
import { TestRing } from '../helpers/sched-ring.js';

describe('submitJob', () => {
  it('sanity: the job runs and its finished fence sits on each buffer with the access usage', async () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const [src, dst] = [new Bo('src'), new Bo('dst')];
    const job = new DrmSchedJob(entity);
    await submitJob(job, [
      { obj: src, write: false },
      { obj: dst, write: true },
    ]);
    assert.equal(job.state, 'queued');
    assert.equal(src.resv.isLocked || dst.resv.isLocked, false, 'everything unlocked');
    await dst.resv.lock();
    assert.deepEqual([...dst.resv.fences(DmaResvUsage.Bookkeep)], [{ fence: job.finished, usage: DmaResvUsage.Write }]);
    dst.resv.unlock();
    await src.resv.lock();
    assert.deepEqual([...src.resv.fences(DmaResvUsage.Bookkeep)], [{ fence: job.finished, usage: DmaResvUsage.Read }]);
    src.resv.unlock();
    ring.drain();
    ring.complete(job);
    entity.fini();
    ring.sched.fini();
  });

  it('a second client reading the buffer waits for exactly the writer; a later writer waits for both', async () => {
    const gfx = new TestRing({ name: 'gfx' });
    const copy = new TestRing({ name: 'copy' });
    const writerClient = new DrmSchedEntity({ schedulers: [gfx.sched], name: 'writer' });
    const readerClient = new DrmSchedEntity({ schedulers: [copy.sched], name: 'reader' });
    const [shared, other] = [new Bo('shared'), new Bo('other')];

    const write = new DrmSchedJob(writerClient);
    await submitJob(write, [{ obj: shared, write: true }]);
    const read = new DrmSchedJob(readerClient);
    await submitJob(read, [
      { obj: shared, write: false },
      { obj: other, write: false },
    ]);
    assert.deepEqual(read.dependencies, [write.finished], 'the reader depends on the writer and nothing else');
    gfx.drain();
    copy.drain();
    assert.deepEqual(copy.calls('run'), [], 'the reader waits for the write on another ring');
    gfx.complete(write);
    copy.drain();
    assert.deepEqual(copy.calls('run'), [read]);

    const rewrite = new DrmSchedJob(writerClient);
    await submitJob(rewrite, [
      { obj: shared, write: true },
      { obj: shared, write: false }, // named twice: counts once, as a write
    ]);
    assert.deepEqual(new Set(rewrite.dependencies), new Set([write.finished, read.finished]));
    gfx.drain();
    assert.equal(gfx.calls('run').includes(rewrite), false, 'the rewrite waits for the reader');
    copy.complete(read);
    gfx.drain();
    assert.ok(gfx.calls('run').includes(rewrite));
    gfx.complete(rewrite);
    writerClient.fini();
    readerClient.fini();
    gfx.sched.fini();
    copy.sched.fini();
  });

  it('failing before arm publishes nothing and leaves the job un-armed; locks are released', async () => {
    const ring = new TestRing();
    const entity = new DrmSchedEntity({ schedulers: [ring.sched] });
    const buffer = new Bo('buffer');
    entity.kill();
    const job = new DrmSchedJob(entity);
    await assert.rejects(submitJob(job, [{ obj: buffer, write: true }]), DrmSchedEntityKilledError);
    assert.equal(job.state, 'initialized');
    job.cleanup();
    assert.equal(buffer.resv.isLocked, false);
    assert.equal(buffer.resv.testSignaled(DmaResvUsage.Bookkeep), true, 'no fence was added');
    const aborted = new AbortController();
    aborted.abort(new Error('cancelled by the client'));
    const live = new DrmSchedEntity({ schedulers: [ring.sched] });
    const job2 = new DrmSchedJob(live);
    await assert.rejects(
      submitJob(job2, [{ obj: buffer, write: true }], { signal: aborted.signal }),
      /cancelled by the client/,
    );
    assert.equal(job2.state, 'initialized');
    await assert.rejects(submitJob(job2, 'buffer' as never), InvalidArgumentError);
    await assert.rejects(submitJob(job2, [{ obj: buffer }] as never), InvalidArgumentError);
    live.fini();
    ring.sched.fini();
  });
});
