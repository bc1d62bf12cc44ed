/**
 * dmabuf/testing: helpers for testing code that uses dmabuf.
 *
 * Overview: timeouts are tested on a {@link VirtualClock} installed with {@link useClock}, so a
 * test moves time by hand instead of sleeping; random workloads draw from {@link seededRandom}
 * (print the seed on failure, replay it later); {@link mockFence} makes a fence on the same
 * minimal ops table the kernel's self-tests use. Nothing here is needed at run time, which is
 * why it lives in an entry of its own. Browser-safe like the main entry.
 *
 * Contract:
 * - `mockFence()` returns a fresh, active fence on a new context at seqno 1 unless told
 *   otherwise; every mock fence shares {@link mockOps}, whose names are `'mock'`.
 * - The clock and random helpers are the same objects the main entry and the library use.
 *
 * @example
 * ```ts
 * import { VirtualClock, mockFence, seededRandom, shuffle, useClock } from 'dmabuf/testing';
 * const clock = new VirtualClock();
 * using _installed = useClock(clock);
 * const fence = mockFence();
 * const waited = fence.wait({ timeout: 100 });
 * await clock.tick(100);
 * console.log(await waited); // false: the timeout ran out on the virtual clock
 * console.log(shuffle([1, 2, 3], seededRandom(7)).length); // 3
 * ```
 */

import { DmaFence, fenceContextAlloc, type DmaFenceOps } from './fence/dma-fence.js';

export { VirtualClock, settle, useClock } from './base/clock.js';
export { seededRandom, shuffle } from './base/random.js';

/** Ops with only the two mandatory name getters, like the kernel self-tests' mock fence. */
export const mockOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'mock',
  getTimelineName: () => 'mock',
});

/**
 * A fence on {@link mockOps}: on a fresh context at seqno 1, or at the given place.
 * @see mock_fence() in the kernel's st-dma-fence.c
 */
export function mockFence(context: number = fenceContextAlloc(), seqno = 1): DmaFence {
  return new DmaFence(mockOps, context, seqno);
}
