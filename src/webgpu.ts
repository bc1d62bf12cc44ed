/**
 * dmabuf/webgpu: the WebGPU device (TTM buffer objects in `GPUBuffer`s under a byte budget,
 * hardware fences from queue submissions, WGSL compute).
 *
 * A separate entry so that the main `dmabuf` entry stays small and never mentions WebGPU. This
 * one is browser-safe too: it uses `navigator.gpu` where there is one, and in Node loads the
 * optional peer dependency `webgpu` (Dawn) with a dynamic `import()` only when a device is
 * requested. Re-exports everything of `dmabuf`.
 */
/// <reference types="@webgpu/types" />
export * from './index.js';
export * from './device/webgpu/webgpu-adapter.js';
export * from './device/webgpu/webgpu-ring.js';
export * from './device/webgpu/webgpu-vram-mgr.js';
export * from './device/webgpu/webgpu-staging.js';
export * from './device/webgpu/webgpu-ttm.js';
export * from './device/webgpu/webgpu-compute.js';
export * from './device/webgpu/webgpu-sched.js';
export * from './device/webgpu/webgpu-cs.js';
export * from './device/webgpu/webgpu-device.js';
