/**
 * Worker entry for the buffer-sharing tests: a producer that owns a shared DmaBuf, and consumers
 * that import one (see `worker-peer.ts` for the request protocol, `frames.ts` for the frames).
 */
import { seededRandom } from '../../src/base/random.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { SharedTimeline, type SharedTimelineDescriptor } from '../../src/fence/shared-timeline.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import type { DmaBuf } from '../../src/heap/dma-buf.js';
import { shareDmaBuf, type DmaBufDescriptor, type DmaBufShare } from '../../src/heap/dma-buf-export.js';
import { importDmaBuf } from '../../src/heap/dma-buf-import.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import type { WorkerEndpoint } from '../../src/device/soft/soft-worker-platform.js';
import { readAck, readFrame, writeAck, writeFrame } from './frames.js';
import { serveRequests } from './worker-peer.js';

const ops = { getDriverName: () => 'peer', getTimelineName: () => 'async-work' };
let heap: DmaHeap | undefined;
let buf: DmaBuf | undefined;
let share: DmaBufShare | undefined;

/** Sometimes a macrotask, sometimes nothing: lets the other thread run into the gap. */
function jitter(random: () => number): Promise<void> | undefined {
  return random() < 0.5 ? new Promise((resolve) => setTimeout(resolve, random() < 0.2 ? 1 : 0)) : undefined;
}

export function main(endpoint: WorkerEndpoint): void {
  serveRequests(endpoint, {
    share({ size }) {
      heap = new DmaHeap({ shared: true });
      buf = heap.allocate(size as number);
      share = shareDmaBuf(buf);
      return share.descriptor();
    },

    /** Frames 1..frames; each write is asynchronous work fenced by a published write fence. */
    async produce({ frames, ready, consumed, seed }) {
      const random = seededRandom(seed as number);
      const readyTl = SharedTimeline.fromDescriptor(ready as SharedTimelineDescriptor);
      const consumedTl = SharedTimeline.fromDescriptor(consumed as SharedTimelineDescriptor);
      const context = fenceContextAlloc();
      const problems: string[] = [];
      let lastSum = 0;
      for (let n = 1; n <= (frames as number); n++) {
        await consumedTl.wait(n - 1);
        // The consumer's write-back of frame n-1 is still asynchronous here: implicit sync waits.
        await buf!.beginCpuAccess({ write: true, timeout: 10_000 });
        if (n > 1 && readAck(buf!.bytes()) !== lastSum)
          problems.push(`frame ${n - 1}: ack ${readAck(buf!.bytes())} != ${lastSum}`);
        buf!.endCpuAccess();
        const write = new DmaFence(ops, context, n);
        share!.publishFence(write, DmaResvUsage.Write);
        readyTl.signal(n);
        await jitter(random);
        lastSum = writeFrame(buf!.bytes(), n, seed as number);
        write.signal();
      }
      return problems;
    },

    /** Reads every frame, checks it, and writes its checksum back asynchronously. */
    async consume({ descriptor, frames, ready, consumed, seed }) {
      const random = seededRandom((seed as number) + 1);
      const imported = importDmaBuf(descriptor as DmaBufDescriptor);
      const readyTl = SharedTimeline.fromDescriptor(ready as SharedTimelineDescriptor);
      const consumedTl = SharedTimeline.fromDescriptor(consumed as SharedTimelineDescriptor);
      const context = fenceContextAlloc();
      const problems: string[] = [];
      for (let n = 1; n <= (frames as number); n++) {
        await readyTl.wait(n);
        await imported.beginCpuAccess({ write: false, timeout: 10_000 });
        const frame = readFrame(imported.bytes());
        if (frame.n !== n || !frame.ok)
          problems.push(`frame ${n}: read number ${frame.n}, checksum ${frame.ok ? 'ok' : 'BAD'}`);
        imported.endCpuAccess();
        const ack = new DmaFence(ops, context, n);
        await imported.importSyncFile(new SyncFile(ack), { write: true });
        consumedTl.signal(n);
        await jitter(random);
        writeAck(imported.bytes(), frame.sum);
        ack.signal();
      }
      imported.close();
      return problems;
    },

    /** Reads the (moving) buffer until `stop` reaches 1; a dynamic attachment counts moves. */
    async watch({ descriptor, stop, started, seed }) {
      const random = seededRandom(seed as number);
      const imported = importDmaBuf(descriptor as DmaBufDescriptor);
      let moves = 0;
      let lockedDuringNotify = true;
      const attachment = imported.attach({
        dynamic: true,
        moveNotify: () => {
          moves++;
          lockedDuringNotify &&= imported.resv.isLocked;
        },
      });
      const stopTl = SharedTimeline.fromDescriptor(stop as SharedTimelineDescriptor);
      const startedTl = SharedTimeline.fromDescriptor(started as SharedTimelineDescriptor);
      const problems: string[] = [];
      let reads = 0;
      while (stopTl.value < 1) {
        await imported.beginCpuAccess({ write: false, timeout: 10_000 });
        const frame = readFrame(imported.bytes());
        if (!frame.ok || frame.n === 0)
          problems.push(`read ${reads}: frame ${frame.n}, checksum ${frame.ok ? 'ok' : 'BAD'}`);
        reads++;
        if (reads === 1) startedTl.signal(1);
        await jitter(random);
        imported.endCpuAccess();
      }
      await imported.resv.lock();
      const view = await attachment.map();
      imported.resv.unlock();
      const last = readFrame(view);
      attachment.detach();
      imported.close();
      return { problems, reads, moves, lockedDuringNotify, lastOk: last.ok };
    },

    /** Imports and pins the buffer with a static attachment until `unpin`. */
    pin({ descriptor }) {
      const imported = importDmaBuf(descriptor as DmaBufDescriptor);
      const attachment = imported.attach();
      pinned = { imported, attachment };
      return true;
    },
    unpin() {
      pinned?.attachment.detach();
      pinned?.imported.close();
      pinned = undefined;
      return true;
    },

    async close() {
      share?.close();
      buf?.put();
      return share?.released ?? false;
    },
  });
}

let pinned:
  | { imported: ReturnType<typeof importDmaBuf>; attachment: ReturnType<ReturnType<typeof importDmaBuf>['attach']> }
  | undefined;
