/**
 * DrmSchedFence: the pair's names, contexts, order, deadline forwarding and recognition.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { DrmSchedFence, toDrmSchedFence } from '../../src/sched/sched-fence.js';
import { mockFence } from '../helpers/mock-fence.js';

describe('DrmSchedFence', () => {
  it('sanity: two fences on consecutive contexts with one seqno, named drm_sched / the scheduler', () => {
    const ctx = fenceContextAlloc(2);
    const pair = new DrmSchedFence({}, 'gfx', ctx, 7);
    assert.equal(pair.scheduled.context, ctx);
    assert.equal(pair.finished.context, ctx + 1);
    assert.equal(pair.scheduled.seqno, 7);
    assert.equal(pair.finished.seqno, 7);
    assert.equal(pair.finished.driverName, 'drm_sched');
    assert.equal(pair.scheduled.timelineName, 'gfx');
  });

  it('keeps its timeline name for ever, whatever happens to the scheduler', () => {
    const owner: { name: string } = { name: 'gfx' };
    const pair = new DrmSchedFence(owner, owner.name, fenceContextAlloc(2), 1);
    owner.name = 'renamed';
    pair.markScheduled(null);
    pair.markFinished();
    assert.equal(pair.finished.ops.getTimelineName(pair.finished), 'gfx');
    assert.match(pair.finished.describe(), / signaled$/);
  });

  it('markFinished sets the error first; a second call changes nothing', () => {
    const pair = new DrmSchedFence({}, 'gfx', fenceContextAlloc(2), 1);
    pair.markScheduled(null);
    pair.markFinished(new DmaBufError('EIO', 'hardware error'));
    pair.markFinished(new DmaBufError('ENOMEM', 'late'));
    assert.equal((pair.finished.error as DmaBufError).code, 'EIO');
  });

  it('stores the earliest deadline and forwards it to the parent once published, then directly', () => {
    const seen: number[] = [];
    const parent = new DmaFence(
      { getDriverName: () => 'hw', getTimelineName: () => 'hw', setDeadline: (_f, d) => seen.push(d) },
      fenceContextAlloc(),
      1,
    );
    const pair = new DrmSchedFence({}, 'gfx', fenceContextAlloc(2), 1);
    pair.finished.setDeadline(10);
    pair.finished.setDeadline(20);
    assert.deepEqual(seen, []);
    pair.markScheduled(parent);
    assert.equal(pair.parent, parent);
    assert.deepEqual(seen, [10]);
    pair.finished.setDeadline(5);
    assert.deepEqual(seen, [10, 5]);
    pair.scheduled.setDeadline(1); // scheduled takes no deadline
    assert.deepEqual(seen, [10, 5]);
  });

  it('toDrmSchedFence recognises both members and nothing else', () => {
    const pair = new DrmSchedFence({}, 'gfx', fenceContextAlloc(2), 1);
    assert.equal(toDrmSchedFence(pair.scheduled), pair);
    assert.equal(toDrmSchedFence(pair.finished), pair);
    assert.equal(toDrmSchedFence(mockFence()), null);
  });

  it('setDontPipeline is a one-way flag', () => {
    const pair = new DrmSchedFence({}, 'gfx', fenceContextAlloc(2), 1);
    assert.equal(pair.dontPipeline, false);
    pair.setDontPipeline();
    assert.equal(pair.dontPipeline, true);
  });
});
