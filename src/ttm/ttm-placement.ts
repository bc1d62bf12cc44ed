/**
 * ttm-placement: where a buffer object may live, and the options of one TTM operation.
 *
 * Overview: a {@link TtmPlacement} lists the {@link TtmPlace}s a buffer may occupy, in order of
 * preference: a memory type ({@link TtmMemType}), flags ({@link TtmPlaceFlags}) and an optional
 * page window. A {@link TtmOperationCtx} carries the options of one validate, evict or move
 * (may it wait, may it evict buffers sharing a reservation) and counts the bytes it moved.
 * The helpers check a placement given by a caller or a driver and describe it for messages.
 * Everything else in `ttm/` builds on this file; it imports nothing from TTM.
 *
 * Models `include/drm/ttm/ttm_placement.h` (kernel-locking-mm §3.1) and `struct
 * ttm_operation_ctx` of `include/drm/ttm/ttm_bo.h` (without `gfp_retry_mayfail`: allocation
 * here never retries; with an `AbortSignal` for the kernel's interruptible sleeps).
 *
 * Contract:
 * - A placement is an array of places; an empty one means "purge the contents".
 * - {@link checkPlacement} accepts exactly the shapes the rest of TTM relies on (memory type in
 *   `0..TTM_NUM_MEM_TYPES - 1`, known flags, page numbers >= 0, a non-empty window) and throws an
 *   {@link InvalidArgumentError} naming the bad place otherwise.
 * - `interruptible` means what it means for `DrmExec`: the operation's waits honour `signal`
 *   (default true); `false` declares them uninterruptible, so a `signal` with it is an
 *   {@link InvalidArgumentError} rather than a signal silently ignored.
 *
 * @example
 * ```ts
 * import { TtmMemType, TtmOperationCtx, TtmPlaceFlags } from 'dmabuf';
 * import { checkPlacement, describePlacement } from './ttm-placement.js'; // internal helpers
 * const placement = [{ memType: TtmMemType.VRAM, flags: TtmPlaceFlags.Desired }, { memType: TtmMemType.TT }];
 * checkPlacement(placement, 'example');
 * console.log(describePlacement(placement)); // [VRAM(desired), TT]
 * const ctx = new TtmOperationCtx({ noWaitGpu: true });
 * console.log(ctx.bytesMoved); // 0
 * ```
 */

import { InvalidArgumentError, describeValue } from '../base/errors.js';
import {
  checkInterruptible,
  defineOptions,
  invalidArgument,
  optionalBoolean,
  optionalSignal,
} from '../base/options.js';
import { DmaResv } from '../resv/dma-resv.js';

const parseCtxOptions = defineOptions('TtmOperationCtx', {
  interruptible: optionalBoolean,
  noWaitGpu: optionalBoolean,
  allowResEvict: optionalBoolean,
  resv: (value, fn, name) => {
    if (value === undefined || value === null || value instanceof DmaResv) return value;
    throw invalidArgument(fn, name, value, 'a DmaResv, null or omitted');
  },
  signal: optionalSignal,
});

/** Memory types; drivers number private types from `Priv`. @see TTM_PL_SYSTEM */
export const TtmMemType = { System: 0, TT: 1, VRAM: 2, Priv: 3 } as const;
/** Memory types of a device. @see TTM_NUM_MEM_TYPES */
export const TTM_NUM_MEM_TYPES = 9;

/**
 * Placement flags. `Temporary` marks a multihop bounce resource (never compatible, so the
 * buffer moves on); `Desired` places are tried only in the first, non-evicting pass, `Fallback`
 * places only in the evicting (force_space) pass. @see TTM_PL_FLAG_CONTIGUOUS
 */
export const TtmPlaceFlags = { Contiguous: 1, TopDown: 2, Temporary: 4, Desired: 8, Fallback: 16 } as const;

/** One acceptable place; `fpfn`/`lpfn` are page numbers, lpfn 0 or absent = no upper limit. @see struct ttm_place */
export interface TtmPlace {
  readonly memType: number;
  readonly flags?: number;
  readonly fpfn?: number;
  readonly lpfn?: number;
}
/** Places in order of preference; empty means purge the contents. @see struct ttm_placement */
export type TtmPlacement = readonly TtmPlace[];

/** Options of one TTM operation, and what it moved. @see struct ttm_operation_ctx */
export class TtmOperationCtx {
  /**
   * Waits honour `signal` (the kernel's interruptible sleeps); default true. False declares them
   * uninterruptible, and then no signal may be given.
   */
  interruptible: boolean;
  /** Fail with EBUSY instead of waiting for fences. */
  noWaitGpu: boolean;
  /** May evict buffers sharing `resv`, which the caller already holds. */
  allowResEvict: boolean;
  /** The shared reservation for `allowResEvict`. */
  resv: DmaResv | null;
  /** Aborts waits and lock sleeps. */
  signal: AbortSignal | undefined;
  /** Bytes moved by every move this context saw (statistics). */
  bytesMoved = 0;

  /** @throws {InvalidArgumentError} for unknown or mistyped options, or a signal with `interruptible: false`. */
  constructor(init?: {
    interruptible?: boolean;
    noWaitGpu?: boolean;
    allowResEvict?: boolean;
    resv?: DmaResv | null;
    signal?: AbortSignal;
  }) {
    const parsed = parseCtxOptions(init);
    this.interruptible = checkInterruptible('TtmOperationCtx', parsed.interruptible, parsed.signal);
    this.noWaitGpu = parsed.noWaitGpu ?? false;
    this.allowResEvict = parsed.allowResEvict ?? false;
    this.resv = (parsed.resv as DmaResv | null | undefined) ?? null;
    this.signal = parsed.signal;
  }
}

const KNOWN_FLAGS =
  TtmPlaceFlags.Contiguous |
  TtmPlaceFlags.TopDown |
  TtmPlaceFlags.Temporary |
  TtmPlaceFlags.Desired |
  TtmPlaceFlags.Fallback;
const MEM_TYPE_NAMES = ['System', 'TT', 'VRAM', 'Priv'];

/** @internal Names a memory type for messages: System, TT, VRAM, Priv, Priv+n. */
export function memTypeName(memType: number): string {
  return MEM_TYPE_NAMES[memType] ?? `Priv+${memType - TtmMemType.Priv}`;
}

/** @internal Formats a placement for messages, e.g. `[VRAM(desired), TT]`. */
export function describePlacement(placement: TtmPlacement): string {
  const names = placement.map((p) => {
    const flags: string[] = [];
    const f = p.flags ?? 0;
    if (f & TtmPlaceFlags.Contiguous) flags.push('contiguous');
    if (f & TtmPlaceFlags.TopDown) flags.push('topdown');
    if (f & TtmPlaceFlags.Temporary) flags.push('temporary');
    if (f & TtmPlaceFlags.Desired) flags.push('desired');
    if (f & TtmPlaceFlags.Fallback) flags.push('fallback');
    if (p.fpfn || p.lpfn) flags.push(`pages ${p.fpfn ?? 0}..${p.lpfn || 'end'}`);
    return flags.length === 0 ? memTypeName(p.memType) : `${memTypeName(p.memType)}(${flags.join(', ')})`;
  });
  return `[${names.join(', ')}]`;
}

/** @internal Checks a placement's shape. @throws {InvalidArgumentError} naming the bad place. */
export function checkPlacement(placement: unknown, what: string): asserts placement is TtmPlacement {
  if (!Array.isArray(placement))
    throw new InvalidArgumentError(`${what}: placement must be an array of places, got ${describeValue(placement)}`);
  // A plain loop: every validate, eviction and allocation checks its placement, and forEach
  // with a closure (and an array of keys per place) cost more than the checks themselves.
  for (let i = 0; i < placement.length; i++) {
    const place: unknown = placement[i];
    const p = place as TtmPlace | null;
    if (p === null || typeof p !== 'object')
      throw new InvalidArgumentError(`${what}: place ${i} must be an object, got ${describeValue(place)}`);
    if (!Number.isInteger(p.memType) || p.memType < 0 || p.memType >= TTM_NUM_MEM_TYPES) {
      throw new InvalidArgumentError(
        `${what}: place ${i} memType must be an integer in 0..${TTM_NUM_MEM_TYPES - 1}, ` +
          `got ${describeValue(p.memType)}`,
      );
    }
    const flags = p.flags ?? 0;
    if (!Number.isInteger(flags) || (flags & ~KNOWN_FLAGS) !== 0)
      throw new InvalidArgumentError(`${what}: place ${i} has unknown flags ${describeValue(p.flags)}`);
    checkPageNumber(what, i, 'fpfn', p.fpfn);
    checkPageNumber(what, i, 'lpfn', p.lpfn);
    if (p.lpfn && (p.fpfn ?? 0) >= p.lpfn)
      throw new InvalidArgumentError(`${what}: place ${i} has an empty page range ${p.fpfn ?? 0}..${p.lpfn}`);
  }
}

function checkPageNumber(what: string, i: number, key: 'fpfn' | 'lpfn', v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
    throw new InvalidArgumentError(`${what}: place ${i} ${key} must be a page number >= 0, got ${describeValue(v)}`);
}
