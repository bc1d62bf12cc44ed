/**
 * WGSL kernels on Dawn (SwiftShader), checked against the JavaScript references with seeded data.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError } from '../../../src/base/errors.js';
import { seededRandom } from '../../../src/base/random.js';
import { requestWebGpuDevice, type WebGpuHandle } from '../../../src/device/webgpu/webgpu-adapter.js';
import {
  REDUCE_OUTPUT_BYTES,
  WebGpuKernels,
  f32Tolerance,
  matmulReference,
  reduceDepth,
  reduceSumReference,
  saxpyReference,
} from '../../../src/device/webgpu/webgpu-compute.js';
import { GpuBufferUsage } from '../../../src/device/webgpu/webgpu-vram-mgr.js';
import { testSeed } from '../../helpers/mock-fence.js';
import { webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const seed = testSeed();
const STORAGE = GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_SRC | GpuBufferUsage.COPY_DST;

function randomFloats(n: number, random: () => number, integers = false): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = integers ? Math.floor(random() * 17) - 8 : random() * 2 - 1;
  return out;
}

describe(`WebGpuKernels (seed ${seed})`, { skip }, () => {
  let handle: WebGpuHandle;
  let device: GPUDevice;
  let kernels: WebGpuKernels;
  before(async () => {
    handle = await requestWebGpuDevice();
    device = handle.device;
    kernels = new WebGpuKernels(device);
  });
  after(async () => {
    device.destroy();
    await device.lost;
    handle.release();
  });

  function upload(data: Float32Array, bytes = data.byteLength): GPUBuffer {
    const buffer = device.createBuffer({ size: Math.max(bytes, 16), usage: STORAGE });
    device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  }

  async function download(buffer: GPUBuffer, floats: number): Promise<Float32Array> {
    const staging = device.createBuffer({
      size: floats * 4,
      usage: GpuBufferUsage.MAP_READ | GpuBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, floats * 4);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(1);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  }

  function run(record: (encoder: GPUCommandEncoder) => void): void {
    const encoder = device.createCommandEncoder();
    record(encoder);
    device.queue.submit([encoder.finish()]);
  }

  it('sanity: saxpy of four floats', async () => {
    const x = upload(new Float32Array([1, 2, 3, 4]));
    const y = upload(new Float32Array([1, 1, 1, 1]));
    run((e) => kernels.saxpy(e, { a: 2, x: { buffer: x }, y: { buffer: y }, n: 4 }));
    assert.deepEqual([...(await download(y, 4))], [3, 5, 7, 9], 'y = 2x + 1');
  });

  it('saxpy equals the f32 reference bit for bit, also past one row of workgroups', async () => {
    const random = seededRandom(seed);
    for (const n of [1, 63, 65, 4097, 65_535 * 64 + 100]) {
      const x = randomFloats(n, random);
      const y = randomFloats(n, random);
      const a = random() * 4 - 2;
      const gx = upload(x);
      const gy = upload(y);
      run((e) => kernels.saxpy(e, { a, x: { buffer: gx }, y: { buffer: gy }, n }));
      const got = await download(gy, n);
      const want = saxpyReference(a, x, y);
      const bad = got.findIndex((v, i) => v !== want[i]);
      assert.equal(bad, -1, `n ${n}: element ${bad} is ${got[bad]}, want ${want[bad]} (seed ${seed})`);
      gx.destroy();
      gy.destroy();
    }
  });

  it('saxpy leaves elements past n alone', async () => {
    const y = upload(new Float32Array([1, 1, 1, 1, 1, 1, 1, 1]));
    const x = upload(new Float32Array(8).fill(5));
    run((e) => kernels.saxpy(e, { a: 1, x: { buffer: x }, y: { buffer: y }, n: 3 }));
    assert.deepEqual([...(await download(y, 8))], [6, 6, 6, 1, 1, 1, 1, 1], 'only the first three change');
  });

  it('matmul matches the reference within the f32 bound, square and ragged shapes', async () => {
    const random = seededRandom(seed + 1);
    for (const [m, n, k] of [
      [1, 1, 1],
      [8, 8, 8],
      [17, 5, 33],
      [40, 24, 48],
    ] as const) {
      const a = randomFloats(m * k, random);
      const b = randomFloats(k * n, random);
      const ga = upload(a);
      const gb = upload(b);
      const gc = device.createBuffer({ size: Math.max(16, m * n * 4), usage: STORAGE });
      run((e) => kernels.matmul(e, { a: { buffer: ga }, b: { buffer: gb }, c: { buffer: gc }, m, n, k }));
      const got = await download(gc, m * n);
      const want = matmulReference(a, b, m, n, k);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let abs = 0;
          for (let p = 0; p < k; p++) abs += Math.abs(a[i * k + p]! * b[p * n + j]!);
          const diff = Math.abs(got[i * n + j]! - want[i * n + j]!);
          assert.ok(
            diff <= f32Tolerance(k + 1, abs),
            `${m}x${k} * ${k}x${n}: c[${i}][${j}] = ${got[i * n + j]}, want ${want[i * n + j]} (seed ${seed})`,
          );
        }
      }
      for (const g of [ga, gb, gc]) g.destroy();
    }
  });

  it('matmul of integer matrices is exact', async () => {
    const random = seededRandom(seed + 2);
    const [m, n, k] = [24, 20, 36];
    const a = randomFloats(m * k, random, true);
    const b = randomFloats(k * n, random, true);
    const ga = upload(a);
    const gb = upload(b);
    const gc = device.createBuffer({ size: m * n * 4, usage: STORAGE });
    run((e) => kernels.matmul(e, { a: { buffer: ga }, b: { buffer: gb }, c: { buffer: gc }, m, n, k }));
    assert.deepEqual([...(await download(gc, m * n))], [...matmulReference(a, b, m, n, k)], `exact (seed ${seed})`);
  });

  it('reduceSum is exact on integers and within the f32 bound on random floats', async () => {
    const random = seededRandom(seed + 3);
    for (const n of [0, 1, 255, 257, 16_385, 100_000]) {
      for (const integers of [true, false]) {
        const x = randomFloats(n, random, integers);
        const input = upload(x, Math.max(16, n * 4));
        const output = device.createBuffer({ size: REDUCE_OUTPUT_BYTES, usage: STORAGE });
        run((e) => kernels.reduceSum(e, { input: { buffer: input }, output: { buffer: output }, n }));
        const got = (await download(output, 1))[0]!;
        const want = reduceSumReference(x);
        if (integers) {
          assert.equal(got, want, `n ${n}: integer sum (seed ${seed})`);
        } else {
          const abs = x.reduce((s, v) => s + Math.abs(v), 0);
          assert.ok(
            Math.abs(got - want) <= f32Tolerance(reduceDepth(n), abs),
            `n ${n}: sum ${got}, want ${want} (seed ${seed})`,
          );
        }
        input.destroy();
        output.destroy();
      }
    }
  });

  it('refuses bad sizes with a typed error', () => {
    const encoder = device.createCommandEncoder();
    const b = { buffer: device.createBuffer({ size: 16, usage: STORAGE }) };
    assert.throws(() => kernels.saxpy(encoder, { a: 1, x: b, y: b, n: -1 }), InvalidArgumentError);
    assert.throws(() => kernels.saxpy(encoder, { a: 'x' as never, x: b, y: b, n: 1 }), InvalidArgumentError);
    assert.throws(() => kernels.matmul(encoder, { a: b, b, c: b, m: 0, n: 1, k: 1 }), /m must be an integer in 1/);
    assert.throws(() => kernels.reduceSum(encoder, { input: b, output: b, n: 1.5 }), InvalidArgumentError);
    assert.throws(() => new WebGpuKernels({} as GPUDevice), InvalidArgumentError);
  });
});
