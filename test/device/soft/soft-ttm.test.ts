import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError } from '../../../src/base/errors.js';
import type { DmaBufDescriptor } from '../../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../../src/heap/dma-buf-import.js';
import { DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../../../src/device/soft/soft-worker-node.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import { mockFence, testSeed } from '../../helpers/mock-fence.js';
import { InvalidArgumentError } from '../../../src/base/errors.js';
import type { TtmDelayedDeleteMode } from '../../../src/ttm/ttm-bo-delayed-delete.js';
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

describe('soft-ttm: delayed delete of buffer objects released while a job uses them', () => {
  const MODES: readonly TtmDelayedDeleteMode[] = ['per-object', 'per-object-idle', 'periodic-scan'];

  it('sanity: the default is the per-object design of seed 004', async () => {
    await using gpu = device();
    assert.equal(gpu.ttm?.delayedDeleteMode, 'per-object');
  });

  for (const mode of MODES) {
    it(`${mode}: a buffer put while its job waits is a zombie holding its VRAM, freed once the job ran`, async () => {
      await using gpu = new SoftDevice({
        platform: nodeWorkerPlatform,
        engines: { compute: 1, copy: 1 },
        vramBytes: 64 * KiB,
        delayedDelete: mode,
      });
      const ttm = gpu.ttm!;
      assert.equal(ttm.delayedDeleteMode, mode);
      const vram = ttm.manager(TtmMemType.VRAM)!;
      const reclaimed: string[] = [];
      using _listener = ttm.onReclaim((bo) => reclaimed.push(bo.name));
      const gate = mockFence();
      const bo = await gpu.createBuffer({ size: 16 * KiB, name: 'busy' });
      const done = await gpu.execute('compute', 'fill', { dst: bo, value: 7 }, { dependencies: [gate] });
      bo.put();
      assert.equal(bo.deleted, true, 'released while its job waits: a zombie');
      assert.equal(ttm.zombies, 1);
      assert.equal(vram.usage, 16 * KiB, 'the zombie keeps its memory: the job will still write it');
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(vram.usage, 16 * KiB, 'and keeps it while the job cannot run');
      gate.signal();
      await done.wait({ timeout: 10_000 });
      await ttm.delayedDelete.drain();
      assert.equal(done.error, undefined);
      assert.equal(ttm.zombies, 0);
      assert.equal(vram.usage, 0, 'freed once the job ran');
      assert.deepEqual(reclaimed, ['busy']);
    });
  }

  it('a bad delayedDelete, or one without VRAM, is refused naming the option', () => {
    assert.throws(
      () => new SoftDevice({ platform: nodeWorkerPlatform, vramBytes: 64 * KiB, delayedDelete: 'lazy' as never }),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /delayedDelete must be one of per-object, .*got "lazy"/.test(err.message),
    );
    assert.throws(
      () => new SoftDevice({ platform: nodeWorkerPlatform, delayedDelete: 'periodic-scan' }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && /delayedDelete \(periodic-scan\) needs vramBytes/.test(err.message),
    );
  });
});
