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
 * - candidate: the ring: `SoftRing.emit` of a no-op job into every free slot of a 1024-slot
 *   ring, each with its hardware fence, waiting for the oldest fence whenever the ring is full.
 * - baseline: `postMessage` of one message per job to an echo worker, which answers each; the
 *   round ends at the last answer (messages pipelined, not one at a time).
 * - diagnostic: the device's public path, `device.submit('copy', 'noop')`: argument checks and
 *   encoding, the engine queue in front of the ring, and a second fence per job (the job's own,
 *   forwarded from the hardware fence), which is what a scheduler in front of the ring costs.
 *
 * Target: at least 5x the baseline's jobs per second through the ring.
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
    'How many no-op jobs per second go through the soft device (command ' +
    'ring in shared memory) against one postMessage per job with a reply?',
  baseline: 'one postMessage per job to an echo worker, one answer per job, pipelined',
  target: '>= 5x the jobs per second',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    await using device = await softDevice({ copy: 1 }, { ringSize: RING_SIZE });
    await using echo = await echoWorker();
    const rows: Row[] = [];
    ctx.progress('soft-ring: the ring vs postMessage');
    rows.push(
      await compare({
        name: `no-op jobs through a ${RING_SIZE}-slot ring`,
        candidate: ringSide(device),
        baseline: postMessageSide(echo),
        batch: BATCH,
        rounds,
        warmup,
        target: { op: '>=', value: 5 },
      }),
    );
    ctx.progress('soft-ring: SoftDevice.submit vs postMessage');
    rows.push(
      await compare({
        name: 'no-op jobs through SoftDevice.submit',
        candidate: submitSide(device),
        baseline: postMessageSide(echo),
        batch: BATCH,
        rounds,
        warmup,
        note: 'diagnostic: the public path, with the engine queue and a job fence per job in front of the ring',
      }),
    );
    return { rows, notes: [] };
  },
};
