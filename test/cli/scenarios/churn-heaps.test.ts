// The two heap designs of the churn scenario, against a model: accounting adds up, memory handed
// out is zero, the budget holds (shrinking first), and the free path differs as designed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DmaBufError } from '../../../src/base/errors.js';
import { type ChurnBuffer, type ChurnHeap, churnHeap } from '../../../src/cli/scenarios/churn-heaps.js';

const SEED = Number(process.env['TEST_SEED'] ?? 0x5eed_0012);
const KiB = 1024;
const MiB = 1024 * KiB;
const DESIGNS = ['on', 'off'] as const;

function checkSums(heap: ChurnHeap, where: string): void {
  const s = heap.stats();
  assert.equal(s.liveBytes + s.pooledBytes + s.pendingBytes, s.heldBytes, `${where}: live + pooled + pending != held`);
}

for (const design of DESIGNS) {
  describe(`churn heap, deferred-free=${design}`, () => {
    it('sanity: hands out zeroed memory of the size class and counts it live', async () => {
      await using heap = churnHeap(design, 16 * MiB);
      const buf = heap.allocate(10_000);
      assert.equal(buf.size, 16 * KiB);
      assert.equal(buf.bytes().length, 10_000);
      assert.ok(
        buf.bytes().every((b) => b === 0),
        'zeroed',
      );
      assert.equal(heap.stats().liveBytes, 16 * KiB);
      heap.free(buf);
      await heap.drain();
      checkSums(heap, 'after free');
    });

    it(`frees ${design === 'on' ? 'later, through the worker' : 'at once, zeroing in the free path'}`, async () => {
      await using heap = churnHeap(design, 16 * MiB);
      const buf = heap.allocate(64 * KiB);
      buf.bytes().fill(7);
      heap.free(buf);
      const s = heap.stats();
      if (design === 'on') assert.equal(s.pendingBytes, 64 * KiB, 'waiting for the worker');
      else assert.deepEqual([s.pendingBytes, s.pooledBytes], [0, 64 * KiB], 'pooled before free returned');
      await heap.drain();
      assert.equal(heap.stats().pooledBytes, 64 * KiB);
      const again = heap.allocate(64 * KiB);
      assert.ok(
        again.bytes().every((b) => b === 0),
        'the reused buffer reads zero',
      );
      assert.equal(heap.stats().hits, 1);
      heap.free(again);
    });

    it('reclaims its caches before refusing an allocation over the budget, then throws ENOMEM', async () => {
      await using heap = churnHeap(design, 4 * MiB);
      const bufs = [heap.allocate(MiB), heap.allocate(MiB), heap.allocate(MiB), heap.allocate(MiB)];
      for (const b of bufs.splice(0, 2)) heap.free(b);
      await heap.drain();
      assert.deepEqual([heap.stats().liveBytes, heap.stats().pooledBytes], [2 * MiB, 2 * MiB]);
      // 256 KiB misses the pool (no such buffer pooled), and 4 MiB held + 256 KiB exceeds the budget.
      bufs.push(heap.allocate(256 * KiB));
      assert.ok(heap.stats().heldBytes <= 4 * MiB, 'within the budget');
      assert.equal(heap.stats().pooledBytes, MiB, 'the pool gave one 1 MiB buffer back');
      // 2 MiB more cannot fit even with the pool emptied.
      assert.throws(
        () => heap.allocate(2 * MiB),
        (err: unknown) => err instanceof DmaBufError && err.code === 'ENOMEM',
      );
      for (const b of bufs) heap.free(b);
      await heap.drain();
      checkSums(heap, 'end');
    });

    it('keeps its accounting exact and its memory zero under random churn (property against a model)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.record({ op: fc.constant('alloc' as const), size: fc.integer({ min: 1, max: 2 * MiB }) }),
              fc.record({ op: fc.constant('free' as const), at: fc.nat() }),
              fc.constant({ op: 'drain' as const }),
            ),
            { maxLength: 60 },
          ),
          async (ops) => {
            const heap = churnHeap(design, 8 * MiB);
            const live: ChurnBuffer[] = [];
            let liveModel = 0;
            try {
              for (const op of ops) {
                if (op.op === 'alloc') {
                  let buf: ChurnBuffer;
                  try {
                    buf = heap.allocate(op.size);
                  } catch (err) {
                    assert.ok(err instanceof DmaBufError && err.code === 'ENOMEM', `unexpected ${String(err)}`);
                    // Refused only when even empty caches leave no room (a class is < 2x the request).
                    const rounded = Math.max(2 * op.size, op.size + 4096);
                    assert.ok(liveModel + rounded > 8 * MiB, `ENOMEM for ${op.size} with ${liveModel} live`);
                    continue;
                  }
                  const bytes = buf.bytes();
                  assert.ok(bytes[0] === 0 && bytes[bytes.length - 1] === 0, 'handed out zero');
                  bytes.fill(0x5a);
                  live.push(buf);
                  liveModel += buf.size;
                } else if (op.op === 'free' && live.length > 0) {
                  const [buf] = live.splice(op.at % live.length, 1);
                  liveModel -= buf!.size;
                  heap.free(buf!);
                } else if (op.op === 'drain') await heap.drain();
                const s = heap.stats();
                assert.equal(s.liveBytes, liveModel, 'live bytes match the model');
                assert.ok(s.heldBytes <= 8 * MiB, 'within the budget');
                checkSums(heap, op.op);
              }
            } finally {
              for (const buf of live) heap.free(buf);
              await heap.drain();
              await heap[Symbol.asyncDispose]();
            }
          },
        ),
        { seed: SEED, numRuns: 40 },
      );
    });
  });
}
