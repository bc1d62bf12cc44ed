import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { SharedTimeline, SharedTimelinePoint, type SharedTimelineDescriptor } from '../../src/fence/shared-timeline.js';
import { WorkerPeer } from '../helpers/worker-peer.js';

const PEER = new URL('../helpers/fence-peer.worker.ts', import.meta.url);

describe('SharedTimeline', () => {
  it('sanity: a point fence signals when the counter reaches it', async () => {
    const timeline = new SharedTimeline({ name: 'sanity' });
    const point = timeline.fence(2);
    assert.equal(point.isSignaled(), false);
    timeline.signal(1);
    assert.equal(point.isSignaled(), false);
    timeline.signal(2);
    assert.equal(await point.wait({ timeout: 1000 }), true);
    assert.equal(point.error, undefined);
  });

  it('starts at 0; the counter only grows and signal() says whether it moved', () => {
    const timeline = new SharedTimeline();
    assert.equal(timeline.value, 0);
    assert.equal(timeline.signal(5), true);
    assert.equal(timeline.signal(3), false, 'lower point: no change');
    assert.equal(timeline.signal(5), false, 'same point: no change');
    assert.equal(timeline.value, 5);
    assert.equal(timeline.fence(4).signaledFlag, true, 'a reached point is signaled at once');
  });

  it('point fences are 64-bit fences on one context per timeline, named after it', () => {
    const timeline = new SharedTimeline({ name: 'frames' });
    const a = timeline.fence(2 ** 40);
    const b = timeline.fence(2 ** 40 + 1);
    assert.ok(a instanceof SharedTimelinePoint && a instanceof DmaFence);
    assert.equal(a.context, b.context);
    assert.equal(a.isSeqno64, true);
    assert.equal(DmaFence.isLater(b, a), true);
    assert.equal(a.timelineName, 'frames');
    assert.notEqual(new SharedTimeline().fence(1).context, a.context);
  });

  it('a jump signals every watched point up to the new value in one wake, lower points first', async () => {
    const timeline = new SharedTimeline();
    const order: number[] = [];
    const points = [7, 3, 9, 1, 5].map((p) => timeline.fence(p));
    let fourDone: () => void = () => {};
    const four = new Promise<void>((resolve) => (fourDone = resolve));
    for (const p of points)
      p.addCallback((f) => {
        if (order.push(f.seqno) === 4) fourDone();
      });
    timeline.signal(8);
    // No poll or wait here: the one wake of this thread's waiter signals them.
    await four;
    assert.deepEqual(order, [1, 3, 5, 7]);
    assert.equal(points[2]!.signaledFlag, false);
    timeline.signal(9);
    await points[2]!.wait();
  });

  it('fail() ends the timeline: points above the counter signal with the error, now and later', async () => {
    const timeline = new SharedTimeline();
    timeline.signal(2);
    const above = timeline.fence(3);
    const waited = above.wait();
    assert.equal(timeline.fail('ENODEV'), true);
    assert.equal(timeline.fail('EIO'), false, 'the first failure stays');
    await waited;
    assert.ok(above.error instanceof DmaBufError && above.error.code === 'ENODEV', String(above.error));
    assert.equal(timeline.fence(2).error, undefined, 'a point reached before the failure is fine');
    assert.equal((timeline.fence(10).error as DmaBufError).code, 'ENODEV');
    assert.equal(timeline.signal(4), false, 'a failed timeline refuses to move');
    assert.equal(timeline.error, 'ENODEV');
    assert.equal(await timeline.wait(100, { timeout: 0 }), true, 'wait resolves: the failure settles it');
  });

  it('wait() bounds and aborts like a fence wait', async () => {
    const timeline = new SharedTimeline();
    assert.equal(await timeline.wait(1, { timeout: 0 }), false);
    assert.equal(await timeline.wait(1, { timeout: 2 }), false);
    const abort = new AbortController();
    const waited = timeline.wait(1, { signal: abort.signal });
    abort.abort(new Error('stop'));
    await assert.rejects(waited, /stop/);
    await assert.rejects(timeline.wait(1, { timeout: -1 }), InvalidArgumentError);
    setTimeout(() => timeline.signal(1), 1);
    assert.equal(await timeline.wait(1), true);
  });

  it('rejects bad points, codes and descriptors', () => {
    const timeline = new SharedTimeline();
    for (const bad of [-1, 1.5, Number.NaN, '3']) {
      assert.throws(() => timeline.signal(bad as number), InvalidArgumentError, String(bad));
      assert.throws(() => timeline.fence(bad as number), InvalidArgumentError, String(bad));
    }
    assert.throws(() => timeline.signal(0), InvalidArgumentError, 'point 0 is the start: nothing to signal');
    assert.equal(timeline.fence(0).signaledFlag, true, 'and always reached');
    assert.throws(() => timeline.fail('EWHATEVER' as 'EIO'), InvalidArgumentError);
    assert.throws(() => SharedTimeline.fromDescriptor({} as SharedTimelineDescriptor), InvalidArgumentError);
    const wrong = { ...timeline.descriptor, buffer: new SharedArrayBuffer(48) };
    assert.throws(() => SharedTimeline.fromDescriptor(wrong), /SharedTimeline's descriptor/);
    assert.throws(() => new SharedTimeline({ name: 3 as unknown as string }), InvalidArgumentError);
  });

  it('a handle from the descriptor is the same timeline (a structured clone too)', async () => {
    const timeline = new SharedTimeline({ name: 'cloned' });
    const other = SharedTimeline.fromDescriptor(structuredClone(timeline.descriptor));
    assert.equal(other.name, 'cloned');
    const point = other.fence(1);
    timeline.signal(1);
    await point.wait();
    assert.equal(other.value, 1);
    assert.equal(point.context, timeline.fence(1).context, 'one context per timeline per thread');
  });

  it('three worker threads signal and wait in turn; the main thread sees every point', async () => {
    const last = 1500;
    const timeline = new SharedTimeline({ name: 'relay' });
    const peers = [0, 1, 2].map(() => WorkerPeer.start(PEER));
    try {
      const seen: number[] = [];
      const points = [1, 500, 1000, last].map((p) => timeline.fence(p));
      for (const p of points) p.addCallback((f) => seen.push(f.seqno));
      const counts = await Promise.all(
        peers.map((peer, index) =>
          peer.request<number>('relay', { descriptor: timeline.descriptor, index, workers: 3, last }),
        ),
      );
      assert.deepEqual(counts, [500, 500, 500], 'each worker signalled its own points');
      assert.equal(await points.at(-1)!.wait({ timeout: 10_000 }), true);
      assert.equal(timeline.value, last);
      assert.deepEqual(seen, [1, 500, 1000, last]);
    } finally {
      await Promise.all(peers.map((p) => p.terminate()));
    }
  });
});
