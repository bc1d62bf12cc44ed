// The system heap: allocate a buffer, fill it under CPU access, let a GPU-like job write to it,
// read once the job's fence has signaled, put it, and watch the deferred free zero it and give
// it to the pool, where the next allocation of its size class finds it.
import { DmaFence, DmaHeap, DmaResvUsage, fenceContextAlloc } from 'dmabuf';

await using heap = new DmaHeap({ budgetBytes: 8 << 20 });
const show = (when: string): void => {
  const s = heap.stats();
  console.log(
    `${when.padEnd(26)} live ${s.liveBytes}, pending ${s.pendingBytes}, pooled ${s.pooledBytes}, ` +
      `held ${s.heldBytes} bytes (hits ${s.hits}, misses ${s.misses})`,
  );
};

const buf = heap.allocate(100_000);
console.log(`asked for ${buf.requestedSize} bytes, got a ${buf.size}-byte size class`);
show('after allocate:');

await buf.beginCpuAccess({ write: true }); // no fences yet: begins at once
buf.bytes().fill(0x2a);
buf.endCpuAccess();

// A job writes into the buffer on some device: its fence goes in as a Write fence, and the job
// holds its own reference until it is done.
const ops = { getDriverName: () => 'example-gpu', getTimelineName: () => 'ring-0' };
const job = new DmaFence(ops, fenceContextAlloc(), 1);
await buf.resv.lock();
buf.resv.reserveFences(1);
buf.resv.addFence(job, DmaResvUsage.Write);
buf.resv.unlock();
buf.get();
setTimeout(() => {
  buf.bytes()[0] = 7; // the device's write
  job.signal();
  buf.put(); // the job's reference
}, 20);

await buf.beginCpuAccess({ write: false }); // a read waits for the write fence
console.log(
  `reader sees first byte ${buf.bytes()[0]} and last byte ${buf.bytes()[buf.requestedSize - 1]}; ` +
    `job fence signaled: ${job.signaledFlag}`,
);
buf.endCpuAccess();

buf.put(); // the creator's reference, the last one: queued for the deferred free
show('after the last put:');
await heap.drain(); // the background worker zeroed it and pooled it
show('after the deferred free:');

const again = heap.allocate(120_000); // same 128 KiB class: a pool hit
console.log(`re-allocated from the pool, first byte ${again.bytes()[0]} (zeroed)`);
show('after re-allocating:');
again.put();
