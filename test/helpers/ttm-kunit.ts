/**
 * Test helpers for the TTM specs: the KUnit infrastructure of `drivers/gpu/drm/ttm/tests/`
 * (`ttm_kunit_helpers.c`, `ttm_mock_manager.c`) rebuilt on dmabuf's TTM.
 *
 * - {@link mockFuncs} is `ttm_dev_funcs`: `mock_move` (null moves between System and TT, the
 *   VRAM -> System multihop through a temporary TT resource, memcpy for everything else) and
 *   `mock_evict_flags` (VRAM and System evict to System, TT to MOCK2, MOCK1 and MOCK2 purge).
 *   {@link badEvictFuncs} is `ttm_dev_funcs_bad_evict` (always evict to MOCK1).
 * - {@link mockManagerInit} installs the "buddy" mock manager: a {@link TtmRangeManager} whose
 *   resources keep their bytes in the tt (`useTt: true`), as the drm_buddy mock does.
 *   {@link badManagerInit} (alloc says ENOSPC, everything is compatible) and
 *   {@link busyManagerInit} (alloc says EBUSY) are the two failure managers.
 * - {@link kunitBo} is `ttm_bo_kunit_init()`: a buffer object with no resource and no tt.
 * - {@link checksum} / {@link fillRandom} are the cheap content fingerprint of the stress specs.
 * - {@link trackFence} / {@link signalLeftovers}: a failed assertion must not leave a device's
 *   `fini()` waiting for a fence nobody will signal (the whole file would hang and be cancelled).
 */
import { BugError } from '../../src/base/errors.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { TtmDevice, type TtmDeviceOptions } from '../../src/ttm/ttm-device.js';
import { TtmBufferObject, type TtmBoInit, type TtmDeviceFuncs, type TtmMoveResult } from '../../src/ttm/ttm-bo.js';
import {
  TtmMemType,
  TtmPlaceFlags,
  type TtmOperationCtx,
  type TtmPlace,
  type TtmPlacement,
} from '../../src/ttm/ttm-placement.js';
import { ttmBoMoveMemcpy, ttmBoMoveNull } from '../../src/ttm/ttm-bo-util.js';
import { TtmRangeManager } from '../../src/ttm/ttm-range-manager.js';
import {
  ttmResourceFini,
  TtmResourceManager,
  type TtmLruHost,
  type TtmResource,
  type TtmResourceOwner,
} from '../../src/ttm/ttm-resource.js';

/** The first driver-private mock type (`TTM_PL_MOCK1`). */
export const TTM_PL_MOCK1 = TtmMemType.Priv + 1;
/** The second driver-private mock type (`TTM_PL_MOCK2`). */
export const TTM_PL_MOCK2 = TtmMemType.Priv + 2;

/** `ttm_place_kunit_init()`: one place of `memType` with `flags`. */
export function place(memType: number, flags = 0): TtmPlace {
  return { memType, flags };
}

/** A placement of one place (`ttm_placement_kunit_init()` with one entry). */
export function placement(memType: number, flags = 0): TtmPlacement {
  return [place(memType, flags)];
}

const SYS_PLACEMENT: TtmPlacement = Object.freeze([{ memType: TtmMemType.System, flags: TtmPlaceFlags.Fallback }]);
const MOCK2_PLACEMENT: TtmPlacement = Object.freeze([{ memType: TTM_PL_MOCK2, flags: TtmPlaceFlags.Fallback }]);
const MOCK1_PLACEMENT: TtmPlacement = Object.freeze([{ memType: TTM_PL_MOCK1, flags: TtmPlaceFlags.Fallback }]);
const PURGE: TtmPlacement = Object.freeze([]);

/** Moves counted by {@link mockMove}, by kind, for specs that check which path a move took. */
export interface MockMoveLog {
  null: number;
  multihop: number;
  memcpy: number;
}

/** `mock_move()` of ttm_kunit_helpers.c. */
export function mockMove(
  bo: TtmBufferObject,
  _evict: boolean,
  ctx: TtmOperationCtx,
  newRes: TtmResource,
): TtmMoveResult | Promise<TtmMoveResult> {
  const old = bo.resource;
  const log = moveLogs.get(bo.device);
  if (old === null || (old.memType === TtmMemType.System && bo.tt === null)) {
    if (log) log.null++;
    ttmBoMoveNull(bo, newRes);
    return;
  }
  if (old.memType === TtmMemType.VRAM && newRes.memType === TtmMemType.System) {
    if (log) log.multihop++;
    return { hop: { memType: TtmMemType.TT, flags: TtmPlaceFlags.Temporary, fpfn: 0, lpfn: 0 } };
  }
  if (
    (old.memType === TtmMemType.System && newRes.memType === TtmMemType.TT) ||
    (old.memType === TtmMemType.TT && newRes.memType === TtmMemType.System)
  ) {
    if (log) log.null++;
    ttmBoMoveNull(bo, newRes);
    return;
  }
  if (log) log.memcpy++;
  return ttmBoMoveMemcpy(bo, ctx, newRes);
}

/** `mock_evict_flags()`: VRAM/System -> System, TT -> MOCK2, anything else (MOCK1, MOCK2) purges. */
export function mockEvictFlags(bo: TtmBufferObject): TtmPlacement {
  switch (bo.resource?.memType) {
    case TtmMemType.VRAM:
    case TtmMemType.System:
      return SYS_PLACEMENT;
    case TtmMemType.TT:
      return MOCK2_PLACEMENT;
    default:
      return PURGE;
  }
}

/** `bad_evict_flags()`: always evict to MOCK1. */
export function badEvictFlags(): TtmPlacement {
  return MOCK1_PLACEMENT;
}

/** `ttm_dev_funcs`. */
export const mockFuncs: TtmDeviceFuncs = Object.freeze({ move: mockMove, evictFlags: mockEvictFlags });
/** `ttm_dev_funcs_bad_evict`. */
export const badEvictFuncs: TtmDeviceFuncs = Object.freeze({ move: mockMove, evictFlags: badEvictFlags });

const moveLogs = new WeakMap<object, MockMoveLog>();

/**
 * `ttm_device_kunit_init()`: a device with the mock functions and only the System manager
 * (no VRAM arena, no TT manager: specs install mock managers where they need them).
 */
export function kunitDevice(options?: TtmDeviceOptions & { badEvict?: boolean }): TtmDevice {
  const { badEvict, ...rest } = options ?? {};
  const device = new TtmDevice({ name: 'ttm-kunit', funcs: badEvict === true ? badEvictFuncs : mockFuncs, ...rest });
  moveLogs.set(device, { null: 0, multihop: 0, memcpy: 0 });
  return device;
}

/** The moves {@link mockMove} made on `device` so far. */
export function moveLog(device: TtmDevice): MockMoveLog {
  const log = moveLogs.get(device);
  if (!log) throw new BugError('moveLog: the device was not made by kunitDevice()');
  return log;
}

/** `ttm_mock_manager_init()`: a range ("buddy") manager over `size` bytes whose bytes live in the tt. */
export function mockManagerInit(device: TtmDevice, memType: number, size: number): TtmRangeManager {
  const man = new TtmRangeManager(device, { size, useTt: true, name: `mock-${memType}` });
  man.setUsed(true);
  device.setManager(memType, man);
  return man;
}

/** `ttm_mock_manager_fini()`: evict everything, then unregister. */
export async function mockManagerFini(device: TtmDevice, memType: number): Promise<void> {
  const man = device.manager(memType);
  if (man === null) return;
  await device.evictAll(memType);
  man.setUsed(false);
  device.setManager(memType, null);
}

/** A manager whose allocations always fail with `code`, whatever the space (`ttm_bad_manager`). */
class FailingManager extends TtmResourceManager {
  readonly #code: 'ENOSPC' | 'EBUSY';
  constructor(host: TtmLruHost, size: number, code: 'ENOSPC' | 'EBUSY') {
    super(host, { size, useTt: true, name: code === 'ENOSPC' ? 'bad' : 'busy' });
    this.#code = code;
  }
  override alloc(_bo: TtmResourceOwner, _place: TtmPlace): TtmResource | 'ENOSPC' | 'EBUSY' {
    return this.#code;
  }
  override free(res: TtmResource): void {
    ttmResourceFini(this, res);
  }
  override compatible(): boolean {
    return true;
  }
}

/** `ttm_bad_manager_init()`: alloc returns ENOSPC, `compatible` is always true. */
export function badManagerInit(device: TtmDevice, memType: number, size: number): TtmResourceManager {
  const man = new FailingManager(device, size, 'ENOSPC');
  man.setUsed(true);
  device.setManager(memType, man);
  return man;
}

/** `ttm_busy_manager_init()`: alloc returns EBUSY. */
export function busyManagerInit(device: TtmDevice, memType: number, size: number): TtmResourceManager {
  const man = new FailingManager(device, size, 'EBUSY');
  man.setUsed(true);
  device.setManager(memType, man);
  return man;
}

/** Unregisters a manager that holds nothing (`ttm_bad_manager_fini()`). */
export function managerFini(device: TtmDevice, memType: number): void {
  device.manager(memType)?.setUsed(false);
  device.setManager(memType, null);
}

/** `ttm_bo_kunit_init()`: refcount 1, no resource, no tt, unlocked. */
export function kunitBo(device: TtmDevice, size: number, init?: Omit<TtmBoInit, 'size'>): TtmBufferObject {
  return new TtmBufferObject(device, { size, ...init });
}

/** The resources of an LRU list (or anything iterable over resources) in list order. */
export function lruOrder(list: Iterable<TtmResource>): TtmResource[] {
  return [...list];
}

/** Whether `res` is the last resource of `list` (`list_is_last()`). */
export function isLast(list: Iterable<TtmResource>, res: TtmResource | null): boolean {
  const all = lruOrder(list);
  return res !== null && all.length > 0 && all[all.length - 1] === res;
}

/** FNV-1a over 32-bit words: cheap, and any lost, moved or zeroed word changes it. */
export function checksum(bytes: Uint8Array): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let h = 0x811c9dc5 ^ words.length;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193) ^ i;
  return h >>> 0;
}

/** Fills `bytes` (a page multiple) with words from a xorshift32 stream seeded by `seed`. */
export function fillRandom(bytes: Uint8Array, seed: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
}

const unsignaled = new Set<DmaFence>();

/** Remembers `fence` so {@link signalLeftovers} can signal it if the test ends early. */
export function trackFence<T extends DmaFence>(fence: T): T {
  unsignaled.add(fence);
  return fence;
}

/**
 * Declare after the device (`using _leftovers = signalLeftovers();`): disposal runs in reverse
 * order, so every tracked fence is signaled before the device's `fini()` waits for it.
 */
export function signalLeftovers(): Disposable {
  return {
    [Symbol.dispose](): void {
      for (const fence of unsignaled) fence.signal();
      unsignaled.clear();
    },
  };
}
