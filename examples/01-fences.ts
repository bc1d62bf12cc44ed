// Fences: create, listen, wait with a timeout, fail with an error.
import { DmaFence, fenceContextAlloc } from 'dmabuf';

const ops = { getDriverName: () => 'example', getTimelineName: () => 'queue-0' };
const queue = fenceContextAlloc();
const job = new DmaFence(ops, queue, 1);

job.addCallback((f) => console.log(`callback: ${f.describe()}`));
setTimeout(() => job.signal(), 5);
console.log('signaled in time:', await job.wait({ timeout: 1000 }));

const failed = new DmaFence(ops, queue, 2);
failed.setError('EIO');
failed.signal();
console.log('status:', failed.status, (failed.error as Error).message);
