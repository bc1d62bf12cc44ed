import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { ATTACH, DmaBuf, SPARE } from '../../src/heap/dma-buf.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { BugError, FenceTimeoutError, InvalidArgumentError } from '../../src/base/errors.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { mockFence } from '../helpers/mock-fence.js';
import { nextTurn } from '../helpers/completion.js';

async function addFence(buf: DmaBuf, fence: DmaFence, usage: DmaResvUsage): Promise<void> {
  await buf.resv.lock();
  buf.resv.reserveFences(1);
  buf.resv.addFence(fence, usage);
  buf.resv.unlock();
}

/** Starts `p` and reports, after a few turns, whether it has settled yet. */
function track(p: Promise<void>): { readonly done: boolean; readonly promise: Promise<void> } {
  const state = { done: false, promise: p };
  p.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

const USE_AFTER_PUT: [string, (buf: DmaBuf) => unknown][] = [
  ['buffer', (b) => b.buffer],
  ['bytes()', (b) => b.bytes()],
  ['get()', (b) => b.get()],
  ['put()', (b) => b.put()],
];

describe('DmaBuf', () => {
  it('has its size, its memory, one reference and a reservation object', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(5000);
    assert.equal(buf.size, 8192);
    assert.equal(buf.requestedSize, 5000);
    assert.equal(buf.buffer.byteLength, 8192);
    assert.equal(buf.bytes().length, 5000);
    assert.equal(buf.refcount, 1);
    assert.ok(buf.resv instanceof DmaResv);
    assert.match(buf.name, /system, 8192 bytes/);
    assert.equal(buf.released, false);
    buf.put();
    assert.equal(buf.released, true);
  });

  it('bytes() views the buffer memory: writes are seen through buffer', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(16);
    buf.bytes()[3] = 42;
    assert.equal(new Uint8Array(buf.buffer)[3], 42);
  });

  it('get() adds a reference and put() drops one; the last put releases the memory to the heap', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(4096);
    assert.equal(buf.get(), buf);
    assert.equal(buf.refcount, 2);
    buf.put();
    assert.equal(buf.refcount, 1);
    assert.equal(heap.stats().liveBytes, 4096, 'still live while referenced');
    buf.put();
    assert.equal(buf.refcount, 0);
    assert.deepEqual([heap.stats().liveBytes, heap.stats().pendingBytes], [0, 4096]);
  });

  for (const [what, use] of USE_AFTER_PUT) {
    it(`late: ${what} after the last put is a BugError naming the buffer`, async () => {
      await using heap = new DmaHeap();
      const buf = heap.allocate(4096);
      buf.put();
      assert.throws(
        () => use(buf),
        (err: unknown) =>
          err instanceof BugError && err.message.includes(buf.name) && /use after free/.test(err.message),
      );
      assert.equal(heap.stats().pendingBytes, 4096, 'the heap is unaffected');
    });
  }

  it('late: beginCpuAccess after the last put rejects with a BugError naming the buffer', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(4096);
    buf.put();
    await assert.rejects(
      buf.beginCpuAccess({ write: false }),
      (err: unknown) => err instanceof BugError && err.message.includes(buf.name),
    );
  });

  it('[Symbol.dispose] is the creator put, once', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(4096);
    buf.get();
    buf[Symbol.dispose]();
    buf[Symbol.dispose]();
    assert.equal(buf.refcount, 1, 'the second dispose did not steal the other reference');
    buf.put();
    assert.equal(buf.released, true);
  });

  it('late: dispose after the buffer was released by put does nothing', async () => {
    await using heap = new DmaHeap();
    {
      using buf = heap.allocate(4096);
      buf.put();
    }
    assert.deepEqual([heap.stats().liveBytes, heap.stats().pendingBytes], [0, 4096]);
  });

  it('using releases at the end of the scope', async () => {
    await using heap = new DmaHeap();
    {
      using buf = heap.allocate(4096);
      assert.equal(buf.refcount, 1);
    }
    assert.equal(heap.stats().liveBytes, 0);
  });

  it('the last put while the reservation lock is held is a BugError and changes nothing', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(4096);
    await buf.resv.lock();
    assert.throws(() => buf.put(), BugError);
    assert.deepEqual([buf.refcount, buf.released, heap.stats().liveBytes], [1, false, 4096]);
    buf.resv.unlock();
    buf.put();
    assert.equal(buf.released, true);
  });

  it('rejects an export that does not fit its memory', async () => {
    await using heap = new DmaHeap();
    const release = (): void => {};
    assert.throws(
      () => new DmaBuf({ heap, buffer: new ArrayBuffer(8), requestedSize: 9, name: 'x', release }),
      InvalidArgumentError,
    );
    assert.throws(
      () => new DmaBuf({ heap, buffer: new Uint8Array(8) as never, requestedSize: 8, name: 'x', release }),
      InvalidArgumentError,
    );
  });

  it('a spare has no memory until attached, then is an ordinary buffer; attaching twice is a BugError', async () => {
    await using heap = new DmaHeap();
    const released: ArrayBuffer[] = [];
    const release = (memory: ArrayBuffer | SharedArrayBuffer): void => void released.push(memory as ArrayBuffer);
    const spare = new DmaBuf({ heap, release }, SPARE);
    assert.equal(spare.released, true);
    const memory = new ArrayBuffer(4096);
    assert.equal(spare[ATTACH](memory, 4096, 100), spare);
    assert.deepEqual([spare.size, spare.requestedSize, spare.refcount, spare.released], [4096, 100, 1, false]);
    assert.equal(spare.bytes().length, 100);
    assert.throws(() => spare[ATTACH](new ArrayBuffer(4096), 4096, 1), BugError);
    assert.equal(spare.buffer, memory, 'the failed attach changed nothing');
    const plain = new DmaBuf({ heap, buffer: new ArrayBuffer(4096), requestedSize: 1, release });
    assert.throws(() => plain[ATTACH](new ArrayBuffer(4096), 4096, 1), BugError);
    spare.put();
    plain.put();
    assert.deepEqual(released.length, 2);
    assert.equal(released[0], memory);
  });
});

describe('DmaBuf CPU access', () => {
  it('begins at once with no fences, and balances with endCpuAccess', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    await buf.beginCpuAccess({ write: true });
    await buf.beginCpuAccess({ write: false });
    assert.equal(buf.cpuAccessDepth, 2);
    buf.endCpuAccess();
    buf.endCpuAccess();
    assert.equal(buf.cpuAccessDepth, 0);
  });

  it('endCpuAccess without a begin is a BugError', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    assert.throws(() => buf.endCpuAccess(), BugError);
    await buf.beginCpuAccess({ write: false });
    buf.endCpuAccess();
    assert.throws(() => buf.endCpuAccess(), BugError, 'late: after the matching end');
  });

  it('a read waits for a Write fence', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const gpuWrite = mockFence();
    await addFence(buf, gpuWrite, DmaResvUsage.Write);
    const read = track(buf.beginCpuAccess({ write: false }));
    await nextTurn();
    assert.equal(read.done, false, 'the read waits for the GPU write');
    gpuWrite.signal();
    await read.promise;
    assert.equal(buf.cpuAccessDepth, 1);
    buf.endCpuAccess();
  });

  it('a read does not wait for a Read fence', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const gpuRead = mockFence();
    await addFence(buf, gpuRead, DmaResvUsage.Read);
    await buf.beginCpuAccess({ write: false });
    assert.equal(gpuRead.signaledFlag, false, 'began while the GPU read is still running');
    buf.endCpuAccess();
  });

  it('a write waits for a Read fence and for a Write fence', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const gpuRead = mockFence();
    const gpuWrite = mockFence();
    await addFence(buf, gpuRead, DmaResvUsage.Read);
    await addFence(buf, gpuWrite, DmaResvUsage.Write);
    const write = track(buf.beginCpuAccess({ write: true }));
    await nextTurn();
    gpuWrite.signal();
    await nextTurn();
    assert.equal(write.done, false, 'still waiting for the GPU read');
    gpuRead.signal();
    await write.promise;
    buf.endCpuAccess();
  });

  it('reads and writes both wait for Kernel fences; neither waits for Bookkeep fences', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const clear = mockFence();
    const pageTable = mockFence();
    await addFence(buf, clear, DmaResvUsage.Kernel);
    await addFence(buf, pageTable, DmaResvUsage.Bookkeep);
    const read = track(buf.beginCpuAccess({ write: false }));
    const write = track(buf.beginCpuAccess({ write: true }));
    await nextTurn();
    assert.deepEqual([read.done, write.done], [false, false]);
    clear.signal();
    await Promise.all([read.promise, write.promise]);
    assert.equal(pageTable.signaledFlag, false);
    buf.endCpuAccess();
    buf.endCpuAccess();
  });

  it('late: fences already signaled do not delay either access', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const done = mockFence();
    done.signal();
    await addFence(buf, done, DmaResvUsage.Write);
    await buf.beginCpuAccess({ write: true });
    buf.endCpuAccess();
  });

  it('times out with FenceTimeoutError, and no access begins', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const stuck = mockFence();
    await addFence(buf, stuck, DmaResvUsage.Write);
    const access = buf.beginCpuAccess({ write: false, timeout: 10 });
    const settled = assert.rejects(
      access,
      (err: unknown) => err instanceof FenceTimeoutError && err.message.includes(buf.name) && /10 ms/.test(err.message),
    );
    await clock.tick(9);
    await clock.tick(1);
    await settled;
    assert.equal(buf.cpuAccessDepth, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  it('late: a fence signaled before the timeout lets the access begin', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const job = mockFence();
    await addFence(buf, job, DmaResvUsage.Write);
    const access = buf.beginCpuAccess({ write: true, timeout: 10 });
    await clock.tick(5);
    job.signal();
    await access;
    buf.endCpuAccess();
  });

  it('aborts with signal.reason, and no access begins', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const stuck = mockFence();
    await addFence(buf, stuck, DmaResvUsage.Write);
    const ctl = new AbortController();
    const reason = new Error('user navigated away');
    const access = buf.beginCpuAccess({ write: true, signal: ctl.signal });
    ctl.abort(reason);
    await assert.rejects(access, (err) => err === reason);
    assert.equal(buf.cpuAccessDepth, 0);
    stuck.signal();
  });

  it('late: a buffer released while its access waited rejects with a BugError', async () => {
    await using heap = new DmaHeap();
    const buf = heap.allocate(4096);
    const job = mockFence();
    await addFence(buf, job, DmaResvUsage.Write);
    const access = buf.beginCpuAccess({ write: false });
    buf.put();
    job.signal();
    await assert.rejects(access, /released while it waited/);
  });

  it('rejects bad options with InvalidArgumentError', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    await assert.rejects(buf.beginCpuAccess({ write: 'yes' } as never), InvalidArgumentError);
    await assert.rejects(buf.beginCpuAccess(undefined as never), InvalidArgumentError);
    await assert.rejects(buf.beginCpuAccess({ write: true, timeout: -1 }), InvalidArgumentError);
  });
});
