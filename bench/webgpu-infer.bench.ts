/**
 * Benchmark: an inference-shaped workload whose weights are 3-4x the VRAM budget.
 *
 * Question: a model whose layer weights do not fit the GPU memory a page may use runs layer by
 * layer. With dmabuf, the weights are buffer objects on a {@link WebGpuDevice} under the budget
 * and TTM evicts the least recently used ones to System and restores them when a layer needs
 * them. What a JavaScript GPU runtime user does today is recreate buffers per layer: create the
 * layer's `GPUBuffer`, `writeBuffer` its weights from JavaScript, dispatch, destroy. (The other
 * option, allocating every layer at once, does not fit the budget: on a real GPU with that much
 * memory to spare it would be the fastest, and the diagnostic row shows how far off that is,
 * but it is not a choice under the budget.) How many forward passes per second does each give?
 *
 * Sides, interleaved rounds through `compare()`, one device (Dawn on SwiftShader here), the same
 * WGSL matmul (`WebGpuKernels.matmul`) on both:
 * - candidate: `runOnDevice` (`webgpu-infer-workload.ts`): per layer one `WebGpuDevice.submit`
 *   (lock, validate the weights into VRAM, evicting others, a scheduler job), the output read
 *   back at the end of the pass;
 * - baseline: per layer a new `GPUBuffer` for the weights, `writeBuffer`, the dispatch, the
 *   buffer destroyed after the submission; the activations stay in two kept buffers; the output
 *   read back through a staging buffer at the end of the pass.
 * Every pass of both sides compares its output with the JavaScript reference bit for bit and
 * throws on a difference.
 *
 * One op = one forward pass through every layer. No target in the issue: report the ratio.
 *
 * @example
 * ```ts
 * // npm run bench -- webgpu-infer
 * import { definition } from './webgpu-infer.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */
import { WebGpuDevice } from '../src/device/webgpu/webgpu-device.js';
import { WebGpuKernels } from '../src/device/webgpu/webgpu-compute.js';
import { GpuBufferUsage, GpuMapMode, VRAM_USAGE } from '../src/device/webgpu/webgpu-vram-mgr.js';
import type { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';
import { KiB, MiB, benchDevice } from './webgpu-common.js';
import {
  inferModel,
  inferReference,
  loadModel,
  runOnDevice,
  type InferModel,
  type InferShape,
} from './webgpu-infer-workload.js';

/** A model shape and the VRAM budget it runs under. */
export interface InferCase {
  readonly shape: InferShape;
  readonly budgetBytes: number;
}

export const CASES: readonly InferCase[] = [
  // 12 x 256 KiB = 3 MiB of weights under 1 MiB.
  { shape: { layers: 12, dim: 256, batch: 8, seed: 11 }, budgetBytes: 1 * MiB },
  // 8 x 1 MiB = 8 MiB of weights under 2 MiB.
  { shape: { layers: 8, dim: 512, batch: 8, seed: 12 }, budgetBytes: 2 * MiB },
];

function checkOutput(side: string, got: Float32Array, want: Float32Array): void {
  if (got.length !== want.length || got.some((v, i) => v !== want[i]))
    throw new Error(`webgpu-infer: ${side} computed a wrong output (first value ${got[0]}, expected ${want[0]})`);
}

/** Sides that own resources to release after the comparison. */
export type ClosableSide = Side & { close(): Promise<void> };

/** dmabuf: weights as buffer objects under the budget, TTM evicting and restoring them. */
export async function deviceSide(gpu: WebGpuDevice, model: InferModel): Promise<ClosableSide> {
  const weights: TtmBufferObject[] = await loadModel(gpu, model);
  const want = inferReference(model);
  return {
    label: 'WebGpuDevice (TTM evicts and restores)',
    async run(n) {
      for (let i = 0; i < n; i++) checkOutput('WebGpuDevice', await runOnDevice(gpu, weights, model), want);
    },
    async close() {
      for (const w of weights) await gpu.free(w);
    },
  };
}

/** What a runtime user writes today: a new weight buffer per layer, written, used, destroyed. */
export function recreateSide(device: GPUDevice, model: InferModel, resident = false): ClosableSide {
  const kernels = new WebGpuKernels(device);
  const bytes = model.batch * model.dim * 4;
  const acts = [0, 1].map(() => device.createBuffer({ size: bytes, usage: VRAM_USAGE }));
  const readback = device.createBuffer({ size: bytes, usage: GpuBufferUsage.MAP_READ | GpuBufferUsage.COPY_DST });
  const kept = resident
    ? model.weights.map((w) => {
        const buffer = device.createBuffer({ size: w.byteLength, usage: VRAM_USAGE });
        device.queue.writeBuffer(buffer, 0, w);
        return buffer;
      })
    : null;
  const want = inferReference(model);
  const label = resident ? 'every layer resident (over budget)' : 'recreate buffers per layer';
  return {
    label,
    async run(n) {
      for (let i = 0; i < n; i++) {
        device.queue.writeBuffer(acts[0]!, 0, model.input);
        for (const [l, w] of model.weights.entries()) {
          let weight = kept?.[l];
          if (weight === undefined) {
            weight = device.createBuffer({ size: w.byteLength, usage: VRAM_USAGE });
            device.queue.writeBuffer(weight, 0, w);
          }
          const encoder = device.createCommandEncoder();
          kernels.matmul(encoder, {
            a: { buffer: acts[l % 2]! },
            b: { buffer: weight },
            c: { buffer: acts[(l + 1) % 2]! },
            m: model.batch,
            n: model.dim,
            k: model.dim,
          });
          device.queue.submit([encoder.finish()]);
          // WebGPU frees it once the submitted work using it is done.
          if (kept === null) weight.destroy();
        }
        const encoder = device.createCommandEncoder();
        encoder.copyBufferToBuffer(acts[model.weights.length % 2]!, 0, readback, 0, bytes);
        device.queue.submit([encoder.finish()]);
        await readback.mapAsync(GpuMapMode.READ);
        const out = new Float32Array(readback.getMappedRange().slice(0));
        readback.unmap();
        checkOutput(label, out, want);
      }
    },
    async close() {
      await device.queue.onSubmittedWorkDone();
      for (const buffer of [...acts, readback, ...(kept ?? [])]) buffer.destroy();
    },
  };
}

function caseName(c: InferCase): string {
  const { layers, dim } = c.shape;
  const weightBytes = layers * dim * dim * 4;
  const size = (b: number): string => (b >= MiB ? `${b / MiB} MiB` : `${b / KiB} KiB`);
  return `${layers} layers x ${size(dim * dim * 4)} (${size(weightBytes)}) under ${size(c.budgetBytes)}`;
}

export const definition: BenchDefinition = {
  name: 'webgpu-infer',
  question:
    'How many forward passes per second does a model 3-4x the VRAM budget run at with TTM eviction, ' +
    'against recreating buffers per layer?',
  baseline: 'per layer: createBuffer + writeBuffer the weights + dispatch + destroy (same WGSL matmul)',
  target: 'none (the issue asks for the ratio); every output exact on both sides',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const handle = await benchDevice();
    const device = handle.device;
    const rows: Row[] = [];
    try {
      for (const c of CASES) {
        const name = caseName(c);
        ctx.progress(`webgpu-infer: ${name}`);
        const model = inferModel(c.shape);
        const gpu = await WebGpuDevice.create({ budgetBytes: c.budgetBytes, device, quiet: true });
        const candidate = await deviceSide(gpu, model);
        const baseline = recreateSide(device, model);
        const resident = recreateSide(device, model, true);
        try {
          const row = await compare({
            name,
            candidate,
            baseline,
            batch: 1,
            rounds: ctx.budget.rounds,
            warmup: ctx.budget.warmup,
          });
          const ttm = gpu.ttm.stats();
          const vram = gpu.vram.stats();
          rows.push({
            ...row,
            note:
              `evictions ${ttm.evictions}, VRAM peak ${vram.peakBytes} <= budget ${c.budgetBytes}, ` +
              `GPUBuffers created ${vram.created}, recycled ${vram.recycled}`,
          });
          rows.push(
            await compare({
              name: `diagnostic: ${name}, vs every layer resident (does not fit the budget)`,
              candidate,
              baseline: resident,
              batch: 1,
              rounds: ctx.budget.rounds,
              warmup: ctx.budget.warmup,
            }),
          );
        } finally {
          await candidate.close();
          await baseline.close();
          await resident.close();
          await gpu.destroy();
        }
      }
    } finally {
      device.destroy();
      await device.lost;
      handle.release();
    }
    return {
      rows,
      notes: [
        `one op = one forward pass (act = act x W per layer, batch 8), ` +
          `output checked bit for bit; adapter ${handle.adapterName}`,
      ],
    };
  },
};
