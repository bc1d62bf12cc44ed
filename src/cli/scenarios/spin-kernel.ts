/**
 * The `spin` kernel of the `hang` scenario: an engine busy for a given time, or for ever.
 *
 * Overview: a hang on a real GPU is a shader that never ends (an infinite loop, a wait on memory
 * nobody writes). The soft device's built-in kernels all finish, so the `hang` scenario
 * registers this module (`SoftDevice.registerKernels`) and submits `spin` with
 * {@link SPIN_FOREVER}: the engine's worker thread loops until the watchdog resets the engine,
 * which terminates the thread. No kernel argument may be infinite, so "for ever" is the largest
 * safe integer of milliseconds (about 285,000 years).
 *
 * Contract: `spin({ ms })` returns after `ms` milliseconds of real time and writes nothing.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * import { SPIN_KERNEL_URL } from './spin-kernel.js';
 * await using gpu = new SoftDevice({ engines: { gfx: 1 } });
 * console.log(await gpu.registerKernels(SPIN_KERNEL_URL)); // ['spin']
 * await gpu.submit('gfx', 'spin', { ms: 2 }).wait();
 * ```
 */

import { defineKernel } from '../../device/soft/soft-kernel.js';

/** Milliseconds of a spin that never ends in practice: a hang. */
export const SPIN_FOREVER = Number.MAX_SAFE_INTEGER;

/** This module, for `registerKernels` (the TypeScript source under tsx, the compiled file in the package). */
export const SPIN_KERNEL_URL = new URL(
  `./spin-kernel${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

/** Busy for `ms` milliseconds of real time. */
export const spin = defineKernel({
  params: { ms: 'number' },
  writes: [],
  run({ ms }) {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // The engine is busy: nothing else runs on this ring until the loop ends or the ring is reset.
    }
  },
});
