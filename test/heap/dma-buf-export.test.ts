import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { SharedTimeline } from '../../src/fence/shared-timeline.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { MAX_DMA_BUF_PARTIES, shareDmaBuf, type DmaBufDescriptor } from '../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../src/heap/dma-buf-import.js';
import { testSeed } from '../helpers/mock-fence.js';
import { writeFrame } from '../helpers/frames.js';
import { MovableBuffer, pending } from '../helpers/movable-buffer.js';
import { WorkerPeer } from '../helpers/worker-peer.js';
import { readWhileMoving } from '../helpers/read-while-moving.js';

const PEER = new URL('../helpers/buffer-peer.worker.ts', import.meta.url);

function isCode(code: string) {
  return (err: unknown): boolean => err instanceof DmaBufError && err.code === code;
}

describe('shareDmaBuf (one thread, two parties)', () => {
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
});

describe('buffer sharing between real worker threads', () => {
  it('producer and consumer workers, 200 frames of 64 KiB, async on both sides: every checksum holds', async () => {
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

  it('a buffer moved again and again while a worker reads it: every read checks out, moves are notified', async () => {
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
