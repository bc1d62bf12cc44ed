// A Web Worker of the browser sharing check (soft-packaged.test.ts): imports what the page
// exported (a fence, a timeline, a buffer) from the packed package and reports what it saw.
import * as m from '../node_modules/dmabuf/dist/index.js';

self.onmessage = async (event) => {
  const { fence, timeline, buffer } = event.data;
  const imported = m.importFence(fence);
  await imported.wait();
  const points = m.SharedTimeline.fromDescriptor(timeline);
  points.signal(2);
  const view = m.importDmaBuf(buffer);
  await view.beginCpuAccess({ write: false }); // waits for the page's write
  const first = view.bytes()[0];
  view.endCpuAccess();
  points.signal(3);
  await points.wait(4); // the page moved the buffer
  await view.beginCpuAccess({ write: false }); // maps it again (a message on the descriptor's port)
  const second = view.bytes()[0];
  view.endCpuAccess();
  view.close();
  self.postMessage({ code: imported.error?.code, first, second });
};
