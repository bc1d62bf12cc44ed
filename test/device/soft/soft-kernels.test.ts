import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';
import { BUILTIN_KERNELS, fnv1a } from '../../../src/device/soft/soft-kernels.js';
import { nodeWorkerPlatform } from '../../../src/device/soft/soft-worker-node.js';
import type { SoftMemory } from '../../../src/device/soft/soft-memory.js';
import { seededRandom, testSeed } from '../../helpers/mock-fence.js';

// Plain JavaScript references, written the obvious way (see the arithmetic in soft-kernels.ts).
function refSaxpy(a: number, x: Float32Array, y: Float32Array): Float32Array {
  return y.map((yi, i) => Math.fround(a * x[i]! + yi));
}

function refMatmul(m: number, n: number, k: number, a: Float32Array, b: Float32Array): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = sum;
    }
  }
  return c;
}

function refConv2d(
  w: number,
  h: number,
  kw: number,
  kh: number,
  src: Float32Array,
  filter: Float32Array,
): Float32Array {
  const dst = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let fy = 0; fy < kh; fy++) {
        for (let fx = 0; fx < kw; fx++) {
          const sy = y + fy - (kh >> 1);
          const sx = x + fx - (kw >> 1);
          if (sy >= 0 && sy < h && sx >= 0 && sx < w) sum += src[sy * w + sx]! * filter[fy * kw + fx]!;
        }
      }
      dst[y * w + x] = sum;
    }
  }
  return dst;
}

function refFnv1a(bytes: Uint8Array): number {
  let hash = 2166136261;
  for (const byte of bytes) hash = Number((BigInt(hash ^ byte) * 16777619n) & 0xffffffffn);
  return hash;
}

describe('soft-kernels: every built-in kernel on a real engine, against a JavaScript reference', () => {
  const seed = testSeed();
  const random = seededRandom(seed);
  const msg = (what: string): string => `${what} (seed ${seed}; TEST_SEED=${seed} replays)`;
  let device: SoftDevice;
  let memory: SoftMemory;
  let used = 0;
  const MiB = 1 << 20;

  /** A fresh range of `bytes` (8-aligned) of the mapped memory. */
  function alloc(bytes: number) {
    const range = memory.range(used, bytes);
    used += Math.ceil(bytes / 8) * 8;
    return range;
  }
  function f32(range: { offset: number; length: number }): Float32Array {
    return new Float32Array(memory.buffer, range.offset, range.length / 4);
  }
  function randomF32(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => random() * 4 - 2);
  }

  before(() => {
    device = new SoftDevice({ engines: { compute: 1, copy: 1 }, platform: nodeWorkerPlatform });
    memory = device.map(new SharedArrayBuffer(8 * MiB));
  });
  after(() => device.destroy());

  it('sanity: the built-ins are the documented eight', () => {
    assert.deepEqual(Object.keys(BUILTIN_KERNELS), [
      'noop',
      'copy',
      'fill',
      'saxpy',
      'matmul',
      'reduce',
      'conv2d',
      'checksum',
    ]);
    assert.deepEqual(device.kernelNames.slice(0, 8), Object.keys(BUILTIN_KERNELS));
  });

  it('noop completes and changes nothing', async () => {
    const fence = device.submit('compute', 'noop');
    assert.equal(await fence.wait({ timeout: 10_000 }), true);
    assert.equal(fence.error, undefined);
  });

  it('copy and fill move bytes on the copy engine', async () => {
    const src = alloc(4099);
    const dst = alloc(4099);
    const bytes = new Uint8Array(memory.buffer, src.offset, src.length);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    await device.submit('copy', 'copy', { src, dst }).wait();
    assert.deepEqual(new Uint8Array(memory.buffer, dst.offset, dst.length), bytes, msg('copy'));
    await device.submit('copy', 'fill', { dst, value: 0x1a5 }).wait();
    assert.ok(
      new Uint8Array(memory.buffer, dst.offset, dst.length).every((b) => b === 0xa5),
      'fill writes value & 0xff',
    );
  });

  it('saxpy: y = a x + y on 10,000 floats', async () => {
    const n = 10_000;
    const x = alloc(n * 4);
    const y = alloc(n * 4);
    f32(x).set(randomF32(n));
    f32(y).set(randomF32(n));
    const expected = refSaxpy(-1.25, f32(x), f32(y));
    await device.submit('compute', 'saxpy', { a: -1.25, x, y }).wait();
    assert.deepEqual(f32(y), expected, msg('saxpy'));
  });

  it('matmul: a 37 x 23 times 23 x 41 product, whole and in row blocks', async () => {
    const [m, k, n] = [37, 23, 41];
    const a = alloc(m * k * 4);
    const b = alloc(k * n * 4);
    const c = alloc(m * n * 4);
    f32(a).set(randomF32(m * k));
    f32(b).set(randomF32(k * n));
    const expected = refMatmul(m, n, k, f32(a), f32(b));
    await device.submit('compute', 'matmul', { m, n, k, row0: 0, row1: m, a, b, c }).wait();
    assert.deepEqual(f32(c), expected, msg('matmul'));
    f32(c).fill(0);
    const blocks = [0, 10, 11, 30, m].slice(1).map((end, i, ends) => [i === 0 ? 0 : ends[i - 1]!, end] as const);
    await Promise.all(
      blocks.map(([row0, row1]) => device.submit('compute', 'matmul', { m, n, k, row0, row1, a, b, c }).wait()),
    );
    assert.deepEqual(f32(c), expected, msg('matmul in blocks'));
  });

  it('reduce: the float64 sum of 100,000 floats', async () => {
    const n = 100_000;
    const src = alloc(n * 4);
    const out = alloc(8);
    f32(src).set(randomF32(n));
    let expected = 0;
    for (const v of f32(src)) expected += v;
    await device.submit('compute', 'reduce', { src, out }).wait();
    assert.equal(new Float64Array(memory.buffer, out.offset, 1)[0], expected, msg('reduce'));
  });

  it('conv2d: a 64 x 48 image with a 5 x 3 filter, zero padded', async () => {
    const [w, h, kw, kh] = [64, 48, 5, 3];
    const src = alloc(w * h * 4);
    const filter = alloc(kw * kh * 4);
    const dst = alloc(w * h * 4);
    f32(src).set(randomF32(w * h));
    f32(filter).set(randomF32(kw * kh));
    const expected = refConv2d(w, h, kw, kh, f32(src), f32(filter));
    await device.submit('compute', 'conv2d', { width: w, height: h, kw, kh, src, filter, dst }).wait();
    assert.deepEqual(f32(dst), expected, msg('conv2d'));
  });

  it('checksum: FNV-1a of 65,537 random bytes', async () => {
    const src = alloc(65_537);
    const out = alloc(4);
    const bytes = new Uint8Array(memory.buffer, src.offset, src.length);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    await device.submit('compute', 'checksum', { src, out }).wait();
    const got = new Uint32Array(memory.buffer, out.offset, 1)[0];
    assert.equal(got, refFnv1a(bytes), msg('checksum'));
    assert.equal(fnv1a(bytes), got);
  });

  it('mismatched sizes fail the job with EIO and the engine goes on', async () => {
    const x = alloc(16);
    const y = alloc(32);
    const failed = device.submit('compute', 'saxpy', { a: 1, x, y });
    const next = device.submit('compute', 'noop');
    await Promise.all([failed.wait(), next.wait()]);
    assert.equal((failed.error as { code?: string }).code, 'EIO');
    assert.equal(next.error, undefined);
  });
});
