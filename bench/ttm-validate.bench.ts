/**
 * Benchmark: does `validate()` get slower as the LRU lists get longer?
 *
 * Question: a device may hold 100,000 buffer objects. The common validate paths must not walk
 * them: a buffer already where it should be is only checked, and a validate that needs one
 * eviction takes the first evictable object at the head of the LRU and one hole of the range
 * manager. What does validate cost with 100,000 objects on the LRU compared with 100, and what
 * does the range manager's allocation cost with 100,000 live ranges compared with 100?
 *
 * Devices ({@link validateSide}): `n` one-page objects fill a VRAM range manager of exactly
 * `n` pages (so its LRU holds `n` resources), plus {@link SPARE} one-page objects in System.
 * Two timed operations, each against the same operation on the 100-object device:
 * - `in place`: reserve, `validate([VRAM])` of an object already in VRAM, unreserve (which
 *   moves it to the LRU tail). Always the same {@link IN_PLACE_SET} objects, so both devices
 *   touch the same amount of memory: the row measures the algorithm, not the cache.
 * - `one eviction`: take the object at the head of the System LRU (read with a cursor, outside
 *   the timing), reserve it, `validate([VRAM])`: VRAM is full, so the first pass finds no space
 *   and the second evicts the VRAM LRU head (an idle object, memcpy to System) and allocates its
 *   page; unreserve. The evicted object is the next one in System's LRU order, so the rounds
 *   rotate through every object.
 * The untimed setup of each round waits for the heap's deferred-free worker (`heap.drain()`).
 *
 * Range manager ({@link rangeSide}): a {@link TtmRangeManager} with `n` live ranges of a seeded
 * random 1-4 pages and 25% free pages, fragmented by an untimed churn (min(5n, 20,000) steps)
 * before the first round. One op = free a random live range, allocate a random 1-4 pages
 * (first fit, which must skip holes too small; one page instead when that finds no space, so
 * the number of live ranges stays `n`): a slow first-fit scan shows up here.
 *
 * `--quick` uses 50,000 objects and ranges instead of 100,000 (building 100,000 objects one by
 * one takes 1.5-3.5 s here) and fewer operations per round; its rows say "scaled down".
 *
 * Targets (ratio = rate with `n` / rate with 100): validate rows >= 0.5x ("flat": a 1000x longer
 * LRU may cost at most 2x, e.g. in cache misses; an O(n) walk would show as ~0.001x); range
 * manager >= 0.1x ("sub-linear": an O(log n) tree is expected at 0.3-0.5x; a linear scan at ~0.001x).
 *
 * Contract: each round checks that the evicted objects are in System and the validated ones in
 * VRAM, and the range manager's live byte count matches its usage.
 *
 * @example
 * ```ts
 * // npm run bench -- ttm-validate
 * import { definition } from './ttm-validate.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { PAGE_SIZE } from '../src/heap/page-pool.js';
import { DmaResv } from '../src/resv/dma-resv.js';
import { TtmDevice } from '../src/ttm/ttm-device.js';
import { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { TtmRangeManager } from '../src/ttm/ttm-range-manager.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import type { TtmResource, TtmResourceManager, TtmResourceOwner } from '../src/ttm/ttm-resource.js';
import { TtmLruList } from '../src/ttm/ttm-lru.js';
import {
  compare,
  formatDuration,
  seededRandom,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
  type Target,
} from './harness.js';
import { makeBos } from './ttm-common.js';

export const SEED = 0x7a11_0004;
/** Objects in System besides the `n` in VRAM. */
export const SPARE = 64;
/** Objects the in-place rows validate, round-robin. */
export const IN_PLACE_SET = 100;
/** Ranges are 1..MAX_PAGES pages. */
export const MAX_PAGES = 4;

export const TARGET_FLAT: Target = { op: '>=', value: 0.5, text: '>= 0.5x (flat)' };
export const TARGET_SUBLINEAR: Target = { op: '>=', value: 0.1, text: '>= 0.1x (sub-linear)' };

/** A side with a teardown. */
export interface ClosableSide extends Side {
  close(): Promise<void>;
}

/** The two validate operations of one device. */
export interface ValidateSides {
  readonly n: number;
  readonly device: TtmDevice;
  readonly inPlace: ClosableSide;
  readonly evicting: ClosableSide;
  /** Tears the device down (both sides' `close` do nothing). */
  close(): Promise<void>;
}

/** The head of `man`'s LRU (first resource of priority 0..3), read with a cursor. */
export function lruHead(man: TtmResourceManager): TtmResource | null {
  const cursor = man.cursor();
  try {
    return cursor.next();
  } finally {
    cursor.fini();
  }
}

/** A device with `n` objects filling VRAM and {@link SPARE} in System; see the module comment. */
export async function validateSide(n: number, progress: (line: string) => void): Promise<ValidateSides> {
  const device = new TtmDevice({ name: `bench-validate-${n}`, vramBytes: n * PAGE_SIZE });
  const vramPlace = [{ memType: TtmMemType.VRAM }];
  const resident: TtmBufferObject[] = [];
  for (let done = 0; done < n; ) {
    const chunk = Math.min(10_000, n - done);
    resident.push(...(await makeBos(device, chunk, PAGE_SIZE, TtmMemType.VRAM, `validate-${n}`)));
    done += chunk;
    if (n > 10_000) progress(`ttm-validate: ${done}/${n} objects in VRAM`);
  }
  const spare = await makeBos(device, SPARE, PAGE_SIZE, TtmMemType.System, `spare-${n}`);
  const sys = device.manager(TtmMemType.System)!;
  const vram = device.manager(TtmMemType.VRAM)!;
  if (vram.usage !== n * PAGE_SIZE)
    throw new Error(`ttm-validate: VRAM usage ${vram.usage} B after placing ${n} pages, expected it full`);
  const set = resident.slice(0, Math.min(IN_PLACE_SET, n));
  let next = 0;
  let lastMoved: TtmBufferObject[] = [];
  const drain = (): Promise<void> => device.heap.drain();
  const inPlace: ClosableSide = {
    label: `${n.toLocaleString('en-US')} on the LRU`,
    setup: drain,
    async run(batch: number) {
      for (let i = 0; i < batch; i++) {
        const bo = set[next]!;
        next = (next + 1) % set.length;
        await bo.reserve();
        try {
          await bo.validate(vramPlace);
        } finally {
          bo.unreserve();
        }
      }
    },
    close: () => Promise.resolve(),
  };
  const evicting: ClosableSide = {
    label: `${n.toLocaleString('en-US')} on the LRU`,
    async setup() {
      // Eviction takes the LRU head and unreserve puts a validated object at the tail, so the
      // last n objects validated in the round must all still be in VRAM.
      for (const bo of lastMoved.slice(-n)) {
        if (bo.resource?.memType !== TtmMemType.VRAM)
          throw new Error(
            `ttm-validate: ${bo.describe()} is not in VRAM, though fewer than ${n} validates followed its own`,
          );
      }
      if (vram.usage !== n * PAGE_SIZE)
        throw new Error(`ttm-validate: VRAM usage ${vram.usage} B, expected it full (${n} pages)`);
      if (sys.usage !== SPARE * PAGE_SIZE)
        throw new Error(`ttm-validate: System usage ${sys.usage} B, expected the ${SPARE} spare pages`);
      lastMoved = [];
      await drain();
    },
    async run(batch: number) {
      let ms = 0;
      for (let i = 0; i < batch; i++) {
        const head = lruHead(sys);
        const bo = head?.bo;
        if (!(bo instanceof TtmBufferObject))
          throw new Error(`ttm-validate: System LRU head ${String(head)} has no buffer object`);
        const t0 = performance.now();
        await bo.reserve();
        try {
          await bo.validate(vramPlace);
        } finally {
          bo.unreserve();
        }
        ms += performance.now() - t0;
        lastMoved.push(bo);
      }
      return ms;
    },
    close: () => Promise.resolve(),
  };
  return {
    n,
    device,
    inPlace,
    evicting,
    async close() {
      for (const bo of resident) bo.put();
      for (const bo of spare) bo.put();
      await device.fini();
    },
  };
}

/** A stand-in for a buffer object: what a range manager reads from its owner. */
function owner(pages: number, resv: DmaResv): TtmResourceOwner {
  return { size: pages * PAGE_SIZE, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv };
}

/** A range manager with `n` live ranges and the churn op, as in the module comment. */
export function rangeSide(
  n: number,
  seed: number,
): ClosableSide & { readonly manager: TtmRangeManager; readonly failures: () => number; readonly live: () => number } {
  const rnd = seededRandom(seed);
  const sizes = Array.from({ length: n }, () => 1 + Math.floor(rnd() * MAX_PAGES));
  const pages = Math.ceil(sizes.reduce((a, b) => a + b, 0) * 1.25);
  const host = { unevictable: new TtmLruList() };
  const manager = new TtmRangeManager(host, { size: pages * PAGE_SIZE, name: `bench-range-${n}` });
  const resv = new DmaResv({ name: `bench-range-${n}` });
  const place = { memType: TtmMemType.VRAM };
  const live: TtmResource[] = [];
  let failures = 0;
  let liveBytes = 0;
  const alloc = (p: number): void => {
    let res = manager.alloc(owner(p, resv), place);
    if (typeof res === 'string') {
      // Too fragmented for p pages: take one page instead, so the live count stays n.
      failures++;
      res = manager.alloc(owner(1, resv), place);
      if (typeof res === 'string') return;
    }
    live.push(res);
    liveBytes += res.size;
  };
  const step = (): void => {
    const i = Math.floor(rnd() * live.length);
    const res = live[i]!;
    live[i] = live[live.length - 1]!;
    live.pop();
    liveBytes -= res.size;
    manager.free(res);
    alloc(1 + Math.floor(rnd() * MAX_PAGES));
  };
  for (const p of sizes) alloc(p);
  const fragmenting = Math.min(5 * n, 20_000);
  for (let i = 0; i < fragmenting; i++) step();
  return {
    label: `${n.toLocaleString('en-US')} live ranges`,
    manager,
    failures: () => failures,
    live: () => live.length,
    setup() {
      if (manager.usage !== liveBytes)
        throw new Error(
          `ttm-validate: range manager usage ${manager.usage} B, ` +
            `but its ${live.length} live ranges hold ${liveBytes} B`,
        );
    },
    run(batch: number) {
      for (let i = 0; i < batch; i++) step();
    },
    close() {
      for (const res of live) manager.free(res);
      live.length = 0;
      return Promise.resolve();
    },
  };
}

/** Sizes of a run. */
export interface ValidateScale {
  readonly large: number;
  readonly small: number;
  /** In-place validates per timed round (each well under a microsecond). */
  readonly inPlaceBatch: number;
  /** Evicting validates per timed round. */
  readonly batch: number;
  /** Range manager ops per timed round. */
  readonly rangeBatch: number;
}

export const FULL: ValidateScale = { large: 100_000, small: 100, inPlaceBatch: 10_000, batch: 500, rangeBatch: 5000 };
export const QUICK: ValidateScale = { large: 50_000, small: 100, inPlaceBatch: 5000, batch: 300, rangeBatch: 3000 };

function perOp(rate: number): string {
  return formatDuration(1e9 / rate);
}

/** Runs the three comparisons at `scale` with `rounds` + `warmup` rounds each. */
export async function runValidate(
  scale: ValidateScale,
  rounds: number,
  warmup: number,
  progress: (line: string) => void,
): Promise<BenchReport> {
  const { large, small } = scale;
  const tag = `${large.toLocaleString('en-US')} vs ${small}${large < FULL.large ? ' (scaled down)' : ''}`;
  const rows: Row[] = [];
  const notes: string[] = [];
  progress(`ttm-validate: building devices with ${large} and ${small} objects`);
  const t0 = performance.now();
  const big = await validateSide(large, progress);
  const buildMs = performance.now() - t0;
  const little = await validateSide(small, progress);
  try {
    progress('ttm-validate: validate in place');
    const inPlace = await compare({
      name: `validate in place, ${tag}`,
      candidate: big.inPlace,
      baseline: little.inPlace,
      batch: scale.inPlaceBatch,
      rounds,
      warmup,
      target: TARGET_FLAT,
    });
    rows.push({
      ...inPlace,
      note:
        `${perOp(inPlace.dmabuf!.value)} vs ${perOp(inPlace.baseline!.value)} per validate (reserve ` +
        `+ validate + unreserve), ${Math.min(IN_PLACE_SET, small)} objects round-robin on both devices`,
    });
    progress('ttm-validate: validate with one eviction');
    const evicting = await compare({
      name: `validate with one eviction, ${tag}`,
      candidate: big.evicting,
      baseline: little.evicting,
      batch: scale.batch,
      rounds,
      warmup,
      target: TARGET_FLAT,
    });
    const s = big.device.stats();
    rows.push({
      ...evicting,
      note:
        `${perOp(evicting.dmabuf!.value)} vs ${perOp(evicting.baseline!.value)} per validate (reserve + validate ` +
        `into full VRAM + unreserve; one memcpy eviction of one page ` +
        `each); large device: ${s.evictions} evictions in all rounds`,
    });
  } finally {
    await big.close();
    await little.close();
  }
  progress('ttm-validate: range manager alloc + free');
  const bigRange = rangeSide(large, SEED);
  const littleRange = rangeSide(small, SEED + 1);
  try {
    const range = await compare({
      name: `range manager free + alloc, live ranges ${tag}`,
      candidate: bigRange,
      baseline: littleRange,
      batch: scale.rangeBatch,
      rounds,
      warmup,
      target: TARGET_SUBLINEAR,
    });
    rows.push({
      ...range,
      note:
        `${perOp(range.dmabuf!.value)} vs ${perOp(range.baseline!.value)} per ` +
        `free + alloc of 1-${MAX_PAGES} pages with 25% of the pages free; ` +
        `ENOSPC (then one page taken instead): ${bigRange.failures()} vs ${littleRange.failures()} ` +
        `(live ranges at the end ${bigRange.live()} vs ${littleRange.live()}); ` +
        `free extents at the end: largest ${bigRange.manager.largestFree / PAGE_SIZE} ` +
        `vs ${littleRange.manager.largestFree / PAGE_SIZE} pages`,
    });
  } finally {
    await bigRange.close();
    await littleRange.close();
  }
  notes.push(
    `building the ${large.toLocaleString('en-US')}-object device ` +
      `(initValidate one by one) took ${(buildMs / 1000).toFixed(1)} s; ` +
      `validate rows: one op = one reserve + validate + unreserve, ${scale.inPlaceBatch} (in place) and ` +
      `${scale.batch} (one eviction) per round; range rows: ${scale.rangeBatch} per round; seeds ${SEED}, ${SEED + 1}`,
  );
  return { rows, notes };
}

export const definition: BenchDefinition = {
  name: 'ttm-validate',
  question:
    'Does validate() cost more with 100,000 buffer objects on the LRU than with 100 (already placed; needing ' +
    'one eviction), and does the range manager allocate as fast with 100,000 live ranges as with 100?',
  baseline: 'the same operation on a device (or range manager) holding 100 objects (ranges)',
  target: 'validate rows >= 0.5x (flat in the LRU length); range manager >= 0.1x (sub-linear)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    return runValidate(ctx.budget.quick ? QUICK : FULL, ctx.budget.rounds, ctx.budget.warmup, ctx.progress);
  },
};
