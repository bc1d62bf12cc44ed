/**
 * soft-kernels: the soft device's built-in kernels.
 *
 * Overview: the work every engine can run without registering anything: `noop` (benchmarks and
 * fences), `copy` and `fill` (the copy engine's blits and clears), and compute kernels on f32
 * data: `saxpy`, `matmul` (a block of rows, so one product can be split over several engines),
 * `reduce` (a sum) and `conv2d`, plus `checksum` (FNV-1a over bytes, for data-integrity
 * checks between threads). Each is a {@link SoftKernel}; ids are their positions in
 * {@link BUILTIN_KERNELS}, the same on the host and in the workers.
 *
 * Contract (the arithmetic is specified so results can be checked exactly):
 * - `saxpy`: `y[i] = f32(a * x[i] + y[i])` for every element of `x` (and `y`, same length).
 * - `matmul`: for rows `row0 <= i < row1` of C (m x n), `C[i][j] = f32(sum over k ascending of
 *   A[i][k] * B[k][j])`, summed in float64. A is m x k, B is k x n, row-major.
 * - `reduce`: `out[0] = sum of src in index order`, in float64.
 * - `conv2d`: same-size correlation with zero padding and the filter centred (odd `kw`, `kh`):
 *   `dst[y][x] = f32(sum over fy, fx ascending of src[y + fy - kh>>1][x + fx - kw>>1] *
 *   filter[fy][fx])`, summed in float64.
 * - `checksum`: `out[0] = FNV-1a 32-bit of src's bytes` (offset basis 2166136261, prime 16777619).
 * - `copy` needs `src` and `dst` of equal length; `fill` writes `value & 0xff` to every byte.
 * - Sizes that do not match the buffers throw, which fails the job with `EIO`.
 *
 * @example
 * ```ts
 * import { BUILTIN_KERNELS } from 'dmabuf/soft';
 * console.log(Object.keys(BUILTIN_KERNELS).join(' ')); // noop copy fill saxpy matmul reduce conv2d checksum
 * ```
 */

import { defineKernel, type SoftKernel } from './soft-kernel.js';

function check(condition: boolean, message: string): void {
  if (!condition) throw new RangeError(message);
}

/** Does nothing: the cost of a job itself. */
const noop = defineKernel({ params: {}, writes: [], run() {} });

/** `dst = src`, byte for byte. */
const copy = defineKernel({
  params: { src: 'bytes', dst: 'bytes' },
  writes: ['dst'],
  run({ src, dst }) {
    check(src.length === dst.length, `copy: src has ${src.length} bytes, dst ${dst.length}`);
    dst.set(src);
  },
});

/** Every byte of `dst` becomes `value & 0xff`. */
const fill = defineKernel({
  params: { dst: 'bytes', value: 'number' },
  writes: ['dst'],
  run({ dst, value }) {
    dst.fill(value & 0xff);
  },
});

/** `y = a * x + y` on f32 vectors. */
const saxpy = defineKernel({
  params: { a: 'number', x: 'f32', y: 'f32' },
  writes: ['y'],
  run({ a, x, y }) {
    check(x.length === y.length, `saxpy: x has ${x.length} elements, y ${y.length}`);
    for (let i = 0; i < x.length; i++) y[i] = a * x[i]! + y[i]!;
  },
});

/** Rows `row0 .. row1 - 1` of `c = a x b` (m x k times k x n), f32 stored, float64 sums. */
const matmul = defineKernel({
  params: { m: 'number', n: 'number', k: 'number', row0: 'number', row1: 'number', a: 'f32', b: 'f32', c: 'f32' },
  writes: ['c'],
  run({ m, n, k, row0, row1, a, b, c }) {
    check(a.length === m * k && b.length === k * n && c.length === m * n, 'matmul: buffer sizes do not match m, n, k');
    check(0 <= row0 && row0 <= row1 && row1 <= m, `matmul: rows ${row0} .. ${row1} outside 0 .. ${m}`);
    // Row by row, k outer and j inner: every C element still sums over k in ascending order.
    const row = new Float64Array(n);
    for (let i = row0; i < row1; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = a[i * k + p]!;
        const bRow = p * n;
        for (let j = 0; j < n; j++) row[j]! += aip * b[bRow + j]!;
      }
      c.set(row, i * n);
    }
  },
});

/** `out[0] = sum(src)` in float64. */
const reduce = defineKernel({
  params: { src: 'f32', out: 'f64' },
  writes: ['out'],
  run({ src, out }) {
    check(out.length >= 1, 'reduce: out needs room for one float64');
    let sum = 0;
    for (let i = 0; i < src.length; i++) sum += src[i]!;
    out[0] = sum;
  },
});

/** Same-size 2D correlation of a `width` x `height` f32 image with a `kw` x `kh` filter. */
const conv2d = defineKernel({
  params: { width: 'number', height: 'number', kw: 'number', kh: 'number', src: 'f32', filter: 'f32', dst: 'f32' },
  writes: ['dst'],
  run({ width, height, kw, kh, src, filter, dst }) {
    check(kw % 2 === 1 && kh % 2 === 1, `conv2d: filter ${kw} x ${kh} must have odd sides`);
    check(src.length === width * height && dst.length === width * height, 'conv2d: image sizes do not match');
    check(filter.length === kw * kh, 'conv2d: filter size does not match kw x kh');
    const rx = kw >> 1;
    const ry = kh >> 1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let fy = 0; fy < kh; fy++) {
          const sy = y + fy - ry;
          if (sy < 0 || sy >= height) continue;
          for (let fx = 0; fx < kw; fx++) {
            const sx = x + fx - rx;
            if (sx < 0 || sx >= width) continue;
            sum += src[sy * width + sx]! * filter[fy * kw + fx]!;
          }
        }
        dst[y * width + x] = sum;
      }
    }
  },
});

/** `out[0] = FNV-1a 32-bit hash of src`. */
const checksum = defineKernel({
  params: { src: 'bytes', out: 'u32' },
  writes: ['out'],
  run({ src, out }) {
    check(out.length >= 1, 'checksum: out needs room for one u32');
    out[0] = fnv1a(src);
  },
});

/** FNV-1a, 32 bits, over `bytes`: what the `checksum` kernel computes. */
export function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}

/** The built-in kernels by name; a kernel's id is its index in this object's key order, plus 1. */
export const BUILTIN_KERNELS: Readonly<Record<string, SoftKernel>> = Object.freeze({
  noop,
  copy,
  fill,
  saxpy,
  matmul,
  reduce,
  conv2d,
  checksum,
} as unknown as Record<string, SoftKernel>);
