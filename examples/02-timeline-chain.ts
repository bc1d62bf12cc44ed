// Timeline points: each point waits for all work up to it; lookups find what to wait on.
import { DmaFence, DmaFenceChain, fenceContextAlloc } from 'dmabuf';

const ops = { getDriverName: () => 'example', getTimelineName: () => 'jobs' };
const jobs = fenceContextAlloc();
const work = [1, 2, 3].map((n) => new DmaFence(ops, jobs, n));

let head: DmaFenceChain | null = null;
for (const [i, fence] of work.entries()) head = new DmaFenceChain(head, fence, i + 1);

work[2]!.signal(); // point 3's own work is done...
console.log('point 3 signaled?', head!.isSignaled()); // ...but points 1 and 2 are not

const lookup = DmaFenceChain.findSeqno(head!, 2);
if (lookup.kind === 'fence') {
  setTimeout(() => {
    for (const f of work) f.signal();
  }, 1);
  await lookup.fence.wait();
  console.log('point 2 reached');
}
console.log('point 1 now:', DmaFenceChain.findSeqno(head!, 1).kind); // 'signaled' (collected)
