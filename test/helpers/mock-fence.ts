/**
 * Test helpers: mock fences on the real ops table (the kernel self-tests' `mock_fence()`) and the
 * seeded PRNG, both from `dmabuf/testing`, and the seed every random test prints and replays.
 */
export { mockFence, mockOps, seededRandom, shuffle } from '../../src/testing.js';

/** A seed from the environment (`TEST_SEED`) or a fresh one; print it in failure messages. */
export function testSeed(): number {
  const fromEnv = process.env['TEST_SEED'];
  return fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}
