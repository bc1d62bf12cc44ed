import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FenceTimeoutError } from '../../src/base/errors.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { shareDmaBuf } from '../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../src/heap/dma-buf-import.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { mockFence } from '../helpers/mock-fence.js';
import { pending } from '../helpers/movable-buffer.js';

describe('the implicit fences of a shared buffer (SharedResvParty, one thread, two parties)', () => {
  it('sanity: an import publishes its access where the exporter sees it', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    using view = importDmaBuf(share.descriptor());
    await view.beginCpuAccess({ write: true });
    assert.equal(share.remoteFences(DmaResvUsage.Write).length, 1);
    view.endCpuAccess();
    assert.equal(share.remoteFences(DmaResvUsage.Bookkeep).length, 0, 'gone once the access ended');
  });

  it('reads share, a write waits for every read and write, in both directions', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    using view = importDmaBuf(share.descriptor());
    await view.beginCpuAccess({ write: false });
    await buf.beginCpuAccess({ write: false }); // read + read: no wait
    buf.endCpuAccess();
    const writing = buf.beginCpuAccess({ write: true });
    assert.equal(await pending(writing), true, "the exporter's write waits for the import's read");
    view.endCpuAccess();
    await writing;
    const importWrite = view.beginCpuAccess({ write: true });
    assert.equal(await pending(importWrite), true, "the import's write waits for the exporter's write");
    buf.endCpuAccess();
    await importWrite;
    view.endCpuAccess();
  });

  it('asynchronous work: published fences are waited for, pull() brings them into the local reservation', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    using view = importDmaBuf(share.descriptor());
    const gpuWrite = mockFence();
    await buf.resv.lock();
    buf.resv.reserveFences(1);
    buf.resv.addFence(gpuWrite, DmaResvUsage.Write);
    buf.resv.unlock();
    assert.equal(share.publish(), 1);
    assert.equal(share.publish(), 0, 'published once');
    assert.equal(await view.pull(), 1);
    assert.equal(view.resv.getFences(DmaResvUsage.Write).length, 1);
    assert.equal(view.resv.getFences(DmaResvUsage.Kernel).length, 0, 'the usage crossed too');
    using file = await view.exportSyncFile({ write: false });
    assert.equal(file.status, 'active');
    const reading = view.beginCpuAccess({ write: false });
    assert.equal(await pending(reading), true);
    gpuWrite.signal();
    await reading;
    view.endCpuAccess();
    // The import's own asynchronous read is waited for by the exporter's next write.
    const gpuRead = mockFence();
    await view.importSyncFile(new SyncFile(gpuRead), { write: false });
    assert.equal(share.remoteFences(DmaResvUsage.Read).length, 1);
    const writing = buf.beginCpuAccess({ write: true });
    assert.equal(await pending(writing), true);
    gpuRead.signal();
    await writing;
    buf.endCpuAccess();
  });

  it('a wait that times out or is aborted leaves nothing published', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    using view = importDmaBuf(share.descriptor());
    const write = mockFence();
    share.publishFence(write, DmaResvUsage.Write);
    await assert.rejects(view.beginCpuAccess({ write: true, timeout: 5 }), FenceTimeoutError);
    const abort = new AbortController();
    const aborted = view.beginCpuAccess({ write: false, signal: abort.signal });
    abort.abort(new Error('no'));
    await assert.rejects(aborted, /no/);
    assert.equal(share.remoteFences(DmaResvUsage.Bookkeep).length, 0, 'the import published nothing');
    write.signal();
    await buf.beginCpuAccess({ write: true, timeout: 100 });
    buf.endCpuAccess();
  });

  it('two conflicting writers starting together: the earlier party goes first, nobody deadlocks', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    using first = importDmaBuf(share.descriptor());
    using second = importDmaBuf(share.descriptor());
    const order: string[] = [];
    const a = second.beginCpuAccess({ write: true }).then(() => order.push('second'));
    const b = first.beginCpuAccess({ write: true }).then(() => order.push('first'));
    await Promise.race([a, b]);
    assert.equal(order.length, 1, 'one writer at a time');
    (order[0] === 'first' ? first : second).endCpuAccess();
    await Promise.all([a, b]);
    (order[1] === 'first' ? first : second).endCpuAccess();
    assert.equal(new Set(order).size, 2);
  });
});
