/**
 * soft-kernel: what a soft-device kernel is, and how its arguments travel through the ring.
 *
 * Overview: a {@link SoftKernel} is the soft device's shader: a plain function run by an engine
 * worker on views of device memory, with a declared parameter list. Parameters are buffers,
 * seen by the kernel as a typed array over exactly the bytes the job names (`'bytes'`,
 * `'f32'`, `'f64'`, `'u32'`), or numbers. The host encodes a job's arguments into the float64
 * words of its ring slot (a buffer is three words: memory id, byte offset, byte length); the
 * worker decodes them into views. Built-in kernels are in `soft-kernels.ts`; users register
 * their own with `SoftDevice.registerKernels(moduleUrl)`, a module whose exports include
 * kernels made with {@link defineKernel}.
 *
 * Models a GPU program and its argument buffer (amdgpu's IB with user data registers), reduced
 * to a JavaScript function and a list of words.
 *
 * Contract:
 * - Parameter order is the key order of `params`; at most 14 words in total (a buffer takes 3).
 * - A typed buffer's offset and length must be multiples of its element size (checked at submit).
 * - `writes` lists the buffer parameters the kernel writes (all of them when omitted): buffer
 *   objects passed as the others are only read, and their implicit fences say so.
 * - `run` is synchronous and must not keep the views after it returns (the memory may move).
 *   Whatever it throws fails that job with `EIO`; the engine goes on with the next job.
 *
 * @example
 * ```ts
 * import { defineKernel } from 'dmabuf/soft';
 * export const invert = defineKernel({
 *   params: { src: 'bytes', dst: 'bytes' },
 *   writes: ['dst'],
 *   run({ src, dst }) {
 *     for (let i = 0; i < src.length; i++) dst[i] = 255 - src[i]!;
 *   },
 * });
 * ```
 */

import { MAX_ARGS } from './soft-ring-layout.js';

/** Kinds of kernel parameters: buffers seen as typed arrays, or numbers. */
export type SoftKernelParam = 'bytes' | 'f32' | 'f64' | 'u32' | 'number';

/** What a kernel receives for each kind. */
export interface SoftKernelParamType {
  bytes: Uint8Array;
  f32: Float32Array;
  f64: Float64Array;
  u32: Uint32Array;
  number: number;
}

/** The parameter list of a kernel. */
export type SoftKernelParams = Readonly<Record<string, SoftKernelParam>>;

/** The arguments a kernel's `run` receives. */
export type SoftKernelArgs<P extends SoftKernelParams> = { readonly [K in keyof P]: SoftKernelParamType[P[K]] };

/** A kernel: its parameters and the function an engine runs. */
export interface SoftKernel<P extends SoftKernelParams = SoftKernelParams> {
  readonly params: P;
  /**
   * The buffer parameters the kernel writes; the others are only read. Implicit
   * synchronisation of buffer objects depends on it (a write waits for every reader). Every
   * buffer parameter counts as written when omitted.
   */
  readonly writes?: readonly (keyof P & string)[];
  run(args: SoftKernelArgs<P>): void;
}

/** Element size in bytes of each buffer kind. */
export const PARAM_ELEMENT_BYTES: Readonly<Record<Exclude<SoftKernelParam, 'number'>, number>> = Object.freeze({
  bytes: 1,
  f32: 4,
  f64: 8,
  u32: 4,
});

/** Float64 words a parameter list takes in a ring slot. */
export function paramWords(params: SoftKernelParams): number {
  let words = 0;
  for (const kind of Object.values(params)) words += kind === 'number' ? 1 : 3;
  return words;
}

/** Whether `value` looks like a kernel (a module export registerKernels() picks up). */
export function isSoftKernel(value: unknown): value is SoftKernel {
  if (typeof value !== 'object' || value === null) return false;
  const { params, run, writes } = value as Partial<SoftKernel>;
  if (typeof run !== 'function' || typeof params !== 'object' || params === null) return false;
  if (writes !== undefined && !(Array.isArray(writes) && writes.every((w) => Object.hasOwn(params, w)))) return false;
  return Object.values(params).every((kind) => kind in PARAM_ELEMENT_BYTES || kind === 'number');
}

/**
 * Declares a kernel, checking its parameter list; the identity otherwise (it exists for typing).
 * @throws {TypeError} for an unknown parameter kind or more than 14 argument words.
 */
export function defineKernel<const P extends SoftKernelParams>(kernel: SoftKernel<P>): SoftKernel<P> {
  if (!isSoftKernel(kernel)) {
    throw new TypeError(
      'defineKernel: a kernel is { params: { name: kind }, writes?: [names], run(args) } with kinds bytes, f32, ' +
        'f64, u32 or number, and writes naming parameters',
    );
  }
  if (paramWords(kernel.params) > MAX_ARGS) {
    throw new TypeError(
      `defineKernel: the parameters take ${paramWords(kernel.params)} argument words; ` +
        `at most ${MAX_ARGS} fit a ring slot (a buffer takes 3, a number 1)`,
    );
  }
  return kernel;
}

/** Views `length` bytes at `offset` of `buffer` as the typed array of `kind`. */
export function viewOf(
  kind: Exclude<SoftKernelParam, 'number'>,
  buffer: SharedArrayBuffer,
  offset: number,
  length: number,
): Uint8Array | Float32Array | Float64Array | Uint32Array {
  switch (kind) {
    case 'bytes':
      return new Uint8Array(buffer, offset, length);
    case 'f32':
      return new Float32Array(buffer, offset, length / 4);
    case 'f64':
      return new Float64Array(buffer, offset, length / 8);
    case 'u32':
      return new Uint32Array(buffer, offset, length / 4);
  }
}
