/**
 * Executable specification of src/ttm/ttm-range-manager.ts: placement rules of the range
 * manager (first fit, top-down, fpfn/lpfn, coalescing), its bookkeeping, a fast-check model
 * test against a page bitmap, the cost of allocation with many live resources, the size-only
 * system manager, and ttmResourceCompatible / ttmResourceIntersects over range resources.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { PAGE_SIZE } from '../../src/heap/page-pool.js';
import { DmaResv } from '../../src/resv/dma-resv.js';
import { TtmRangeManager, TtmSysManager } from '../../src/ttm/ttm-range-manager.js';
import { TtmMemType, TtmPlaceFlags, type TtmPlace } from '../../src/ttm/ttm-placement.js';
import {
  TtmResource,
  ttmResourceAlloc,
  ttmResourceCompatible,
  ttmResourceFree,
  ttmResourceIntersects,
  type TtmResourceOwner,
} from '../../src/ttm/ttm-resource.js';
import { TtmLruList, type TtmLruBulkMove } from '../../src/ttm/ttm-lru.js';
import { testSeed } from '../helpers/mock-fence.js';

const sharedResv = new DmaResv();

/** An owner of `pages` pages; owners carry no state the managers keep, so tests share them. */
function owner(pages: number): TtmResourceOwner {
  return {
    size: pages * PAGE_SIZE,
    priority: 0,
    pinCount: 0,
    bulkMove: null as TtmLruBulkMove | null,
    resource: null,
    resv: sharedResv,
  };
}

function rangeManager(pages: number, name?: string): TtmRangeManager {
  return new TtmRangeManager(
    { unevictable: new TtmLruList() },
    name === undefined ? { size: pages * PAGE_SIZE } : { size: pages * PAGE_SIZE, name },
  );
}

const VRAM: TtmPlace = { memType: TtmMemType.VRAM };
const TOP: TtmPlace = { memType: TtmMemType.VRAM, flags: TtmPlaceFlags.TopDown };

function alloc(man: TtmRangeManager, pages: number, place: TtmPlace = VRAM): TtmResource {
  const res = man.alloc(owner(pages), place);
  if (typeof res === 'string') throw new Error(`expected ${pages} pages to fit, got ${res}`);
  return res;
}

describe('TtmRangeManager', () => {
  it('sanity: a fresh manager is all free, in use, without tt', () => {
    const man = rangeManager(16);
    assert.equal(man.freeBytes, 16 * PAGE_SIZE);
    assert.equal(man.largestFree, 16 * PAGE_SIZE);
    assert.equal(man.allocatedRanges, 0);
    assert.equal(man.usage, 0);
    assert.equal(man.useType, true);
    assert.equal(man.useTt, false);
    assert.equal(man.name, 'ttm-range');
    man.checkInvariants();
  });

  it('allocates first fit from the bottom, and reuses the lowest hole that fits', () => {
    const man = rangeManager(16);
    const a = alloc(man, 2);
    const b = alloc(man, 3);
    const c = alloc(man, 2);
    assert.deepEqual([a.start, b.start, c.start], [0, 2, 5]);
    man.free(b);
    assert.equal(alloc(man, 4).start, 7, 'the 3-page hole is too small for 4');
    assert.equal(alloc(man, 2).start, 2, 'first fit: the hole at 2, not a better-sized one');
    assert.equal(alloc(man, 1).start, 4);
    man.checkInvariants();
  });

  it('TopDown takes the highest fit', () => {
    const man = rangeManager(16);
    assert.equal(alloc(man, 3, TOP).start, 13);
    assert.equal(alloc(man, 2, TOP).start, 11);
    const low = alloc(man, 1);
    assert.equal(low.start, 0);
    assert.equal(low.placement, 0);
    assert.equal(alloc(man, 1, TOP).placement, TtmPlaceFlags.TopDown, 'the resource keeps the place flags');
    man.checkInvariants();
  });

  it('honours fpfn and lpfn in both directions; lpfn 0 or past the end means the end', () => {
    const man = rangeManager(32);
    assert.equal(alloc(man, 4, { memType: TtmMemType.VRAM, fpfn: 10 }).start, 10);
    assert.equal(alloc(man, 4, { memType: TtmMemType.VRAM, fpfn: 2, lpfn: 12 }).start, 2);
    assert.equal(
      alloc(man, 4, { memType: TtmMemType.VRAM, fpfn: 2, lpfn: 20, flags: TtmPlaceFlags.TopDown }).start,
      16,
    );
    assert.equal(alloc(man, 2, { memType: TtmMemType.VRAM, lpfn: 1000, flags: TtmPlaceFlags.TopDown }).start, 30);
    assert.equal(alloc(man, 2, { memType: TtmMemType.VRAM, lpfn: 0, flags: TtmPlaceFlags.TopDown }).start, 28);
    assert.equal(man.alloc(owner(5), { memType: TtmMemType.VRAM, fpfn: 6, lpfn: 10 }), 'ENOSPC', 'window of 4 pages');
    assert.equal(man.alloc(owner(1), { memType: TtmMemType.VRAM, fpfn: 40 }), 'ENOSPC', 'window past the end');
    man.checkInvariants();
  });

  it('fragmented space answers ENOSPC though enough bytes are free; freeing a neighbour coalesces', () => {
    const man = rangeManager(8);
    const rs = Array.from({ length: 8 }, () => alloc(man, 1));
    for (const i of [1, 3, 5]) man.free(rs[i]!);
    assert.equal(man.freeBytes, 3 * PAGE_SIZE);
    assert.equal(man.largestFree, PAGE_SIZE);
    assert.equal(man.alloc(owner(2), VRAM), 'ENOSPC');
    man.free(rs[4]!);
    assert.equal(man.largestFree, 3 * PAGE_SIZE, 'pages 3, 4, 5 merged');
    assert.equal(alloc(man, 3).start, 3);
    man.checkInvariants();
  });

  it('late: after everything is freed the whole space is one free range again', () => {
    const man = rangeManager(37);
    const rs = [alloc(man, 5), alloc(man, 7, TOP), alloc(man, 11), alloc(man, 1, TOP)];
    for (const r of rs.reverse()) man.free(r);
    assert.equal(man.largestFree, 37 * PAGE_SIZE);
    assert.equal(alloc(man, 37).start, 0);
    man.checkInvariants();
  });

  it('alloc initialises the resource on the LRU and counts usage; free finishes it', () => {
    const man = rangeManager(16);
    const bo = owner(4);
    const res = ttmResourceAlloc(bo, VRAM, man);
    assert.ok(res instanceof TtmResource);
    assert.equal(res.bo, bo);
    assert.equal(res.size, 4 * PAGE_SIZE);
    assert.equal(res.memType, TtmMemType.VRAM);
    assert.equal(res.lruList, man.lru[0]);
    assert.equal(man.usage, 4 * PAGE_SIZE);
    assert.equal(man.allocatedRanges, 1);
    ttmResourceFree(bo, res);
    assert.equal(res.lruList, null);
    assert.equal(man.usage, 0);
    assert.equal(man.allocatedRanges, 0);
    assert.equal(man.freeBytes, 16 * PAGE_SIZE);
  });

  it("a double free and the free of another manager's resource are BugErrors that change nothing", () => {
    const man = rangeManager(16);
    const other = rangeManager(16, 'other');
    const res = alloc(man, 2);
    const foreign = alloc(other, 2);
    assert.throws(() => man.free(foreign), BugError);
    man.free(res);
    assert.throws(() => man.free(res), /not allocated here/);
    assert.equal(man.freeBytes, 16 * PAGE_SIZE);
    assert.equal(other.allocatedRanges, 1);
    man.checkInvariants();
  });

  it('bad sizes and page numbers are InvalidArgumentErrors; an empty manager has no space', () => {
    assert.throws(() => new TtmRangeManager({ unevictable: new TtmLruList() }, { size: 1000 }), InvalidArgumentError);
    assert.throws(
      () => new TtmRangeManager({ unevictable: new TtmLruList() }, { size: -PAGE_SIZE }),
      InvalidArgumentError,
    );
    assert.throws(() => new TtmRangeManager({} as never, { size: PAGE_SIZE }), InvalidArgumentError);
    const man = rangeManager(16);
    assert.throws(() => man.alloc({ ...owner(1), size: 100 }, VRAM), InvalidArgumentError);
    assert.throws(() => man.alloc(owner(1), { memType: TtmMemType.VRAM, fpfn: -1 }), InvalidArgumentError);
    assert.throws(() => man.alloc(owner(1), { memType: TtmMemType.VRAM, lpfn: 1.5 }), InvalidArgumentError);
    assert.equal(man.allocatedRanges, 0);
    assert.equal(rangeManager(0).alloc(owner(1), VRAM), 'ENOSPC');
  });

  it('debug() adds the free space to the manager line', () => {
    const man = rangeManager(16, 'vram');
    alloc(man, 4);
    assert.match(
      man.debug(),
      /^vram: use_type true, use_tt false, size 65536, usage 16384, 1 ranges, 49152 bytes free, largest free 49152$/,
    );
  });
});

/** First (or highest) start of `n` free pages of `used` inside `[lo, hi)`, or -1. */
function modelFit(used: boolean[], n: number, lo: number, hi: number, topDown: boolean): number {
  const fits = (s: number) => used.slice(s, s + n).every((u) => !u);
  if (topDown) {
    for (let s = hi - n; s >= lo; s--) if (fits(s)) return s;
  } else {
    for (let s = lo; s + n <= hi; s++) if (fits(s)) return s;
  }
  return -1;
}

function modelLargest(used: boolean[]): number {
  let best = 0;
  let run = 0;
  for (const u of used) {
    run = u ? 0 : run + 1;
    best = Math.max(best, run);
  }
  return best;
}

describe('TtmRangeManager model', () => {
  /** Allocations of `pages` pages (and frees) against a page bitmap, with the tree checked after each step. */
  function opsOf(pages: fc.Arbitrary<number>, fpfn: fc.Arbitrary<number>) {
    return fc.oneof(
      fc.record({
        kind: fc.constant('alloc' as const),
        pages,
        topDown: fc.boolean(),
        fpfn,
        lpfn: fc.integer({ min: 0, max: 90 }),
      }),
      fc.record({ kind: fc.constant('free' as const), index: fc.nat() }),
    );
  }

  function matchesModel(op: ReturnType<typeof opsOf>): void {
    const seed = testSeed();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.array(op, { minLength: 10, maxLength: 150, size: 'max' }),
        (pages, ops) => {
          const man = rangeManager(pages);
          const used = new Array<boolean>(pages).fill(false);
          const live: TtmResource[] = [];
          for (const o of ops) {
            if (o.kind === 'alloc') {
              const lpfn = o.lpfn === 0 || o.lpfn > pages ? pages : o.lpfn;
              const expected = modelFit(used, o.pages, o.fpfn, lpfn, o.topDown);
              const place: TtmPlace = {
                memType: TtmMemType.VRAM,
                fpfn: o.fpfn,
                lpfn: o.lpfn,
                flags: o.topDown ? TtmPlaceFlags.TopDown : 0,
              };
              const res = man.alloc(owner(o.pages), place);
              if (expected < 0) {
                assert.equal(res, 'ENOSPC', `seed ${seed}: ${JSON.stringify(o)} should not fit`);
              } else {
                assert.ok(res instanceof TtmResource, `seed ${seed}: ${JSON.stringify(o)} should fit at ${expected}`);
                assert.equal(res.start, expected, `seed ${seed}: ${JSON.stringify(o)}`);
                used.fill(true, res.start, res.start + o.pages);
                live.push(res);
              }
            } else if (live.length > 0) {
              const [res] = live.splice(o.index % live.length, 1);
              man.free(res!);
              used.fill(false, res!.start, res!.start + res!.size / PAGE_SIZE);
            }
            man.checkInvariants();
            assert.equal(man.freeBytes, used.filter((u) => !u).length * PAGE_SIZE, `seed ${seed}`);
            assert.equal(man.largestFree, modelLargest(used) * PAGE_SIZE, `seed ${seed}`);
            assert.equal(man.allocatedRanges, live.length);
          }
        },
      ),
      { seed, numRuns: 200 },
    );
  }

  it('matches a page bitmap (placement, free bytes, largest run) and keeps its tree consistent', () => {
    matchesModel(opsOf(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 80 })));
  });

  it('the same with power-of-two sizes from page 0: most ranges are one tree node (marked without recursion)', () => {
    matchesModel(opsOf(fc.constantFrom(1, 2, 4, 8, 16), fc.constantFrom(0, 0, 0, 4, 8, 16)));
  });
});

describe('TtmRangeManager cost', () => {
  /**
   * A manager with `live` one-page resources separated by one-page holes, then free space: a
   * two-page allocation fits none of the holes, the worst case for a search over allocations.
   */
  function fragmented(live: number, pages: number): TtmRangeManager {
    const man = rangeManager(pages);
    const one = owner(1);
    const all: TtmResource[] = [];
    for (let i = 0; i < 2 * live; i++) all.push(man.alloc(one, VRAM) as TtmResource);
    for (let i = 1; i < all.length; i += 2) man.free(all[i]!);
    return man;
  }

  /** Best-of-5 nanoseconds per alloc + free of two pages. */
  function costPerOp(man: TtmRangeManager): number {
    const two = owner(2);
    const rounds = 2000;
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < rounds; i++) man.free(man.alloc(two, VRAM) as TtmResource);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / rounds);
    }
    return best;
  }

  it('allocation with 100,000 live resources costs about what it costs with 10', (t) => {
    const pages = 300_000;
    const few = fragmented(10, pages);
    const many = fragmented(100_000, pages);
    assert.equal(many.allocatedRanges, 100_000);
    assert.equal(many.alloc(owner(2), VRAM) instanceof TtmResource && many.allocatedRanges, 100_001);
    costPerOp(few); // warm up
    const small = costPerOp(few);
    const large = costPerOp(many);
    t.diagnostic(
      `alloc+free: ${small.toFixed(0)} ns with 10 live, ` +
        `${large.toFixed(0)} ns with 100,000 live (x${(large / small).toFixed(2)})`,
    );
    assert.ok(large / small < 50, `cost grew x${(large / small).toFixed(1)} (a linear search would be ~x10,000)`);
  });
});

describe('TtmSysManager', () => {
  it('sanity: size-only, uses tt by default, start 0', () => {
    const man = new TtmSysManager({ unevictable: new TtmLruList() }, { size: 4 * PAGE_SIZE });
    assert.equal(man.useTt, true);
    assert.equal(man.name, 'ttm-sys');
    const res = man.alloc(owner(2), { memType: TtmMemType.System });
    assert.ok(res instanceof TtmResource);
    assert.equal(res.start, 0);
    assert.equal(man.usage, 2 * PAGE_SIZE);
  });

  it('allocates while usage + size <= size, ENOSPC beyond; a free makes room again', () => {
    const man = new TtmSysManager({ unevictable: new TtmLruList() }, { size: 4 * PAGE_SIZE, name: 'tt', useTt: true });
    const a = man.alloc(owner(3), { memType: TtmMemType.TT });
    assert.ok(a instanceof TtmResource);
    assert.equal(man.alloc(owner(2), { memType: TtmMemType.TT }), 'ENOSPC');
    const b = man.alloc(owner(1), { memType: TtmMemType.TT });
    assert.ok(b instanceof TtmResource, 'exactly full is fine');
    man.free(a);
    assert.ok(man.alloc(owner(2), { memType: TtmMemType.TT }) instanceof TtmResource);
    assert.equal(man.usage, 3 * PAGE_SIZE);
  });

  it('an Infinity budget never runs out; a double free is a BugError', () => {
    const man = new TtmSysManager({ unevictable: new TtmLruList() }, { size: Infinity });
    const res = man.alloc(owner(1 << 20), { memType: TtmMemType.System });
    assert.ok(res instanceof TtmResource);
    man.free(res);
    assert.throws(() => man.free(res), BugError);
    assert.equal(man.usage, 0);
  });
});

describe('compatible and intersects', () => {
  function vram(places: TtmPlace[] = [{ memType: TtmMemType.VRAM }]) {
    const man = rangeManager(64);
    const res = man.alloc(owner(4), places[0]!);
    if (typeof res === 'string') throw new Error(res);
    return { man, res };
  }

  it('sanity: a resource is compatible with the place it was allocated at', () => {
    const { res } = vram();
    assert.equal(ttmResourceCompatible(res, [{ memType: TtmMemType.VRAM }], false), true);
    assert.equal(ttmResourceCompatible(res, [{ memType: TtmMemType.VRAM }], true), true);
  });

  it('a Temporary resource is never compatible', () => {
    const { res } = vram([{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Temporary }]);
    assert.equal(ttmResourceCompatible(res, [{ memType: TtmMemType.VRAM }], false), false);
    assert.equal(
      ttmResourceCompatible(res, [{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Temporary }], true),
      false,
    );
  });

  it('Desired places are skipped when evicting, Fallback places when not', () => {
    const { res } = vram();
    const desired = [{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Desired }];
    const fallback = [{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Fallback }];
    assert.equal(ttmResourceCompatible(res, desired, false), true);
    assert.equal(ttmResourceCompatible(res, desired, true), false);
    assert.equal(ttmResourceCompatible(res, fallback, false), false);
    assert.equal(ttmResourceCompatible(res, fallback, true), true);
  });

  it('a Contiguous place needs a resource allocated contiguous', () => {
    const plain = vram().res;
    const contiguous = vram([{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Contiguous }]).res;
    const place = [{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Contiguous }];
    assert.equal(ttmResourceCompatible(plain, place, false), false);
    assert.equal(ttmResourceCompatible(contiguous, place, false), true);
  });

  it('another memType or an empty placement is not compatible; a later place can be', () => {
    const { res } = vram();
    assert.equal(ttmResourceCompatible(res, [], false), false);
    assert.equal(ttmResourceCompatible(res, [{ memType: TtmMemType.TT }], false), false);
    assert.equal(ttmResourceCompatible(res, [{ memType: TtmMemType.TT }, { memType: TtmMemType.VRAM }], false), true);
  });

  it("the range manager's fpfn/lpfn decide: compatible = inside the window, intersects = overlapping it", () => {
    const { man, res } = vram([{ memType: TtmMemType.VRAM, fpfn: 8 }]); // pages 8..11
    assert.equal(res.start, 8);
    const size = res.size;
    const at = (fpfn: number, lpfn: number): TtmPlace => ({ memType: TtmMemType.VRAM, fpfn, lpfn });
    assert.equal(ttmResourceCompatible(res, [at(8, 12)], false), true);
    assert.equal(ttmResourceCompatible(res, [at(0, 0)], false), true, 'lpfn 0: no upper limit');
    assert.equal(ttmResourceCompatible(res, [at(9, 0)], false), false);
    assert.equal(ttmResourceCompatible(res, [at(0, 11)], false), false);
    assert.equal(ttmResourceIntersects(res, at(0, 9), size), true);
    assert.equal(ttmResourceIntersects(res, at(11, 0), size), true);
    assert.equal(ttmResourceIntersects(res, at(0, 8), size), false);
    assert.equal(ttmResourceIntersects(res, at(12, 20), size), false);
    assert.equal(ttmResourceIntersects(res, null, size), true, 'no place: always');
    assert.equal(man.intersects(res, at(12, 0), size), false);
  });
});
