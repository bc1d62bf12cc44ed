/**
 * Benchmark: one GPUBuffer per buffer object, or ranges of one large GPUBuffer?
 *
 * Question: the WebGPU device's VRAM manager could hand out a `GPUBuffer` per buffer object
 * (what `WebGpuVramManager` does) or sub-allocate page ranges of a large `GPUBuffer` with the
 * range manager (the kernel's VRAM shape). Which is cheaper for what TTM does with VRAM:
 * placing a new buffer (which must read as zeros) and restoring an evicted one (whose bytes are
 * all written)?
 *
 * Sides, interleaved rounds through `compare()`, `batch` operations then one
 * `onSubmittedWorkDone()`:
 * - candidate (per buffer): `createBuffer(size)`; a new buffer is left to WebGPU's lazy zeroing,
 *   a restored one gets `writeBuffer` of all its bytes; first use (a 256-byte copy out),
 *   submit, `destroy()`.
 * - baseline (sub-allocated): `TtmRangeManager.alloc` in a 64 MiB `GPUBuffer` (offsets are page
 *   multiples, so `minStorageBufferOffsetAlignment` holds); a new range needs `clearBuffer` of
 *   its bytes (its previous owner's bytes are there), a restored one gets `writeBuffer` at its
 *   offset; first use, submit, range freed.
 * Sizes: 64 KiB and 1 MiB. No target: this answers a design question (see `RESULTS.md`).
 *
 * @example
 * ```ts
 * // npm run bench -- webgpu-alloc
 * import { definition } from './webgpu-alloc.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */
import { VRAM_USAGE } from '../src/device/webgpu/webgpu-vram-mgr.js';
import { DmaResv } from '../src/resv/dma-resv.js';
import { TtmLruList } from '../src/ttm/ttm-lru.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import { TtmRangeManager } from '../src/ttm/ttm-range-manager.js';
import type { TtmResource } from '../src/ttm/ttm-resource.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row } from './harness.js';
import { KiB, MiB, benchDevice, queueIdle } from './webgpu-common.js';

const SLAB = 64 * MiB;

export const definition: BenchDefinition = {
  name: 'webgpu-alloc',
  question:
    'Per-buffer-object GPUBuffers or ranges of one large GPUBuffer: which places new and restored buffers faster?',
  baseline: 'TtmRangeManager ranges of one 64 MiB GPUBuffer (cleared with clearBuffer when new)',
  target: 'none (design decision: see RESULTS.md)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const handle = await benchDevice();
    const device = handle.device;
    const scratch = device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    const slab = device.createBuffer({ size: SLAB, usage: VRAM_USAGE });
    const ranges = new TtmRangeManager({ unevictable: new TtmLruList() }, { size: SLAB, name: 'slab' });
    const rows: Row[] = [];
    try {
      for (const size of [64 * KiB, 1 * MiB]) {
        const data = new Uint8Array(size).fill(3);
        const owner = { size, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv: new DmaResv() };
        for (const restore of [false, true]) {
          const what =
            `${size >= MiB ? `${size / MiB} MiB` : `${size / KiB} KiB`} ` +
            `${restore ? 'restored (all bytes written)' : 'new (reads as zeros)'}`;
          ctx.progress(`webgpu-alloc: ${what}`);
          const batch = size >= MiB ? 16 : 64;
          const row = await compare({
            name: what,
            batch,
            rounds: ctx.budget.rounds,
            warmup: ctx.budget.warmup,
            candidate: {
              label: 'GPUBuffer per object',
              async run(n) {
                for (let i = 0; i < n; i++) {
                  const buffer = device.createBuffer({ size, usage: VRAM_USAGE });
                  if (restore) device.queue.writeBuffer(buffer, 0, data);
                  const encoder = device.createCommandEncoder();
                  encoder.copyBufferToBuffer(buffer, 0, scratch, 0, 256);
                  device.queue.submit([encoder.finish()]);
                  buffer.destroy();
                }
                await queueIdle(device);
              },
            },
            baseline: {
              label: 'range of a 64 MiB GPUBuffer',
              async run(n) {
                for (let i = 0; i < n; i++) {
                  const res = ranges.alloc(owner, { memType: TtmMemType.VRAM }) as TtmResource;
                  const offset = res.start * 4096;
                  const encoder = device.createCommandEncoder();
                  if (restore) device.queue.writeBuffer(slab, offset, data);
                  else encoder.clearBuffer(slab, offset, size);
                  encoder.copyBufferToBuffer(slab, offset, scratch, 0, 256);
                  device.queue.submit([encoder.finish()]);
                  ranges.free(res);
                }
                await queueIdle(device);
              },
            },
          });
          rows.push(row);
        }
      }
    } finally {
      await queueIdle(device);
      scratch.destroy();
      slab.destroy();
      device.destroy();
      await device.lost;
      handle.release();
    }
    return {
      rows,
      notes: [
        `one op = place a buffer, use it once, free it; adapter ${handle.adapterName}; ` +
          'the slab side commits 64 MiB up front, caps a buffer object at one slab and must clear new ranges itself',
      ],
    };
  },
};
