/**
 * Benchmark: how fast do eviction and restore move bytes between GPUBuffer VRAM and System?
 *
 * Question: evicting a buffer object through TTM on the WebGPU device costs a reservation lock,
 * a System resource and tt pages from the heap, a staging copy (`copyBufferToBuffer` into a
 * pooled MAP_READ buffer, `mapAsync`, a copy out) and destroying the `GPUBuffer`; restoring
 * costs a new `GPUBuffer`, a `writeBuffer` and freeing the tt. How many bytes per second is that,
 * compared with the raw loop a WebGPU user would write to park buffers in JavaScript memory and
 * bring them back?
 *
 * Sides, interleaved rounds through `compare()`:
 * - candidate: a `WebGpuDevice` whose VRAM budget holds exactly `count` buffer objects of
 *   `size` bytes, each written once with its own pattern. A timed pass: `evictAll()` (all to
 *   System), then every object validated back into VRAM, then a fence after the writes.
 * - baseline: `count` `GPUBuffer`s kept alive, one MAP_READ staging buffer reused: per buffer
 *   `copyBufferToBuffer` + submit + `mapAsync` + copy into a preallocated `Uint8Array` +
 *   `unmap`; then per buffer `queue.writeBuffer` back, and `onSubmittedWorkDone()`.
 * Untimed, after every candidate round, the first and last object's bytes are read back and
 * checked against their patterns.
 *
 * One op = one byte moved (each pass moves every byte out and back in: 2 x count x size).
 * Target: >= 0.8x the raw loop's bytes/s.
 *
 * @example
 * ```ts
 * // npm run bench -- webgpu-evict
 * import { definition } from './webgpu-evict.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */
import { WebGpuDevice } from '../src/device/webgpu/webgpu-device.js';
import { GpuBufferUsage, VRAM_USAGE } from '../src/device/webgpu/webgpu-vram-mgr.js';
import type { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';
import {
  compare,
  formatRate,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
  type Target,
} from './harness.js';
import { KiB, MiB, benchDevice } from './webgpu-common.js';

export const TARGET: Target = { op: '>=', value: 0.8, text: '>= 0.8x' };

interface Shape {
  readonly count: number;
  readonly size: number;
}

export const SHAPES: readonly Shape[] = [
  { count: 16, size: 256 * KiB },
  { count: 4, size: 4 * MiB },
];

const VRAM = [{ memType: TtmMemType.VRAM }];

function fill(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < words.length; i++) words[i] = (Math.imul(i + 1, 2654435761) ^ seed) >>> 0;
  return out;
}

async function candidateSide(gpu: WebGpuDevice, shape: Shape): Promise<Side & { close(): Promise<void> }> {
  const bos: TtmBufferObject[] = [];
  const patterns: Uint8Array[] = [];
  for (let i = 0; i < shape.count; i++) {
    const bo = await gpu.createBuffer({ size: shape.size, name: `bo${i}` });
    patterns.push(fill(shape.size, i));
    await gpu.write(bo, patterns[i]!);
    bos.push(bo);
  }
  const check = async (): Promise<void> => {
    for (const i of [0, shape.count - 1]) {
      const bytes = await gpu.read(bos[i]!, 0, 4096);
      if (bytes.some((b, j) => b !== patterns[i]![j]))
        throw new Error(`webgpu-evict: ${bos[i]!.name} lost its contents after eviction and restore`);
    }
  };
  return {
    label: 'TTM evict + restore',
    async setup() {
      await check();
    },
    async run(n) {
      const passes = n / (2 * shape.count * shape.size);
      const t0 = performance.now();
      for (let p = 0; p < passes; p++) {
        await gpu.evictAll();
        for (const bo of bos) {
          await bo.reserve();
          try {
            await bo.validate(VRAM);
          } finally {
            bo.unreserve();
          }
        }
        const fence = gpu.ring.emit();
        await fence.wait();
      }
      return performance.now() - t0;
    },
    async close() {
      await check();
      for (const bo of bos) bo.put();
    },
  };
}

function rawSide(device: GPUDevice, shape: Shape): Side & { close(): void } {
  const buffers = Array.from({ length: shape.count }, (_, i) => {
    const buffer = device.createBuffer({ size: shape.size, usage: VRAM_USAGE });
    device.queue.writeBuffer(buffer, 0, fill(shape.size, i));
    return buffer;
  });
  const staging = device.createBuffer({
    size: shape.size,
    usage: GpuBufferUsage.MAP_READ | GpuBufferUsage.COPY_DST,
  });
  const host = buffers.map(() => new Uint8Array(shape.size));
  return {
    label: 'copyBufferToBuffer + mapAsync / writeBuffer',
    async run(n) {
      const passes = n / (2 * shape.count * shape.size);
      const t0 = performance.now();
      for (let p = 0; p < passes; p++) {
        for (const [i, buffer] of buffers.entries()) {
          const encoder = device.createCommandEncoder();
          encoder.copyBufferToBuffer(buffer, 0, staging, 0, shape.size);
          device.queue.submit([encoder.finish()]);
          await staging.mapAsync(GpuBufferUsage.MAP_READ);
          host[i]!.set(new Uint8Array(staging.getMappedRange()));
          staging.unmap();
        }
        for (const [i, buffer] of buffers.entries()) device.queue.writeBuffer(buffer, 0, host[i]!);
        await device.queue.onSubmittedWorkDone();
      }
      return performance.now() - t0;
    },
    close() {
      for (const buffer of buffers) buffer.destroy();
      staging.destroy();
    },
  };
}

export const definition: BenchDefinition = {
  name: 'webgpu-evict',
  question:
    'How many bytes per second do TTM eviction (staging + mapAsync) ' +
    'and restore (writeBuffer) move on the WebGPU device?',
  baseline: 'a raw copyBufferToBuffer + mapAsync out / writeBuffer back loop over the same buffers',
  target: '>= 0.8x the raw loop (both shapes)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const handle = await benchDevice();
    const rows: Row[] = [];
    try {
      for (const shape of SHAPES) {
        const label = `${shape.count} x ${shape.size >= MiB ? `${shape.size / MiB} MiB` : `${shape.size / KiB} KiB`}`;
        ctx.progress(`webgpu-evict: ${label}`);
        const gpu = await WebGpuDevice.create({
          budgetBytes: shape.count * shape.size,
          device: handle.device,
          quiet: true,
          stagingBytes: 2 * shape.size,
        });
        const candidate = await candidateSide(gpu, shape);
        const baseline = rawSide(handle.device, shape);
        try {
          const row = await compare({
            name: `${label}: VRAM -> System -> VRAM`,
            candidate,
            baseline,
            batch: 2 * shape.count * shape.size * (shape.size >= MiB ? 1 : 2),
            rounds: ctx.budget.rounds,
            warmup: ctx.budget.warmup,
            target: TARGET,
          });
          const st = gpu.staging.stats();
          rows.push({
            ...row,
            note:
              `${formatRate(row.dmabuf!.value)}B/s vs ${formatRate(row.baseline!.value)}B/s; ` +
              `staging buffers created ${st.created}, reused ${st.reused}; evictions ${gpu.ttm.stats().evictions}`,
          });
        } finally {
          await candidate.close();
          baseline.close();
          await gpu.destroy();
        }
      }
    } finally {
      handle.device.destroy();
      await handle.device.lost;
      handle.release();
    }
    return {
      rows,
      notes: [`one op = one byte moved (out and back in); adapter ${handle.adapterName}`],
    };
  },
};
