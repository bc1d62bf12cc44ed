/**
 * Shared parts of the WebGPU benchmarks: getting a device (Dawn on SwiftShader in Node) and a
 * clear error when there is none.
 *
 * @example
 * ```ts
 * import { benchDevice } from './webgpu-common.js';
 * const { device, release } = await benchDevice();
 * device.destroy();
 * release();
 * ```
 */
import { existsSync } from 'node:fs';
import { requestWebGpuDevice, type WebGpuHandle } from '../src/device/webgpu/webgpu-adapter.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** A WebGPU device for a benchmark; points Dawn at SwiftShader when nothing else is configured. */
export async function benchDevice(): Promise<WebGpuHandle> {
  if (process.env['VK_ICD_FILENAMES'] === undefined && existsSync(SWIFTSHADER_ICD))
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  return requestWebGpuDevice();
}

/** Waits for everything queued on `device`. */
export function queueIdle(device: GPUDevice): Promise<undefined> {
  return device.queue.onSubmittedWorkDone();
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
