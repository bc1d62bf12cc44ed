// TTM: a device with 256 KiB of VRAM. Three 96 KiB buffers do not fit, so placing the third
// evicts the least recently used one to system memory, bytes intact. A pinned buffer never
// moves. A buffer released while a job still uses it stays allocated (a zombie) until the job's
// fence signals, then a work item frees it.
import { DmaFence, DmaResvUsage, TtmBufferObject, TtmDevice, TtmMemType, fenceContextAlloc } from 'dmabuf';

const device = new TtmDevice({ name: 'example-gpu', vramBytes: 256 << 10 });
const vram = device.manager(TtmMemType.VRAM)!;
const inVram = [{ memType: TtmMemType.VRAM }];
const where = (bo: TtmBufferObject): string => (bo.resource?.memType === TtmMemType.VRAM ? 'VRAM' : 'System');

const a = await TtmBufferObject.initReserved(device, { size: 96 << 10, name: 'a', placement: inVram });
a.kmap().fill(0xaa);
a.unreserve();
const b = await TtmBufferObject.initReserved(device, { size: 96 << 10, name: 'b', placement: inVram });
b.kmap().fill(0xbb);
b.pin(); // b stays in VRAM whatever happens
b.unreserve();
console.log(`a in ${where(a)}, b in ${where(b)}; VRAM use ${vram.usage >> 10} of ${vram.size >> 10} KiB`);

const c = await TtmBufferObject.initReserved(device, { size: 96 << 10, name: 'c', placement: inVram });
c.unreserve();
await a.reserve();
console.log(
  `placing c evicted a to ${where(a)}; its bytes are still 0x${a.kmap()[0]!.toString(16)}; b (pinned) in ${where(b)}`,
);
a.unreserve();

// A job still writes c when its owner lets go.
const job = new DmaFence({ getDriverName: () => 'example-gpu', getTimelineName: () => 'gfx' }, fenceContextAlloc(), 1);
await c.reserve();
c.resv.reserveFences(1);
c.resv.addFence(job, DmaResvUsage.Write);
c.unreserve();
c.put();
console.log(`c released while busy: zombies ${device.stats().zombies}, VRAM use ${vram.usage >> 10} KiB`);
job.signal();
await device.wq.drain();
console.log(`after the job's fence: zombies ${device.stats().zombies}, VRAM use ${vram.usage >> 10} KiB`);

await b.reserve();
b.unpin();
b.unreserve();
a.put();
b.put();
await device.fini();
console.log(`device finished: ${device.stats().boCount} buffers left`);
