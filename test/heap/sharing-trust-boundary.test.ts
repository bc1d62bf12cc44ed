/**
 * Issue 10's sweep over the sharing API (shared fences and timelines, dma-buf export and import,
 * the sync-file ioctls): every case is a defect found at its public entry points, written before
 * the fix. Each call must fail with a typed error before it changes anything (no slot, import
 * right or state used up) and the object must stay usable afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import {
  SharedFenceRegion,
  abandonSharedFenceRegion,
  exportFence,
  exportSyncFile,
  importFence,
  importSyncFile,
  isSharedFenceRegion,
  sharedFenceRegionBytes,
  watchSharedFences,
} from '../../src/fence/shared-fence.js';
import { SharedTimeline } from '../../src/fence/shared-timeline.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { DmaBufShare, shareDmaBuf } from '../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../src/heap/dma-buf-import.js';
import { dmaBufExportSyncFile, dmaBufImportSyncFile } from '../../src/heap/dma-buf-sync-file.js';
import { mockFence } from '../helpers/mock-fence.js';
import { invalid, notASignal } from '../helpers/invalid-argument.js';

describe('sharing sweep (issue 10)', () => {
  describe('shared fences', () => {
    it('sanity: a one-slot region exports, signals and reuses its slot', () => {
      const region = new SharedFenceRegion({ slots: 1 });
      const fence = mockFence();
      const d = region.tryExport(fence, 1);
      assert.ok(d !== undefined);
      fence.signal();
      importFence(d).isSignaled();
      assert.ok(region.tryExport(mockFence(), 0) !== undefined, 'the slot came back');
    });

    it('tryExport(undefined) is refused without taking a slot', () => {
      const region = new SharedFenceRegion({ slots: 1 });
      assert.throws(() => region.tryExport(undefined as never, 1), InvalidArgumentError);
      assert.throws(() => region.tryExport(mockFence(), -1), InvalidArgumentError);
      assert.throws(() => region.tryExport(mockFence(), 1, 5 as never), InvalidArgumentError);
      assert.throws(() => region.tryExport(mockFence(), 1, undefined, Number.NaN), InvalidArgumentError);
      assert.equal(region.pendingExports, 0);
      assert.ok(region.tryExport(mockFence(), 1) !== undefined, 'the one slot is still free');
    });

    it('unknown export options are refused', async () => {
      await invalid(() => exportFence(mockFence(), { importer: 2 } as never), 'options.importer');
      await invalid(() => new SharedFenceRegion({ slot: 4 } as never), 'options.slot');
    });

    it('importSyncFile with a bad name is refused before it uses the import right', () => {
      const fence = mockFence();
      const descriptor = exportSyncFile(new SyncFile(fence, 'frame'));
      assert.throws(() => importSyncFile({ ...descriptor, name: 5 as never }), InvalidArgumentError);
      assert.throws(() => importSyncFile({ ...descriptor, name: 'x'.repeat(40) }), InvalidArgumentError);
      using file = importSyncFile(descriptor); // the right is still there
      assert.equal(file.name, 'frame');
      fence.signal();
    });

    it("abandonSharedFenceRegion and SharedTimeline.fail refuse 'EBOGUS' and keep working", () => {
      const region = new SharedFenceRegion({ slots: 1 });
      assert.throws(() => abandonSharedFenceRegion(region.buffer, 'EBOGUS' as never), InvalidArgumentError);
      assert.equal(region.abandoned, false);
      const timeline = new SharedTimeline();
      assert.throws(() => timeline.fail('EBOGUS' as never), InvalidArgumentError);
      assert.equal(timeline.error, undefined);
      assert.equal(timeline.fail('EIO'), true);
      assert.equal(timeline.error, 'EIO');
    });

    it('SharedTimeline refuses unknown options and a signal that is not one', async () => {
      await invalid(() => new SharedTimeline({ nmae: 'x' } as never), 'options.nmae');
      const timeline = new SharedTimeline();
      await invalid(() => timeline.wait(1, { signal: notASignal }), 'options.signal');
      timeline.signal(1);
      assert.equal(await timeline.wait(1, { timeout: 0 }), true);
    });
  });

  describe('shared buffers', () => {
    it("publishFence(f, 'write') publishes a write, as DmaResvUsage.Write does", async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      using share = shareDmaBuf(buf);
      using view = importDmaBuf(share.descriptor());
      const write = mockFence();
      assert.equal(share.publishFence(write, 'write' as never), true);
      assert.equal(await view.pull(), 1);
      assert.equal(view.resv.getFences(DmaResvUsage.Write).length, 1, 'a write, not a kernel fence');
      assert.equal(view.resv.getFences(DmaResvUsage.Kernel).length, 0);
      assert.throws(() => share.publishFence(mockFence(), 'writ' as never), InvalidArgumentError);
      assert.throws(() => share.publishFence(5 as never, DmaResvUsage.Read), InvalidArgumentError);
      assert.throws(() => share.remoteFences(9 as never), InvalidArgumentError);
      write.signal();
    });

    it('exportSyncFile({ write, signal }) with a real signal works; a fake one is refused', async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      using share = shareDmaBuf(buf);
      using view = importDmaBuf(share.descriptor());
      const signal = new AbortController().signal;
      using file = await view.exportSyncFile({ write: true, signal });
      assert.equal(file.status, 'signaled');
      using direct = dmaBufExportSyncFile(buf, { write: true, signal });
      assert.equal(direct.status, 'signaled');
      await invalid(() => view.exportSyncFile({ write: true, signal: notASignal }), 'options.signal');
      await invalid(() => view.importSyncFile(new SyncFile(mockFence()), { write: 'yes' as never }), 'options.write');
      await invalid(
        () => dmaBufImportSyncFile(buf, new SyncFile(mockFence()), { write: true, signal: notASignal }),
        'options.signal',
      );
    });

    it("attach({ dynamic: 'yes' }) is refused and pins nothing", async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      using share = shareDmaBuf(buf);
      using view = importDmaBuf(share.descriptor());
      await invalid(() => view.attach({ dynamic: 'yes' as never }), 'options.dynamic');
      await invalid(() => view.attach({ dynamic: true, moveNotify: 5 as never }), 'options.moveNotify');
      await invalid(() => view.attach({ dynamc: true } as never), 'options.dynamc');
      assert.equal(share.pinned, false);
      const pin = view.attach();
      assert.equal(share.pinned, true);
      pin.detach();
    });

    it('setAccessHook({}) is refused and the buffer keeps its hook', async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      await invalid(() => buf.setAccessHook({} as never), 'hook');
      await invalid(() => buf.setAccessHook(5 as never), 'hook');
      await buf.beginCpuAccess({ write: true });
      buf.endCpuAccess();
    });

    it("revoke('EBOGUS') is refused and the share stays open", async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      const share = shareDmaBuf(buf);
      assert.throws(() => share.revoke('EBOGUS' as never), InvalidArgumentError);
      const view = importDmaBuf(share.descriptor()); // still open: a descriptor, and an import
      share.revoke('ENODEV');
      assert.throws(
        () => view.bytes(),
        (err: unknown) => err instanceof DmaBufError && err.code === 'ENODEV',
      );
      view.close();
      for (let i = 0; i < 100 && !share.released; i++) await new Promise((resolve) => setTimeout(resolve, 1));
      assert.equal(share.released, true);
    });

    it('a fake signal on pull and beginCpuAccess is refused before anything is published', async () => {
      await using heap = new DmaHeap({ shared: true });
      using buf = heap.allocate(4096);
      using share = shareDmaBuf(buf);
      using view = importDmaBuf(share.descriptor());
      await invalid(() => share.pull({ signal: notASignal }), 'options.signal');
      await invalid(() => share.beginCpuAccess({ write: true, signal: notASignal }), 'options.signal');
      await invalid(() => view.beginCpuAccess({ write: true, signal: notASignal }), 'options.signal');
      assert.equal(share.remoteFences(DmaResvUsage.Bookkeep).length, 0);
      await view.beginCpuAccess({ write: true });
      view.endCpuAccess();
      assert.ok(DmaFence.getStub().signaledFlag);
    });
  });
  it('found by the fuzz table: region helpers and the share constructor check their arguments', async () => {
    await invalid(() => isSharedFenceRegion(5 as never), 'buffer');
    await invalid(() => isSharedFenceRegion(new SharedArrayBuffer(64), Number.NaN), 'byteOffset');
    await invalid(() => sharedFenceRegionBytes(0), 'slots');
    const region = new SharedFenceRegion({ slots: 1 });
    assert.equal(isSharedFenceRegion(region.buffer), true);
    await invalid(() => watchSharedFences(region.buffer, 0, 5 as never), 'accept');
    await invalid(
      () => new SharedFenceRegion({ slots: 1, buffer: region.buffer, byteOffset: 8 }),
      'options.byteOffset',
    );
    await invalid(() => new DmaBufShare({} as never), 'buffer');
  });
  it('DmaBufShare.endCpuAccess without an open access is a BugError, as on DmaBuf and ImportedDmaBuf', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    assert.throws(() => share.endCpuAccess(), BugError);
    await share.beginCpuAccess({ write: true });
    share.endCpuAccess();
    assert.throws(() => share.endCpuAccess(), BugError);
  });
});
