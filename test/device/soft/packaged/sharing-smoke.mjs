// The page's half of the browser sharing check: a fence, a timeline and a moving buffer shared
// with a Web Worker through the packed package. `m` is the library, `print` where lines go.
export const SHARING_EXPECTED = [
  'fence: the worker saw EIO',
  'timeline: the worker signalled 2',
  'buffer: the worker read 42, then 43 after a move',
];

export async function sharingSmoke(m, workerUrl, print) {
  const worker = new Worker(workerUrl, { type: 'module' });
  const answer = new Promise((resolve) => (worker.onmessage = (e) => resolve(e.data)));
  const ops = { getDriverName: () => 'page', getTimelineName: () => 'main' };
  const fence = new m.DmaFence(ops, m.fenceContextAlloc(), 1);
  const timeline = new m.SharedTimeline({ name: 'page' });
  // A buffer whose memory moves, like a buffer object: the exporter says where it is.
  const exporter = {
    name: 'moving',
    size: 64,
    resv: new m.DmaResv({ name: 'moving' }),
    current: new SharedArrayBuffer(64),
    memory() {
      return { buffer: this.current, offset: 0 };
    },
  };
  const share = m.shareDmaBuf(exporter);
  await share.beginCpuAccess({ write: true });
  const buffer = share.descriptor();
  worker.postMessage({ fence: m.exportFence(fence), timeline: timeline.descriptor, buffer }, [buffer.port]);
  fence.setError('EIO');
  fence.signal();
  await timeline.wait(2);
  print(`timeline: the worker signalled ${timeline.value}`);
  new Uint8Array(exporter.current)[0] = 42;
  share.endCpuAccess();
  await timeline.wait(3); // the worker read the first value
  await exporter.resv.lock();
  const moved = new SharedArrayBuffer(64);
  new Uint8Array(moved)[0] = 43;
  exporter.current = moved;
  share.moved();
  exporter.resv.unlock();
  timeline.signal(4);
  const seen = await answer;
  print(`fence: the worker saw ${seen.code}`);
  print(`buffer: the worker read ${seen.first}, then ${seen.second} after a move`);
  worker.terminate();
  share.close();
}
