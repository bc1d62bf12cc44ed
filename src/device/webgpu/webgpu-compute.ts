/// <reference types="@webgpu/types" />
/**
 * webgpu-compute: real WGSL compute kernels (saxpy, f32 matrix multiply, a sum reduction) and
 * the JavaScript references they are checked against.
 *
 * Overview: {@link WebGpuKernels} compiles each kernel once per `GPUDevice` and records
 * dispatches into a command encoder, on buffer bindings (a whole buffer object's `GPUBuffer`,
 * or a range of one). Parameters travel in a small uniform buffer per dispatch. The kernels:
 * - `saxpy`: `y[i] = a * x[i] + y[i]` for `i < n` (64 invocations per workgroup, a 2-D grid
 *   past 65,535 workgroups);
 * - `matmul`: `C (m x n) = A (m x k) * B (k x n)`, row-major f32, 8 x 8 tiles staged in
 *   workgroup memory;
 * - `reduceSum`: the sum of `n` f32 values in two passes: 64 workgroups of 64 invocations each
 *   sum a strided share and reduce it in workgroup memory into `out[1 + w]`, then one
 *   workgroup adds the 64 partial sums into `out[0]` (the output binding holds 65 floats).
 * The references ({@link saxpyReference}, {@link matmulReference}, {@link reduceSumReference})
 * compute the same in JavaScript; {@link f32Tolerance} bounds the difference, since the GPU sums
 * in another order and in f32 (integer-valued data whose partial sums stay below 2^24 is exact).
 *
 * No kernel counterpart: these are the "real work" a job does on a device.
 *
 * Contract:
 * - Bindings must be large enough and 4-byte aligned; WebGPU validates them when the command
 *   buffer is submitted, and a bad one fails that submission (its fence gets the error).
 * - The kernels read and write only their bindings; `x`, `a`, `b` and `input` are read-only.
 *
 * @example
 * ```ts
 * import { WebGpuKernels, requestWebGpuDevice, saxpyReference } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const kernels = new WebGpuKernels(device);
 * const x = device.createBuffer({ size: 16, usage: 0x80 | 0x8 });
 * const y = device.createBuffer({ size: 16, usage: 0x80 | 0x8 | 0x4 });
 * device.queue.writeBuffer(x, 0, new Float32Array([1, 2, 3, 4]));
 * device.queue.writeBuffer(y, 0, new Float32Array([1, 1, 1, 1]));
 * const encoder = device.createCommandEncoder();
 * kernels.saxpy(encoder, { a: 2, x: { buffer: x }, y: { buffer: y }, n: 4 });
 * device.queue.submit([encoder.finish()]);
 * console.log(saxpyReference(2, new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1, 1, 1]))); // 3, 5, 7, 9
 * device.destroy();
 * release();
 * ```
 */

import { InvalidArgumentError, describeValue } from '../../base/errors.js';
import { GpuBufferUsage } from './webgpu-vram-mgr.js';

const MAX_GROUPS_PER_DIM = 65_535;
const SAXPY_GROUP = 64;
const TILE = 8;
const REDUCE_GROUP = 64;
/** Workgroups of the first reduction pass (= partial sums). */
export const REDUCE_PARTIALS = 64;
/** Bytes the output binding of {@link WebGpuKernels.reduceSum} needs: the sum and the partials. */
export const REDUCE_OUTPUT_BYTES = (1 + REDUCE_PARTIALS) * 4;

const SAXPY_WGSL = /* wgsl */ `
struct Params { a: f32, n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(${SAXPY_GROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = id.x + id.y * groups.x * ${SAXPY_GROUP}u;
  if (i < params.n) {
    y[i] = params.a * x[i] + y[i];
  }
}
`;

const MATMUL_WGSL = /* wgsl */ `
struct Dims { m: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> tileA: array<f32, ${TILE * TILE}>;
var<workgroup> tileB: array<f32, ${TILE * TILE}>;

@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let row = g.y;
  let col = g.x;
  var acc = 0.0;
  let tiles = (dims.k + ${TILE - 1}u) / ${TILE}u;
  for (var t = 0u; t < tiles; t++) {
    let ak = t * ${TILE}u + l.x;
    let bk = t * ${TILE}u + l.y;
    var va = 0.0;
    if (row < dims.m && ak < dims.k) { va = a[row * dims.k + ak]; }
    var vb = 0.0;
    if (bk < dims.k && col < dims.n) { vb = b[bk * dims.n + col]; }
    tileA[l.y * ${TILE}u + l.x] = va;
    tileB[l.y * ${TILE}u + l.x] = vb;
    workgroupBarrier();
    for (var i = 0u; i < ${TILE}u; i++) {
      acc += tileA[l.y * ${TILE}u + i] * tileB[i * ${TILE}u + l.x];
    }
    workgroupBarrier();
  }
  if (row < dims.m && col < dims.n) {
    c[row * dims.n + col] = acc;
  }
}
`;

const REDUCE_PARTIAL_WGSL = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, ${REDUCE_GROUP}>;

@compute @workgroup_size(${REDUCE_GROUP})
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  var acc = 0.0;
  let stride = ${REDUCE_PARTIALS * REDUCE_GROUP}u;
  for (var i = w.x * ${REDUCE_GROUP}u + l.x; i < params.n; i += stride) {
    acc += input[i];
  }
  partial[l.x] = acc;
  workgroupBarrier();
  for (var half = ${REDUCE_GROUP / 2}u; half > 0u; half >>= 1u) {
    if (l.x < half) { partial[l.x] += partial[l.x + half]; }
    workgroupBarrier();
  }
  if (l.x == 0u) { out[1u + w.x] = partial[0]; }
}
`;

const REDUCE_FINAL_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, ${REDUCE_PARTIALS}>;

@compute @workgroup_size(${REDUCE_PARTIALS})
fn main(@builtin(local_invocation_id) l: vec3u) {
  partial[l.x] = out[1u + l.x];
  workgroupBarrier();
  for (var half = ${REDUCE_PARTIALS / 2}u; half > 0u; half >>= 1u) {
    if (l.x < half) { partial[l.x] += partial[l.x + half]; }
    workgroupBarrier();
  }
  if (l.x == 0u) { out[0] = partial[0]; }
}
`;

/** Arguments of {@link WebGpuKernels.saxpy}. */
export interface SaxpyArgs {
  readonly a: number;
  readonly x: GPUBufferBinding;
  readonly y: GPUBufferBinding;
  readonly n: number;
}

/** Arguments of {@link WebGpuKernels.matmul}: `c (m x n) = a (m x k) * b (k x n)`. */
export interface MatmulArgs {
  readonly a: GPUBufferBinding;
  readonly b: GPUBufferBinding;
  readonly c: GPUBufferBinding;
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

/** Arguments of {@link WebGpuKernels.reduceSum}; `output` holds {@link REDUCE_OUTPUT_BYTES}. */
export interface ReduceArgs {
  readonly input: GPUBufferBinding;
  readonly output: GPUBufferBinding;
  readonly n: number;
}

function checkCount(kernel: string, name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value >= 2 ** 32)
    throw new InvalidArgumentError(
      `WebGpuKernels.${kernel}: ${name} must be an integer in ${min}..2^32-1, got ${describeValue(value)}`,
    );
  return value;
}

/** Compiled kernels of one device. */
export class WebGpuKernels {
  readonly device: GPUDevice;
  readonly #pipelines = new Map<string, GPUComputePipeline>();

  constructor(device: GPUDevice) {
    if (device === null || typeof device !== 'object' || typeof device.createComputePipeline !== 'function')
      throw new InvalidArgumentError(`WebGpuKernels: device must be a GPUDevice, got ${describeValue(device)}`);
    this.device = device;
  }

  /** Records `y = a * x + y` over `n` floats. */
  saxpy(encoder: GPUCommandEncoder, args: SaxpyArgs): void {
    const n = checkCount('saxpy', 'n', args.n);
    if (typeof args.a !== 'number')
      throw new InvalidArgumentError(`WebGpuKernels.saxpy: a must be a number, got ${describeValue(args.a)}`);
    if (n === 0) return;
    const params = new ArrayBuffer(8);
    new Float32Array(params, 0, 1)[0] = args.a;
    new Uint32Array(params, 4, 1)[0] = n;
    const groups = Math.ceil(n / SAXPY_GROUP);
    const gx = Math.min(groups, MAX_GROUPS_PER_DIM);
    this.#dispatch(encoder, 'saxpy', SAXPY_WGSL, [this.#uniform(params), args.x, args.y], gx, Math.ceil(groups / gx));
  }

  /** Records `c = a * b` (row-major f32; a is m x k, b is k x n). */
  matmul(encoder: GPUCommandEncoder, args: MatmulArgs): void {
    const m = checkCount('matmul', 'm', args.m, 1);
    const n = checkCount('matmul', 'n', args.n, 1);
    const k = checkCount('matmul', 'k', args.k, 1);
    const dims = new Uint32Array([m, n, k, 0]);
    this.#dispatch(
      encoder,
      'matmul',
      MATMUL_WGSL,
      [this.#uniform(dims.buffer), args.a, args.b, args.c],
      Math.ceil(n / TILE),
      Math.ceil(m / TILE),
    );
  }

  /** Records the sum of `n` floats of `input` into `output[0]` (`output[1..64]` are scratch). */
  reduceSum(encoder: GPUCommandEncoder, args: ReduceArgs): void {
    const n = checkCount('reduceSum', 'n', args.n);
    const params = new Uint32Array([n, 0, 0, 0]);
    this.#dispatch(
      encoder,
      'reduce-partial',
      REDUCE_PARTIAL_WGSL,
      [this.#uniform(params.buffer), args.input, args.output],
      REDUCE_PARTIALS,
      1,
    );
    this.#dispatch(encoder, 'reduce-final', REDUCE_FINAL_WGSL, [args.output], 1, 1);
  }

  #pipeline(name: string, code: string): GPUComputePipeline {
    let pipeline = this.#pipelines.get(name);
    if (pipeline === undefined) {
      const module = this.device.createShaderModule({ code, label: `dmabuf ${name}` });
      pipeline = this.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
        label: `dmabuf ${name}`,
      });
      this.#pipelines.set(name, pipeline);
    }
    return pipeline;
  }

  /** A uniform buffer holding `data`; collected with its last use (WebGPU keeps it for the GPU). */
  #uniform(data: ArrayBuffer): GPUBufferBinding {
    const buffer = this.device.createBuffer({
      size: Math.max(16, data.byteLength),
      usage: GpuBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data));
    buffer.unmap();
    return { buffer };
  }

  #dispatch(
    encoder: GPUCommandEncoder,
    name: string,
    code: string,
    bindings: readonly GPUBufferBinding[],
    x: number,
    y: number,
  ): void {
    const pipeline = this.#pipeline(name, code);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((resource, binding) => ({ binding, resource })),
    });
    const pass = encoder.beginComputePass({ label: `dmabuf ${name}` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
  }
}

/** `a * x + y` in f32, as the kernel computes it. */
export function saxpyReference(a: number, x: Float32Array, y: Float32Array): Float32Array {
  const out = new Float32Array(y.length);
  const fa = Math.fround(a);
  for (let i = 0; i < y.length; i++) out[i] = Math.fround(Math.fround(fa * x[i]!) + y[i]!);
  return out;
}

/** `a (m x k) * b (k x n)`, accumulated in f64 (the kernel's f32 result is within {@link f32Tolerance}). */
export function matmulReference(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = acc;
    }
  }
  return c;
}

/** The sum in f64. */
export function reduceSumReference(x: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i]!;
  return acc;
}

/**
 * A bound on the error of an f32 sum whose longest chain of additions is `depth` long and whose
 * terms' magnitudes add up to `absSum`: `depth * 2^-24 * absSum` (the classic bound), plus a
 * tiny floor. The chains: `k` for a matmul entry, {@link reduceDepth} for the reduction.
 */
export function f32Tolerance(depth: number, absSum: number): number {
  return depth * 2 ** -24 * absSum + 1e-30;
}

/** The longest chain of additions of {@link WebGpuKernels.reduceSum} over `n` values. */
export function reduceDepth(n: number): number {
  return Math.ceil(n / (REDUCE_PARTIALS * REDUCE_GROUP)) + Math.log2(REDUCE_GROUP) + Math.log2(REDUCE_PARTIALS);
}
