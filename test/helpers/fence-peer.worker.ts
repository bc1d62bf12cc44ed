/**
 * Worker entry for the cross-thread fence tests: exports, imports and signals fences, and relays
 * points of a shared timeline, on request (see `worker-peer.ts`).
 */
import type { ErrnoCode } from '../../src/base/errors.js';
import { DmaBufError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { exportFence, importFence, type SharedFenceDescriptor } from '../../src/fence/shared-fence.js';
import { SharedTimeline, type SharedTimelineDescriptor } from '../../src/fence/shared-timeline.js';
import type { WorkerEndpoint } from '../../src/device/soft/soft-worker-platform.js';
import { serveRequests } from './worker-peer.js';
import { expectedErrors, signalInBatches, type FenceOutcome } from './shared-fence-plan.js';

const ops = { getDriverName: () => 'peer', getTimelineName: () => 'peer-timeline' };
let exported: DmaFence[] = [];
let collecting: Promise<FenceOutcome[]> | undefined;

export function main(endpoint: WorkerEndpoint): void {
  serveRequests(endpoint, {
    export({ count, contexts }) {
      const ctx = fenceContextAlloc(contexts as number);
      exported = Array.from(
        { length: count as number },
        (_, i) => new DmaFence(ops, ctx + (i % (contexts as number)), 1 + Math.floor(i / (contexts as number))),
      );
      return exported.map((f) => exportFence(f));
    },
    async signal({ seed }) {
      return signalInBatches(exported, seed as number);
    },
    import({ descriptors }) {
      const fences = (descriptors as SharedFenceDescriptor[]).map((d) => importFence(d));
      const calls = new Array<number>(fences.length).fill(0);
      for (const [i, f] of fences.entries()) f.addCallback(() => calls[i]!++);
      collecting = Promise.all(fences.map((f) => f.wait())).then(() =>
        fences.map((f, i): FenceOutcome => {
          if (calls[i] !== 1) throw new Error(`fence ${i} called back ${calls[i]} times`);
          const error = f.error;
          const code: ErrnoCode | '' = error === undefined ? '' : error instanceof DmaBufError ? error.code : 'EIO';
          return [code, f.timestamp! + performance.timeOrigin];
        }),
      );
      return fences.length;
    },
    collect() {
      return collecting;
    },
    expected({ seed, count }) {
      return expectedErrors(count as number, seed as number);
    },
    async relay({ descriptor, index, workers, last }) {
      const timeline = SharedTimeline.fromDescriptor(descriptor as SharedTimelineDescriptor);
      let signalled = 0;
      for (let p = (index as number) + 1; p <= (last as number); p += workers as number) {
        if (p > 1) await timeline.wait(p - 1);
        if (timeline.signal(p)) signalled++;
      }
      return signalled;
    },
    exit({ code }) {
      setTimeout(() => process.exit(code as number), 0);
      return true;
    },
  });
}
