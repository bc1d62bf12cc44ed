import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError } from '../../../src/base/errors.js';
import type { DmaBufDescriptor } from '../../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../../src/heap/dma-buf-import.js';
import { DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../../../src/device/soft/soft-worker-node.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import { testSeed } from '../../helpers/mock-fence.js';
import { readFrame, writeFrame } from '../../helpers/frames.js';
import { WorkerPeer } from '../../helpers/worker-peer.js';
import { readWhileMoving } from '../../helpers/read-while-moving.js';
import { withBytes } from '../../helpers/soft-bo.js';

const PEER = new URL('../../helpers/buffer-peer.worker.ts', import.meta.url);
const KiB = 1024;
const VRAM = [{ memType: TtmMemType.VRAM }];
const TT = [{ memType: TtmMemType.TT }];

function device(vramBytes = 64 * KiB): SoftDevice {
  return new SoftDevice({ platform: nodeWorkerPlatform, engines: { compute: 1, copy: 1 }, vramBytes });
}

describe('soft-ttm: TTM on the soft device', () => {
  it('sanity: a move is a copy job on the copy engine, signalled from its worker, bytes intact', async () => {
    await using gpu = device();
    const bo = await gpu.createBuffer({ size: 8 * KiB });
    await withBytes(bo, (b) => writeFrame(b, 1, 5));
    const copies = gpu.rings('copy')[0]!.ring.fences.emitted;
    await bo.reserve();
    await bo.validate(TT);
    const moves = bo.resv.getFences(DmaResvUsage.Kernel);
    assert.equal(moves.length, 1, 'the pipelined move fence guards the buffer');
    assert.equal(moves[0]!.timelineName, 'copy.0', "the copy engine's scheduler ran it");
    await bo.waitIdle();
    assert.equal(bo.resource?.memType, TtmMemType.TT);
    assert.deepEqual(readFrame(bo.kmap()), { n: 1, sum: readFrame(bo.kmap()).sum, ok: true });
    await bo.validate(VRAM);
    await bo.waitIdle();
    assert.equal(readFrame(bo.kmap()).ok, true, 'and back');
    bo.unreserve();
    assert.ok(gpu.rings('copy')[0]!.ring.fences.emitted >= copies + 2, 'both moves ran on the copy engine');
    bo.put();
  });

  it('a shared buffer moved again and again while a consumer worker reads it: every read checks out', async () => {
    const seed = testSeed();
    await using gpu = device();
    const bo = await gpu.createBuffer({ size: 16 * KiB, name: 'shared' });
    await withBytes(bo, (b) => writeFrame(b, 1, seed));
    const share = gpu.shareBuffer(bo);
    assert.equal(gpu.shareBuffer(bo), share, 'one share per buffer');
    await using consumer = WorkerPeer.start(PEER);
    const result = await readWhileMoving(consumer, share.descriptor(), seed, 20, async (n) => {
      await bo.reserve();
      await share.beginCpuAccess({ write: true, timeout: 10_000 }); // moves and the consumer's reads
      writeFrame(bo.kmap(), n + 1, seed);
      share.endCpuAccess();
      await bo.validate(n % 2 === 1 ? TT : VRAM); // a pipelined copy job; the importer is told
      bo.unreserve();
    });
    assert.deepEqual(result.problems, [], `seed ${seed} (TEST_SEED=${seed} replays): a read saw a torn or stale frame`);
    assert.ok(result.reads > 20, `the consumer kept reading (${result.reads} reads)`);
    assert.ok(result.moves >= 1, `moves were notified (${result.moves})`);
    assert.equal(result.lockedDuringNotify, true);
    assert.equal(result.lastOk, true);
    share.close();
    bo.put();
  });

  it('a static importer pins the buffer: eviction passes it over, an explicit move is EBUSY', async () => {
    await using gpu = device(32 * KiB);
    const pinned = await gpu.createBuffer({ size: 16 * KiB, name: 'pinned' });
    const other = await gpu.createBuffer({ size: 16 * KiB, name: 'other' });
    const share = gpu.shareBuffer(pinned);
    await using importer = WorkerPeer.start(PEER);
    await importer.request('pin', { descriptor: share.descriptor() });
    assert.equal(share.pinned, true);
    const third = await gpu.createBuffer({ size: 16 * KiB, name: 'third' }); // VRAM is full: evict
    assert.equal(pinned.resource?.memType, TtmMemType.VRAM, 'the pinned one stayed');
    assert.equal(other.resource?.memType, TtmMemType.TT, 'the other one went');
    await pinned.reserve();
    await assert.rejects(pinned.validate(TT), (err: unknown) => err instanceof DmaBufError && err.code === 'EBUSY');
    pinned.unreserve();
    await importer.request('unpin');
    share.close();
    for (const bo of [pinned, other, third]) bo.put();
  });

  it('a descriptor of a destroyed device: importing it is ENODEV, and nothing is left', async () => {
    const gpu = device();
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    const descriptor: DmaBufDescriptor = gpu.shareBuffer(bo).descriptor();
    bo.put();
    await gpu.destroy();
    assert.throws(
      () => importDmaBuf(descriptor),
      (err: unknown) => err instanceof DmaBufError && err.code === 'ENODEV',
    );
    assert.throws(
      () => gpu.shareBuffer(bo),
      (err: unknown) => err instanceof DmaBufError && err.code === 'ENODEV',
    );
  });
});
