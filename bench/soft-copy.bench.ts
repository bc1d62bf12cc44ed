/**
 * Benchmark: how fast does the copy engine move bytes?
 *
 * Question: a copy on the soft device's copy engine costs a job (a ring slot, a wake of the
 * engine, a wake back) on top of the copy itself, which runs in the engine's worker. How many
 * bytes per second does it move, against `TypedArray.prototype.set` on the main thread?
 *
 * Sides, interleaved (`compare()`), one op = one byte, {@link JOBS} copies of {@link CHUNK}
 * bytes per round (64 MiB) between two mapped `SharedArrayBuffer`s:
 * - candidate: {@link JOBS} `copy` jobs on a one-ring copy engine, submitted at once, the round
 *   ending when the last fence signalled.
 * - baseline: the same {@link JOBS} copies with `dst.set(src)` on the main thread.
 * Before the first round the candidate's result is checked byte for byte.
 *
 * Target: at least 0.7x the baseline's bytes per second.
 *
 * @example
 * ```ts
 * // npm run bench -- soft-copy
 * import { definition } from './soft-copy.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import type { DmaFence } from '../src/fence/dma-fence.js';
import type { SoftDevice } from '../src/device/soft/soft-device.js';
import type { SoftMemory } from '../src/device/soft/soft-memory.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Side } from './harness.js';
import { softDevice } from './soft-common.js';

export const CHUNK = 4 << 20;
export const JOBS = 16;

/** The candidate: copy jobs on the copy engine. */
export function copyEngineSide(device: SoftDevice, src: SoftMemory, dst: SoftMemory): Side {
  return {
    label: 'copy engine',
    async run(): Promise<void> {
      let last: DmaFence | undefined;
      for (let j = 0; j < JOBS; j++) {
        last = device.submit('copy', 'copy', { src: src.range(j * CHUNK, CHUNK), dst: dst.range(j * CHUNK, CHUNK) });
      }
      await last!.wait();
      if (last!.error !== undefined) throw last!.error;
    },
  };
}

/** The baseline: `TypedArray.prototype.set` on this thread. */
export function typedArraySetSide(src: SharedArrayBuffer, dst: SharedArrayBuffer): Side {
  return {
    label: 'Uint8Array.set',
    run(): void {
      for (let j = 0; j < JOBS; j++) {
        new Uint8Array(dst, j * CHUNK, CHUNK).set(new Uint8Array(src, j * CHUNK, CHUNK));
      }
    },
  };
}

export const definition: BenchDefinition = {
  name: 'soft-copy',
  question: 'How many bytes per second does the soft copy engine move, against Uint8Array.set on the main thread?',
  baseline: 'Uint8Array.prototype.set of the same chunks on the main thread',
  target: '>= 0.7x the bytes per second',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    await using device = await softDevice({ copy: 1 });
    const src = device.map(new SharedArrayBuffer(JOBS * CHUNK));
    const dst = device.map(new SharedArrayBuffer(JOBS * CHUNK));
    const bytes = new Uint8Array(src.buffer);
    for (let i = 0; i < bytes.length; i += 4093) bytes[i] = i & 0xff;
    await copyEngineSide(device, src, dst).run(JOBS * CHUNK);
    if (!new Uint8Array(dst.buffer).every((v, i) => v === bytes[i]))
      throw new Error('soft-copy: the copy engine lost bytes');
    ctx.progress('soft-copy: copy engine vs Uint8Array.set');
    const row = await compare({
      name: `copy ${JOBS} x ${CHUNK >> 20} MiB, engine vs main thread`,
      candidate: copyEngineSide(device, src, dst),
      baseline: typedArraySetSide(src.buffer, dst.buffer),
      batch: JOBS * CHUNK,
      rounds,
      warmup,
      target: { op: '>=', value: 0.7 },
      note: 'one op = one byte',
    });
    return { rows: [row], notes: [] };
  },
};
