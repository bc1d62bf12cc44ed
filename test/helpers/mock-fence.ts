/**
 * Test helpers: mock fences on the real ops table (the kernel self-tests' `mock_fence()`), and a
 * seeded PRNG so random tests can print and replay their seed.
 */
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';

/** Ops with only the two mandatory name getters, like the KUnit st-dma-fence mock. */
export const mockOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'mock',
  getTimelineName: () => 'mock',
});

/** A fence on a fresh context with seqno 1 (st-dma-fence-unwrap's `mock_fence()`), or at a given point. */
export function mockFence(context: number = fenceContextAlloc(), seqno = 1): DmaFence {
  return new DmaFence(mockOps, context, seqno);
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from the environment (`TEST_SEED`) or a fresh one; print it in failure messages. */
export function testSeed(): number {
  const fromEnv = process.env['TEST_SEED'];
  return fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

/** Fisher–Yates shuffle in place with the given PRNG. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
