/**
 * Test helpers for buffer sharing: an exporter whose memory moves (like a TTM buffer object),
 * and a check that a promise is still pending.
 */
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import type { DmaBufExporter, DmaBufShare } from '../../src/heap/dma-buf-export.js';
import { DmaResv, DmaResvUsage } from '../../src/resv/dma-resv.js';

/** Whether `p` is still pending after a few turns of the event loop. */
export async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  return !settled;
}

/** An exporter whose memory moves between buffers, like a TTM buffer object. */
export class MovableBuffer implements DmaBufExporter {
  readonly name = 'movable';
  readonly resv = new DmaResv({ name: 'movable' });
  readonly size: number;
  current: { buffer: SharedArrayBuffer; offset: number };
  constructor(size: number) {
    this.size = size;
    this.current = { buffer: new SharedArrayBuffer(size), offset: 0 };
  }
  memory() {
    return this.current;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.current.buffer, this.current.offset, this.size);
  }
  /** The exporter's move: fence it, wait for everyone, copy, tell the importers, scribble on the old memory. */
  async moveTo(share: DmaBufShare, offset: number): Promise<void> {
    await this.resv.lock();
    try {
      const move = new DmaFence({ getDriverName: () => 'test', getTimelineName: () => 'move' }, fenceContextAlloc(), 1);
      share.publishFence(move, DmaResvUsage.Kernel);
      for (const fence of share.remoteFences(DmaResvUsage.Bookkeep)) await fence.wait();
      const old = this.bytes();
      const target = { buffer: new SharedArrayBuffer(offset + this.size), offset };
      new Uint8Array(target.buffer, offset, this.size).set(old);
      this.current = target;
      share.moved();
      move.signal();
      old.fill(0xee); // a reader of the old memory would see garbage
    } finally {
      this.resv.unlock();
    }
  }
}
