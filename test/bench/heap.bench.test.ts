import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import {
  InlineZeroPool,
  KiB,
  churnRound,
  dmaHeapDesign,
  freshDesign,
  heldRow,
  inlinePoolDesign,
  latencyRow,
  macrotaskTurn,
  type AllocDesign,
  type ChurnShape,
} from '../../bench/heap-alloc.bench.js';
import {
  BUFFER_SIZE,
  GENERIC_POOL_SIZE,
  dmaHeapPoolSide,
  genericPoolSide,
  type PoolSide,
} from '../../bench/heap-pool.bench.js';
import { BENCHMARKS } from '../../bench/index.js';

const SIZE = 64 * KiB;
const TINY: ChurnShape = { size: SIZE, workingSet: 4, steps: 24, turnEvery: 1 };

async function runOnce(side: PoolSide, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

describe('heap-alloc bench: the inline-zeroing pool baseline', () => {
  it('sanity: a freed buffer comes back from the next allocate, all zero', () => {
    const pool = new InlineZeroPool();
    const first = pool.allocate(SIZE);
    assert.equal(first.byteLength, SIZE);
    new Uint8Array(first).fill(0xff);
    pool.free(first);
    const again = pool.allocate(SIZE);
    assert.equal(again, first, 'the pool hands back the buffer it was given');
    assert.ok(
      new Uint8Array(again).every((b) => b === 0),
      'the reused buffer is all zero',
    );
  });

  it('keeps one free list per size class (4 KiB << order) and counts live and pooled bytes', () => {
    const pool = new InlineZeroPool();
    assert.equal(InlineZeroPool.classBytes(1), 4 * KiB);
    assert.equal(InlineZeroPool.classBytes(5000), 8 * KiB);
    assert.equal(InlineZeroPool.classBytes(1024 * KiB), 1024 * KiB);
    const small = pool.allocate(5000);
    const big = pool.allocate(SIZE);
    assert.equal(small.byteLength, 8 * KiB);
    assert.deepEqual([pool.live, pool.liveBytes, pool.pooledBytes], [2, 8 * KiB + SIZE, 0]);
    pool.free(small);
    pool.free(big);
    assert.deepEqual([pool.live, pool.liveBytes, pool.pooledBytes], [0, 0, 8 * KiB + SIZE]);
    assert.equal(pool.allocate(SIZE), big, 'a 64 KiB request does not get the 8 KiB buffer');
    pool.clear();
    assert.equal(pool.pooledBytes, 0);
    assert.notEqual(pool.allocate(5000), small, 'after clear() the pool makes new buffers');
  });
});

describe('heap-alloc bench: churn rounds', () => {
  it('every design runs a tiny churn, hands out zeros and returns one latency per step', async () => {
    await using heap = new DmaHeap({ name: 'test-heap-alloc' });
    const pool = new InlineZeroPool();
    const designs: AllocDesign<never>[] = [
      dmaHeapDesign(heap, SIZE),
      freshDesign(SIZE),
      inlinePoolDesign(pool, SIZE),
    ] as AllocDesign<never>[];
    for (const design of designs) {
      const r = await churnRound(design, TINY);
      assert.equal(r.alloc.length, TINY.steps, design.label);
      assert.equal(r.step.length, TINY.steps, design.label);
      assert.ok(
        r.alloc.every((ms, i) => Number.isFinite(ms) && ms >= 0 && ms <= r.step[i]!),
        `${design.label}: allocate time within the step's time`,
      );
      assert.ok(
        r.heldBytes >= TINY.workingSet * SIZE,
        `${design.label} held ${r.heldBytes} bytes at the end of the churn, less than its working set`,
      );
      assert.equal(design.liveBuffers(), 0, `${design.label} freed its working set at the end of the round`);
    }
    await heap.drain();
  });

  it('DmaHeap: after a warm round, a steady churn with a turn per step is served from the pool', async () => {
    await using heap = new DmaHeap({ name: 'test-heap-alloc-hits' });
    const design = dmaHeapDesign(heap, SIZE);
    await churnRound(design, TINY);
    await heap.drain();
    const before = heap.stats();
    const r = await churnRound(design, TINY);
    const after = heap.stats();
    assert.equal(after.misses - before.misses, 0, 'no fresh allocation once the pool holds the working set');
    assert.equal(after.hits - before.hits, TINY.workingSet + TINY.steps);
    assert.ok(
      r.heldBytes >= TINY.workingSet * SIZE && r.heldBytes <= 2 * TINY.workingSet * SIZE,
      `held ${r.heldBytes}: the working set plus a few pooled or pending buffers, not a growing list`,
    );
    await heap.drain();
    assert.equal(heap.stats().liveBytes, 0);
    assert.equal(heap.stats().pendingBytes, 0);
  });

  it('a design that hands out a dirty buffer fails the round', async () => {
    // A pool that "forgets" to zero: free pushes the buffer as it is.
    const dirty: ArrayBuffer[] = [];
    let live = 0;
    const broken: AllocDesign<ArrayBuffer> = {
      label: 'broken pool',
      allocate: () => {
        live++;
        return dirty.pop() ?? new ArrayBuffer(SIZE);
      },
      bytesOf: (b) => new Uint8Array(b),
      free: (b) => {
        live--;
        dirty.push(b);
      },
      heldBytes: () => 0,
      liveBuffers: () => live,
    };
    await assert.rejects(churnRound(broken, TINY), /broken pool handed out a buffer that is not zero/);
  });

  it('a design whose live count is off at the end of the churn fails the round', async () => {
    const design = { ...freshDesign(SIZE), liveBuffers: () => 0 };
    await assert.rejects(churnRound(design, TINY), /counts 0 live buffers at the end of the churn, expected 4/);
  });

  it('times the allocate alone and the free + allocate, with the clock it is given', async () => {
    let t = 0;
    const now = (): number => (t += 1);
    const r = await churnRound(freshDesign(SIZE), TINY, now);
    // Per step: read before the free, between free and allocate, after the allocate.
    assert.deepEqual([...new Set(r.alloc)], [1]);
    assert.deepEqual([...new Set(r.step)], [2]);
  });

  it('churnRound rejects a shape without steps or working set', async () => {
    await assert.rejects(churnRound(freshDesign(SIZE), { ...TINY, workingSet: 0 }), RangeError);
    await assert.rejects(churnRound(freshDesign(SIZE), { ...TINY, turnEvery: 0 }), RangeError);
  });

  it('macrotaskTurn lets a setImmediate queued before it run first', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('worker'));
    await macrotaskTurn();
    order.push('churn');
    assert.deepEqual(order, ['worker', 'churn']);
  });
});

describe('heap-alloc bench: rows', () => {
  it('latencyRow prints 1/latency and its ratio is baseline latency over candidate latency', () => {
    const row = latencyRow({
      name: 'x',
      candidate: { label: 'fast', perRoundMs: [0.001, 0.002, 0.001] },
      baseline: { label: 'slow', perRoundMs: [0.01, 0.01, 0.02] },
      batch: 10,
      target: { op: '>=', value: 5 },
    });
    assert.equal(row.kind, 'throughput');
    assert.equal(row.dmabuf?.value, 1e6, 'median latency 1 µs = 1 M/s');
    assert.equal(row.baseline?.value, 1e5);
    assert.equal(row.ratio?.median, 10, 'per-round ratios 10, 5, 20');
    assert.deepEqual(row.target, { text: '>= 5x', pass: true });
    assert.equal(row.samples, 3);
  });

  it('heldRow compares bytes, lower is better, without target', () => {
    const samples = (label: string, held: number[]) => ({
      label,
      allocP50: [],
      allocP99: [],
      stepP50: [],
      stepP99: [],
      held,
      allAlloc: [],
    });
    const row = heldRow({
      name: 'm',
      candidate: samples('a', [100, 100]),
      baseline: samples('b', [400, 200]),
      batch: 4,
    });
    assert.equal(row.kind, 'memory');
    assert.equal(row.dmabuf?.value, 100);
    assert.equal(row.baseline?.value, 300);
    assert.equal(row.ratio?.median, 0.375);
    assert.equal(row.target, null);
  });
});

describe('heap-pool bench sides', () => {
  it('sanity: DmaHeap side runs a small batch from the pool, every allocation a hit', async () => {
    const drainMs: number[] = [];
    const side = dmaHeapPoolSide({ timedDrain: false, drainMs, batch: 32 });
    try {
      for (let r = 0; r < 3; r++) await assert.doesNotReject(runOnce(side, 32));
      assert.ok(drainMs.length >= 1, 'the setup timed at least one drain');
      const s = side.heap.stats();
      assert.equal(s.liveBytes, 0);
      assert.equal(s.misses, 32, 'only the first setup made buffers');
      assert.equal(s.hits, 3 * 32);
    } finally {
      await side.close();
    }
  });

  it('DmaHeap side with the worker timed needs only as many pooled buffers as the generic pool', async () => {
    const side = dmaHeapPoolSide({ timedDrain: true, batch: 64 });
    try {
      await runOnce(side, 64);
      const s = side.heap.stats();
      assert.equal(s.pendingBytes, 0, 'the round ends drained');
      assert.equal(s.pooledBytes, GENERIC_POOL_SIZE * BUFFER_SIZE);
      assert.equal(s.misses, GENERIC_POOL_SIZE);
    } finally {
      await side.close();
    }
  });

  it('DmaHeap side fails a round whose pool was not refilled (a miss)', async () => {
    const side = dmaHeapPoolSide({ timedDrain: false, batch: 8 });
    try {
      await runOnce(side, 8);
      // No setup: the 8 buffers of the last round are still pending, not pooled.
      await assert.rejects(Promise.resolve(side.run(8)), /pool hits and \d+ misses/);
    } finally {
      await side.heap.drain();
      await side.close();
    }
  });

  it('generic-pool sides reuse at most their 16 buffers; the zeroing one hands out zeros', async () => {
    for (const zeroOnRelease of [false, true]) {
      const side = genericPoolSide({ zeroOnRelease });
      try {
        for (let r = 0; r < 2; r++) await assert.doesNotReject(runOnce(side, 40));
        assert.ok(side.created() <= GENERIC_POOL_SIZE, `created ${side.created()} buffers`);
        assert.ok(side.created() >= 1);
      } finally {
        await side.close();
      }
    }
  });
});

describe('bench registry', () => {
  it('registers heap-alloc and heap-pool before lockdep, which stays last', () => {
    const names = BENCHMARKS.map((b) => b.name);
    assert.ok(names.includes('heap-alloc') && names.includes('heap-pool'), names.join(', '));
    assert.equal(names.at(-1), 'lockdep');
  });
});
