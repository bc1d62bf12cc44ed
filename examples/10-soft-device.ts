// The soft device and two workers sharing a buffer. The main thread shares one buffer with a
// producer worker and a consumer worker. The producer writes frames, the consumer checksums
// them; implicit fences keep each from overtaking the other, and two shared timelines say
// which frame is ready and which was consumed. Then the main thread's soft device (a GPU made
// of worker threads) checksums the last frame with its `checksum` kernel, and both sums agree.
//
// The workers run this same file: it exports `main(endpoint, data)`, the entry of a worker.
import { isMainThread } from 'node:worker_threads';
import {
  DmaHeap,
  SharedTimeline,
  SoftDevice,
  fnv1a,
  importDmaBuf,
  nodeWorkerPlatform,
  shareDmaBuf,
  type DmaBufDescriptor,
  type SharedTimelineDescriptor,
  type WorkerEndpoint,
} from 'dmabuf/node';

const FRAMES = 5;

interface Role {
  readonly role: 'producer' | 'consumer';
  readonly buffer: DmaBufDescriptor;
  readonly ready: SharedTimelineDescriptor;
  readonly consumed: SharedTimelineDescriptor;
}

/** A worker's life: import the buffer, then produce or consume every frame. */
export async function main(endpoint: WorkerEndpoint, data: Role): Promise<void> {
  const view = importDmaBuf(data.buffer);
  const ready = SharedTimeline.fromDescriptor(data.ready);
  const consumed = SharedTimeline.fromDescriptor(data.consumed);
  for (let frame = 1; frame <= FRAMES; frame++) {
    if (data.role === 'producer') {
      await consumed.wait(frame - 1);
      await view.beginCpuAccess({ write: true }); // waits for the consumer's read of the last frame
      view.bytes().fill(frame);
      view.endCpuAccess();
      ready.signal(frame); // a SharedTimeline: every thread sees the point
    } else {
      await ready.wait(frame);
      await view.beginCpuAccess({ write: false }); // waits for the producer's write
      endpoint.postMessage(`consumer: frame ${frame} checksum ${fnv1a(view.bytes()).toString(16)}`);
      view.endCpuAccess();
      consumed.signal(frame);
    }
  }
  view.close();
  endpoint.postMessage('done');
}

if (isMainThread) {
  await using heap = new DmaHeap({ shared: true });
  using buf = heap.allocate(64 << 10);
  using share = shareDmaBuf(buf);
  const ready = new SharedTimeline({ name: 'ready' });
  const consumed = new SharedTimeline({ name: 'consumed' });
  const lines: string[] = [];
  const finished = (['producer', 'consumer'] as const).map(
    (role) =>
      new Promise<void>((resolve, reject) => {
        const data: Role = { role, buffer: share.descriptor(), ready: ready.descriptor, consumed: consumed.descriptor };
        // The descriptor's port (the import's line to the exporter) moves with it.
        const worker = nodeWorkerPlatform.spawn(
          new URL(import.meta.url),
          data,
          {
            message: (message) => {
              if (message === 'done') void worker.terminate().then(resolve);
              else lines.push(String(message));
            },
            error: reject,
          },
          { transfer: [data.buffer.port] },
        );
      }),
  );
  await Promise.all(finished);
  for (const line of lines) console.log(line);

  // The soft device checksums the last frame on its compute engine.
  await using device = new SoftDevice({ engines: { compute: 1 } });
  const memory = device.map(new SharedArrayBuffer(4));
  await device.submit('compute', 'checksum', { src: device.map(buf), out: memory }).wait();
  console.log(`soft device: frame ${FRAMES} checksum ${new Uint32Array(memory.buffer)[0]!.toString(16)}`);
}
