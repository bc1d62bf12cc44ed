/**
 * Executable specification of src/ttm/ttm-placement.ts: the operation context's defaults, the
 * placement checks every entry point runs (validate, initReserved, a driver's evictFlags), and
 * the names used in messages.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError } from '../../src/base/errors.js';
import { DmaResv } from '../../src/resv/dma-resv.js';
import {
  TTM_NUM_MEM_TYPES,
  TtmMemType,
  TtmOperationCtx,
  TtmPlaceFlags,
  checkPlacement,
  describePlacement,
  memTypeName,
} from '../../src/ttm/ttm-placement.js';

describe('TtmOperationCtx', () => {
  it('sanity: by default it may wait, evicts no shared reservation, and has moved nothing', () => {
    const ctx = new TtmOperationCtx();
    assert.equal(ctx.interruptible, true, 'waits honour a signal unless declared uninterruptible (issue 10)');
    assert.equal(ctx.noWaitGpu, false);
    assert.equal(ctx.allowResEvict, false);
    assert.equal(ctx.resv, null);
    assert.equal(ctx.signal, undefined);
    assert.equal(ctx.bytesMoved, 0);
  });

  it('takes every option it is given', () => {
    const resv = new DmaResv();
    const signal = new AbortController().signal;
    const ctx = new TtmOperationCtx({ interruptible: true, noWaitGpu: true, allowResEvict: true, resv, signal });
    assert.equal(ctx.interruptible, true);
    assert.equal(ctx.noWaitGpu, true);
    assert.equal(ctx.allowResEvict, true);
    assert.equal(ctx.resv, resv);
    assert.equal(ctx.signal, signal);
  });
});

describe('checkPlacement', () => {
  it('sanity: accepts a placement of every memory type and flag, and the empty (purge) placement', () => {
    const all = Object.values(TtmPlaceFlags).reduce((a, b) => a | b, 0);
    checkPlacement([], 'spec');
    checkPlacement(
      Array.from({ length: TTM_NUM_MEM_TYPES }, (_, memType) => ({ memType, flags: all, fpfn: 0, lpfn: 8 })),
      'spec',
    );
    checkPlacement([{ memType: TtmMemType.VRAM, fpfn: 4 }], 'spec');
    assert.ok(true, 'no throw');
  });

  it('rejects each malformed place with an InvalidArgumentError naming the caller, the place and what it got', () => {
    const cases: [unknown, RegExp][] = [
      ['System', /^spec: placement must be an array of places, got/],
      [[null], /^spec: place 0 must be an object/],
      // A hole in a sparse array is a missing place, not one to skip.
      // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
      [[{ memType: TtmMemType.TT }, , { memType: TtmMemType.VRAM }], /^spec: place 1 must be an object, got undefined/],
      [
        [{ memType: TtmMemType.TT }, { memType: TTM_NUM_MEM_TYPES }],
        /^spec: place 1 memType must be an integer in 0\.\.8, got 9/,
      ],
      [[{ memType: -1 }], /place 0 memType must be an integer/],
      [[{ memType: 1.5 }], /place 0 memType must be an integer/],
      [[{ memType: 0, flags: 32 }], /place 0 has unknown flags 32/],
      [[{ memType: 0, flags: 0.5 }], /place 0 has unknown flags/],
      [[{ memType: 0, fpfn: -1 }], /place 0 fpfn must be a page number >= 0, got -1/],
      [[{ memType: 0, lpfn: 2 ** 60 }], /place 0 lpfn must be a page number/],
      [[{ memType: 0, fpfn: 8, lpfn: 4 }], /place 0 has an empty page range 8\.\.4/],
      [[{ memType: 0, fpfn: 4, lpfn: 4 }], /place 0 has an empty page range 4\.\.4/],
    ];
    for (const [placement, message] of cases) {
      assert.throws(
        () => checkPlacement(placement, 'spec'),
        (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
        JSON.stringify(placement),
      );
    }
  });
});

describe('placement names', () => {
  it('sanity: memory types are named, driver types counted from Priv', () => {
    assert.equal(memTypeName(TtmMemType.System), 'System');
    assert.equal(memTypeName(TtmMemType.TT), 'TT');
    assert.equal(memTypeName(TtmMemType.VRAM), 'VRAM');
    assert.equal(memTypeName(TtmMemType.Priv), 'Priv');
    assert.equal(memTypeName(TtmMemType.Priv + 2), 'Priv+2');
  });

  it('describePlacement lists each place with its flags and page window', () => {
    assert.equal(describePlacement([]), '[]');
    assert.equal(
      describePlacement([
        { memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Contiguous | TtmPlaceFlags.Desired, fpfn: 2, lpfn: 8 },
        { memType: TtmMemType.TT, flags: TtmPlaceFlags.TopDown | TtmPlaceFlags.Temporary },
        { memType: TtmMemType.System, flags: TtmPlaceFlags.Fallback },
        { memType: TtmMemType.VRAM, fpfn: 4 },
      ]),
      '[VRAM(contiguous, desired, pages 2..8), TT(topdown, temporary), System(fallback), VRAM(pages 4..end)]',
    );
  });
});
