/**
 * Benchmark: is taking a buffer from a DmaHeap and giving it back faster than a generic pool?
 *
 * Question: the obvious JavaScript way to reuse buffers is an object pool, and the most used
 * one is generic-pool. One operation here is: get a 64 KiB buffer, write one byte into it, give
 * it back. How many operations per second does each manage?
 * - DmaHeap: `heap.allocate(64 KiB)` (synchronous; a pop from the page pool, a new
 *   {@link DmaBuf} with its reservation object), `buf.bytes()[0] = ...`, `buf.put()`
 *   (synchronous; queues the buffer for the deferred-free worker). The worker zeroes each
 *   released buffer and returns it to the page pool, one buffer per macrotask; it runs between
 *   rounds (the side's untimed setup waits for `heap.drain()`), as it would run in the idle time
 *   of an application. Every buffer it hands out is zero.
 * - generic-pool 3.9 (baseline): `createPool({ create, destroy }, { max: 16, min: 16 })` whose
 *   factory makes 64 KiB `ArrayBuffer`s; `await pool.acquire()`, the same write through a
 *   `Uint8Array`, `await pool.release(buffer)`. Each acquire and each release returns a promise,
 *   so an operation costs at least two promise settlements and the turns of the microtask queue
 *   they need. The pool hands the same buffers back as they were left: nothing is zeroed.
 *
 * Both sides reuse buffers and create nothing in a timed round: the generic pool creates its 16
 * buffers once (its factory counts them), and the heap's round must be all pool hits (its
 * counters are checked). Because the deferred worker runs only between rounds, the heap needs
 * one pooled buffer per operation of a round ({@link POOL_BATCH} x 64 KiB = 64 MiB), against the
 * generic pool's 16 x 64 KiB = 1 MiB; the notes say so.
 *
 * Two diagnostic rows without target put the zeroing back in. The heap side then works in bursts
 * of 16 operations, each burst followed by `await heap.drain()` inside the timing (the worker's
 * zeroing and its one macrotask turn per buffer), so it needs only 16 pooled buffers, as many
 * as the generic pool holds. Against generic-pool as is, and against generic-pool zeroing each
 * buffer with `fill(0)` before its release, which is what handing out cleared memory costs a
 * pool without a worker.
 *
 * Target: DmaHeap at least 2x the generic-pool rate (the first row).
 *
 * Contract: every round checks its own work: the heap's rounds were all hits and left nothing
 * live, every heap buffer read zero before its write; the generic pool created at most its
 * 16 buffers, lent none outside the round, and (zeroing variant) handed out zeros.
 *
 * @example
 * ```ts
 * // npm run bench -- heap-pool
 * import { definition } from './heap-pool.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import genericPool from 'generic-pool';
import { DmaHeap } from '../src/heap/dma-heap.js';
import type { DmaBuf } from '../src/heap/dma-buf.js';
import {
  compare,
  formatDuration,
  median,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
} from './harness.js';

/** Bytes per buffer, both sides. */
export const BUFFER_SIZE = 64 * 1024;
/** Acquire/release operations per timed round (and buffers the heap must have pooled). */
export const POOL_BATCH = 1024;
/** generic-pool's `max` and `min`. */
export const GENERIC_POOL_SIZE = 16;

/** A side that owns something to shut down after its comparison. */
export interface PoolSide extends Side {
  close(): Promise<void>;
}

/**
 * DmaHeap side. Without `timedDrain`, a round is `n` allocate + put in a row, all served from
 * the pool that the untimed setup refilled (`await heap.drain()`); `drainMs` collects those
 * drains (ms per buffer) for the notes. With `timedDrain`, a round is bursts of
 * {@link GENERIC_POOL_SIZE} operations, each followed by `await heap.drain()` inside the timing:
 * the heap then needs no more pooled buffers than the generic pool holds.
 */
export function dmaHeapPoolSide(options: {
  timedDrain: boolean;
  drainMs?: number[];
  batch?: number;
}): PoolSide & { readonly heap: DmaHeap } {
  const batch = options.batch ?? POOL_BATCH;
  const heap = new DmaHeap({ name: 'bench-heap-pool', maxPooledBytes: 2 * batch * BUFFER_SIZE });
  let written = 0;
  return {
    label: options.timedDrain ? 'DmaHeap + worker' : 'DmaHeap',
    heap,
    async setup(n: number): Promise<void> {
      const before = heap.stats();
      // The last round's buffers are still pending: they count, the drain below pools them.
      const available = (before.pooledBytes + before.pendingBytes) / BUFFER_SIZE;
      const needed = options.timedDrain ? Math.min(n, GENERIC_POOL_SIZE) : n;
      if (available < needed) {
        // First round: fill the pool (allocate what is missing, release it all).
        const bufs: DmaBuf[] = [];
        for (let i = available; i < needed; i++) bufs.push(heap.allocate(BUFFER_SIZE));
        for (const b of bufs) b.put();
      }
      const t0 = performance.now();
      const pending = heap.stats().pendingBytes / BUFFER_SIZE;
      await heap.drain();
      if (pending > 0) options.drainMs?.push((performance.now() - t0) / pending);
    },
    async run(n: number): Promise<void> {
      const before = heap.stats();
      const burst = options.timedDrain ? GENERIC_POOL_SIZE : n;
      for (let done = 0; done < n; done += burst) {
        const end = Math.min(n, done + burst);
        for (let i = done; i < end; i++) {
          const buf = heap.allocate(BUFFER_SIZE);
          const bytes = buf.bytes();
          if (bytes[0] !== 0)
            throw new Error(`heap-pool: DmaHeap handed out a buffer that is not zero (byte 0 = ${bytes[0]})`);
          bytes[0] = 1 + (written++ & 0x7f);
          buf.put();
        }
        if (options.timedDrain) await heap.drain();
      }
      const after = heap.stats();
      if (after.hits - before.hits !== n || after.misses !== before.misses) {
        throw new Error(
          `heap-pool: DmaHeap round of ${n} had ${after.hits - before.hits} pool hits and ` +
            `${after.misses - before.misses} misses; every allocation must reuse a pooled buffer`,
        );
      }
      if (after.liveBytes !== 0) throw new Error(`heap-pool: DmaHeap round left ${after.liveBytes} live bytes`);
    },
    async close(): Promise<void> {
      await heap[Symbol.asyncDispose]();
    },
  };
}

/** generic-pool side; with `zeroOnRelease`, each buffer is cleared before its release. */
export function genericPoolSide(options: { zeroOnRelease: boolean }): PoolSide & { readonly created: () => number } {
  let created = 0;
  let written = 0;
  const pool = genericPool.createPool<ArrayBuffer>(
    {
      create: async () => {
        created++;
        return new ArrayBuffer(BUFFER_SIZE);
      },
      destroy: async () => {},
    },
    { max: GENERIC_POOL_SIZE, min: GENERIC_POOL_SIZE },
  );
  const { zeroOnRelease } = options;
  return {
    label: zeroOnRelease ? 'generic-pool + fill(0)' : 'generic-pool',
    created: () => created,
    async setup(): Promise<void> {
      await pool.ready();
    },
    async run(n: number): Promise<void> {
      for (let i = 0; i < n; i++) {
        const buffer = await pool.acquire();
        const bytes = new Uint8Array(buffer);
        if (zeroOnRelease && bytes[0] !== 0)
          throw new Error(
            `heap-pool: the zeroing generic-pool handed out a buffer that is not zero (byte 0 = ${bytes[0]})`,
          );
        bytes[0] = 1 + (written++ & 0x7f);
        if (zeroOnRelease) bytes.fill(0);
        await pool.release(buffer);
      }
      if (created > GENERIC_POOL_SIZE)
        throw new Error(
          `heap-pool: generic-pool created ${created} buffers, more than its max of ${GENERIC_POOL_SIZE}`,
        );
      if (pool.borrowed !== 0)
        throw new Error(`heap-pool: generic-pool still lends ${pool.borrowed} buffers after the round`);
    },
    async close(): Promise<void> {
      await pool.drain();
      await pool.clear();
    },
  };
}

function perOp(row: Row): string {
  return `${formatDuration(1e9 / row.dmabuf!.value)} per op (baseline ${formatDuration(1e9 / row.baseline!.value)})`;
}

export const definition: BenchDefinition = {
  name: 'heap-pool',
  question:
    'Is taking a 64 KiB buffer from a DmaHeap and putting it back ' +
    'at least twice as fast as acquire + release on generic-pool?',
  baseline:
    'generic-pool 3.9: createPool({ create: 64 KiB ArrayBuffer, destroy ' +
    '}, { max: 16, min: 16 }); await acquire(), await release()',
  target: 'DmaHeap allocate + put >= 2x generic-pool acquire + release (deferred worker between rounds)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    // Rounds are short (about a millisecond): three times the budget's count costs little.
    const rounds = ctx.budget.rounds * 3;
    const warmup = ctx.budget.warmup * 2;
    const rows: Row[] = [];
    const drainMs: number[] = [];
    const cases: {
      name: string;
      candidate: PoolSide;
      baseline: PoolSide;
      target?: { op: '>='; value: number };
      note: string;
    }[] = [
      {
        name: '64 KiB acquire/release',
        candidate: dmaHeapPoolSide({ timedDrain: false, drainMs }),
        baseline: genericPoolSide({ zeroOnRelease: false }),
        target: { op: '>=', value: 2 },
        note:
          'one op = allocate + 1-byte write + put (sync) vs await acquire() + write + await ' +
          'release(); the worker zeroes between rounds (untimed); generic-pool does not zero',
      },
      {
        name: '64 KiB acquire/release, worker timed',
        candidate: dmaHeapPoolSide({ timedDrain: true }),
        baseline: genericPoolSide({ zeroOnRelease: false }),
        note:
          'no target: the heap works in bursts of 16, each followed by a timed await ' +
          'heap.drain() (zeroing + one macrotask turn per buffer); the baseline zeroes nothing',
      },
      {
        name: '64 KiB acquire/release, worker timed, vs zeroing pool',
        candidate: dmaHeapPoolSide({ timedDrain: true }),
        baseline: genericPoolSide({ zeroOnRelease: true }),
        note:
          'no target: both sides hand out zeroed buffers and pay for it ' +
          'inside the round (generic-pool: fill(0) before each release)',
      },
    ];
    for (const c of cases) {
      ctx.progress(`heap-pool: ${c.name}`);
      try {
        const row = await compare({
          name: c.name,
          candidate: c.candidate,
          baseline: c.baseline,
          batch: POOL_BATCH,
          rounds,
          warmup,
          ...(c.target !== undefined ? { target: c.target } : {}),
        });
        rows.push({ ...row, note: `${c.note}; ${perOp(row)}` });
      } finally {
        await c.candidate.close();
        await c.baseline.close();
      }
    }
    const notes = [
      `memory: DmaHeap keeps ${POOL_BATCH} x 64 KiB = ${(POOL_BATCH * BUFFER_SIZE) / 2 ** 20} MiB pooled (one buffer ` +
        `per op of a round, since its worker refills the pool between rounds); generic-pool holds ` +
        `${GENERIC_POOL_SIZE} x 64 KiB = ${(GENERIC_POOL_SIZE * BUFFER_SIZE) / 2 ** 20} MiB`,
      drainMs.length > 0
        ? `deferred worker between rounds (untimed in the first row): ${formatDuration(median(drainMs) * 1e6)} ` +
          `per buffer released (zeroing 64 KiB + one macrotask turn), median over ${drainMs.length} drains`
        : 'deferred worker: no drain measured',
    ];
    return { rows, notes };
  },
};
