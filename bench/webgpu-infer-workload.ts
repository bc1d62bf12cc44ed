/**
 * An inference-shaped workload for the WebGPU device: `layers` weight matrices whose total is
 * several times the VRAM budget, run in order on a batch of activations (`act = act x W_l`), so
 * TTM must evict earlier layers' weights to System and restore them on the next pass.
 *
 * The weights are sparse integer matrices (two ones per column, so values at most double per
 * layer and stay exact in f32), which lets the GPU's results be compared bit for bit with the
 * JavaScript reference `matmulReference`. Used by `test/device/webgpu/webgpu-infer.test.ts` and
 * `bench/webgpu-infer.bench.ts`.
 *
 * @example
 * ```ts
 * const model = inferModel({ layers: 12, dim: 256, batch: 8, seed: 1 });
 * const out = await runOnDevice(gpu, await loadModel(gpu, model), model);
 * ```
 */
import { seededRandom } from '../src/base/random.js';
import { matmulReference } from '../src/device/webgpu/webgpu-compute.js';
import type { WebGpuDevice } from '../src/device/webgpu/webgpu-device.js';
import type { TtmBufferObject } from '../src/ttm/ttm-bo.js';
import { TtmMemType } from '../src/ttm/ttm-placement.js';

export interface InferShape {
  readonly layers: number;
  /** Rows and columns of each weight matrix. */
  readonly dim: number;
  /** Rows of the activations. */
  readonly batch: number;
  readonly seed: number;
}

export interface InferModel extends InferShape {
  readonly weights: readonly Float32Array[];
  readonly input: Float32Array;
}

/** The weights and input of a model of `shape`. */
export function inferModel(shape: InferShape): InferModel {
  const rand = seededRandom(shape.seed);
  const { dim } = shape;
  const weights = Array.from({ length: shape.layers }, () => {
    const w = new Float32Array(dim * dim);
    for (let col = 0; col < dim; col++) for (let k = 0; k < 2; k++) w[Math.floor(rand() * dim) * dim + col]! += 1;
    return w;
  });
  const input = new Float32Array(shape.batch * dim).map(() => Math.floor(rand() * 16));
  return { ...shape, weights, input };
}

/** The expected output, on the CPU. */
export function inferReference(model: InferModel): Float32Array {
  let act = model.input;
  for (const w of model.weights) act = matmulReference(act, w, model.batch, model.dim, model.dim);
  return act;
}

/** Creates one buffer object per layer's weights (in System: TTM places them when used). */
export async function loadModel(gpu: WebGpuDevice, model: InferModel): Promise<TtmBufferObject[]> {
  const out: TtmBufferObject[] = [];
  for (const [i, w] of model.weights.entries()) {
    const bo = await gpu.createBuffer({
      size: w.byteLength,
      placement: [{ memType: TtmMemType.System }],
      name: `w${i}`,
    });
    await gpu.write(bo, w);
    out.push(bo);
  }
  return out;
}

/** Runs every layer in order through the scheduler; returns the output activations. */
export async function runOnDevice(
  gpu: WebGpuDevice,
  weights: readonly TtmBufferObject[],
  model: InferModel,
): Promise<Float32Array> {
  const bytes = model.batch * model.dim * 4;
  let act = await gpu.createBuffer({ size: bytes, name: 'act0' });
  let next = await gpu.createBuffer({ size: bytes, name: 'act1' });
  try {
    await gpu.write(act, model.input);
    for (const w of weights) {
      const [a, out] = [act, next];
      await gpu.submit([{ bo: a }, { bo: w }, { bo: out, write: true }], (encoder, binding) =>
        gpu.kernels.matmul(encoder, {
          a: binding(a),
          b: binding(w),
          c: binding(out),
          m: model.batch,
          n: model.dim,
          k: model.dim,
        }),
      );
      [act, next] = [next, act];
    }
    return new Float32Array((await gpu.read(act, 0, bytes)).buffer);
  } finally {
    act.put();
    next.put();
  }
}
