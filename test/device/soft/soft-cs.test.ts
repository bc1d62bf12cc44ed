import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError, InvalidArgumentError } from '../../../src/base/errors.js';
import type { DmaFence } from '../../../src/fence/dma-fence.js';
import { DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../../../src/device/soft/soft-worker-node.js';
import type { TtmBufferObject } from '../../../src/ttm/ttm-bo.js';
import { withBytes } from '../../helpers/soft-bo.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';

const TEST_KERNELS = new URL('./test-kernels.ts', import.meta.url);
const KiB = 1024;

function isCode(code: string) {
  return (err: unknown): boolean => err instanceof DmaBufError && err.code === code;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const end = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function f32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

describe('SoftDevice.execute (command submission with buffer objects)', () => {
  let gpu: SoftDevice;
  before(async () => {
    gpu = new SoftDevice({
      platform: nodeWorkerPlatform,
      engines: { compute: 1, gfx: 1, copy: 1 },
      vramBytes: 64 * KiB,
    });
    await gpu.registerKernels(TEST_KERNELS);
  });
  after(() => gpu.destroy());

  it('sanity: saxpy on two buffer objects in VRAM', async () => {
    const x = await gpu.createBuffer({ size: 4 * KiB, name: 'x' });
    const y = await gpu.createBuffer({ size: 4 * KiB, name: 'y' });
    await withBytes(x, (b) => f32(b).fill(1));
    await withBytes(y, (b) => f32(b).fill(2));
    const done = await gpu.execute('compute', 'saxpy', { a: 3, x, y });
    await done.wait();
    assert.equal(done.error, undefined);
    assert.ok(await withBytes(y, (b) => f32(b).every((v) => v === 5)), 'y = 3 x + y everywhere');
    assert.equal(await withBytes(x, (b) => f32(b)[0]), 1, 'x only read');
    x.put();
    y.put();
  });

  it('fences buffers by what the kernel writes: a reader waits for the writer, on another engine too', async () => {
    const data = await gpu.createBuffer({ size: 4 * KiB, name: 'data' });
    const sum = await gpu.createBuffer({ size: 4 * KiB, name: 'sum' });
    const slow = await gpu.execute('gfx', 'spin', { ms: 30 });
    // The fill writes data after the spin (explicit dependency); the checksum on compute must
    // wait for the fill although nothing but data's reservation connects them.
    const write = await gpu.execute('gfx', 'fill', { dst: data, value: 9 }, { dependencies: [slow] });
    const read = await gpu.execute('compute', 'checksum', { src: data, out: { bo: sum, length: 4 } });
    assert.ok(data.resv.getFences(DmaResvUsage.Write).includes(write), "the fill is data's writer");
    assert.ok(!data.resv.getFences(DmaResvUsage.Write).includes(read), 'the checksum is not');
    assert.ok(data.resv.getFences(DmaResvUsage.Read).includes(read), 'the checksum is a reader');
    await read.wait();
    assert.equal(write.signaledFlag, true, 'the reader finished after the writer');
    const expected = await withBytes(data, (b) => {
      let h = 0x811c9dc5;
      for (const v of b) h = Math.imul(h ^ v, 0x01000193);
      return h >>> 0;
    });
    assert.equal(await withBytes(sum, (b) => new Uint32Array(b.buffer, b.byteOffset, 1)[0]), expected);
    data.put();
    sum.put();
  });

  it('evicts through the copy engine when VRAM is full, bytes intact', async () => {
    const bos: TtmBufferObject[] = [];
    for (let i = 0; i < 4; i++) {
      const bo = await gpu.createBuffer({ size: 16 * KiB, name: `b${i}` });
      await gpu.execute('copy', 'fill', { dst: bo, value: 0x10 + i });
      bos.push(bo);
    }
    const copies = gpu.rings('copy')[0]!.ring.fences.emitted;
    const extra = await gpu.createBuffer({ size: 16 * KiB, name: 'extra' }); // VRAM is full: one goes to TT
    const evicted = bos.filter((bo) => bo.resource?.memType === TtmMemType.TT);
    assert.ok(evicted.length >= 1, 'a buffer was evicted');
    for (const [i, bo] of bos.entries()) {
      assert.ok(await withBytes(bo, (b) => b.every((v) => v === 0x10 + i)), `${bo.name} kept its bytes`);
    }
    assert.ok(gpu.rings('copy')[0]!.ring.fences.emitted >= copies + 2, 'the eviction and the clear were copy jobs');
    for (const bo of [...bos, extra]) bo.put();
  });

  it('a busy buffer released is freed once its device job has finished (delayed delete)', async () => {
    await using own = new SoftDevice({
      platform: nodeWorkerPlatform,
      engines: { gfx: 1, copy: 1 },
      vramBytes: 64 * KiB,
    });
    await own.registerKernels(TEST_KERNELS);
    const ttm = own.ttm!;
    const vram = ttm.manager(TtmMemType.VRAM)!;
    const bo = await own.createBuffer({ size: 16 * KiB, name: 'busy' });
    const slow = await own.execute('gfx', 'spin', { ms: 40 });
    const job = await own.execute('gfx', 'fill', { dst: bo, value: 1 }, { dependencies: [slow] });
    bo.put();
    assert.equal(vram.usage, 16 * KiB, 'still allocated while the job runs');
    assert.equal(ttm.stats().zombies, 1, 'a zombie while its job runs');
    await job.wait();
    await until(() => vram.usage === 0, 'the delayed delete');
    assert.equal(ttm.stats().zombies, 0, 'freed after the device fence signalled');
  });

  it('refuses buffers of another device, working sets larger than VRAM, and buffer objects in submit()', async () => {
    const bo = await gpu.createBuffer({ size: 4 * KiB });
    const other = new SoftDevice({ platform: nodeWorkerPlatform, engines: { copy: 1 }, vramBytes: 16 * KiB });
    const foreign = await other.createBuffer({ size: 4 * KiB });
    const huge = await gpu.createBuffer({ size: 48 * KiB, placement: [{ memType: TtmMemType.TT }] });
    const huge2 = await gpu.createBuffer({ size: 48 * KiB, placement: [{ memType: TtmMemType.TT }] });
    await assert.rejects(gpu.execute('copy', 'copy', { src: foreign, dst: bo }), /another device/);
    await assert.rejects(gpu.execute('copy', 'copy', { src: huge, dst: huge2 }), isCode('ENOMEM'));
    assert.throws(() => gpu.submit('copy', 'fill', { dst: bo, value: 1 }), /needs execute\(\)/);
    const plain = new SoftDevice({ platform: nodeWorkerPlatform, engines: { copy: 1 } });
    await assert.rejects(plain.execute('copy', 'noop'), InvalidArgumentError);
    await assert.rejects(plain.createBuffer({ size: 4096 }), /no VRAM/);
    const fine: DmaFence = await gpu.execute('copy', 'fill', { dst: bo, value: 3 });
    await fine.wait();
    assert.equal(fine.error, undefined, 'nothing was lost: the device still works');
    for (const b of [bo, huge, huge2]) b.put();
    foreign.put();
    await Promise.all([other.destroy(), plain.destroy()]);
  });
});
