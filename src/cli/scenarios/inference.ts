/**
 * Scenario `inference`: a model whose weights are 2.5 times the VRAM budget, run layer after
 * layer; TTM evicts earlier layers' weights and restores them on the next pass.
 *
 * The question: what does running over budget cost? Every layer is one job through the device's
 * scheduler with implicit sync (`act = act x W`, reading the activations and the layer's weights,
 * writing the next activations); before it runs, TTM must make the weights resident, evicting the
 * least recently used buffer objects out of VRAM. Measured: layers per second against the ideal
 * (the same layers with their weights already resident, timed first on the layers that fit),
 * evictions, bytes moved, VRAM use over time against the budget, and the latency of each layer.
 * Checked: the output of the last complete pass equals a CPU reference bit for bit (the weights
 * are sparse integer matrices, two ones per column, so every value is exact in f32, however the
 * device sums).
 *
 * Sizes: each layer's weights are a `dim x dim` f32 matrix of about an eighth of the budget
 * (`dim` a multiple of 64), 20 layers (2.5x the budget), a batch of 8 activation rows.
 *
 * Devices: `--device soft` (the default: the embedded soft device, its VRAM arena of the budget;
 * a layer is a `matmul` job on the compute engine, TTM's moves are copy jobs on the copy engine)
 * and `--device webgpu` (the WebGPU device: Dawn in Node, on SwiftShader's Vulkan driver from
 * Debian's chromium package when `VK_ICD_FILENAMES` is not set).
 *
 * @example
 * ```ts
 * // dmabuf run inference --budget 16M --duration 5s   (or --device webgpu)
 * import { inference } from './inference.js';
 * console.log(inference.devices); // ['soft', 'webgpu']
 * ```
 */

import { existsSync } from 'node:fs';
import { seededRandom } from '../../base/random.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { PAGE_SIZE } from '../../heap/page-pool.js';
import { SoftDevice } from '../../device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../../device/soft/soft-worker-node.js';
import { WebGpuDevice } from '../../device/webgpu/webgpu-device.js';
import type { TtmBufferObject } from '../../ttm/ttm-bo.js';
import type { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType } from '../../ttm/ttm-placement.js';
import { formatValue } from '../format.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';

/** Layers of the model: 2.5x the budget at an eighth of it each. */
const LAYERS = 20;
const LAYERS_THAT_FIT = 8;
const BATCH = 8;
/** Debian's chromium ships SwiftShader's Vulkan driver, which Dawn accepts. */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The side of each weight matrix: about budget / 8 bytes of f32, a multiple of 64. */
export function layerDim(budgetBytes: number): number {
  return Math.max(64, Math.floor(Math.sqrt(budgetBytes / LAYERS_THAT_FIT / 4) / 64) * 64);
}

/** Sparse integer weights (two ones per column) and a small integer input, from `seed`. */
function model(dim: number, seed: number): { weights: Float32Array[]; input: Float32Array } {
  const random = seededRandom(seed);
  const weights = Array.from({ length: LAYERS }, () => {
    const w = new Float32Array(dim * dim);
    for (let col = 0; col < dim; col++) for (let k = 0; k < 2; k++) w[Math.floor(random() * dim) * dim + col]! += 1;
    return w;
  });
  const input = new Float32Array(BATCH * dim).map(() => Math.floor(random() * 4));
  return { weights, input };
}

/**
 * The CPU reference of the whole model: every layer `act x W`, each output summed over k in
 * ascending order in float64 and rounded to f32 (the soft `matmul` kernel's contract), skipping
 * zero weights, which adds nothing to an exact sum. Row by row over W's non-zeros, so the sparse
 * model takes milliseconds instead of the seconds a dense product of every layer would on the
 * host's one thread.
 */
export function referenceOutput(weights: readonly Float32Array[], input: Float32Array, dim: number): Float32Array {
  let act = input;
  for (const w of weights) {
    const sums = new Float64Array(BATCH * dim);
    for (let k = 0; k < dim; k++) {
      for (let j = 0; j < dim; j++) {
        const weight = w[k * dim + j]!;
        if (weight === 0) continue;
        for (let b = 0; b < BATCH; b++) sums[b * dim + j]! += act[b * dim + k]! * weight;
      }
    }
    act = Float32Array.from(sums);
  }
  return act;
}

/** What the scenario needs of a device: buffer objects, a layer job, TTM's counters. */
interface InferenceGpu {
  /** The name of the engine the layers run on (its trace track). */
  readonly engine: string;
  readonly ttm: TtmDevice;
  vramUsage(): number;
  vramPeak(): number;
  createBuffer(size: number, name: string, inSystem: boolean): Promise<TtmBufferObject>;
  write(bo: TtmBufferObject, data: Float32Array): Promise<void>;
  read(bo: TtmBufferObject, bytes: number): Promise<Float32Array>;
  /** `out = a x w` (BATCH x dim times dim x dim): the layer's job, queued. */
  layer(a: TtmBufferObject, w: TtmBufferObject, out: TtmBufferObject, dim: number): Promise<DmaFence>;
  destroy(): Promise<void>;
}

async function openWebGpu(ctx: ScenarioContext): Promise<InferenceGpu> {
  if (process.env['VK_ICD_FILENAMES'] === undefined && existsSync(SWIFTSHADER_ICD)) {
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  }
  const gpu = await WebGpuDevice.create({ budgetBytes: ctx.budgetBytes, quiet: true, name: 'inference' });
  return {
    engine: 'webgpu queue',
    ttm: gpu.ttm,
    vramUsage: () => gpu.vram.usage,
    vramPeak: () => gpu.vram.stats().peakBytes,
    createBuffer: (size, name, inSystem) =>
      gpu.createBuffer(inSystem ? { size, name, placement: [{ memType: TtmMemType.System }] } : { size, name }),
    write: (bo, data) => gpu.write(bo, data),
    read: async (bo, bytes) => new Float32Array((await gpu.read(bo, 0, bytes)).buffer),
    layer: (a, w, out, dim) =>
      gpu.submit([{ bo: a }, { bo: w }, { bo: out, write: true }], (encoder, binding) =>
        gpu.kernels.matmul(encoder, { a: binding(a), b: binding(w), c: binding(out), m: BATCH, n: dim, k: dim }),
      ),
    destroy: () => gpu.destroy(),
  };
}

async function openSoft(ctx: ScenarioContext): Promise<InferenceGpu> {
  const gpu = new SoftDevice({
    name: 'inference',
    platform: nodeWorkerPlatform,
    engines: { compute: 1, copy: 1 },
    vramBytes: Math.floor(ctx.budgetBytes / PAGE_SIZE) * PAGE_SIZE,
  });
  await gpu.ready();
  const ttm = gpu.ttm!;
  const vram = ttm.manager(TtmMemType.VRAM)!;
  let peak = 0;
  const usage = (): number => {
    peak = Math.max(peak, vram.usage);
    return vram.usage;
  };
  /** The buffer's bytes, locked, once its moves and jobs are done. */
  const withBytes = async <T>(bo: TtmBufferObject, fn: (bytes: Uint8Array) => T): Promise<T> => {
    await bo.reserve();
    try {
      await bo.waitIdle();
      return fn(bo.kmap());
    } finally {
      bo.unreserve();
    }
  };
  return {
    engine: 'compute.0',
    ttm,
    vramUsage: usage,
    vramPeak: () => Math.max(peak, usage()),
    createBuffer: (size, name, inSystem) =>
      gpu.createBuffer(inSystem ? { size, name, placement: [{ memType: TtmMemType.System }] } : { size, name }),
    write: (bo, data) =>
      withBytes(bo, (bytes) => bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))),
    // slice() copies out of the shared arena into memory of the caller's own.
    read: (bo, bytes) => withBytes(bo, (b) => new Float32Array(b.slice(0, bytes).buffer)),
    layer: async (a, w, out, dim) => {
      // Buffer objects are whole pages; the kernel wants exactly its matrices.
      const act = BATCH * dim * 4;
      const fence = await gpu.execute('compute', 'matmul', {
        m: BATCH,
        n: dim,
        k: dim,
        row0: 0,
        row1: BATCH,
        a: { bo: a, length: act },
        b: { bo: w, length: dim * dim * 4 },
        c: { bo: out, length: act },
      });
      usage(); // the weights were just made resident: the moment VRAM is fullest
      return fence;
    },
    destroy: () => gpu.destroy(),
  };
}

export const inference: Scenario = {
  name: 'inference',
  title: 'weights 2.5x the VRAM budget, layer after layer: evictions, bytes moved, throughput against the ideal',
  knobs: [],
  devices: ['soft', 'webgpu'],
  defaultDurationMs: 5000,
  defaultClients: 1,
  inDefaultSet: true,
  async run(ctx) {
    const { recorder } = ctx;
    const dim = layerDim(ctx.budgetBytes);
    const { weights, input } = model(dim, ctx.seed);
    const want = referenceOutput(weights, input, dim);
    const gpu = ctx.device === 'webgpu' ? await openWebGpu(ctx) : await openSoft(ctx);
    // Starting the device (its workers, its adapter) is not part of the duration.
    const begun = recorder.now();
    const queue = recorder.track(gpu.engine, 'engine');
    const client = recorder.track('inference', 'client');
    const vramChart = recorder.series(
      {
        kind: 'lines',
        id: 'vram',
        title: 'VRAM in use',
        unit: 'bytes',
        counter: 'vram',
        limit: { label: 'budget', value: ctx.budgetBytes },
      },
      ['VRAM'],
    );
    const movedChart = recorder.series(
      { kind: 'bars', id: 'moved', title: 'bytes moved by TTM per sample', unit: 'bytes' },
      ['moved'],
    );
    const layerMs = new Samples();
    const bos: TtmBufferObject[] = [];
    let lastMoved = 0;
    const sample = (): void => {
      const at = recorder.now();
      const moved = gpu.ttm.stats().bytesMoved;
      vramChart.sample(at, [gpu.vramUsage()]);
      movedChart.sample(at, [moved - lastMoved]);
      lastMoved = moved;
    };
    const sampler = setInterval(sample, Math.max(10, ctx.durationMs / 200));
    let layersRun = 0;
    let passes = 0;
    let idealMsPerLayer = Number.NaN;
    let exact = true;
    let lastFinish = 0;
    try {
      for (const [i, w] of weights.entries()) {
        const bo = await gpu.createBuffer(w.byteLength, `w${i}`, true);
        bos.push(bo);
        await gpu.write(bo, w);
      }
      const bytes = BATCH * dim * 4;
      const act = [await gpu.createBuffer(bytes, 'act0', false), await gpu.createBuffer(bytes, 'act1', false)];
      bos.push(...act);
      /** Runs `layers` (indexes) once from the input; returns the output and ms per layer. */
      const pass = async (layers: readonly number[], measured: boolean): Promise<Float32Array> => {
        await gpu.write(act[0]!, input);
        let from = 0;
        for (const l of layers) {
          if (ctx.signal.aborted) break;
          const t0 = recorder.now();
          const [a, out, w] = [act[from]!, act[1 - from]!, bos[l]!];
          const fence = await gpu.layer(a, w, out, dim);
          await fence.wait();
          if (fence.error !== undefined) throw new Error(`layer ${l} failed on the device: ${fence.error.message}`);
          const t1 = recorder.now();
          if (measured) {
            layerMs.add(t1 - t0);
            layersRun++;
            // The queue runs one job at a time, after the previous one.
            recorder.slice(queue, `layer ${l}`, Math.max(t0, lastFinish), t1, { client: 'inference', layer: l });
            lastFinish = t1;
          }
          from = 1 - from;
          ctx.progress(
            Math.min(1, (t1 - begun) / ctx.durationMs),
            `pass ${passes + 1}, ${layersRun} layers, ${formatValue(gpu.ttm.stats().bytesMoved, 'bytes')} moved`,
          );
        }
        return gpu.read(act[from]!, bytes);
      };
      // The ideal: layers whose weights are already resident (the first ones, which fit), run twice.
      const fit = Array.from({ length: LAYERS_THAT_FIT - 2 }, (_, i) => i);
      await pass(fit, false);
      const t0 = recorder.now();
      await pass(fit, false);
      idealMsPerLayer = (recorder.now() - t0) / fit.length;
      const all = Array.from({ length: LAYERS }, (_, i) => i);
      let lastOutput: Float32Array | null = null;
      // At least one complete pass, however short the duration: the pass is the measurement.
      while (!ctx.signal.aborted && (passes === 0 || recorder.now() - begun < ctx.durationMs)) {
        const start = recorder.now();
        const out = await pass(all, true);
        if (ctx.signal.aborted) break;
        recorder.slice(client, `pass ${passes + 1}`, start, recorder.now());
        lastOutput = out;
        passes++;
      }
      if (lastOutput !== null) exact = want.every((v, i) => v === lastOutput![i]);
    } finally {
      clearInterval(sampler);
      sample();
      for (const bo of bos) bo.put();
      await gpu.destroy();
    }
    const seconds = Math.max(1, layerMs.mean * layersRun) / 1000;
    const stats = gpu.ttm.stats();
    const rate = layersRun / seconds;
    const ideal = 1000 / idealMsPerLayer;
    recorder.metric('passes', 'complete passes', passes, 'count');
    recorder.metric('layers', 'layers run', layersRun, 'count');
    recorder.metric('layer_rate', 'layers per second', rate, 'per_s', 'higher');
    recorder.metric('ideal_rate', 'ideal (weights resident)', ideal, 'per_s');
    recorder.metric('efficiency', 'throughput of the ideal', (100 * rate) / ideal, 'percent', 'higher');
    recorder.metric('layer_p50', 'layer latency p50', layerMs.quantile(0.5) * 1000, 'us', 'lower');
    recorder.metric('layer_p99', 'layer latency p99', layerMs.quantile(0.99) * 1000, 'us', 'lower');
    recorder.metric('evictions', 'evictions', stats.evictions, 'count', 'lower');
    recorder.metric('bytes_moved', 'bytes moved', stats.bytesMoved, 'bytes', 'lower');
    recorder.metric('vram_peak', 'VRAM peak', gpu.vramPeak(), 'bytes');
    recorder.histogram('layer-latency', 'layer latency (submit to fence)', 'ms', layerMs);
    recorder.note(
      `model: ${LAYERS} layers of ${dim} x ${dim} f32 (${formatValue(dim * dim * 4, 'bytes')} each, ` +
        `${formatValue(LAYERS * dim * dim * 4, 'bytes')} in all) ` +
        `under a ${formatValue(ctx.budgetBytes, 'bytes')} budget on the ${ctx.device} device`,
    );
    if (gpu.vramPeak() > ctx.budgetBytes) throw new Error('VRAM use went over the budget');
    if (!exact) throw new Error('the output of the last pass differs from the CPU reference');
    if (passes > 0) recorder.note(`the output of pass ${passes} equals the CPU reference bit for bit`);
  },
};
