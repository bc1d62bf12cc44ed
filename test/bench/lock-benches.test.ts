import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  asyncMutexHandoffSide,
  asyncMutexUncontendedSide,
  WAITERS,
  wwHandoffSide,
  wwUncontendedSide,
} from '../../bench/ww-mutex.bench.js';
import { arrayAddSide, arrayIterSide, resvAddSide, resvIterSide } from '../../bench/dma-resv.bench.js';
import type { Side } from '../../bench/harness.js';

async function runOnce(side: Side, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

describe('ww-mutex bench sides', () => {
  it('sanity: every side runs a small batch and checks its own lock count', async () => {
    await assert.doesNotReject(runOnce(wwUncontendedSide(false), 100));
    await assert.doesNotReject(runOnce(wwUncontendedSide(true), 100));
    await assert.doesNotReject(runOnce(asyncMutexUncontendedSide(), 100));
    await assert.doesNotReject(runOnce(wwHandoffSide(false), 2 * WAITERS));
    await assert.doesNotReject(runOnce(wwHandoffSide(true), 2 * WAITERS));
    await assert.doesNotReject(runOnce(asyncMutexHandoffSide(), 2 * WAITERS));
  });
});

describe('dma-resv bench sides', () => {
  it('sanity: the addFence sides keep 64 fences (every add reuses a slot) over several rounds', async () => {
    for (const side of [resvAddSide(), arrayAddSide(false), arrayAddSide(true)]) {
      for (let r = 0; r < 3; r++) await assert.doesNotReject(runOnce(side, 500));
    }
  });

  it('the iteration sides see the 32 unsignaled fences on every pass', async () => {
    await assert.doesNotReject(runOnce(resvIterSide(), 10));
    await assert.doesNotReject(runOnce(arrayIterSide(), 10));
  });
});
