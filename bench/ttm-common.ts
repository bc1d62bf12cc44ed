/**
 * What the TTM benchmarks share: making busy buffer objects, real-time waits, and the latency,
 * budget and count rows their tables need.
 *
 * Overview: the four `bench/ttm-*.bench.ts` files ask questions about {@link TtmDevice} and
 * {@link TtmBufferObject} (seed 004's per-object delayed delete, eviction, validation). They all
 * make buffer objects in one memory type, make some of them busy with a fence of their own, and
 * report latencies. Latencies go into the table the way `heap-alloc` puts them there: as a rate
 * (1 / latency, so higher is better like every other rate), the ratio being baseline latency /
 * candidate latency per round.
 *
 * Contract:
 * - Nothing here installs a clock: the TTM benchmarks run on the real clock (`performance.now()`
 *   and `setTimeout`), which is what `getClock()` returns when no test clock is installed.
 * - {@link attachFence} leaves the buffer object unlocked, with the fence as a Write fence in its
 *   own reservation object, so the object's last `put()` makes it a zombie until the fence signals.
 * - Rows built here are ordinary {@link Row}s; {@link countRow} carries no measured value (the table
 *   has no unit for a count), only its target and a note that gives the numbers.
 *
 * @example
 * ```ts
 * import { TtmDevice } from '../src/ttm/ttm-device.js';
 * import { TtmMemType } from '../src/ttm/ttm-placement.js';
 * import { attachFence, benchFence, makeBos } from './ttm-common.js';
 * await using device = new TtmDevice({ vramBytes: 16 * 4096 });
 * const [bo] = await makeBos(device, 1, 4096, TtmMemType.VRAM, 'example');
 * const fence = benchFence();
 * await attachFence(bo!, fence);
 * bo!.put(); // a zombie now: its fence is pending
 * fence.signal();
 * ```
 */

import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { DmaResvUsage } from '../src/resv/dma-resv.js';
import { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { TtmDevice, type TtmDeviceOptions } from '../src/ttm/ttm-device.js';
import { formatDuration, median, ratioStats, throughputRow, type Row, type Target } from './harness.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** The fences of the TTM benchmarks: signalled by hand, nothing to enable. */
export const BENCH_FENCE_OPS: DmaFenceOps = {
  getDriverName: () => 'ttm-bench',
  getTimelineName: () => 'busy',
};

/** A fresh pending fence on its own context (or on `context` with `seqno`). */
export function benchFence(context: number = fenceContextAlloc(), seqno = 1): DmaFence {
  return new DmaFence(BENCH_FENCE_OPS, context, seqno);
}

/**
 * `count` buffer objects of `size` bytes validated into `memType`, created one after another
 * (each `initValidate` awaited), named `${prefix}#i`.
 */
export async function makeBos(
  device: TtmDevice,
  count: number,
  size: number,
  memType: number,
  prefix: string,
): Promise<TtmBufferObject[]> {
  const bos: TtmBufferObject[] = [];
  for (let i = 0; i < count; i++) {
    bos.push(await TtmBufferObject.initValidate(device, { size, name: `${prefix}#${i}`, placement: [{ memType }] }));
  }
  return bos;
}

/** Adds `fence` to the object's reservation as a Write fence and unlocks it again. */
export async function attachFence(bo: TtmBufferObject, fence: DmaFence): Promise<void> {
  await bo.reserve();
  try {
    bo.resv.reserveFences(1);
    bo.resv.addFence(fence, DmaResvUsage.Write);
  } finally {
    bo.unreserve();
  }
}

/**
 * Runs `fn` on a fresh device and tears the device down after it (`fini()`, which drains the
 * delayed deletes). When `fn` throws, `rescue` runs first (signal what is still pending so the
 * drain can finish), then `fini()` gets at most two seconds and its own error is dropped: the
 * first error is the one worth reporting.
 */
export async function withDevice<T>(
  options: TtmDeviceOptions,
  fn: (device: TtmDevice) => Promise<T>,
  rescue?: () => void,
): Promise<T> {
  const device = new TtmDevice(options);
  let result: T;
  try {
    result = await fn(device);
  } catch (err) {
    try {
      rescue?.();
    } catch {
      // best effort: the benchmark already failed
    }
    await Promise.race([device.fini().catch(() => undefined), sleep(2000)]);
    throw err;
  }
  await device.fini();
  return result;
}

/** When each of `bos` was reclaimed (NaN: not yet), and any reclaimed before its fence signalled. */
export interface ReclaimRecord extends Disposable {
  readonly reclaimedAt: Float64Array;
  readonly early: string[];
}

/** Records `device.onReclaim` for `bos`, whose fence i guards bo i. Dispose to stop recording. */
export function recordReclaims(
  device: TtmDevice,
  bos: readonly TtmBufferObject[],
  fences: readonly DmaFence[],
): ReclaimRecord {
  const index = new Map(bos.map((bo, i) => [bo as object, i]));
  const reclaimedAt = new Float64Array(bos.length).fill(Number.NaN);
  const early: string[] = [];
  const sub = device.onReclaim((bo, atMs) => {
    const i = index.get(bo);
    if (i === undefined) return;
    reclaimedAt[i] = atMs;
    if (!fences[i]!.signaledFlag) early.push(`${bo.name} was reclaimed before its fence signalled`);
  });
  return { reclaimedAt, early, [Symbol.dispose]: () => sub[Symbol.dispose]() };
}

/** Signals every fence of `fences` that is still pending (a failed round's rescue). */
export function signalAll(fences: Iterable<DmaFence>): void {
  for (const f of fences) if (!f.signaledFlag) f.signal();
}

/** Real time passes: resolves after `ms` milliseconds of `setTimeout`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One macrotask turn. */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Waits (1 ms real-time steps) until `done()` holds; rejects after `limitMs` with `what` in the
 * message, so a benchmark whose objects never get freed fails instead of hanging.
 */
export async function waitUntil(done: () => boolean, limitMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!done()) {
    if (performance.now() - t0 > limitMs) throw new Error(`ttm bench: still waiting after ${limitMs} ms for ${what}`);
    await sleep(1);
  }
  return performance.now() - t0;
}

/** `1.23 s`, `4.56 ms`, `789 µs`: three significant digits. */
export function ms(value: number): string {
  if (value < 0) return `-${ms(-value)}`;
  return value >= 1000 ? `${(value / 1000).toPrecision(3)} s` : formatDuration(value * 1e6);
}

/** `12.5 MiB`. */
export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** Rate of something that takes `latencyMs` (clamped to a microsecond-free minimum like the harness). */
function rateOf(latencyMs: number): number {
  return 1000 / Math.max(latencyMs, 1e-6);
}

/**
 * A latency comparison as a row: values are 1 / latency (median over rounds), the ratio the
 * median of the per-round baseline-latency / candidate-latency ratios (so >= 5x means "5x lower").
 */
export function latencyRow(spec: {
  readonly name: string;
  readonly candidate: { readonly label: string; readonly perRoundMs: readonly number[] };
  readonly baseline: { readonly label: string; readonly perRoundMs: readonly number[] };
  readonly batch: number;
  readonly target?: Target;
  readonly note?: string;
}): Row {
  const cand = spec.candidate.perRoundMs.map(rateOf);
  const base = spec.baseline.perRoundMs.map(rateOf);
  return throughputRow({
    name: spec.name,
    candidate: { label: spec.candidate.label, rates: cand },
    baseline: { label: spec.baseline.label, rates: base },
    ratio: ratioStats(cand, base),
    samples: cand.length,
    batch: spec.batch,
    target: spec.target,
    note: spec.note,
  });
}

/**
 * An absolute latency budget as a row: the baseline is the budget itself (`budgetMs` every round),
 * so the ratio is budget / measured and a target of `>= 1x` means "within the budget".
 */
export function budgetRow(spec: {
  readonly name: string;
  readonly candidate: { readonly label: string; readonly perRoundMs: readonly number[] };
  readonly budgetMs: number;
  readonly batch: number;
  readonly targetText: string;
  readonly note?: string;
}): Row {
  return latencyRow({
    name: spec.name,
    candidate: spec.candidate,
    baseline: { label: `${ms(spec.budgetMs)} budget`, perRoundMs: spec.candidate.perRoundMs.map(() => spec.budgetMs) },
    batch: spec.batch,
    target: { op: '>=', value: 1, text: spec.targetText },
    ...(spec.note !== undefined ? { note: spec.note } : {}),
  });
}

/**
 * A count checked against a limit (peak running work items): no measured value in the rate or
 * byte columns (the note has the numbers), a target that passes when `value <= limit`.
 */
export function countRow(spec: {
  readonly name: string;
  readonly value: number;
  readonly limit: number;
  readonly targetText: string;
  readonly samples: number;
  readonly batch: number;
  readonly note: string;
}): Row {
  return {
    name: spec.name,
    kind: 'throughput',
    dmabuf: null,
    baseline: null,
    ratio: null,
    target: { text: spec.targetText, pass: spec.value <= spec.limit },
    samples: spec.samples,
    batch: spec.batch,
    note: spec.note,
  };
}

/** A bytes comparison (lower is better) from per-run readings of both sides; no target. */
export function bytesRow(spec: {
  readonly name: string;
  readonly candidate: { readonly label: string; readonly bytes: readonly number[] };
  readonly baseline: { readonly label: string; readonly bytes: readonly number[] };
  readonly batch: number;
  readonly note?: string;
}): Row {
  // A side that held nothing would make the ratio infinite or NaN; one byte keeps it printable.
  const cand = spec.candidate.bytes.map((b) => Math.max(b, 1));
  const base = spec.baseline.bytes.map((b) => Math.max(b, 1));
  const ratio = ratioStats(cand, base);
  return {
    name: spec.name,
    kind: 'memory',
    dmabuf: { label: spec.candidate.label, value: median(spec.candidate.bytes), unit: 'B' },
    baseline: { label: spec.baseline.label, value: median(spec.baseline.bytes), unit: 'B' },
    ratio,
    target: null,
    samples: cand.length,
    batch: spec.batch,
    ...(spec.note !== undefined ? { note: spec.note } : {}),
  };
}
