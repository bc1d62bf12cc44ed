/**
 * Test helpers: mock fences on the real ops table (the kernel self-tests' `mock_fence()`), and a
 * seeded PRNG so random tests can print and replay their seed.
 */
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';

export { seededRandom, shuffle } from '../../src/base/random.js';

/** Ops with only the two mandatory name getters, like the KUnit st-dma-fence mock. */
export const mockOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'mock',
  getTimelineName: () => 'mock',
});

/** A fence on a fresh context with seqno 1 (st-dma-fence-unwrap's `mock_fence()`), or at a given point. */
export function mockFence(context: number = fenceContextAlloc(), seqno = 1): DmaFence {
  return new DmaFence(mockOps, context, seqno);
}

/** A seed from the environment (`TEST_SEED`) or a fresh one; print it in failure messages. */
export function testSeed(): number {
  const fromEnv = process.env['TEST_SEED'];
  return fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}
