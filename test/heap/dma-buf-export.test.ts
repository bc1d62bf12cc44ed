import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, DmaBufError, FenceTimeoutError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { SharedTimeline } from '../../src/fence/shared-timeline.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import {
  type DmaBufShare,
  MAX_DMA_BUF_PARTIES,
  importDmaBuf,
  shareDmaBuf,
  type DmaBufDescriptor,
  type DmaBufExporter,
} from '../../src/heap/dma-buf-export.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';
import { mockFence, testSeed } from '../helpers/mock-fence.js';
import { readFrame, writeFrame } from '../helpers/frames.js';
import { WorkerPeer } from '../helpers/worker-peer.js';
import { readWhileMoving } from '../helpers/read-while-moving.js';

const PEER = new URL('../helpers/buffer-peer.worker.ts', import.meta.url);

function isCode(code: string) {
  return (err: unknown): boolean => err instanceof DmaBufError && err.code === code;
}

/** Whether `p` is still pending after a few turns of the event loop. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  return !settled;
}

/** An exporter whose memory moves between buffers, like a TTM buffer object. */
class MovableBuffer implements DmaBufExporter {
  readonly name = 'movable';
  readonly resv = new DmaResv({ name: 'movable' });
  readonly size: number;
  current: { buffer: SharedArrayBuffer; offset: number };
  constructor(size: number) {
    this.size = size;
    this.current = { buffer: new SharedArrayBuffer(size), offset: 0 };
  }
  memory() {
    return this.current;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.current.buffer, this.current.offset, this.size);
  }
  /** The exporter's move: fence it, wait for everyone, copy, tell the importers, scribble on the old memory. */
  async moveTo(share: DmaBufShare, offset: number): Promise<void> {
    await this.resv.lock();
    try {
      const move = new DmaFence({ getDriverName: () => 'test', getTimelineName: () => 'move' }, fenceContextAlloc(), 1);
      share.publishFence(move, DmaResvUsage.Kernel);
      for (const fence of share.remoteFences(DmaResvUsage.Bookkeep)) await fence.wait();
      const old = this.bytes();
      const target = { buffer: new SharedArrayBuffer(offset + this.size), offset };
      new Uint8Array(target.buffer, offset, this.size).set(old);
      this.current = target;
      share.moved();
      move.signal();
      old.fill(0xee); // a reader of the old memory would see garbage
    } finally {
      this.resv.unlock();
    }
  }
}

describe('shareDmaBuf / importDmaBuf (one thread, two parties)', () => {
  it('sanity: the import sees the exporter write once the write access ended', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    using share = shareDmaBuf(buf);
    const sent = share.descriptor();
    using view = importDmaBuf(
      structuredClone(sent, { transfer: [sent.port as unknown as import('node:worker_threads').MessagePort] }),
    );
    await buf.beginCpuAccess({ write: true });
    const reading = view.beginCpuAccess({ write: false });
    assert.equal(await pending(reading), true, 'the read waits for the open write');
    buf.bytes().fill(7);
    buf.endCpuAccess();
    await reading;
    assert.equal(view.bytes()[4095], 7);
    view.endCpuAccess();
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
    assert.equal(file.status, 'pending');
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

  it('keeps the exporter buffer alive until the share and every import are closed', async () => {
    await using heap = new DmaHeap({ shared: true });
    const buf = heap.allocate(4096);
    const share = shareDmaBuf(buf);
    const view = importDmaBuf(share.descriptor());
    buf.put(); // the creator is done; the share holds it
    assert.equal(buf.released, false);
    share.close();
    assert.throws(() => importDmaBuf(share.descriptor()), isCode('EBADF'), 'closed: no descriptor');
    assert.equal(buf.released, false, 'an import is still open');
    view.bytes()[0] = 1;
    view.close();
    for (let i = 0; i < 10 && !buf.released; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(buf.released, true);
    assert.equal(share.released, true);
    assert.throws(() => view.bytes(), BugError);
  });

  it('refuses a closed or revoked share, a descriptor that is not one, and too many imports', async () => {
    await using heap = new DmaHeap({ shared: true });
    using buf = heap.allocate(4096);
    const share = shareDmaBuf(buf);
    const imports = Array.from({ length: MAX_DMA_BUF_PARTIES - 1 }, () => importDmaBuf(share.descriptor()));
    assert.throws(() => importDmaBuf(share.descriptor()), isCode('EBUSY'));
    const descriptor = share.descriptor();
    assert.throws(() => importDmaBuf({ ...descriptor, control: new SharedArrayBuffer(64) }), InvalidArgumentError);
    assert.throws(() => importDmaBuf({} as DmaBufDescriptor), InvalidArgumentError);
    assert.throws(
      () => importDmaBuf({ ...descriptor, port: null as unknown as DmaBufDescriptor['port'] }),
      /descriptor/,
    );
    using unshared = heap.allocate(4096, { shared: false });
    assert.throws(() => shareDmaBuf(unshared), /not in shared memory/);
    share.revoke('ENODEV');
    assert.throws(() => importDmaBuf(descriptor), isCode('ENODEV'), 'a descriptor of a destroyed device');
    await assert.rejects(imports[0]!.beginCpuAccess({ write: false }), isCode('ENODEV'));
    assert.throws(() => imports[1]!.bytes(), isCode('ENODEV'));
    for (const view of imports) view.close();
    for (let i = 0; i < 20 && !share.released; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(share.released, true);
  });

  it('attachments: a static one pins, a dynamic one is told of moves under its reservation lock and maps again', async () => {
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

describe('buffer sharing between real worker threads', () => {
  it('producer and consumer workers, 200 frames of 64 KiB, asynchronous on both sides: checksums hold on every frame', async () => {
    const seed = testSeed();
    const frames = 200;
    await using producer = WorkerPeer.start(PEER);
    await using consumer = WorkerPeer.start(PEER);
    const ready = new SharedTimeline({ name: 'ready' });
    const consumed = new SharedTimeline({ name: 'consumed' });
    const descriptor = await producer.request<DmaBufDescriptor>('share', { size: 64 << 10 });
    const timelines = { ready: ready.descriptor, consumed: consumed.descriptor, frames, seed };
    const [produced, consumedProblems] = await Promise.all([
      producer.request<string[]>('produce', timelines),
      consumer.request<string[]>('consume', { descriptor, ...timelines }),
    ]);
    assert.deepEqual(consumedProblems, [], `seed ${seed} (TEST_SEED=${seed} replays): consumer saw bad frames`);
    assert.deepEqual(produced, [], `seed ${seed}: producer saw a stale write-back`);
    assert.equal(ready.value, frames);
    assert.equal(consumed.value, frames);
    assert.equal(await producer.request('close'), true, 'the buffer was released once both were done');
  });

  it('a buffer moved again and again while a consumer worker reads it: every read checks out, moves are notified', async () => {
    const seed = testSeed();
    const exporter = new MovableBuffer(32 << 10);
    writeFrame(exporter.bytes(), 1, seed);
    const share = shareDmaBuf(exporter);
    await using consumer = WorkerPeer.start(PEER);
    const result = await readWhileMoving(consumer, share.descriptor(), seed, 25, async (move) => {
      await share.beginCpuAccess({ write: true, timeout: 10_000 });
      writeFrame(exporter.bytes(), move + 1, seed);
      share.endCpuAccess();
      await exporter.moveTo(share, 8 * ((move * 37) % 64));
    });
    assert.deepEqual(result.problems, [], `seed ${seed} (TEST_SEED=${seed} replays): a read saw a torn or stale frame`);
    assert.ok(result.reads > 25, `the consumer kept reading (${result.reads} reads)`);
    assert.ok(result.moves >= 1 && result.moves <= 25, `moves notified: ${result.moves}`);
    assert.equal(result.lockedDuringNotify, true, 'moveNotify ran under the reservation lock');
    assert.equal(result.lastOk, true);
    // A static importer in another thread pins the buffer where it is.
    await consumer.request('pin', { descriptor: share.descriptor() });
    assert.equal(share.pinned, true);
    await consumer.request('unpin');
    assert.equal(share.pinned, false);
    share.close();
  });
});
