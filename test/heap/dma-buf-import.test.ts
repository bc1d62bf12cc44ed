import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { shareDmaBuf } from '../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../src/heap/dma-buf-import.js';
import { readFrame, writeFrame } from '../helpers/frames.js';
import { MovableBuffer } from '../helpers/movable-buffer.js';

describe('importDmaBuf', () => {
  it('sanity: an import views the exporter memory and counts as attached until closed', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    const view = importDmaBuf(share.descriptor());
    assert.equal(view.size, 4096);
    assert.equal(share.attached, 1);
    buf.bytes()[9] = 5;
    assert.equal(view.bytes()[9], 5, 'the same memory');
    view.close();
    view.close();
    assert.equal(share.attached, 0);
    assert.throws(() => view.bytes(), BugError);
    assert.throws(() => view.endCpuAccess(), BugError);
  });

  it('attachments: a static one pins, a dynamic one is told of moves under its resv lock and maps again', async () => {
    const exporter = new MovableBuffer(4096);
    writeFrame(exporter.bytes(), 1, 99);
    using share = shareDmaBuf(exporter);
    using view = importDmaBuf(share.descriptor());
    const pin = view.attach();
    assert.equal(share.pinned, true);
    await exporter.resv.lock();
    assert.throws(() => share.moved(), /pins the buffer/);
    exporter.resv.unlock();
    pin.detach();
    assert.equal(share.pinned, false);
    assert.throws(() => share.moved(), /reservation lock/);
    const notified: boolean[] = [];
    const dynamic = view.attach({ dynamic: true, moveNotify: () => notified.push(view.resv.isLocked) });
    await assert.rejects(dynamic.map(), /reservation lock/);
    await exporter.moveTo(share, 512);
    for (let i = 0; i < 20 && notified.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.deepEqual(notified, [true], 'moveNotify once, under the lock');
    assert.equal(dynamic.mapped, false);
    assert.equal(view.stale, true);
    assert.throws(() => view.bytes(), /moved the buffer/);
    await view.resv.lock();
    const bytes = await dynamic.map();
    view.resv.unlock();
    assert.equal(bytes.byteOffset, 512);
    assert.deepEqual(readFrame(bytes), { n: 1, sum: readFrame(bytes).sum, ok: true });
    assert.equal(share.generation, 2);
    assert.throws(() => view.attach({ moveNotify: () => {} }), InvalidArgumentError);
  });
});
