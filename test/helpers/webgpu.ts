/**
 * Test helpers for the WebGPU device: a real adapter (Dawn on SwiftShader in Node), or a skip
 * with instructions when there is none locally; with `CI=true` a missing adapter fails.
 *
 * {@link webgpuSkip} is awaited at the top of a test file and passed to `describe(..., { skip })`.
 * It points Dawn at SwiftShader's Vulkan driver from Debian's `chromium` package unless
 * `VK_ICD_FILENAMES` is set already (the process environment is read by the Vulkan loader when
 * Dawn creates its instance, so setting it here, before the first request, is enough).
 */
import { existsSync } from 'node:fs';
import { requestWebGpuDevice } from '../../src/device/webgpu/webgpu-adapter.js';
import { WebGpuDevice, type WebGpuDeviceOptions } from '../../src/device/webgpu/webgpu-device.js';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const inCi = process.env['CI'] === 'true';

if (process.env['VK_ICD_FILENAMES'] === undefined && existsSync(SWIFTSHADER_ICD))
  process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;

const HOW_TO =
  "install Debian's chromium package (SwiftShader's Vulkan driver) and libvulkan1, or set VK_ICD_FILENAMES " +
  'to a Vulkan driver Dawn accepts, and `npm install` the webgpu devDependency';

let probe: Promise<string | undefined> | null = null;

/**
 * `undefined` when a WebGPU device can be had; otherwise a skip message. With `CI=true` it never
 * skips: the tests then run and fail on the missing adapter, as the project requires.
 */
export function webgpuSkip(): Promise<string | undefined> {
  probe ??= (async () => {
    try {
      const handle = await requestWebGpuDevice();
      handle.device.destroy();
      await handle.device.lost;
      handle.release();
      return undefined;
    } catch (error) {
      if (inCi) return undefined;
      return (
        `no WebGPU adapter (${error instanceof Error ? error.message : String(error)}); ` +
        `to run these tests, ${HOW_TO}`
      );
    }
  })();
  return probe;
}

/** A device for one test, with quiet TTM warnings. */
export function makeDevice(budgetBytes: number, options: Partial<WebGpuDeviceOptions> = {}): Promise<WebGpuDevice> {
  return WebGpuDevice.create({ budgetBytes, quiet: true, ...options });
}

/** A seeded pattern of `size` bytes (size a multiple of 4). */
export function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return out;
}

/** First index where `a` and `b` differ, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
