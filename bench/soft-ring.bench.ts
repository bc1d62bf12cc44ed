/**
 * Benchmark: how many small jobs per second reach an engine worker and come back?
 *
 * Question: the soft device writes jobs into a command ring in shared memory and gets their
 * completions back through one waiter per engine, instead of one `postMessage` per job and one
 * per answer. How many no-op jobs per second does that carry, against the message-per-job
 * design a user would otherwise write?
 *
 * Sides, interleaved (`compare()`), {@link BATCH} jobs per round, each round ending when the
 * last job's completion arrived:
 * - candidate: `device.submit('copy', 'noop')` on a one-ring engine with a 1024-slot ring, the
 *   whole public path (argument encoding, the engine queue, a fence per job), then awaiting the
 *   last job's fence.
 * - baseline: `postMessage` of one message per job to an echo worker, which answers each; the
 *   round ends at the last answer (messages pipelined, not one at a time).
 * - diagnostic: the ring alone (`SoftRing.emit` of as many jobs as there are free slots, then
 *   waiting for a fence), without the engine queue and job fences.
 *
 * Target: at least 5x the baseline's jobs per second.
 *
 * @example
 * ```ts
 * // npm run bench -- soft-ring
 * import { definition } from './soft-ring.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import type { DmaFence } from '../src/fence/dma-fence.js';
import type { SoftDevice } from '../src/device/soft/soft-device.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';
import { type EchoWorker, echoWorker, softDevice } from './soft-common.js';

export const BATCH = 20_000;
export const RING_SIZE = 1024;

/** The candidate: no-op jobs through `submit`. */
export function submitSide(device: SoftDevice): Side {
  return {
    label: 'SoftDevice.submit',
    async run(batch: number): Promise<void> {
      let last: DmaFence | undefined;
      for (let i = 0; i < batch; i++) last = device.submit('copy', 'noop');
      await last!.wait();
      if (last!.error !== undefined) throw last!.error;
    },
  };
}

/** The diagnostic: the ring alone. */
export function ringSide(device: SoftDevice): Side {
  const ring = device.rings('copy')[0]!.ring;
  return {
    label: 'SoftRing.emit',
    async run(batch: number): Promise<void> {
      let last: DmaFence | undefined;
      for (let sent = 0; sent < batch; ) {
        const room = Math.min(ring.fences.credits, batch - sent);
        for (let i = 0; i < room; i++) last = ring.emit(1, []);
        sent += room;
        if (sent < batch) await ring.fences.oldestPending()!.wait();
      }
      await last!.wait();
    },
  };
}

/** The baseline: one message per job, one answer per message. */
export function postMessageSide(echo: EchoWorker): Side {
  return {
    label: 'postMessage + reply',
    run: (batch: number) => echo.pipeline(batch),
  };
}

export const definition: BenchDefinition = {
  name: 'soft-ring',
  question:
    'How many no-op jobs per second go through the soft device (command ring in shared memory) against one postMessage per job with a reply?',
  baseline: 'one postMessage per job to an echo worker, one answer per job, pipelined',
  target: '>= 5x the jobs per second',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    await using device = await softDevice({ copy: 1 }, { ringSize: RING_SIZE });
    await using echo = await echoWorker();
    const rows: Row[] = [];
    ctx.progress('soft-ring: submit vs postMessage');
    rows.push(
      await compare({
        name: `no-op jobs, ring of ${RING_SIZE}`,
        candidate: submitSide(device),
        baseline: postMessageSide(echo),
        batch: BATCH,
        rounds,
        warmup,
        target: { op: '>=', value: 5 },
      }),
    );
    ctx.progress('soft-ring: the ring alone vs postMessage');
    rows.push(
      await compare({
        name: `no-op jobs, the ring alone (${RING_SIZE} slots)`,
        candidate: ringSide(device),
        baseline: postMessageSide(echo),
        batch: BATCH,
        rounds,
        warmup,
        note: 'diagnostic: SoftRing.emit without the engine queue and job fences',
      }),
    );
    return { rows, notes: [] };
  },
};
