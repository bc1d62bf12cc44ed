/**
 * dmabuf/soft: the embedded soft device, a GPU made of worker threads (Web Workers in a browser).
 *
 * Overview: the device starts its engines on worker entry files that sit next to its modules
 * (found with `import.meta.url`), so it lives in an entry point of its own: the main entry stays
 * bundleable into any format, while this one needs ES modules served as files, or a bundler that
 * follows `new URL('./file.js', import.meta.url)`. In Node, import it from `dmabuf/node`, which
 * re-exports it and installs `worker_threads` as the default worker platform. In a browser the
 * page must be cross-origin isolated (COOP/COEP headers) for `SharedArrayBuffer`.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/soft';
 * const device = new SoftDevice({ engines: { compute: 1 } }); // Web Workers in a page
 * await device.destroy();
 * ```
 */
export * from './device/soft/soft-worker-platform.js';
export * from './device/soft/soft-ring-layout.js';
export * from './device/soft/soft-kernel.js';
export * from './device/soft/soft-kernels.js';
export * from './device/soft/soft-kernel-table.js';
export * from './device/soft/soft-memory.js';
export * from './device/soft/soft-fence.js';
export * from './device/soft/soft-ring.js';
export * from './device/soft/soft-engine.js';
export * from './device/soft/soft-device.js';
export { SoftContext, type SoftContextHost, type SoftContextInit } from './device/soft/soft-ctx.js';
export { SoftJob } from './device/soft/soft-job.js';
export type {
  EngineMessage,
  EngineReport,
  EngineWorkerData,
  KernelModule,
} from './device/soft/soft-engine-worker.js';
