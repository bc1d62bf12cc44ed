/**
 * Kernels of the soft-device benchmarks: `stamp` writes the engine's wall-clock time into `out[0]`
 * at the end of the job, so the host can measure how long the completion takes to reach it.
 */
import { defineKernel } from '../src/device/soft/soft-kernel.js';

export const stamp = defineKernel({
  params: { out: 'f64' },
  run({ out }) {
    out[0] = performance.timeOrigin + performance.now();
  },
});
