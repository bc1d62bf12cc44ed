/**
 * Test helper: a consumer worker keeps reading a shared buffer (checking every frame) while the
 * test moves it; see the `watch` request of `buffer-peer.worker.ts`.
 */
import { SharedTimeline } from '../../src/fence/shared-timeline.js';
import type { DmaBufDescriptor } from '../../src/heap/dma-buf-export.js';
import type { WorkerPeer } from './worker-peer.js';

/** What the consumer saw. */
export interface ReadWhileMovingResult {
  readonly problems: readonly string[];
  readonly reads: number;
  /** moveNotify calls of its dynamic attachment. */
  readonly moves: number;
  readonly lockedDuringNotify: boolean;
  /** The last frame, read through the attachment's own mapping, checked out. */
  readonly lastOk: boolean;
}

/**
 * Has `consumer` read `descriptor`'s buffer continuously while `step(n)` runs for n = 1..steps
 * (each step writes a frame and moves the buffer), then stops it and returns what it saw.
 */
export async function readWhileMoving(
  consumer: WorkerPeer,
  descriptor: DmaBufDescriptor,
  seed: number,
  steps: number,
  step: (n: number) => Promise<void>,
): Promise<ReadWhileMovingResult> {
  const stop = new SharedTimeline({ name: 'stop' });
  const started = new SharedTimeline({ name: 'started' });
  const watching = consumer.request<ReadWhileMovingResult>('watch', {
    descriptor,
    stop: stop.descriptor,
    started: started.descriptor,
    seed,
  });
  await started.wait(1);
  for (let n = 1; n <= steps; n++) {
    await step(n);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  stop.signal(1);
  return watching;
}
