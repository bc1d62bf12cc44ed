import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { unwrap } from '../../src/fence/dma-fence-unwrap.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { dmaBufExportSyncFile, dmaBufImportSyncFile } from '../../src/heap/dma-buf-sync-file.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { mockFence } from '../helpers/mock-fence.js';
import { fenceContextAlloc } from '../../src/fence/dma-fence.js';

describe('dma-buf sync-file ioctls', () => {
  it('sanity: an imported write is what a read exports', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const write = mockFence();
    await dmaBufImportSyncFile(buf, new SyncFile(write), { write: true });
    using file = dmaBufExportSyncFile(buf, { write: false });
    assert.equal(file.fence, write);
  });

  it('with nothing pending, export gives a signaled stub, as the kernel does', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    using file = dmaBufExportSyncFile(buf, { write: true });
    assert.equal(file.fence, DmaFence.getStub());
    assert.equal(file.status, 'signaled');
  });

  it('a read waits for writes; a write waits for reads and writes', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const [w, r] = [mockFence(), mockFence()];
    await dmaBufImportSyncFile(buf, new SyncFile(w), { write: true });
    await dmaBufImportSyncFile(buf, new SyncFile(r), { write: false });
    assert.deepEqual([...unwrap(dmaBufExportSyncFile(buf, { write: false }).fence)], [w]);
    assert.deepEqual(new Set(unwrap(dmaBufExportSyncFile(buf, { write: true }).fence)), new Set([w, r]));
    w.signal();
    assert.deepEqual([...unwrap(dmaBufExportSyncFile(buf, { write: true }).fence)], [r], 'signaled fences drop out');
  });

  it('import unwraps containers into one fence per context, with the usage asked for', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    const [a, b] = [mockFence(), mockFence()];
    const array = new DmaFenceArray([a, b], fenceContextAlloc(), 1);
    const added = await dmaBufImportSyncFile(buf, new SyncFile(array), { write: false });
    assert.deepEqual(new Set(added), new Set([a, b]));
    assert.deepEqual(
      [...buf.resv.fencesUnlocked(DmaResvUsage.Bookkeep)].map((e) => e.usage),
      [DmaResvUsage.Read, DmaResvUsage.Read],
    );
    const done = mockFence();
    done.signal();
    assert.deepEqual(await dmaBufImportSyncFile(buf, new SyncFile(done), { write: true }), [], 'nothing to add');
  });

  it('refuses bad arguments, and an aborted lock wait adds nothing', async () => {
    await using heap = new DmaHeap();
    using buf = heap.allocate(4096);
    assert.throws(() => dmaBufExportSyncFile(buf, {} as { write: boolean }), InvalidArgumentError);
    assert.throws(() => dmaBufExportSyncFile({} as typeof buf, { write: true }), InvalidArgumentError);
    await assert.rejects(
      dmaBufImportSyncFile(buf, 'file' as unknown as SyncFile, { write: true }),
      InvalidArgumentError,
    );
    await buf.resv.lock();
    const abort = new AbortController();
    const importing = dmaBufImportSyncFile(buf, new SyncFile(mockFence()), { write: true, signal: abort.signal });
    abort.abort(new Error('gave up'));
    await assert.rejects(importing, /gave up/);
    buf.resv.unlock();
    assert.equal(buf.resv.getFences(DmaResvUsage.Bookkeep).length, 0);
  });
});
