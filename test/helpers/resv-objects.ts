/**
 * Reservation-object helpers for the DmaResv specs: an object locked with given fences, and a
 * walk flattened to [fence, usage] pairs.
 */
import assert from 'node:assert/strict';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaResv, type DmaResvFenceEntry, type DmaResvUsage } from '../../src/resv/dma-resv.js';

/** A locked object holding `entries`, added in order with one reservation each. */
export function lockedWith(...entries: [DmaFence, DmaResvUsage][]): DmaResv {
  const resv = new DmaResv();
  assert.equal(resv.tryLock(), true);
  for (const [fence, usage] of entries) {
    resv.reserveFences(1);
    resv.addFence(fence, usage);
  }
  return resv;
}

/** A walk (locked or unlocked) as [fence, usage] pairs, in walk order. */
export function entries(iter: Iterable<DmaResvFenceEntry>): [DmaFence, DmaResvUsage][] {
  return Array.from(iter, (e) => [e.fence, e.usage]);
}
