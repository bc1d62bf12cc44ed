/**
 * Benchmark: how soon is a released busy buffer's memory usable again (seed 004)?
 *
 * Question: seed 004 replaced TTM's periodic scan of the delayed-destroy list (a device work
 * item every 10 ms that frees each idle zombie) by one work item per zombie that sleeps on the
 * zombie's reservation object and frees it as soon as the last fence signals. The commit message
 * claims "much better response time when cleaning up buffers". How long, on the real clock, from
 * the signal of a released buffer's last fence to its memory being freed?
 *
 * Designs: a {@link TtmDevice} with `delayedDelete: 'per-object'` (the candidate, maxActive 16)
 * and one with `delayedDelete: 'periodic-scan'`, `scanIntervalMs: 10` (the baseline, the design
 * before the seed). Everything else is the same.
 *
 * Workload ({@link reclaimRound}): `count` one-page buffer objects in VRAM, each made busy with a
 * Write fence of its own. Every {@link RELEASE_EVERY_MS} ms of real time one object gets its last
 * `put()` (it becomes a zombie), and its fence signals a seeded random {@link BUSY_MIN_MS}..
 * {@link BUSY_MAX_MS} ms later, so a few zombies (four on average, about ten at the peak) wait at
 * any moment and fences signal at times unrelated to the scanner's period. This is the steady
 * case, not a storm (that is `ttm-release-storm`): fewer zombies than the 16 work items the
 * candidate may run, so none waits for a free slot.
 *
 * Measured per object: `atMs` of `device.onReclaim` (when the zombie's resource and tt were
 * freed, i.e. the manager's usage dropped) minus the fence's `timestamp` (taken by `signal()`
 * before its callbacks run). Per round and design: p50 and p99 of its objects; a row's value is
 * the median over rounds, printed as 1 / latency; its ratio is the median of per-round
 * scanner-latency / per-object-latency. Rounds alternate the designs' order; each round uses a
 * fresh device (made and filled untimed).
 *
 * Targets: per-object p99 <= 1 ms (a row against a 1 ms budget, ratio >= 1x), and per-object p99
 * at least 5x lower than the scanner's (ratio >= 5x).
 *
 * Contract: a round throws unless every object became a zombie at its put, every zombie was
 * reclaimed after its fence signalled (never before), the VRAM manager's usage is back to zero
 * and the device has no zombie left.
 *
 * @example
 * ```ts
 * // npm run bench -- ttm-reclaim
 * import { definition } from './ttm-reclaim.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { PAGE_SIZE } from '../src/heap/page-pool.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import type { DmaFence } from '../src/fence/dma-fence.js';
import { fenceContextAlloc } from '../src/fence/dma-fence.js';
import {
  median,
  quantile,
  seededRandom,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Target,
} from './harness.js';
import {
  attachFence,
  benchFence,
  budgetRow,
  latencyRow,
  makeBos,
  ms,
  recordReclaims,
  signalAll,
  waitUntil,
  withDevice,
} from './ttm-common.js';

/** The delayed-delete designs ('per-object-idle' only appears in the release storm). */
export type DelayedDeleteDesign = 'per-object' | 'per-object-idle' | 'periodic-scan';

export const SEED = 0x7713_0004;
/** Real-time milliseconds between two releases. */
export const RELEASE_EVERY_MS = 2;
/** A released object's fence signals this many ms after its release, uniform in [min, max]. */
export const BUSY_MIN_MS = 1;
export const BUSY_MAX_MS = 15;
/** The scanner's period: the kernel's HZ/100. */
export const SCAN_INTERVAL_MS = 10;

/** The shape of one round. */
export interface ReclaimSpec {
  readonly design: DelayedDeleteDesign;
  readonly count: number;
  readonly seed: number;
  readonly releaseEveryMs?: number;
  readonly busyMinMs?: number;
  readonly busyMaxMs?: number;
}

/** What one round measured. */
export interface ReclaimRound {
  /** Per object: reclaim time minus fence signal time, ms. */
  readonly latenciesMs: Float64Array;
  /** Highest number of work items running at once on `device.wq`. */
  readonly peakActive: number;
  /** Highest number of zombies waiting at once (sampled at each release and signal). */
  readonly peakZombies: number;
  /** Real time the round took, ms. */
  readonly wallMs: number;
}

/** One round of the workload in the module comment, on a fresh device. */
export async function reclaimRound(spec: ReclaimSpec): Promise<ReclaimRound> {
  const { design, count, seed } = spec;
  const releaseEvery = spec.releaseEveryMs ?? RELEASE_EVERY_MS;
  const busyMin = spec.busyMinMs ?? BUSY_MIN_MS;
  const busyMax = spec.busyMaxMs ?? BUSY_MAX_MS;
  if (!(count >= 1)) throw new RangeError(`ttm-reclaim: count must be >= 1, got ${count}`);
  const fences: DmaFence[] = [];
  const options = {
    name: `bench-reclaim-${design}`,
    vramBytes: count * PAGE_SIZE,
    delayedDelete: design,
    scanIntervalMs: SCAN_INTERVAL_MS,
  } as const;
  return withDevice(
    options,
    async (device) => {
      const vram = device.manager(TtmMemType.VRAM)!;
      const bos = await makeBos(device, count, PAGE_SIZE, TtmMemType.VRAM, `reclaim-${design}`);
      const context = fenceContextAlloc();
      for (let i = 0; i < count; i++) {
        const fence = benchFence(context, i + 1);
        fences.push(fence);
        await attachFence(bos[i]!, fence);
      }
      using record = recordReclaims(device, bos, fences);
      const { reclaimedAt, early } = record;
      device.wq.resetPeak();
      const rnd = seededRandom(seed);
      const busy = Array.from({ length: count }, () => busyMin + rnd() * (busyMax - busyMin));
      let peakZombies = 0;
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        let released = 0;
        let signalled = 0;
        const sample = (): void => {
          peakZombies = Math.max(peakZombies, device.zombies);
        };
        const releaseNext = (): void => {
          try {
            const k = released++;
            const bo = bos[k]!;
            bo.put();
            if (!bo.deleted)
              throw new Error(
                `ttm-reclaim: ${bo.describe()} did not become a zombie at its last put although its fence is pending`,
              );
            sample();
            setTimeout(() => {
              try {
                fences[k]!.signal();
                sample();
                if (++signalled === count) resolve();
              } catch (err) {
                reject(err);
              }
            }, busy[k]!);
            if (released < count) setTimeout(releaseNext, releaseEvery);
          } catch (err) {
            reject(err);
          }
        };
        releaseNext();
      });
      await waitUntil(
        () => device.zombies === 0,
        5 * SCAN_INTERVAL_MS + 1000,
        `the ${design} device's zombies to be reclaimed`,
      );
      const wallMs = performance.now() - t0;
      if (early.length > 0) throw new Error(`ttm-reclaim (${design}): ${early.slice(0, 3).join('; ')}`);
      if (vram.usage !== 0)
        throw new Error(
          `ttm-reclaim (${design}): VRAM usage ${vram.usage} B after every zombie was reclaimed, expected 0`,
        );
      const latenciesMs = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const at = reclaimedAt[i]!;
        if (Number.isNaN(at)) throw new Error(`ttm-reclaim (${design}): object ${i} was never reported by onReclaim`);
        latenciesMs[i] = at - fences[i]!.timestamp!;
      }
      return { latenciesMs, peakActive: device.wq.peakActive, peakZombies, wallMs };
    },
    () => signalAll(fences),
  );
}

/** Per-round summaries of one design. */
export interface ReclaimSamples {
  readonly label: string;
  readonly p50: number[];
  readonly p99: number[];
  readonly all: number[];
  peakActive: number;
  peakZombies: number;
}

export function summarize(into: ReclaimSamples, round: ReclaimRound): void {
  const l = Array.from(round.latenciesMs);
  into.p50.push(quantile(l, 0.5));
  into.p99.push(quantile(l, 0.99));
  for (const v of l) into.all.push(v);
  into.peakActive = Math.max(into.peakActive, round.peakActive);
  into.peakZombies = Math.max(into.peakZombies, round.peakZombies);
}

export const TARGET_VS_SCAN: Target = { op: '>=', value: 5, text: '>= 5x (p99 5x lower)' };

/** Sizes of a run. */
export interface ReclaimScale {
  readonly count: number;
  readonly rounds: number;
  readonly warmup: number;
}

export const FULL: ReclaimScale = { count: 100, rounds: 5, warmup: 1 };
export const QUICK: ReclaimScale = { count: 50, rounds: 3, warmup: 1 };

/** Runs `scale` and builds the rows (the definition's body; tests call it with a tiny scale). */
export async function runReclaim(scale: ReclaimScale, progress: (line: string) => void): Promise<BenchReport> {
  const designs = ['per-object', 'periodic-scan'] as const;
  const samples: Record<(typeof designs)[number], ReclaimSamples> = {
    'per-object': { label: 'per-object work', p50: [], p99: [], all: [], peakActive: 0, peakZombies: 0 },
    'periodic-scan': {
      label: `${SCAN_INTERVAL_MS} ms scanner`,
      p50: [],
      p99: [],
      all: [],
      peakActive: 0,
      peakZombies: 0,
    },
  };
  for (let r = 0; r < scale.warmup + scale.rounds; r++) {
    const warm = r < scale.warmup;
    for (let k = 0; k < 2; k++) {
      const design = designs[(r + k) % 2]!;
      progress(`ttm-reclaim: round ${r + 1}/${scale.warmup + scale.rounds}${warm ? ' (warm-up)' : ''}, ${design}`);
      const round = await reclaimRound({ design, count: scale.count, seed: SEED + r });
      if (!warm) summarize(samples[design], round);
    }
  }
  const ours = samples['per-object'];
  const scan = samples['periodic-scan'];
  const batch = scale.count;
  const allText = (s: ReclaimSamples): string =>
    `p50 ${ms(quantile(s.all, 0.5))}, p99 ${ms(quantile(s.all, 0.99))}, max ${ms(Math.max(...s.all))}`;
  const rows: Row[] = [
    budgetRow({
      name: 'reclaim p99, per-object work',
      candidate: { label: ours.label, perRoundMs: ours.p99 },
      budgetMs: 1,
      batch,
      targetText: '<= 1 ms (ratio >= 1x)',
      note:
        `per-round p99 ${ms(median(ours.p99))} (median of ${ours.p99.length} ` +
        `rounds); all ${ours.all.length} samples: ${allText(ours)}`,
    }),
    latencyRow({
      name: 'reclaim p99, per-object vs periodic scan',
      candidate: { label: ours.label, perRoundMs: ours.p99 },
      baseline: { label: scan.label, perRoundMs: scan.p99 },
      batch,
      target: TARGET_VS_SCAN,
      note:
        `p99 ${ms(median(ours.p99))} vs ${ms(median(scan.p99))}; all samples: ${ms(quantile(ours.all, 0.99))} vs ` +
        `${ms(quantile(scan.all, 0.99))} (ratio ${(quantile(scan.all, 0.99) / quantile(ours.all, 0.99)).toFixed(1)}x)`,
    }),
    latencyRow({
      name: 'reclaim p50, per-object vs periodic scan',
      candidate: { label: ours.label, perRoundMs: ours.p50 },
      baseline: { label: scan.label, perRoundMs: scan.p50 },
      batch,
      note: `p50 ${ms(median(ours.p50))} vs ${ms(median(scan.p50))}`,
    }),
  ];
  const notes = [
    `${scale.count} one-page VRAM objects per round and design, one released every ${RELEASE_EVERY_MS} ` +
      `ms, its fence signalled ${BUSY_MIN_MS}-${BUSY_MAX_MS} ms (seeded uniform) after its release; ` +
      `${scale.rounds} measured rounds (+${scale.warmup} warm-up), designs alternating; real clock`,
    `latency = device.onReclaim time - fence.timestamp; per-object ` +
      `work: ${allText(ours)}; ${scan.label}: ${allText(scan)}`,
    `peak zombies waiting at once: per-object ${ours.peakZombies}, scanner ${scan.peakZombies}; peak running ` +
      `work items on device.wq: per-object ${ours.peakActive} (maxActive 16), scanner ${scan.peakActive}`,
  ];
  return { rows, notes };
}

export const definition: BenchDefinition = {
  name: 'ttm-reclaim',
  question:
    "From the signal of a released busy buffer object's last fence to its memory being " +
    "freed: how long with seed 004's per-object delayed-delete work items, on the real clock?",
  baseline:
    'the design before seed 004: a 10 ms periodic scan of the ' +
    'delayed-destroy list (TtmDevice delayedDelete: periodic-scan)',
  target: 'per-object p99 <= 1 ms, and >= 5x lower than the periodic scan',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const base = ctx.budget.quick ? QUICK : FULL;
    return runReclaim(
      { ...base, rounds: Math.min(base.rounds, ctx.budget.rounds), warmup: Math.min(base.warmup, ctx.budget.warmup) },
      ctx.progress,
    );
  },
};
