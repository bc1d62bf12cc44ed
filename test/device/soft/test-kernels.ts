/**
 * User kernels for the soft-device tests, registered with `device.registerKernels(url)`.
 * Some misbehave on purpose: they hang, throw, kill their worker or exhaust its heap.
 */
import { defineKernel } from '../../../src/device/soft/soft-kernel.js';

/** Appends `value` to a log: `log[0]` counts entries, entry i is at `log[i]`. */
export const append = defineKernel({
  params: { log: 'u32', value: 'number' },
  run({ log, value }) {
    const n = ++log[0]!;
    log[n] = value;
  },
});

/** Busy for `ms` milliseconds of real time (Infinity: a hang). */
export const spin = defineKernel({
  params: { ms: 'number' },
  run({ ms }) {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      /* the engine is busy */
    }
  },
});

/** Throws. */
export const boom = defineKernel({
  params: {},
  run() {
    throw new Error('kernel fault');
  },
});

/** Ends the worker thread, as a crashing engine would. */
export const die = defineKernel({
  params: { code: 'number' },
  run({ code }) {
    process.exit(code);
  },
});

/** Allocates until the worker's heap limit is hit. */
export const hog = defineKernel({
  params: {},
  run() {
    const keep: number[][] = [];
    for (;;) keep.push(new Array<number>(1 << 16).fill(keep.length));
  },
});

/** Inverts bytes: the README's example of a user kernel. */
export const invert = defineKernel({
  params: { src: 'bytes', dst: 'bytes' },
  run({ src, dst }) {
    for (let i = 0; i < src.length; i++) dst[i] = 255 - src[i]!;
  },
});
