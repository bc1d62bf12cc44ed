// Merging fences from several timelines into one, and handing it over as a named sync file.
import { DmaFence, SyncFile, fenceContextAlloc, unwrapMerge } from 'dmabuf';

const ops = { getDriverName: () => 'example', getTimelineName: () => 'gpu' };
const render = fenceContextAlloc();
const copy = fenceContextAlloc();
const renderDone = new DmaFence(ops, render, 7);
const copyDone = new DmaFence(ops, copy, 3);
const olderRender = new DmaFence(ops, render, 6);

// One flat array: the latest fence per timeline, in ascending context order.
const both = unwrapMerge(renderDone, copyDone, olderRender);
using file = new SyncFile(both, 'frame-42');
console.log(
  file.name,
  file.info().fences.map((f) => `${f.name}: ${f.status}`),
);

copyDone.signal();
renderDone.signal();
console.log('combined status:', file.info().status); // 'signaled'
