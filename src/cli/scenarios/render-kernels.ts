/**
 * The `render` scenario's soft-device kernels, registered with `SoftDevice.registerKernels()`:
 * `renderFrame` (the gfx engine draws a frame from two textures) and `uploadTexture` (the copy
 * engine writes a new version of a texture).
 *
 * Overview: both write the contents `render-pattern.ts` defines, so the compositor can check
 * every frame word for word. `passes` is the frame's cost: the frame is drawn that many times
 * (each pass the same result), which is how clients differ in GPU load. Each job also writes
 * when it started and ended on the engine into `stamps` (wall-clock ms, like a GPU timestamp
 * query), so engine time is measured where the work ran, not when the host noticed.
 *
 * Contract: `renderFrame` writes only `target` and reads the textures (its implicit fences say
 * so); `uploadTexture` writes only `tex` (and each its `stamps`). Both run on an engine worker and keep no views.
 *
 * @example
 * ```ts
 * import { renderFrame } from './render-kernels.js';
 * console.log(Object.keys(renderFrame.params)); // ['target', 'tex0', 'tex1', 'key', 'passes', 'stamps']
 * ```
 */

import { defineKernel } from '../../device/soft/soft-kernel.js';
import { drawFrame, fillTexture } from './render-pattern.js';

/** Wall-clock ms, comparable between threads (a GPU timestamp query). */
function stamp(): number {
  return performance.timeOrigin + performance.now();
}

/** Draws the frame with key `key` into `target`, `passes` times; `stamps` gets its start and end. */
export const renderFrame = defineKernel({
  params: { target: 'u32', tex0: 'u32', tex1: 'u32', key: 'number', passes: 'number', stamps: 'f64' },
  writes: ['target', 'stamps'],
  run({ target, tex0, tex1, key, passes, stamps }) {
    stamps[0] = stamp();
    for (let pass = 0; pass < passes; pass++) drawFrame(target, tex0, tex1, key);
    stamps[1] = stamp();
  },
});

/** Writes version `version` of texture `texture` (of the run seeded `seed`) into `tex`. */
export const uploadTexture = defineKernel({
  params: { tex: 'u32', seed: 'number', texture: 'number', version: 'number', stamps: 'f64' },
  writes: ['tex', 'stamps'],
  run({ tex, seed, texture, version, stamps }) {
    stamps[0] = stamp();
    fillTexture(tex, seed, texture, version);
    stamps[1] = stamp();
  },
});
