/**
 * Benchmark: how fast does a finished job reach the main thread?
 *
 * Question: the soft device's engines run in worker threads. When an engine finishes a job it
 * stores the seqno in the ring and wakes the main thread, whose one `Atomics.waitAsync` per
 * engine resumes and signals the job's fence. How long from the engine's last instruction to the
 * fence's callback, compared with the cheapest thing a worker can otherwise do: `postMessage`
 * an answer?
 *
 * Sides, in interleaved rounds of {@link SAMPLES} samples each (the main thread idle between
 * samples, waiting, so every sample is a wake):
 * - candidate: a `stamp` job, written straight into a one-ring engine's ring (the hardware path,
 *   without the scheduler in front), writes the engine's wall-clock time into a mapped buffer as
 *   its last act; the hardware fence's callback reads the main thread's time. The latency is the
 *   difference (both clocks are `performance.timeOrigin + performance.now()`).
 * - baseline (the target's): half a `postMessage` round trip to an echo worker, from posting to
 *   the answer's message event.
 * - diagnostic: the one-way time of that answer, the worker's time to the message event.
 *
 * Target: p50 and p99 of the wake no worse than half a round trip: latency ratio <= 1x, printed
 * as a rate ratio >= 1x (rates are 1 / latency, so higher is better as everywhere in the table).
 *
 * @example
 * ```ts
 * // npm run bench -- soft-wake
 * import { definition } from './soft-wake.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import type { SoftDevice } from '../src/device/soft/soft-device.js';
import { latencyRow } from './heap-alloc.bench.js';
import {
  formatDuration,
  quantile,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
} from './harness.js';
import { type EchoWorker, echoWorker, sharedClock, softDevice } from './soft-common.js';

/** Samples per side per round. */
export const SAMPLES = 200;

const TARGET = { op: '>=', value: 1, text: '>= 1x (latency <= half a round trip)' } as const;

/** Wake latencies (ms) of `n` stamp jobs, written straight into the ring (no scheduler in between). */
export async function wakeSamples(device: SoftDevice, n: number): Promise<number[]> {
  const memory = device.map(new SharedArrayBuffer(8));
  const stamped = new Float64Array(memory.buffer);
  const ring = device.rings('gfx')[0]!;
  const job = device.kernels.encode('stamp', { out: memory });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let signalled = 0;
    const fence = ring.emit(job.id, job.words);
    fence.addCallback(() => {
      signalled = sharedClock();
    });
    await fence.wait();
    if (fence.error !== undefined) throw fence.error;
    out.push(signalled - stamped[0]!);
  }
  return out;
}

/** Half round trips and one-way answer times (ms) of `n` stamps. */
export async function echoSamples(echo: EchoWorker, n: number): Promise<{ halfTrip: number[]; oneWay: number[] }> {
  const halfTrip: number[] = [];
  const oneWay: number[] = [];
  for (let i = 0; i < n; i++) {
    const { sent, answered, received } = await echo.stamp();
    halfTrip.push((received - sent) / 2);
    oneWay.push(received - answered);
  }
  return { halfTrip, oneWay };
}

function us(ms: number): string {
  return formatDuration(ms * 1e6);
}

export const definition: BenchDefinition = {
  name: 'soft-wake',
  question:
    'How long from an engine worker finishing a job to its fence signalling ' +
    'on the main thread, against half a postMessage round trip?',
  baseline: 'half a postMessage round trip to an echo worker (and, as a diagnostic, the one-way answer time)',
  target: 'p50 and p99 wake latency <= half a round trip (ratio >= 1x as rates)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    await using device = await softDevice({ gfx: 1 });
    await using echo = await echoWorker();
    const series = {
      wakeP50: [] as number[],
      wakeP99: [] as number[],
      halfP50: [] as number[],
      halfP99: [] as number[],
    };
    const oneWay = { p50: [] as number[], p99: [] as number[] };
    const all = { wake: [] as number[], half: [] as number[] };
    for (let r = 0; r < warmup + rounds; r++) {
      ctx.progress(`soft-wake: round ${r + 1}/${warmup + rounds}`);
      let wake: number[];
      let trips: { halfTrip: number[]; oneWay: number[] };
      if (r % 2 === 0) {
        wake = await wakeSamples(device, SAMPLES);
        trips = await echoSamples(echo, SAMPLES);
      } else {
        trips = await echoSamples(echo, SAMPLES);
        wake = await wakeSamples(device, SAMPLES);
      }
      if (r < warmup) continue;
      series.wakeP50.push(quantile(wake, 0.5));
      series.wakeP99.push(quantile(wake, 0.99));
      series.halfP50.push(quantile(trips.halfTrip, 0.5));
      series.halfP99.push(quantile(trips.halfTrip, 0.99));
      oneWay.p50.push(quantile(trips.oneWay, 0.5));
      oneWay.p99.push(quantile(trips.oneWay, 0.99));
      all.wake.push(...wake);
      all.half.push(...trips.halfTrip);
    }
    const median = (v: number[]): number => quantile(v, 0.5);
    const targetRows = (
      [
        ['p50', series.wakeP50, series.halfP50],
        ['p99', series.wakeP99, series.halfP99],
      ] as const
    ).map(([q, wake, half]) =>
      latencyRow({
        name: `wake ${q}, fence vs half a postMessage round trip`,
        candidate: { label: 'hw fence wake', perRoundMs: wake },
        baseline: { label: 'postMessage RTT/2', perRoundMs: half },
        batch: SAMPLES,
        target: TARGET,
        note: `${q} ${us(median(wake))} vs ${us(median(half))}`,
      }),
    );
    const rows: Row[] = [
      ...targetRows,
      latencyRow({
        name: 'wake p50, fence vs one-way postMessage answer',
        candidate: { label: 'hw fence wake', perRoundMs: series.wakeP50 },
        baseline: { label: 'postMessage one way', perRoundMs: oneWay.p50 },
        batch: SAMPLES,
        note:
          `diagnostic: p50 ${us(median(series.wakeP50))} vs ${us(median(oneWay.p50))}, ` +
          `p99 ${us(median(series.wakeP99))} vs ${us(median(oneWay.p99))}`,
      }),
    ];
    const notes = [
      `all samples: wake p50 ${us(quantile(all.wake, 0.5))}, p99 ${us(quantile(all.wake, 0.99))}; ` +
        `half round trip p50 ${us(quantile(all.half, 0.5))}, p99 ${us(quantile(all.half, 0.99))}`,
    ];
    return { rows, notes };
  },
};
