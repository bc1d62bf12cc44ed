/**
 * Benchmark: how fast does eviction move bytes out of VRAM?
 *
 * Question: evicting a buffer object from VRAM to System with the memcpy move
 * (`ttm_bo_move_memcpy`) costs a reservation lock, a System resource, a tt populated from the
 * device's heap, the copy itself, and LRU bookkeeping. How many bytes per second does eviction
 * move, compared with copying the same bytes with `Uint8Array.prototype.set` and nothing else?
 *
 * Sides ({@link evictSide}, {@link rawCopySide}), in interleaved rounds through `compare()`:
 * - candidate: `count` buffer objects of `size` bytes fill a VRAM manager of exactly
 *   `count * size` bytes; each was written with its own byte pattern once. A timed pass evicts
 *   every object: `await bo.reserve(); await bo.evict(); bo.unreserve()` (the device's default
 *   `evictFlags`: System). Between passes, untimed, every object is checked to be in System with
 *   its pattern intact (first, middle and last byte), moved back (`validate([VRAM])`), and the
 *   heap's deferred-free worker is waited for (`device.heap.drain()`), so the next pass's tts
 *   come pre-zeroed from the pool, as they would after idle time.
 * - baseline: the same `count * size` bytes in one `SharedArrayBuffer` (the VRAM arena is one)
 *   copied with `dst[i].set(src.subarray(...))` into `count` preallocated `Uint8Array`s; between
 *   passes, untimed, the bytes are copied back into the arena (the candidate's move back).
 * - diagnostic, no target: the same eviction on a device with a copy engine (`copyEngine: true`),
 *   so the default move pipelines the copy; a pass ends when `copyEngine.idle()` resolves (every
 *   byte copied). Its untimed part also waits for ghosts and zombies to be gone.
 *
 * Shapes: 64 x 64 KiB (4 MiB, 8 passes per round) and 16 x 1 MiB (16 MiB, 2 passes), so every
 * round moves 32 MiB: a single 4 MiB pass takes about a millisecond, too short for this machine's
 * noise. One op = one byte, so rates are bytes/s.
 *
 * Target: memcpy eviction at least 0.7x the raw copy's bytes/s (both shapes).
 *
 * Contract: a round throws when an object is not where the round put it or lost its pattern.
 *
 * @example
 * ```ts
 * // npm run bench -- ttm-evict
 * import { definition } from './ttm-evict.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { TtmDevice } from '../src/ttm/ttm-device.js';
import type { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import {
  compare,
  formatRate,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
  type Target,
} from './harness.js';
import { KiB, MiB, makeBos, ms, waitUntil } from './ttm-common.js';

/** One shape: objects, bytes per object, and eviction passes per timed round. */
export interface EvictShape {
  readonly count: number;
  readonly size: number;
  /** Passes per round, so a round moves 32 MiB and outlasts the machine's noise. */
  readonly passes: number;
}

export const SHAPES: readonly EvictShape[] = [
  { count: 64, size: 64 * KiB, passes: 8 },
  { count: 16, size: 1 * MiB, passes: 2 },
];

export const TARGET: Target = { op: '>=', value: 0.7, text: '>= 0.7x' };

/** A side with something to tear down after its comparison. */
export interface ClosableSide extends Side {
  close(): Promise<void>;
}

/** An eviction side, with counters for the notes. */
export interface EvictSide extends ClosableSide {
  readonly device: TtmDevice;
  /** Heap pool hits and misses during timed rounds. */
  readonly heap: { hits: number; misses: number };
}

function patternOf(i: number): number {
  return 1 + (i % 251);
}

function checkPattern(what: string, bytes: Uint8Array, pattern: number): void {
  const last = bytes.length - 1;
  const mid = last >> 1;
  if (bytes[0] !== pattern || bytes[mid] !== pattern || bytes[last] !== pattern) {
    throw new Error(
      `ttm-evict: ${what} lost its contents (bytes ${bytes[0]}, ${bytes[mid]}, ` +
        `${bytes[last]} at 0, ${mid}, ${last}, expected ${pattern})`,
    );
  }
}

/** The candidate (memcpy) or the pipelined diagnostic, as described in the module comment. */
export async function evictSide(shape: EvictShape, pipelined: boolean): Promise<EvictSide> {
  const { count, size, passes } = shape;
  const device = new TtmDevice({
    name: `bench-evict${pipelined ? '-pipelined' : ''}`,
    vramBytes: count * size,
    ...(pipelined ? { copyEngine: true } : {}),
  });
  const bos: TtmBufferObject[] = await makeBos(device, count, size, TtmMemType.VRAM, 'evict');
  for (const [i, bo] of bos.entries()) {
    await bo.reserve();
    await bo.waitIdle(); // with a copy engine the initial clear is a pipelined job
    bo.kmap().fill(patternOf(i));
    bo.unreserve();
  }
  let inSystem = false;
  const heap = { hits: 0, misses: 0 };
  const quiesce = async (): Promise<void> => {
    if (device.copyEngine !== null) await device.copyEngine.idle();
    await waitUntil(
      () => device.stats().ghostCount === 0 && device.zombies === 0,
      5000,
      'ghosts and zombies of the eviction rounds to be freed',
    );
    await device.heap.drain();
  };
  // Untimed: check the evicted contents, move everything back into VRAM, let the heap's worker
  // zero the released tts into its pool.
  const restore = async (): Promise<void> => {
    if (inSystem) {
      for (const [i, bo] of bos.entries()) {
        await bo.reserve();
        try {
          if (bo.resource?.memType !== TtmMemType.System)
            throw new Error(`ttm-evict: ${bo.describe()} is not in System after its eviction`);
          await bo.waitIdle();
          checkPattern(`${bo.name} after eviction`, bo.kmap(), patternOf(i));
          await bo.validate([{ memType: TtmMemType.VRAM }]);
        } finally {
          bo.unreserve();
        }
      }
      inSystem = false;
    }
    await quiesce();
    for (const [i, bo] of bos.entries()) {
      if (bo.resource?.memType !== TtmMemType.VRAM) throw new Error(`ttm-evict: ${bo.describe()} is not back in VRAM`);
      if (i === 0 || i === count - 1) {
        await bo.reserve();
        checkPattern(`${bo.name} back in VRAM`, bo.kmap(), patternOf(i));
        bo.unreserve();
      }
    }
  };
  // Timed: one pass evicting every object, ending when every byte is copied.
  const evictAll = async (): Promise<void> => {
    const before = device.heap.stats();
    for (const bo of bos) {
      await bo.reserve();
      try {
        await bo.evict();
      } finally {
        bo.unreserve();
      }
    }
    if (device.copyEngine !== null) await device.copyEngine.idle();
    inSystem = true;
    const after = device.heap.stats();
    heap.hits += after.hits - before.hits;
    heap.misses += after.misses - before.misses;
  };
  return {
    label: pipelined ? 'evict, copy engine' : 'evict (memcpy)',
    device,
    heap,
    async setup(batch: number) {
      if (batch !== passes * count * size)
        throw new RangeError(`ttm-evict: batch ${batch} must be the shape's ${passes} x ${count * size} bytes`);
      await restore();
    },
    async run() {
      let ms = 0;
      for (let p = 0; p < passes; p++) {
        if (p > 0) await restore();
        const t0 = performance.now();
        await evictAll();
        ms += performance.now() - t0;
      }
      return ms;
    },
    async close() {
      await quiesce();
      for (const bo of bos) bo.put();
      await device.fini();
    },
  };
}

/**
 * The baseline: `Uint8Array.prototype.set` from one shared arena into preallocated buffers, one
 * timed pass per eviction pass; between passes (untimed, like the candidate's move back) the
 * bytes are copied back into the arena.
 */
export function rawCopySide(shape: EvictShape): ClosableSide {
  const { count, size, passes } = shape;
  const src = new Uint8Array(new SharedArrayBuffer(count * size));
  for (let i = 0; i < count; i++) src.fill(patternOf(i), i * size, (i + 1) * size);
  const dst = Array.from({ length: count }, () => new Uint8Array(size));
  let copied = false;
  const check = (): void => {
    if (copied) for (const [i, d] of dst.entries()) checkPattern(`raw copy ${i}`, d, patternOf(i));
  };
  return {
    label: 'Uint8Array.set',
    setup(batch: number) {
      if (batch !== passes * count * size)
        throw new RangeError(`ttm-evict: batch ${batch} must be the shape's ${passes} x ${count * size} bytes`);
      check();
    },
    run() {
      let ms = 0;
      for (let p = 0; p < passes; p++) {
        if (p > 0) {
          check();
          for (let i = 0; i < count; i++) src.set(dst[i]!, i * size);
        }
        const t0 = performance.now();
        for (let i = 0; i < count; i++) dst[i]!.set(src.subarray(i * size, (i + 1) * size));
        ms += performance.now() - t0;
        copied = true;
      }
      return ms;
    },
    close: () => Promise.resolve(),
  };
}

function shapeLabel(shape: EvictShape): string {
  const each = shape.size >= MiB ? `${shape.size / MiB} MiB` : `${shape.size / KiB} KiB`;
  return `${shape.count} x ${each}`;
}

/** Bytes/s as printed in notes: `2.41 GB/s`. */
function bytesPerSecond(rate: number): string {
  return `${formatRate(rate)}B/s`;
}

/** Runs the shapes with `rounds` + `warmup` rounds each and builds the rows. */
export async function runEvict(
  shapes: readonly EvictShape[],
  rounds: number,
  warmup: number,
  progress: (line: string) => void,
): Promise<BenchReport> {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const shape of shapes) {
    const label = shapeLabel(shape);
    const batch = shape.passes * shape.count * shape.size;
    for (const pipelined of [false, true]) {
      progress(`ttm-evict: ${label}, ${pipelined ? 'copy engine' : 'memcpy'}`);
      const candidate = await evictSide(shape, pipelined);
      const baseline = rawCopySide(shape);
      const name = `${label} VRAM -> System, ${pipelined ? 'pipelined (copy engine)' : 'memcpy'}`;
      try {
        const row = await compare({
          name,
          candidate,
          baseline,
          batch,
          rounds,
          warmup,
          ...(pipelined ? {} : { target: TARGET }),
        });
        const s = candidate.device.stats();
        rows.push({
          ...row,
          note:
            `${bytesPerSecond(row.dmabuf!.value)} vs ${bytesPerSecond(row.baseline!.value)}; per object ` +
            `${ms((shape.size / row.dmabuf!.value) * 1000)} vs ${ms((shape.size / row.baseline!.value) * 1000)} ` +
            `(the difference, ${ms((shape.size / row.dmabuf!.value - shape.size / row.baseline!.value) * 1000)}, is ` +
            `what eviction adds to the copy); heap pool hits/misses (all rounds, ` +
            `warm-up included) ${candidate.heap.hits}/${candidate.heap.misses}; ` +
            `device stats: ${s.evictions} evictions, ${(s.bytesMoved / MiB).toFixed(0)} ` +
            `MiB moved (all rounds, both directions)` +
            (pipelined ? '; diagnostic, no target: each pass ends when copyEngine.idle() resolves' : ''),
        });
      } finally {
        await candidate.close();
        await baseline.close();
      }
    }
  }
  notes.push(
    'one op = one byte (rates are bytes/s); a round = 32 MiB in timed passes of ' +
      'reserve + evict() + unreserve for every object (evictFlags default: System); ' +
      'untimed between passes: check contents, validate back into VRAM, heap.drain() (tts come pre-zeroed ' +
      'from the pool); baseline: set() into preallocated Uint8Arrays, copied back untimed between passes',
  );
  return { rows, notes };
}

export const definition: BenchDefinition = {
  name: 'ttm-evict',
  question:
    'How many bytes per second does evicting buffer objects from VRAM to System move ' +
    '(memcpy move; and pipelined through the copy engine), 64 x 64 KiB and 16 x 1 MiB?',
  baseline: 'Uint8Array.prototype.set of the same bytes from one SharedArrayBuffer into preallocated buffers',
  target: 'memcpy eviction >= 0.7x the raw copy (both shapes); pipelined rows without target',
  async run(ctx: BenchContext): Promise<BenchReport> {
    return runEvict(SHAPES, ctx.budget.rounds, ctx.budget.warmup, ctx.progress);
  },
};
